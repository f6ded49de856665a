#![no_main]
//! The credential-file reader: no panics; what it reads, written back the way `yaml.dump`
//! writes (plain, single-quoted, double-quoted and folded), reads the same; errors give a
//! line inside the input; Debug output never shows a secret.
use libfuzzer_sys::fuzz_target;
use sidewire::data::creds::{AwsEnv, CredentialFile};
use sidewire::proto::yaml::{parse, Mapping, Value, MAX_DEPTH};
use std::path::Path;

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}')
}

fn is_plain_safe(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=+@%".contains(c) || c == ':')
        && !s.ends_with(':')
        && !matches!(s, "null" | "Null" | "NULL")
}

/// Double-quoted, broken with `\` continuations every few characters like `yaml.dump`.
fn double_quoted(s: &str, indent: usize, out: &mut String) {
    out.push('"');
    for (i, c) in s.chars().enumerate() {
        if i > 0 && i % 7 == 0 {
            out.push_str("\\\n");
            out.push_str(&" ".repeat(indent + 2));
            if c == ' ' || c == '\t' {
                out.push_str(if c == ' ' { "\\ " } else { "\\t" });
                continue;
            }
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Single-quoted; a run of n newlines is n blank lines.
fn single_quoted(s: &str, indent: usize, out: &mut String) {
    out.push('\'');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => out.push_str("''"),
            '\n' => {
                out.push_str("\n\n");
                while chars.peek() == Some(&'\n') {
                    chars.next();
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent + 2));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn scalar(s: &str, indent: usize, out: &mut String) {
    // Blanks next to a newline would be folded away in single quotes.
    let single_ok = !s.chars().any(|c| needs_escape(c) && c != '\n')
        && !s.contains(" \n")
        && !s.contains("\n ")
        && !s.contains("\t\n")
        && !s.contains("\n\t");
    match s.len() % 3 {
        0 if is_plain_safe(s) => out.push_str(s),
        1 if single_ok => single_quoted(s, indent, out),
        _ => double_quoted(s, indent, out),
    }
}

fn emit(map: &Mapping, indent: usize, out: &mut String) {
    for (key, value) in map {
        out.push_str(&" ".repeat(indent));
        let mut quoted_key = String::new();
        double_quoted_key(key, &mut quoted_key);
        out.push_str(&quoted_key);
        out.push(':');
        match value {
            Value::Null => out.push_str(if key.len() % 2 == 0 { " null\n" } else { "\n" }),
            Value::Str(s) => {
                out.push(' ');
                scalar(s, indent, out);
                out.push('\n');
            }
            Value::Map(m) if m.is_empty() => out.push_str(" {}\n"),
            Value::Map(m) => {
                out.push_str(" # nested\n");
                emit(m, indent + 2, out);
            }
        }
    }
}

/// Keys stay on one line: everything escaped.
fn double_quoted_key(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Map(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(value) => {
            assert!(depth(&value) <= MAX_DEPTH);
            let mut written = String::new();
            match &value {
                Value::Map(m) if m.is_empty() => written.push_str("{}\n"),
                Value::Map(m) => emit(m, 0, &mut written),
                _ => {}
            }
            assert_eq!(
                parse(&written).as_ref(),
                Ok(&value),
                "written back as:\n{written}"
            );
        }
        Err(e) => {
            assert!(e.line <= text.split('\n').count());
            assert!(e.to_string().starts_with(&format!("line {}", e.line)) || e.line == 0);
        }
    }
    let path = Path::new("/fuzz/config.yaml");
    let Ok(file) = CredentialFile::parse(path, text) else {
        return;
    };
    let env = AwsEnv {
        access_key_id: Some("fuzz-env-id".into()),
        secret_access_key: Some("fuzz-env-secret-value".into()),
        ..AwsEnv::default()
    };
    for (profile, entry) in &file.profiles {
        let Ok(cred) = file.select(profile, &env) else {
            continue;
        };
        // The file's keys win over the environment's.
        if let Some((id, secret)) = &entry.keys {
            assert_eq!((&cred.access_key_id, &cred.secret_access_key), (id, secret));
        }
        let shown = format!("{cred:?} {entry:?} {file:?}");
        let secret = format!("{:?}", cred.secret_access_key);
        let elsewhere = file.profiles.iter().any(|(p, e)| {
            p.contains(&cred.secret_access_key)
                || [&e.region, &e.endpoint_url]
                    .into_iter()
                    .flatten()
                    .chain(e.keys.as_ref().map(|(id, _)| id))
                    .any(|v| v.contains(&cred.secret_access_key))
        });
        if !elsewhere && cred.secret_access_key.len() >= 3 {
            assert!(!shown.contains(&secret), "{shown}");
        }
    }
});
