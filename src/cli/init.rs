//! Command line of the init step (`osmo-init` compatible).
//!
//! Upstream's init step is a Python script, so its options follow argparse:
//! long options `--name VALUE` or `--name=VALUE`, a store-true switch, `-h`
//! and `--help`, last occurrence wins, and anything unknown is an error.

use std::path::PathBuf;

use super::goflag::FlagError;

/// The init step's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitArgs {
    /// Shared data volume (`socket/ input/ output/ benchmarks/`).
    pub data_location: PathBuf,
    /// Login/config files for the sidecar and the user.
    pub login_location: PathBuf,
    /// User binaries volume (the rsync binary goes here).
    pub user_bin_location: PathBuf,
    /// Holds `workspace/`.
    pub run_location: PathBuf,
    pub enable_rsync: bool,
}

impl Default for InitArgs {
    /// Upstream's defaults.
    fn default() -> InitArgs {
        InitArgs {
            data_location: "/osmo/data".into(),
            login_location: "/osmo/login".into(),
            user_bin_location: "/osmo/usr/bin".into(),
            run_location: "/osmo/run".into(),
            enable_rsync: false,
        }
    }
}

impl InitArgs {
    /// Parses the init step's arguments (without the program name).
    pub fn parse(args: &[String]) -> Result<InitArgs, FlagError> {
        let mut out = InitArgs::default();
        let mut rest = args;
        while let Some((arg, tail)) = rest.split_first() {
            rest = tail;
            if arg == "--" {
                // Everything after is positional, and there are no positionals.
                return match rest.first() {
                    Some(extra) => Err(FlagError::Unexpected(extra.clone())),
                    None => Ok(out),
                };
            }
            if arg == "-h" || arg == "--help" {
                return Err(FlagError::Help);
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v)),
                _ => (arg.as_str(), None),
            };
            let slot = match name {
                "--data_location" => &mut out.data_location,
                "--login_location" => &mut out.login_location,
                "--user_bin_location" => &mut out.user_bin_location,
                "--run_location" => &mut out.run_location,
                "--enable_rsync" => {
                    if let Some(v) = inline {
                        return Err(FlagError::BadValue {
                            flag: name.to_owned(),
                            value: v.to_owned(),
                            why: "this switch takes no value".to_owned(),
                        });
                    }
                    out.enable_rsync = true;
                    continue;
                }
                _ if looks_like_option(arg) => return Err(FlagError::Unknown(name.to_owned())),
                _ => return Err(FlagError::Unexpected(arg.clone())),
            };
            let value = match inline {
                Some(v) => v,
                None => match rest.split_first() {
                    Some((v, tail)) if !looks_like_option(v) => {
                        rest = tail;
                        v
                    }
                    _ => return Err(FlagError::MissingValue(name.to_owned())),
                },
            };
            *slot = value.into();
        }
        Ok(out)
    }

    /// Help text in argparse's layout.
    pub fn usage() -> String {
        let d = InitArgs::default();
        format!(
            "usage: sidewire init [-h] [--data_location DATA_LOCATION] \
             [--login_location LOGIN_LOCATION]\n\
             \x20                    [--user_bin_location USER_BIN_LOCATION] \
             [--run_location RUN_LOCATION] [--enable_rsync]\n\n\
             options:\n\
             \x20 -h, --help            show this help message and exit\n\
             \x20 --data_location DATA_LOCATION\n\
             \x20                       shared data volume (default: {})\n\
             \x20 --login_location LOGIN_LOCATION\n\
             \x20                       login and config files (default: {})\n\
             \x20 --user_bin_location USER_BIN_LOCATION\n\
             \x20                       user binaries volume (default: {})\n\
             \x20 --run_location RUN_LOCATION\n\
             \x20                       folder holding workspace/ (default: {})\n\
             \x20 --enable_rsync        install the rsync binary for the user\n",
            d.data_location.display(),
            d.login_location.display(),
            d.user_bin_location.display(),
            d.run_location.display(),
        )
    }
}

/// argparse's test for an option string: a leading `-`, except a lone `-`,
/// a negative number, or text with a space, which are values.
fn looks_like_option(s: &str) -> bool {
    let Some(body) = s.strip_prefix('-') else {
        return false;
    };
    !(body.is_empty() || is_unsigned_number(body) || s.contains(' '))
}

/// `\d+` or `\d*\.\d+`, the shapes argparse takes for negative numbers.
fn is_unsigned_number(s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('.') {
        Some((int, frac)) => (int.is_empty() || digits(int)) && digits(frac),
        None => digits(s),
    }
}
