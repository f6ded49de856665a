//! The init step (`osmo_init`): prepares a pod's shared volumes before ctrl and the user
//! container start. It does nothing when the data volume already holds something (the
//! pod restarted), so a restart never wipes a task's data.
//!
//! Sources are read from `/osmo` (the init image's layout) and the runtime binaries are
//! written to `/osmo_binaries/osmo`; `SIDEWIRE_INIT_SOURCE` and `SIDEWIRE_INIT_BINARIES`
//! move those two roots (for tests and for images laid out differently). sidewire is one
//! binary, so `osmo_ctrl` and `osmo_exec` are both copies of the running executable.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::cli::init::InitArgs;

pub fn main(args: InitArgs) -> i32 {
    let source =
        PathBuf::from(std::env::var("SIDEWIRE_INIT_SOURCE").unwrap_or_else(|_| "/osmo".into()));
    let binaries = PathBuf::from(
        std::env::var("SIDEWIRE_INIT_BINARIES").unwrap_or_else(|_| "/osmo_binaries".into()),
    );
    match init(&args, &source, &binaries) {
        Ok(()) => 0,
        Err(e) => {
            println!("Error initializing OSMO: {e}");
            1
        }
    }
}

fn init(args: &InitArgs, source: &Path, binaries: &Path) -> io::Result<()> {
    let has_content = fs::read_dir(&args.data_location)
        .map_err(|e| with_path(e, &args.data_location))?
        .filter_map(Result::ok)
        .any(|entry| entry.file_name() != "lost+found");
    if has_content {
        return Ok(());
    }
    let me = std::env::current_exe()?;
    let bin_dir = binaries.join("osmo");
    fs::create_dir_all(&bin_dir).map_err(|e| with_path(e, &bin_dir))?;
    // 0755, not upstream's 0777: the binaries volume is mounted in the user container too,
    // and a world-writable binary would let a non-root user there replace ctrl's.
    for name in ["osmo_ctrl", "osmo_exec"] {
        copy_with_mode(&me, &bin_dir.join(name), 0o755)?;
    }
    for sub in ["benchmarks", "input", "output", "socket"] {
        make_dir(&args.data_location.join(sub))?;
    }
    let cli_source = source.join("osmo_cli_onedir");
    if cli_source.is_dir() {
        let cli_dir = args.user_bin_location.join("osmo_cli");
        copy_tree(&cli_source, &cli_dir)?;
        fs::set_permissions(&cli_dir, fs::Permissions::from_mode(0o777))?;
        let link = args.user_bin_location.join("osmo");
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("osmo_cli/osmo/osmo-cli/osmo-cli"), &link)?;
        }
    }
    let login = source.join("login.yaml");
    for who in ["ctrl", "user"] {
        let dir = args.login_location.join(who).join("config");
        make_dir(&dir)?;
        if login.is_file() {
            copy_with_mode(&login, &dir.join("login.yaml"), 0o777)?;
        }
    }
    let user_config = source.join("user_config.yaml");
    if user_config.is_file() {
        copy_with_mode(
            &user_config,
            &args.login_location.join("user/config/config.yaml"),
            0o777,
        )?;
    }
    make_dir(&args.run_location.join("workspace"))?;
    if args.enable_rsync {
        let rsync = rsync_binary(source)?;
        copy_with_mode(&rsync, &args.user_bin_location.join("rsync"), 0o755)?;
    }
    Ok(())
}

/// The rsync to install: the image's own (`{source}/rsync`, as OSMO's init image has),
/// else the first executable `rsync` on `PATH`.
fn rsync_binary(source: &Path) -> io::Result<PathBuf> {
    crate::agent::session::rsyncd::find_rsync(source).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "--enable_rsync: no rsync binary at {} or on PATH",
                source.join("rsync").display()
            ),
        )
    })
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn make_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir).map_err(|e| with_path(e, dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).map_err(|e| with_path(e, dir))
}

fn copy_with_mode(from: &Path, to: &Path, mode: u32) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|e| with_path(e, parent))?;
    }
    fs::copy(from, to).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("copy {} to {}: {e}", from.display(), to.display()),
        )
    })?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).map_err(|e| with_path(e, to))
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to).map_err(|e| with_path(e, to))?;
    for entry in fs::read_dir(from).map_err(|e| with_path(e, from))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(|e| with_path(e, &src))?;
        }
    }
    Ok(())
}
