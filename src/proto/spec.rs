//! Data specs from the command line (PROTOCOL §6): `-inputs`, `-outputs`, `-checkpoint`.
//!
//! `task:<folder>,<url>,<regex>` / `url:<folder>,<url>,<regex>` inputs,
//! `task:<url>` / `url:<url>,<regex>` / `kpi:<url>,<path>` outputs and
//! `<path>;<url>;<seconds>;<regex>` checkpoints. The kind ends at the first `:`; the
//! last field takes the rest of the spec, so a regex may hold commas (or semicolons).
//! Where the service's other runtime would crash or misread a spec, this rejects it
//! with an error naming the spec and what is wrong.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

#[cfg(test)]
mod tests;

/// Data to download before the user command starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    /// Output of an upstream task (service credentials).
    Task {
        folder: String,
        url: String,
        regex: String,
    },
    /// Any store URL (user credentials).
    Url {
        folder: String,
        url: String,
        regex: String,
    },
}

impl InputSpec {
    /// Folder under the input path to download into (may be empty: the input path).
    pub fn folder(&self) -> &str {
        match self {
            InputSpec::Task { folder, .. } | InputSpec::Url { folder, .. } => folder,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            InputSpec::Task { url, .. } | InputSpec::Url { url, .. } => url,
        }
    }

    /// Filter on object names; empty for everything.
    pub fn regex(&self) -> &str {
        match self {
            InputSpec::Task { regex, .. } | InputSpec::Url { regex, .. } => regex,
        }
    }

    /// How log lines name this input: a task by its last URL segment, a URL whole.
    pub fn log_name(&self) -> &str {
        match self {
            InputSpec::Task { url, .. } => last_segment(url),
            InputSpec::Url { url, .. } => url,
        }
    }
}

/// Data to upload after the user command ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSpec {
    /// Everything under the output path, for downstream tasks (service credentials).
    Task { url: String },
    /// Everything under the output path matching `regex` (user credentials).
    Url { url: String, regex: String },
    /// One file, `{output path}{path}` (service credentials).
    Kpi { url: String, path: String },
}

impl OutputSpec {
    pub fn url(&self) -> &str {
        match self {
            OutputSpec::Task { url }
            | OutputSpec::Url { url, .. }
            | OutputSpec::Kpi { url, .. } => url,
        }
    }

    /// How log lines name this output: a task by its last URL segment, a KPI as
    /// `KPI: <path>`, a URL whole.
    pub fn log_name(&self) -> Cow<'_, str> {
        match self {
            OutputSpec::Task { url } => Cow::Borrowed(last_segment(url)),
            OutputSpec::Url { url, .. } => Cow::Borrowed(url),
            OutputSpec::Kpi { path, .. } => Cow::Owned(format!("KPI: {path}")),
        }
    }

    /// The URL metrics report for this output (`<url>/<path>` for a KPI).
    pub fn metric_url(&self) -> Cow<'_, str> {
        match self {
            OutputSpec::Kpi { url, path } => Cow::Owned(format!("{url}/{path}")),
            other => Cow::Borrowed(other.url()),
        }
    }
}

/// Periodic upload of `path` to `url` while the user command runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointSpec {
    pub path: String,
    pub url: String,
    pub frequency: Duration,
    pub regex: String,
}

/// Which flag a spec came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecKind {
    Input,
    Output,
    Checkpoint,
}

/// What is wrong with a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecProblem {
    /// No `<kind>:` in front.
    NoKind,
    /// A kind this flag does not take (`dataset`, `kpi` as an input, `foo`, ...).
    UnknownKind(String),
    /// Wrong number of fields; holds the expected form.
    Form(&'static str),
    /// A field that must not be empty is.
    Empty(&'static str),
    /// A folder or path that would leave its base directory (`..`) or holds a NUL.
    Escapes(&'static str),
    /// The checkpoint frequency is not a positive whole number of seconds.
    Frequency(String),
}

/// A spec that cannot be used, with the spec itself (cut to 200 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub kind: SpecKind,
    pub spec: String,
    pub problem: SpecProblem,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = match self.kind {
            SpecKind::Input => "input",
            SpecKind::Output => "output",
            SpecKind::Checkpoint => "checkpoint",
        };
        write!(f, "invalid {flag} spec {:?}: ", self.spec)?;
        match &self.problem {
            SpecProblem::NoKind => write!(f, "missing the `<kind>:` prefix"),
            SpecProblem::UnknownKind(k) => write!(f, "{flag}s cannot be of kind {k:?}"),
            SpecProblem::Form(form) => write!(f, "expected {form}"),
            SpecProblem::Empty(field) => write!(f, "the {field} is empty"),
            SpecProblem::Escapes(field) => {
                write!(
                    f,
                    "the {field} must stay inside its directory (no `..`, no NUL)"
                )
            }
            SpecProblem::Frequency(v) => {
                write!(
                    f,
                    "frequency {v:?} is not a positive whole number of seconds"
                )
            }
        }
    }
}

impl std::error::Error for SpecError {}

/// Parses one `-inputs` value.
pub fn parse_input(s: &str) -> Result<InputSpec, SpecError> {
    let err = |problem| error(SpecKind::Input, s, problem);
    let (kind, rest) = s.split_once(':').ok_or_else(|| err(SpecProblem::NoKind))?;
    let form = match kind {
        "task" => "task:<folder>,<url>,<regex>",
        "url" => "url:<folder>,<url>,<regex>",
        other => return Err(err(SpecProblem::UnknownKind(other.into()))),
    };
    let [folder, url, regex] = fields(rest, ',').ok_or_else(|| err(SpecProblem::Form(form)))?;
    check_relative(folder, "folder").map_err(err)?;
    non_empty(url, "url").map_err(err)?;
    let (folder, url, regex) = (folder.to_owned(), url.to_owned(), regex.to_owned());
    Ok(match kind {
        "task" => InputSpec::Task { folder, url, regex },
        _ => InputSpec::Url { folder, url, regex },
    })
}

/// Parses one `-outputs` value.
pub fn parse_output(s: &str) -> Result<OutputSpec, SpecError> {
    let err = |problem| error(SpecKind::Output, s, problem);
    let (kind, rest) = s.split_once(':').ok_or_else(|| err(SpecProblem::NoKind))?;
    match kind {
        "task" => {
            let [url] = fields(rest, ',').ok_or_else(|| err(SpecProblem::Form("task:<url>")))?;
            non_empty(url, "url").map_err(err)?;
            Ok(OutputSpec::Task {
                url: url.to_owned(),
            })
        }
        "url" => {
            let [url, regex] =
                fields(rest, ',').ok_or_else(|| err(SpecProblem::Form("url:<url>,<regex>")))?;
            non_empty(url, "url").map_err(err)?;
            Ok(OutputSpec::Url {
                url: url.to_owned(),
                regex: regex.to_owned(),
            })
        }
        "kpi" => {
            let [url, path] =
                fields(rest, ',').ok_or_else(|| err(SpecProblem::Form("kpi:<url>,<path>")))?;
            non_empty(url, "url").map_err(err)?;
            non_empty(path, "path").map_err(err)?;
            check_relative(path, "path").map_err(err)?;
            Ok(OutputSpec::Kpi {
                url: url.to_owned(),
                path: path.to_owned(),
            })
        }
        other => Err(err(SpecProblem::UnknownKind(other.into()))),
    }
}

/// Parses one `-checkpoint` value: `<path>;<url>;<seconds>;<regex>`.
pub fn parse_checkpoint(s: &str) -> Result<CheckpointSpec, SpecError> {
    let err = |problem| error(SpecKind::Checkpoint, s, problem);
    let [path, url, seconds, regex] = fields(s, ';').ok_or_else(|| {
        err(SpecProblem::Form(
            "<path>;<url>;<frequency seconds>;<regex>",
        ))
    })?;
    non_empty(path, "path").map_err(err)?;
    non_empty(url, "url").map_err(err)?;
    // Whole seconds, optionally signed like the peers' parser accepts; zero or less
    // would upload in a tight loop.
    let digits = seconds.strip_prefix('+').unwrap_or(seconds);
    let secs = match digits.parse::<u64>() {
        Ok(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(err(SpecProblem::Frequency(seconds.to_owned()))),
    };
    Ok(CheckpointSpec {
        path: path.to_owned(),
        url: url.to_owned(),
        frequency: Duration::from_secs(secs),
        regex: regex.to_owned(),
    })
}

/// Splits into exactly `N` fields, the last taking the rest; `None` if fewer.
fn fields<const N: usize>(s: &str, sep: char) -> Option<[&str; N]> {
    let mut out = [""; N];
    let mut parts = s.splitn(N, sep);
    for slot in &mut out {
        *slot = parts.next()?;
    }
    // With N == 1 the only field is the whole string; a separator in it means more
    // fields than the form has.
    if N == 1 && s.contains(sep) {
        return None;
    }
    Some(out)
}

fn non_empty(v: &str, field: &'static str) -> Result<(), SpecProblem> {
    if v.is_empty() {
        return Err(SpecProblem::Empty(field));
    }
    Ok(())
}

/// Folders and KPI paths are appended to a base directory: keep them inside it.
fn check_relative(v: &str, field: &'static str) -> Result<(), SpecProblem> {
    if v.contains('\0') || v.split('/').any(|c| c == "..") {
        return Err(SpecProblem::Escapes(field));
    }
    Ok(())
}

fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

fn error(kind: SpecKind, spec: &str, problem: SpecProblem) -> SpecError {
    let mut end = spec.len().min(200);
    while !spec.is_char_boundary(end) {
        end -= 1;
    }
    SpecError {
        kind,
        spec: spec[..end].to_owned(),
        problem,
    }
}
