//! The regex filter of `url:`/`task:` input and output specs, with upstream's semantics.
//!
//! Upstream (NVIDIA OSMO) hands the spec's regex to `osmo data upload|download --regex`,
//! which compiles it with Python's `re` and keeps a file when `pattern.match(rel)` finds a
//! match *starting at the beginning* of `rel` (not necessarily spanning it: `re.match`,
//! not `fullmatch` or `search`). What `rel` is:
//! - uploads (`src/lib/data/storage/common.py:list_local_files`, with the path
//!   `{outputPath}*` that `src/runtime/pkg/data/input_output.go:UrlOutput.UploadFolder`
//!   passes): the file's path relative to the output folder, `sub/a.txt`
//!   (`get_upload_relative_path` with `has_asterisk`);
//! - downloads (`src/lib/data/storage/backends/s3.py:S3StorageClient.list_objects`):
//!   `os.path.relpath(key, prefix + "/")`, the object key relative to the URL's path
//!   ([`object_rel_path`]); a URL that names one object is downloaded without filtering.
//!
//! An empty regex keeps everything. Python's syntax is translated where the Rust engine
//! (`regex-lite`) would read it differently or refuse what Python takes: `\Z`, `\<`/`\>`
//! (literal in Python, word boundaries in regex-lite), octal escapes, a `{` that starts no
//! repetition, `{,n}`, `[`/`&&`/`~~` inside a class, `(?#…)` comments. Not supported, with
//! an error naming the regex: look-around, backreferences. Differences left: `\d`, `\w`,
//! `\s`, `\b` and `(?i)` are ASCII-only here and Unicode-aware in Python; `$` does not
//! match before a final newline.

use std::fmt;

use regex_lite::Regex;

#[cfg(test)]
mod tests;

/// A compiled spec regex.
#[derive(Clone, Debug)]
pub struct Filter {
    regex: Option<Regex>,
}

/// A spec regex that does not compile; names the regex and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub pattern: String,
    pub reason: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid regex {:?} in data spec: {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for FilterError {}

impl Filter {
    /// Compiles a spec's regex (Python `re` syntax); empty keeps everything.
    pub fn new(pattern: &str) -> Result<Filter, FilterError> {
        if pattern.is_empty() {
            return Ok(Filter::all());
        }
        let error = |reason: String| FilterError {
            pattern: pattern.to_owned(),
            reason,
        };
        let translated = translate(pattern).map_err(|r| error(r.to_owned()))?;
        let regex = Regex::new(&translated).map_err(|e| error(e.to_string()))?;
        Ok(Filter { regex: Some(regex) })
    }

    pub fn all() -> Filter {
        Filter { regex: None }
    }

    /// Whether the file or object at `rel_path` (see the module doc) is kept: the regex
    /// matches at its start, as Python's `re.match`.
    pub fn matches(&self, rel_path: &str) -> bool {
        match &self.regex {
            // The leftmost match starts at 0 exactly when some match does.
            Some(regex) => regex.find(rel_path).is_some_and(|m| m.start() == 0),
            None => true,
        }
    }
}

/// `os.path.relpath(key, prefix)` for an object listed under `prefix` (the URL's path in
/// the bucket, `""` at the bucket's root): what a download's regex is matched against.
/// Empty and `.` segments go, `..` climbs, as Python's `posixpath` does.
pub fn object_rel_path(key: &str, prefix: &str) -> String {
    let key = normalized(key);
    let base = normalized(prefix);
    let common = key.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; base.len() - common];
    parts.extend(&key[common..]);
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// `posixpath.normpath` of a relative path, as segments.
fn normalized(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts
}

/// Rewrites Python `re` syntax into regex-lite syntax with the same meaning.
fn translate(pattern: &str) -> Result<String, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    // Where the current class's items start (a `]` there is literal), when in a class.
    let mut class_start: Option<usize> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += escape(&chars, i, class_start.is_some(), &mut out)?;
            continue;
        }
        match (class_start, c) {
            (Some(start), ']') if i != start => {
                class_start = None;
                out.push(']');
            }
            (Some(_), '[' | '&' | '~') => {
                out.push('\\');
                out.push(c);
            }
            (Some(_), _) => out.push(c),
            (None, '[') => {
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                class_start = Some(i + 1);
            }
            (None, '{') => match repetition(&chars[i..]) {
                Some((len, text)) => {
                    out.push_str(&text);
                    i += len;
                    continue;
                }
                None => out.push_str("\\{"),
            },
            (None, '}') => out.push_str("\\}"),
            (None, '(') if chars[i..].starts_with(&['(', '?', '#']) => {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == ')')
                    .ok_or("unterminated comment")?;
                i += close + 1;
                continue;
            }
            (None, '(') if chars[i..].starts_with(&['(', '?', 'P', '=']) => {
                return Err("backreferences (?P=name) are not supported");
            }
            (None, _) => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// Translates the escape at `chars[at]` (a `\`); returns how many chars it took.
fn escape(
    chars: &[char],
    at: usize,
    in_class: bool,
    out: &mut String,
) -> Result<usize, &'static str> {
    let Some(&e) = chars.get(at + 1) else {
        return Err("the regex ends with a lone backslash");
    };
    let is_octal = |k: usize| chars.get(at + k).is_some_and(|c| ('0'..='7').contains(c));
    // Python: `\0`, `\0o`, `\0oo` and `\ooo` are octal; `\1`..`\99` are backreferences.
    let octal_len = match e {
        '0' => 1 + (is_octal(2) as usize) + (is_octal(2) && is_octal(3)) as usize,
        '1'..='3' if is_octal(2) && is_octal(3) => 3,
        '1'..='9' => return Err("backreferences (\\1) are not supported"),
        _ => 0,
    };
    if octal_len > 0 {
        let digits: String = chars[at + 1..at + 1 + octal_len].iter().collect();
        let code = u32::from_str_radix(&digits, 8).map_err(|_| "invalid octal escape")?;
        out.push_str(&format!("\\x{{{code:x}}}"));
        return Ok(1 + octal_len);
    }
    match e {
        'Z' if !in_class => out.push_str("\\z"),
        // Python escapes any punctuation to itself; regex-lite knows fewer.
        c if !c.is_ascii_alphanumeric() && !is_lite_escapable(c) => push_literal(out, c),
        c => {
            out.push('\\');
            out.push(c);
        }
    }
    Ok(2)
}

fn is_lite_escapable(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_alphanumeric() && !matches!(c, '<' | '>')
}

/// A character that stands for itself; whitespace spelled out so `(?x)` keeps it.
fn push_literal(out: &mut String, c: char) {
    if c.is_whitespace() {
        out.push_str(&format!("\\x{{{:x}}}", c as u32));
    } else {
        out.push(c);
    }
}

/// A `{m}`, `{m,}`, `{,n}`, `{,}` or `{m,n}` repetition at the start of `s`: its length
/// in chars and its regex-lite spelling (which has no `{,n}`).
fn repetition(s: &[char]) -> Option<(usize, String)> {
    let close = s.iter().position(|&c| c == '}')?;
    let body: String = s[1..close].iter().collect();
    let (min, max) = match body.split_once(',') {
        Some((min, max)) => (min, Some(max)),
        None => (body.as_str(), None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !digits(min) || !max.is_none_or(digits) || (min.is_empty() && max.is_none()) {
        return None;
    }
    let min = if min.is_empty() { "0" } else { min };
    let text = match max {
        Some(max) => format!("{{{min},{max}}}"),
        None => format!("{{{min}}}"),
    };
    Some((close + 1, text))
}
