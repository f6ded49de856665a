//! Command-line flags with the semantics of Go's `flag` package.
//!
//! The pod specs written by the service call the runtime with Go-style flags, so
//! sidewire must accept exactly what Go accepts: `-name value`, `-name=value`,
//! `--name value`, `--name=value`; boolean flags only as `-name` or `-name=v`;
//! parsing stops at the first non-flag argument, at a lone `-`, and after `--`.

use std::fmt;
use std::time::Duration;

/// The type of a flag's value, which decides how its text is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// Any text.
    Str,
    /// A signed 64-bit integer in Go's `strconv.ParseInt(s, 0, 64)` syntax.
    Int,
    /// `-name` alone means true; a value must be given as `-name=v`.
    Bool,
    /// Text that may be given many times; every value is kept, in order.
    Repeat,
}

/// One flag a program accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagDef {
    /// Name without the leading dash.
    pub name: &'static str,
    pub kind: FlagKind,
    /// Default in the flag's own syntax; must be "" for [`FlagKind::Repeat`].
    pub default: &'static str,
    /// One-line description shown by [`usage`].
    pub help: &'static str,
}

impl FlagDef {
    pub const fn new(
        name: &'static str,
        kind: FlagKind,
        default: &'static str,
        help: &'static str,
    ) -> FlagDef {
        FlagDef {
            name,
            kind,
            default,
            help,
        }
    }
}

/// Why a command line was rejected. Flag fields hold the flag as the user
/// writes it, dashes included, so messages read the same for every syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagError {
    /// `-h`, `-help` or `--help` was given and is not a defined flag.
    Help,
    /// A flag that the program does not define.
    Unknown(String),
    /// A flag that takes a value came last, without one.
    MissingValue(String),
    /// A value that does not parse or is out of the allowed range.
    BadValue {
        flag: String,
        value: String,
        why: String,
    },
    /// An argument such as `---x` or `-=x`.
    BadSyntax(String),
    /// An argument that is neither a flag nor expected.
    Unexpected(String),
    /// No command was given; holds the expected synopsis.
    MissingCommand(String),
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagError::Help => f.write_str("help requested"),
            FlagError::Unknown(flag) => write!(f, "flag provided but not defined: {flag}"),
            FlagError::MissingValue(flag) => write!(f, "flag needs an argument: {flag}"),
            FlagError::BadValue { flag, value, why } => {
                write!(f, "invalid value {value:?} for flag {flag}: {why}")
            }
            FlagError::BadSyntax(arg) => write!(f, "bad flag syntax: {arg}"),
            FlagError::Unexpected(arg) => write!(f, "unexpected argument: {arg}"),
            FlagError::MissingCommand(synopsis) => {
                write!(f, "no command given; usage: {synopsis}")
            }
        }
    }
}

impl std::error::Error for FlagError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
}

/// The outcome of [`parse`]: one value per defined flag, plus the arguments
/// left after the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    names: Vec<&'static str>,
    values: Vec<Value>,
    positional: Vec<String>,
}

impl Parsed {
    fn value(&self, name: &str) -> Option<&Value> {
        let found = self.names.iter().position(|n| *n == name);
        debug_assert!(found.is_some(), "flag -{name} is not defined");
        found.and_then(|i| self.values.get(i))
    }

    /// Value of a [`FlagKind::Str`] flag ("" for a name that is not one).
    pub fn str(&self, name: &str) -> &str {
        match self.value(name) {
            Some(Value::Str(s)) => s,
            other => {
                debug_assert!(other.is_none(), "-{name} is not a string flag");
                ""
            }
        }
    }

    /// Value of a [`FlagKind::Int`] flag (0 for a name that is not one).
    pub fn int(&self, name: &str) -> i64 {
        match self.value(name) {
            Some(Value::Int(v)) => *v,
            other => {
                debug_assert!(other.is_none(), "-{name} is not an int flag");
                0
            }
        }
    }

    /// Value of a [`FlagKind::Bool`] flag (false for a name that is not one).
    pub fn bool(&self, name: &str) -> bool {
        match self.value(name) {
            Some(Value::Bool(v)) => *v,
            other => {
                debug_assert!(other.is_none(), "-{name} is not a bool flag");
                false
            }
        }
    }

    /// Values of a [`FlagKind::Repeat`] flag in command-line order.
    pub fn list(&self, name: &str) -> &[String] {
        match self.value(name) {
            Some(Value::List(v)) => v,
            other => {
                debug_assert!(other.is_none(), "-{name} is not a repeat flag");
                &[]
            }
        }
    }

    /// The arguments after the flags (and after a consumed `--`).
    pub fn positional(&self) -> &[String] {
        &self.positional
    }
}

/// Parses `args` (without the program name) against `defs`.
pub fn parse(defs: &[FlagDef], args: &[String]) -> Result<Parsed, FlagError> {
    let mut values = Vec::with_capacity(defs.len());
    for def in defs {
        let mut value = match def.kind {
            FlagKind::Str => Value::Str(String::new()),
            FlagKind::Int => Value::Int(0),
            FlagKind::Bool => Value::Bool(false),
            FlagKind::Repeat => Value::List(Vec::new()),
        };
        if def.kind != FlagKind::Repeat {
            set(def, &mut value, def.default)?;
        }
        values.push(value);
    }
    let mut rest = args;
    while let Some((arg, tail)) = rest.split_first() {
        let Some(body) = arg.strip_prefix('-').filter(|b| !b.is_empty()) else {
            break; // a non-flag argument or a lone "-"
        };
        rest = tail;
        let body = match body.strip_prefix('-') {
            Some("") => break, // "--" ends the flags and is consumed
            Some(b) => b,
            None => body,
        };
        if body.starts_with('-') || body.starts_with('=') {
            return Err(FlagError::BadSyntax(arg.clone()));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some((def, slot)) = defs
            .iter()
            .zip(values.iter_mut())
            .find(|(d, _)| d.name == name)
        else {
            return Err(if name == "h" || name == "help" {
                FlagError::Help
            } else {
                FlagError::Unknown(format!("-{name}"))
            });
        };
        let text = match (def.kind, inline) {
            (_, Some(v)) => v,
            (FlagKind::Bool, None) => "true",
            (_, None) => {
                let (v, tail) = rest
                    .split_first()
                    .ok_or_else(|| FlagError::MissingValue(format!("-{name}")))?;
                rest = tail;
                v
            }
        };
        set(def, slot, text)?;
    }
    Ok(Parsed {
        names: defs.iter().map(|d| d.name).collect(),
        values,
        positional: rest.to_vec(),
    })
}

/// Stores `text` into `slot`: repeat flags append, scalars are replaced
/// (so a repeated scalar flag keeps its last value, as in Go).
fn set(def: &FlagDef, slot: &mut Value, text: &str) -> Result<(), FlagError> {
    let bad = |why: &str| FlagError::BadValue {
        flag: format!("-{}", def.name),
        value: text.to_owned(),
        why: why.to_owned(),
    };
    match slot {
        Value::Str(s) => *s = text.to_owned(),
        Value::Int(n) => *n = parse_go_int(text).map_err(bad)?,
        Value::Bool(b) => *b = parse_go_bool(text).map_err(bad)?,
        Value::List(list) => list.push(text.to_owned()),
    }
    Ok(())
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Result<bool, &'static str> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("parse error"),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign; `0x`, `0o`, `0b` or a
/// leading `0` (octal) select the base; `_` may separate digits. The error
/// strings are the ones Go's flag package prints.
pub fn parse_go_int(s: &str) -> Result<i64, &'static str> {
    const SYNTAX: &str = "parse error";
    const RANGE: &str = "value out of range";
    let (neg, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let bytes = unsigned.as_bytes();
    let (base, digits): (u64, &[u8]) = match bytes {
        [] => return Err(SYNTAX),
        [b'0', p, rest @ ..] if !rest.is_empty() && p.eq_ignore_ascii_case(&b'x') => (16, rest),
        [b'0', p, rest @ ..] if !rest.is_empty() && p.eq_ignore_ascii_case(&b'o') => (8, rest),
        [b'0', p, rest @ ..] if !rest.is_empty() && p.eq_ignore_ascii_case(&b'b') => (2, rest),
        [b'0', rest @ ..] => (8, rest),
        _ => (10, bytes),
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' | b'A'..=b'Z' => c.to_ascii_lowercase() - b'a' + 10,
            _ => return Err(SYNTAX),
        };
        if u64::from(d) >= base {
            return Err(SYNTAX);
        }
        // Like Go, overflow is reported as soon as it happens.
        n = n
            .checked_mul(base)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(RANGE)?;
    }
    if underscores && !underscores_ok(bytes) {
        return Err(SYNTAX);
    }
    let limit = 1u64 << 63;
    match (neg, n) {
        (false, n) if n < limit => Ok(n as i64),
        (true, n) if n <= limit => Ok((n as i64).wrapping_neg()),
        _ => Err(RANGE),
    }
}

/// Go's rule: each `_` must sit between digits, or between the base prefix
/// and a digit.
fn underscores_ok(s: &[u8]) -> bool {
    #[derive(PartialEq)]
    enum Saw {
        Start,
        Digit,
        Underscore,
        Other,
    }
    let mut saw = Saw::Start;
    let mut hex = false;
    let mut body = s;
    if let [b'0', p, rest @ ..] = s {
        if matches!(p.to_ascii_lowercase(), b'b' | b'o' | b'x') {
            saw = Saw::Digit;
            hex = p.eq_ignore_ascii_case(&b'x');
            body = rest;
        }
    }
    for &c in body {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = Saw::Digit;
        } else if c == b'_' {
            if saw != Saw::Digit {
                return false;
            }
            saw = Saw::Underscore;
        } else if saw == Saw::Underscore {
            return false;
        } else {
            saw = Saw::Other;
        }
    }
    saw != Saw::Underscore
}

/// Help text in the layout of Go's `flag.PrintDefaults`, flags sorted by name.
pub fn usage(program: &str, defs: &[FlagDef]) -> String {
    let mut sorted: Vec<&FlagDef> = defs.iter().collect();
    sorted.sort_by_key(|d| d.name);
    let mut out = format!("Usage of {program}:\n");
    for def in sorted {
        let mut line = format!("  -{}", def.name);
        let type_name = match def.kind {
            FlagKind::Str => " string",
            FlagKind::Int => " int",
            FlagKind::Bool => "",
            FlagKind::Repeat => " value",
        };
        line.push_str(type_name);
        // A one-letter bool flag keeps its help on the same line.
        line.push_str(if line.len() <= 4 { "\t" } else { "\n    \t" });
        line.push_str(&def.help.replace('\n', "\n    \t"));
        let zero = match def.kind {
            FlagKind::Str | FlagKind::Repeat => "",
            FlagKind::Int => "0",
            FlagKind::Bool => "false",
        };
        if def.default != zero {
            if def.kind == FlagKind::Str {
                line.push_str(&format!(" (default {:?})", def.default));
            } else {
                line.push_str(&format!(" (default {})", def.default));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Largest duration Go can represent (about 292 years); flag durations are
/// capped there so callers can add them to an `Instant` without overflow.
const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

/// A count of minutes as a duration; negative counts become zero.
pub fn minutes(v: i64) -> Duration {
    let secs = u64::try_from(v).unwrap_or(0).saturating_mul(60);
    Duration::from_secs(secs).min(MAX_DURATION)
}

/// A count of seconds as a duration; negative counts become zero.
pub fn seconds(v: i64) -> Duration {
    Duration::from_secs(u64::try_from(v).unwrap_or(0)).min(MAX_DURATION)
}

/// A count of milliseconds as a duration; counts <= 0 become 1 ms, as
/// upstream's log period does.
pub fn millis_at_least_one(v: i64) -> Duration {
    let ms = u64::try_from(v).unwrap_or(0).max(1);
    Duration::from_millis(ms).min(MAX_DURATION)
}

/// A capacity; counts <= 0 become 1, as upstream's log buffer does.
pub fn count_at_least_one(v: i64) -> usize {
    usize::try_from(v)
        .unwrap_or(if v > 0 { usize::MAX } else { 1 })
        .max(1)
}
