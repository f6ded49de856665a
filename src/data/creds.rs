//! OSMO data credential files (PROTOCOL §6) and the choice of credential for a store.
//!
//! The files are YAML written by Python's `yaml.dump`:
//! `auth: data: <profile>: {access_key_id, access_key, region, override_url,
//! addressing_style}` where the profile is a store prefix (`s3://bucket`,
//! `swift://host/AUTH_ns`, …). Upstream's reader is
//! `src/lib/data/storage/credentials/credentials.py:get_static_data_credential_from_config`:
//! it reads only `auth.data`, so other top-level keys and other fields of a profile (the
//! service writes `endpoint` too) are ignored here as well. The service writes a profile
//! without keys for a store whose credentials come from the environment
//! (`DefaultDataCredential` in the same file).
//!
//! Errors name the file, the line, the profile and the field, never a value.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::proto::yaml::{self, Value, YamlError};

#[cfg(test)]
mod tests;

/// S3 request addressing: bucket in the host name, in the path, or the SDK's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressingStyle {
    Virtual,
    Path,
    Auto,
}

impl AddressingStyle {
    pub fn parse(s: &str) -> Option<AddressingStyle> {
        match s {
            "virtual" => Some(AddressingStyle::Virtual),
            "path" => Some(AddressingStyle::Path),
            "auto" => Some(AddressingStyle::Auto),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AddressingStyle::Virtual => "virtual",
            AddressingStyle::Path => "path",
            AddressingStyle::Auto => "auto",
        }
    }
}

/// One `auth.data` entry of a credential file.
#[derive(Clone, PartialEq, Eq)]
pub struct ProfileEntry {
    /// `access_key_id` and `access_key`; `None` when the profile leaves keys to the
    /// environment.
    pub keys: Option<(String, String)>,
    pub region: Option<String>,
    /// `override_url`: the HTTP endpoint of an S3-compatible store.
    pub endpoint_url: Option<String>,
    pub addressing_style: Option<AddressingStyle>,
}

impl fmt::Debug for ProfileEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileEntry")
            .field("access_key_id", &self.keys.as_ref().map(|(id, _)| id))
            .field("access_key", &self.keys.as_ref().map(|_| "<redacted>"))
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("addressing_style", &self.addressing_style)
            .finish()
    }
}

/// The credential to use for one store.
#[derive(Clone, PartialEq, Eq)]
pub struct DataCredential {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Only from the environment (`AWS_SESSION_TOKEN`).
    pub session_token: Option<String>,
    pub region: Option<String>,
    /// HTTP endpoint of an S3-compatible store (`override_url`, `AWS_ENDPOINT_URL_S3`,
    /// `AWS_ENDPOINT_URL`); `None` for the store's own endpoint.
    pub endpoint_url: Option<String>,
    /// `None`: virtual-host for custom endpoints (PROTOCOL §6).
    pub addressing_style: Option<AddressingStyle>,
}

impl fmt::Debug for DataCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataCredential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("addressing_style", &self.addressing_style)
            .finish()
    }
}

/// The environment's credentials and settings; empty variables count as unset.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsEnv {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// `OSMO_S3_ADDRESSING_STYLE`.
    pub osmo_s3_addressing_style: Option<String>,
    /// `AWS_S3_FORCE_PATH_STYLE`.
    pub force_path_style: Option<String>,
}

impl AwsEnv {
    pub fn from_process() -> AwsEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        AwsEnv {
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            endpoint_url: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
            osmo_s3_addressing_style: var("OSMO_S3_ADDRESSING_STYLE"),
            force_path_style: var("AWS_S3_FORCE_PATH_STYLE"),
        }
    }

    /// `OSMO_S3_ADDRESSING_STYLE`, else path style when `AWS_S3_FORCE_PATH_STYLE` is true.
    fn addressing_style(&self) -> Result<Option<AddressingStyle>, CredError> {
        if let Some(style) = &self.osmo_s3_addressing_style {
            return AddressingStyle::parse(style)
                .map(Some)
                .ok_or(CredError::BadEnvAddressingStyle);
        }
        let forced = self
            .force_path_style
            .as_deref()
            .map(str::to_ascii_lowercase);
        Ok(matches!(forced.as_deref(), Some("true" | "1")).then_some(AddressingStyle::Path))
    }
}

impl fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("AwsEnv")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redact(&self.secret_access_key))
            .field("session_token", &redact(&self.session_token))
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("osmo_s3_addressing_style", &self.osmo_s3_addressing_style)
            .field("force_path_style", &self.force_path_style)
            .finish()
    }
}

#[derive(Debug)]
pub enum CredError {
    /// The file exists but cannot be read.
    Io {
        path: PathBuf,
        error: io::Error,
    },
    Yaml {
        path: PathBuf,
        error: YamlError,
    },
    /// `auth` or `auth.data` (or a profile) is not a mapping.
    NotAMapping {
        path: PathBuf,
        what: String,
    },
    /// A profile's field is missing or malformed.
    Field {
        path: PathBuf,
        profile: String,
        field: &'static str,
        problem: &'static str,
    },
    BadEnvAddressingStyle,
    /// No profile for the store and no usable credentials in the environment.
    NotFound {
        profile_key: String,
        path: PathBuf,
    },
}

impl fmt::Display for CredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredError::Io { path, error } => {
                write!(f, "cannot read credential file {}: {error}", path.display())
            }
            CredError::Yaml { path, error } => {
                write!(f, "credential file {}: {error}", path.display())
            }
            CredError::NotAMapping { path, what } => {
                write!(
                    f,
                    "credential file {}: {what} is not a mapping",
                    path.display()
                )
            }
            CredError::Field {
                path,
                profile,
                field,
                problem,
            } => write!(
                f,
                "credential file {}: profile {profile:?}: {field} {problem}",
                path.display()
            ),
            CredError::BadEnvAddressingStyle => {
                write!(f, "OSMO_S3_ADDRESSING_STYLE must be virtual, path or auto")
            }
            CredError::NotFound { profile_key, path } => write!(
                f,
                "no data credential for {profile_key}: no profile for it in {} and no \
                 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CredError {}

/// A parsed credential file, keyed by profile (store prefix).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialFile {
    /// Where it was read from; named in errors.
    pub path: PathBuf,
    pub profiles: BTreeMap<String, ProfileEntry>,
}

impl CredentialFile {
    /// Parses `text`, read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<CredentialFile, CredError> {
        let path = path.to_path_buf();
        let doc = yaml::parse(text).map_err(|error| CredError::Yaml {
            path: path.clone(),
            error,
        })?;
        let data = match &doc {
            Value::Map(top) => match top.get("auth") {
                Some(Value::Map(auth)) => auth.get("data"),
                Some(Value::Null) | None => None,
                Some(Value::Str(_)) => return Err(not_a_mapping(&path, "auth")),
            },
            _ => None,
        };
        let profiles = match data {
            Some(Value::Map(data)) => data
                .iter()
                .map(|(profile, value)| {
                    Ok((profile.clone(), profile_entry(&path, profile, value)?))
                })
                .collect::<Result<_, CredError>>()?,
            Some(Value::Str(_)) => return Err(not_a_mapping(&path, "auth.data")),
            Some(Value::Null) | None => BTreeMap::new(),
        };
        Ok(CredentialFile { path, profiles })
    }

    /// Reads and parses the file at `path`. A missing file holds no profiles (as
    /// upstream, which then falls back to the environment).
    pub fn load(path: &Path) -> Result<CredentialFile, CredError> {
        match read_credential_text(path) {
            Ok(text) => CredentialFile::parse(path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(CredentialFile {
                path: path.to_path_buf(),
                profiles: BTreeMap::new(),
            }),
            Err(error) => Err(CredError::Io {
                path: path.to_path_buf(),
                error,
            }),
        }
    }

    /// The credential for the store whose profile key (store prefix) is `profile_key`.
    ///
    /// Upstream looks the profile up by exact key. This takes the exact key first (a
    /// trailing `/` on either side does not matter), else the longest profile that is a
    /// whole-segment prefix of `profile_key`. A profile without keys, or no profile at
    /// all, takes the keys from the environment; region, endpoint and addressing style
    /// come from the profile, else from the environment.
    pub fn select(&self, profile_key: &str, env: &AwsEnv) -> Result<DataCredential, CredError> {
        let trimmed = |key: &str| key.trim_end_matches('/').len();
        let wanted = &profile_key[..trimmed(profile_key)];
        let entry = self
            .profiles
            .get(profile_key)
            .or_else(|| {
                let mut same = self
                    .profiles
                    .iter()
                    .filter(|(key, _)| &key[..trimmed(key)] == wanted);
                same.next().map(|(_, entry)| entry)
            })
            .or_else(|| {
                self.profiles
                    .iter()
                    .filter(|(key, _)| is_segment_prefix(&key[..trimmed(key)], wanted))
                    .max_by_key(|(key, _)| trimmed(key))
                    .map(|(_, entry)| entry)
            });
        let (access_key_id, secret_access_key, session_token) = match entry
            .and_then(|e| e.keys.clone())
        {
            Some((id, secret)) => (id, secret, None),
            None => match (&env.access_key_id, &env.secret_access_key) {
                (Some(id), Some(secret)) => (id.clone(), secret.clone(), env.session_token.clone()),
                _ => {
                    return Err(CredError::NotFound {
                        profile_key: profile_key.to_owned(),
                        path: self.path.clone(),
                    })
                }
            },
        };
        let addressing_style = match entry.and_then(|e| e.addressing_style) {
            Some(style) => Some(style),
            None => env.addressing_style()?,
        };
        Ok(DataCredential {
            access_key_id,
            secret_access_key,
            session_token,
            region: entry
                .and_then(|e| e.region.clone())
                .or_else(|| env.region.clone()),
            endpoint_url: entry
                .and_then(|e| e.endpoint_url.clone())
                .or_else(|| env.endpoint_url.clone()),
            addressing_style,
        })
    }
}

/// Parses credential-file text (no path to name in errors: see [`CredentialFile::parse`]).
pub fn parse_credential_file(text: &str) -> Result<BTreeMap<String, ProfileEntry>, CredError> {
    CredentialFile::parse(Path::new("<text>"), text).map(|file| file.profiles)
}

/// Copies the credential file in use to `<config_dir>/config.yaml` with mode 0600, where
/// the `osmo` tools of the task look for it (upstream's ctrl does the same with
/// `$OSMO_CONFIG_FILE_DIR`). Nothing to do without a config dir. The copy goes through a
/// new temporary file and a rename (see [`crate::sys::private::replace_file`]).
pub fn publish_config(path: &Path, config_dir: Option<&Path>) -> io::Result<()> {
    let Some(dir) = config_dir else {
        return Ok(());
    };
    let text = crate::sys::small_file::read(path, MAX_CREDENTIAL_FILE)?;
    std::fs::create_dir_all(dir)?;
    crate::sys::private::replace_file(&dir.join("config.yaml"), &text)
}

/// Largest credential file read; a real one holds a few profiles of a few lines each.
const MAX_CREDENTIAL_FILE: u64 = 1 << 20;

/// A credential file's text: a regular file of at most [`MAX_CREDENTIAL_FILE`] bytes, so
/// a FIFO or an endless file there is an error, not a hang.
fn read_credential_text(path: &Path) -> io::Result<String> {
    let bytes = crate::sys::small_file::read(path, MAX_CREDENTIAL_FILE)?;
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the file is not UTF-8"))
}

fn not_a_mapping(path: &Path, what: &str) -> CredError {
    CredError::NotAMapping {
        path: path.to_path_buf(),
        what: what.to_owned(),
    }
}

/// `prefix` names `key` or a folder above it: `s3://b` for `s3://b/x`, not `s3://bb`.
fn is_segment_prefix(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with('/'))
        && !prefix.is_empty()
}

fn profile_entry(path: &Path, profile: &str, value: &Value) -> Result<ProfileEntry, CredError> {
    let field_error = |field, problem| CredError::Field {
        path: path.to_path_buf(),
        profile: profile.to_owned(),
        field,
        problem,
    };
    let Value::Map(fields) = value else {
        return Err(not_a_mapping(path, &format!("profile {profile:?}")));
    };
    // Absent, null and empty optional fields are all unset (upstream tests truthiness).
    let text = |field: &'static str| -> Result<Option<String>, CredError> {
        match fields.get(field) {
            Some(Value::Str(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(Value::Str(_)) | Some(Value::Null) | None => Ok(None),
            Some(Value::Map(_)) => Err(field_error(field, "must be a string")),
        }
    };
    let key = |field: &'static str| -> Result<Option<String>, CredError> {
        match fields.get(field) {
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            None => Ok(None),
            Some(Value::Null) => Err(field_error(field, "is null")),
            Some(Value::Map(_)) => Err(field_error(field, "must be a string")),
        }
    };
    let keys = match (key("access_key_id")?, key("access_key")?) {
        (Some(id), Some(secret)) => Some((id, secret)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(field_error(
                "access_key",
                "is missing (access_key_id is set)",
            ))
        }
        (None, Some(_)) => {
            return Err(field_error(
                "access_key_id",
                "is missing (access_key is set)",
            ))
        }
    };
    let addressing_style = match text("addressing_style")? {
        None => None,
        Some(s) => Some(AddressingStyle::parse(&s).ok_or(field_error(
            "addressing_style",
            "must be virtual, path or auto",
        ))?),
    };
    Ok(ProfileEntry {
        keys,
        region: text("region")?,
        endpoint_url: text("override_url")?,
        addressing_style,
    })
}
