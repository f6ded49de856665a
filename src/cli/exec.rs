//! Command line of the user-container agent (`osmo_exec` compatible).

use std::path::PathBuf;
use std::time::Duration;

use super::goflag::{self, FlagDef, FlagError, FlagKind};

/// The agent's settings, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecArgs {
    /// The program, then leading arguments; never empty after [`ExecArgs::parse`].
    pub commands: Vec<String>,
    /// More arguments, after those of `commands`.
    pub args: Vec<String>,
    /// `path;url;frequency_seconds;regex` periodic uploads.
    pub checkpoint: Vec<String>,
    pub socket_path: PathBuf,
    pub unix_timeout: Duration,
    /// Appended to the user command's `PATH`.
    pub user_bin_path: String,
    pub history_file_path: PathBuf,
    pub run_location: PathBuf,
    pub enable_rsync: bool,
    /// Bytes per second, 0 = unlimited.
    pub rsync_read_limit: i64,
    /// Bytes per second, 0 = unlimited.
    pub rsync_write_limit: i64,
    /// `name:path:writable,...` extra rsync modules.
    pub rsync_path_allow_list: String,
    /// sidewire's own: the rsync daemon's port on 127.0.0.1 (upstream's is fixed, 16000).
    pub rsync_port: u16,
    pub cli_auto_complete_script_path: PathBuf,
    /// sidewire's own: the credential file checkpoints upload with (empty: see
    /// [`crate::agent::checkpoint::user_config_path`]).
    pub user_config: PathBuf,
    /// sidewire's own: the checkpoints' transfer journal (empty: next to the socket,
    /// `none`: no journal).
    pub checkpoint_journal: String,
}

impl ExecArgs {
    /// Every flag the agent accepts, with upstream's names and defaults.
    #[rustfmt::skip]
    pub const FLAGS: &'static [FlagDef] = &[
        FlagDef::new("commands", FlagKind::Repeat, "", "Program, then leading arguments; repeat for each."),
        FlagDef::new("args", FlagKind::Repeat, "", "Argument appended after the commands; repeat for each."),
        FlagDef::new("checkpoint", FlagKind::Repeat, "", "Upload path;url;seconds;regex every period and once at the end; path/* uploads a folder's contents; repeat for more."),
        FlagDef::new("socketPath", FlagKind::Str, "", "Unix socket of the sidecar."),
        FlagDef::new("unixTimeout", FlagKind::Int, "120", "Minutes to keep dialing the sidecar's socket."),
        FlagDef::new("userBinPath", FlagKind::Str, "/osmo/usr/bin", "Folder appended to PATH."),
        FlagDef::new("historyFilePath", FlagKind::Str, "/osmo/data/.bash_history", "Shell history file for exec sessions."),
        FlagDef::new("runLocation", FlagKind::Str, "/osmo/run", "Folder holding workspace/ for rsync."),
        FlagDef::new("enableRsync", FlagKind::Bool, "false", "Run an rsync daemon for the task."),
        FlagDef::new("rsyncReadLimit", FlagKind::Int, "0", "rsync read limit in bytes per second (0 = none)."),
        FlagDef::new("rsyncWriteLimit", FlagKind::Int, "0", "rsync write limit in bytes per second (0 = none)."),
        FlagDef::new("rsyncPathAllowList", FlagKind::Str, "", "Extra rsync modules as name:path:writable,..."),
        FlagDef::new("rsyncPort", FlagKind::Int, "16000", "Port of the rsync daemon on 127.0.0.1."),
        FlagDef::new("cliAutoCompleteScriptPath", FlagKind::Str, "/osmo/usr/bin/osmo_cli/osmo/autocomplete.bash", "Completion script sourced by exec shells, if present."),
        FlagDef::new("userConfig", FlagKind::Str, "", "Credentials for checkpoints (default $OSMO_CONFIG_FILE_DIR/config.yaml, else /osmo/user_config.yaml)."),
        FlagDef::new("checkpointJournal", FlagKind::Str, "", "Checkpoints' journal (default next to -socketPath; none = no journal)."),
    ];

    /// Parses the agent's arguments (without the program name). At least one
    /// `-commands` is required: it names the program to run.
    pub fn parse(args: &[String]) -> Result<ExecArgs, FlagError> {
        let p = goflag::parse(Self::FLAGS, args)?;
        if p.list("commands").is_empty() {
            return Err(FlagError::BadValue {
                flag: "-commands".to_owned(),
                value: String::new(),
                why: "at least one -commands is required: the first names the program to run"
                    .to_owned(),
            });
        }
        Ok(ExecArgs {
            commands: p.list("commands").to_vec(),
            args: p.list("args").to_vec(),
            checkpoint: p.list("checkpoint").to_vec(),
            socket_path: p.str("socketPath").into(),
            unix_timeout: goflag::minutes(p.int("unixTimeout")),
            user_bin_path: p.str("userBinPath").to_owned(),
            history_file_path: p.str("historyFilePath").into(),
            run_location: p.str("runLocation").into(),
            enable_rsync: p.bool("enableRsync"),
            rsync_read_limit: p.int("rsyncReadLimit"),
            rsync_write_limit: p.int("rsyncWriteLimit"),
            rsync_path_allow_list: p.str("rsyncPathAllowList").to_owned(),
            rsync_port: port(p.int("rsyncPort"))?,
            cli_auto_complete_script_path: p.str("cliAutoCompleteScriptPath").into(),
            user_config: p.str("userConfig").into(),
            checkpoint_journal: p.str("checkpointJournal").to_owned(),
        })
    }

    /// The user command: the program and its arguments, `commands` then `args`.
    pub fn argv(&self) -> Vec<String> {
        self.commands.iter().chain(&self.args).cloned().collect()
    }
}

/// A TCP port to listen on: 1 to 65535.
fn port(value: i64) -> Result<u16, FlagError> {
    u16::try_from(value)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| FlagError::BadValue {
            flag: "-rsyncPort".to_owned(),
            value: value.to_string(),
            why: "a port is 1 to 65535".to_owned(),
        })
}
