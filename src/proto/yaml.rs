//! Reader for the subset of YAML that Python's `yaml.dump` writes for OSMO's credential
//! files (PROTOCOL §6): nested block mappings by indentation, plain scalars (folded over
//! several lines when long), single-quoted (`''` escape) and double-quoted (`\"`, `\\`,
//! `\n`, `\t`, `\xNN`, `\uNNNN`, … escapes, `\` line continuations) scalars, `null`/`~`/empty
//! values, `{}` and comments. A value may also start on the line after its key. Where PyYAML
//! is laxer than YAML (a comment right after a closing quote) this follows PyYAML.
//!
//! Everything else (sequences, flow collections other than `{}`, anchors, aliases, tags,
//! block scalars, complex keys, directives) is rejected with the line number. Errors never
//! quote the input: these files hold secrets. Plain scalars are kept as text (`true` and
//! `123` stay strings), since every value the credential file holds is a string.

use std::collections::BTreeMap;
use std::fmt;

#[cfg(test)]
mod tests;

/// Larger inputs are refused: a credential file is a few hundred bytes.
pub const MAX_INPUT_BYTES: usize = 1 << 20;
/// Mappings nested deeper than this are refused (the credential file uses 4 levels).
pub const MAX_DEPTH: usize = 32;

/// Keys in sorted order, as `yaml.dump` writes them.
pub type Mapping = BTreeMap<String, Value>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `null`, `~`, or nothing after the colon.
    Null,
    Str(String),
    Map(Mapping),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YamlProblem {
    TooLarge,
    TooDeep,
    /// A C0/C1 control character (other than tab and line breaks), which YAML forbids.
    NonPrintable,
    TabIndent,
    BadIndent,
    /// A line that should be `key: value` has no `: `.
    MissingColon,
    EmptyKey,
    DuplicateKey,
    /// A quoted key that runs over several lines.
    MultilineKey,
    /// `: ` inside a plain value (it must be quoted).
    ColonInPlain,
    UnterminatedQuote,
    BadEscape,
    /// Text after a closing quote or `{}`.
    TrailingText,
    /// A YAML feature outside the subset; names it.
    Unsupported(&'static str),
}

/// A parse failure at a 1-based line (0 when it concerns the whole input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub problem: YamlProblem,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use YamlProblem::*;
        let what = match self.problem {
            TooLarge => return write!(f, "YAML input is larger than {MAX_INPUT_BYTES} bytes"),
            TooDeep => "mappings nested too deep",
            NonPrintable => "control character or bare line break (only \\n and \\r\\n end lines)",
            TabIndent => "tab in indentation",
            BadIndent => "unexpected indentation",
            MissingColon => "expected `key: value`",
            EmptyKey => "empty key",
            DuplicateKey => "duplicate key",
            MultilineKey => "quoted key over several lines",
            ColonInPlain => "`: ` in an unquoted value (quote the value)",
            UnterminatedQuote => "quoted value is not closed",
            BadEscape => "invalid escape in double-quoted value",
            TrailingText => "unexpected text after the value",
            Unsupported(feature) => {
                return write!(f, "line {}: {feature} not supported", self.line)
            }
        };
        write!(f, "line {}: {what}", self.line)
    }
}

impl std::error::Error for YamlError {}

/// Parses one document: a mapping, or `Null` when it holds only comments.
pub fn parse(text: &str) -> Result<Value, YamlError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(YamlError {
            line: 0,
            problem: YamlProblem::TooLarge,
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    for (i, line) in lines.iter().enumerate() {
        if line.chars().any(is_non_printable) {
            return Err(err(i, YamlProblem::NonPrintable));
        }
    }
    let mut p = Parser { lines, pos: 0 };
    p.skip_document_start()?;
    let Some((ln, indent)) = p.peek_content()? else {
        return Ok(Value::Null);
    };
    let value = if p.lines[ln][indent..].starts_with("{}") {
        p.expect_line_end(ln, indent + 2)?;
        p.pos = ln + 1;
        Value::Map(Mapping::new())
    } else {
        Value::Map(p.mapping(indent, 1)?)
    };
    match p.peek_content()? {
        None => Ok(value),
        Some((ln, _)) if is_marker(p.lines[ln], "...") => {
            p.expect_line_end(ln, 3)?;
            p.rest_is_blank(ln + 1).map(|_| value)
        }
        Some((ln, _)) => Err(err(ln, YamlProblem::BadIndent)),
    }
}

fn err(index: usize, problem: YamlProblem) -> YamlError {
    YamlError {
        line: index + 1,
        problem,
    }
}

/// Outside YAML's printable set, or a line break other than `\n` / `\r\n` (PyYAML also
/// breaks lines at a bare `\r`, U+0085, U+2028 and U+2029; `yaml.dump` escapes them).
fn is_non_printable(c: char) -> bool {
    matches!(c, '\0'..='\x08' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Where a comment starts in `s` (`#` at the start or after a blank), if anywhere.
fn comment_start(s: &str) -> Option<usize> {
    let mut prev_blank = true;
    for (i, c) in s.char_indices() {
        if c == '#' && prev_blank {
            return Some(i);
        }
        prev_blank = is_blank(c);
    }
    None
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    /// Index of the next line not yet consumed.
    pos: usize,
}

impl<'a> Parser<'a> {
    /// Skips lines that hold only blanks or a comment.
    fn skip_blank_lines(&mut self) {
        while let Some(line) = self.lines.get(self.pos) {
            let body = line.trim_start_matches(is_blank);
            if !(body.is_empty() || body.starts_with('#')) {
                break;
            }
            self.pos += 1;
        }
    }

    /// Skips a `---` that opens the document (`yaml.dump` writes none, people may).
    fn skip_document_start(&mut self) -> Result<(), YamlError> {
        self.skip_blank_lines();
        let Some(&line) = self.lines.get(self.pos) else {
            return Ok(());
        };
        if line.starts_with('%') {
            return Err(err(self.pos, YamlProblem::Unsupported("directives are")));
        }
        if is_marker(line, "---") {
            let rest = line[3..].trim_start_matches(is_blank);
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(err(self.pos, YamlProblem::TrailingText));
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// The next line holding something other than blanks or a comment, with its indent.
    /// Advances past the skipped lines (not past the one returned).
    fn peek_content(&mut self) -> Result<Option<(usize, usize)>, YamlError> {
        self.skip_blank_lines();
        let Some(&line) = self.lines.get(self.pos) else {
            return Ok(None);
        };
        let indent = line.len() - line.trim_start_matches(' ').len();
        if line[indent..].starts_with('\t') {
            return Err(err(self.pos, YamlProblem::TabIndent));
        }
        if is_marker(line, "---") {
            return Err(err(
                self.pos,
                YamlProblem::Unsupported("several documents are"),
            ));
        }
        Ok(Some((self.pos, indent)))
    }

    fn rest_is_blank(&mut self, from: usize) -> Result<(), YamlError> {
        self.pos = from;
        match self.peek_content()? {
            None => Ok(()),
            Some((ln, _)) => Err(err(ln, YamlProblem::Unsupported("several documents are"))),
        }
    }

    /// A block mapping whose keys sit at `indent`.
    fn mapping(&mut self, indent: usize, depth: usize) -> Result<Mapping, YamlError> {
        if depth > MAX_DEPTH {
            return Err(err(self.pos, YamlProblem::TooDeep));
        }
        let mut map = Mapping::new();
        while let Some((ln, ind)) = self.peek_content()? {
            if ind < indent || is_marker(self.lines[ln], "...") {
                break;
            }
            if ind > indent {
                return Err(err(ln, YamlProblem::BadIndent));
            }
            let (key, after_colon) = self.key(ln, ind)?;
            if map.contains_key(&key) {
                return Err(err(ln, YamlProblem::DuplicateKey));
            }
            let value = self.value(ln, after_colon, indent, depth)?;
            map.insert(key, value);
        }
        Ok(map)
    }

    /// Reads the key at `col` of line `ln`; returns it and the column after its `:`.
    fn key(&mut self, ln: usize, col: usize) -> Result<(String, usize), YamlError> {
        let line = self.lines[ln];
        let body = &line[col..];
        let unsupported = |what| Err(err(ln, YamlProblem::Unsupported(what)));
        let (key, end) = match body.as_bytes()[0] {
            b'-' if body.len() == 1 || body[1..].starts_with(is_blank) => {
                return unsupported("sequences are")
            }
            b'?' if body.len() == 1 || body[1..].starts_with(is_blank) => {
                return unsupported("complex keys are")
            }
            b'[' | b'{' => return unsupported("flow collections are"),
            b'&' | b'*' => return unsupported("anchors and aliases are"),
            b'!' => return unsupported("tags are"),
            b'%' | b'@' | b'`' | b',' | b']' | b'}' | b'|' | b'>' => {
                return unsupported("a key starting with this character is")
            }
            b'\'' | b'"' => {
                let (key, end_ln, end) = self.quoted(ln, col)?;
                if end_ln != ln {
                    return Err(err(ln, YamlProblem::MultilineKey));
                }
                let rest = &line[end..];
                let colon = end + (rest.len() - rest.trim_start_matches(is_blank).len());
                if !line[colon..].starts_with(':') {
                    return Err(err(ln, YamlProblem::MissingColon));
                }
                (key, colon)
            }
            _ => {
                let colon = plain_key_end(body).ok_or(err(ln, YamlProblem::MissingColon))?;
                let key = body[..colon].trim_end_matches(is_blank);
                if key.is_empty() {
                    return Err(err(ln, YamlProblem::EmptyKey));
                }
                (key.to_owned(), col + colon)
            }
        };
        let after = end + 1;
        if !(line.len() == after || line[after..].starts_with(is_blank)) {
            return Err(err(ln, YamlProblem::MissingColon));
        }
        Ok((key, after))
    }

    /// The value after a key's colon (`col`), for a mapping whose keys sit at `indent`.
    fn value(
        &mut self,
        ln: usize,
        col: usize,
        indent: usize,
        depth: usize,
    ) -> Result<Value, YamlError> {
        let line = self.lines[ln];
        let rest = line[col..].trim_start_matches(is_blank);
        if !(rest.is_empty() || rest.starts_with('#')) {
            return self.scalar(ln, line.len() - rest.len(), indent);
        }
        // Nothing after the colon: a nested mapping, a value on the next (more indented)
        // line, or null.
        self.pos = ln + 1;
        match self.peek_content()? {
            Some((next, ind)) if ind > indent && self.is_mapping_entry(next, ind) => {
                Ok(Value::Map(self.mapping(ind, depth + 1)?))
            }
            Some((next, ind)) if ind > indent => self.scalar(next, ind, indent),
            Some((next, ind)) if ind == indent && is_sequence_entry(&self.lines[next][ind..]) => {
                Err(err(next, YamlProblem::Unsupported("sequences are")))
            }
            _ => Ok(Value::Null),
        }
    }

    /// Whether the line holds `key:` (plain or quoted key) at `col`.
    fn is_mapping_entry(&self, ln: usize, col: usize) -> bool {
        let line = self.lines[ln];
        match line.as_bytes()[col] {
            b'\'' | b'"' => self.quoted(ln, col).is_ok_and(|(_, end_ln, end)| {
                // A quoted key sits on one line; `end` is on line `end_ln`.
                end_ln == ln && {
                    let rest = line[end..].trim_start_matches(is_blank);
                    rest.starts_with(':')
                        && matches!(rest.as_bytes().get(1), None | Some(b' ' | b'\t'))
                }
            }),
            _ => plain_key_end(&line[col..]).is_some(),
        }
    }

    /// A scalar (or `{}`) starting at `start` of line `ln`, in a mapping at `indent`.
    fn scalar(&mut self, ln: usize, start: usize, indent: usize) -> Result<Value, YamlError> {
        let rest = &self.lines[ln][start..];
        let unsupported = |what| Err(err(ln, YamlProblem::Unsupported(what)));
        let next_is_blank = matches!(rest.as_bytes().get(1), None | Some(b' ' | b'\t'));
        match rest.as_bytes()[0] {
            b'\'' | b'"' => {
                let (s, end_ln, end) = self.quoted(ln, start)?;
                self.expect_line_end(end_ln, end)?;
                self.pos = end_ln + 1;
                Ok(Value::Str(s))
            }
            b'{' if rest.starts_with("{}") => {
                self.expect_line_end(ln, start + 2)?;
                self.pos = ln + 1;
                Ok(Value::Map(Mapping::new()))
            }
            b'{' | b'[' => unsupported("flow collections other than {} are"),
            b'-' if next_is_blank => unsupported("sequences are"),
            b'?' if next_is_blank => unsupported("complex keys are"),
            b'&' | b'*' => unsupported("anchors and aliases are"),
            b'!' => unsupported("tags are"),
            b'|' | b'>' => unsupported("block scalars (| and >) are"),
            b'%' | b'@' | b'`' | b',' | b']' | b'}' => {
                unsupported("a value starting with this character is")
            }
            _ => self.plain(ln, start, indent),
        }
    }

    /// A plain scalar from `col` of line `ln`, continued on lines indented past `indent`.
    fn plain(&mut self, ln: usize, col: usize, indent: usize) -> Result<Value, YamlError> {
        let (first, mut ended) = plain_segment(self.lines[ln], col).map_err(|p| err(ln, p))?;
        let mut text = first.to_owned();
        let mut multiline = false;
        self.pos = ln + 1;
        let mut breaks = 0;
        let mut at = self.pos;
        while !ended {
            let Some(&line) = self.lines.get(at) else {
                break;
            };
            let body = line.trim_start_matches(is_blank);
            if body.is_empty() {
                breaks += 1;
                at += 1;
                continue;
            }
            let ind = line.len() - line.trim_start_matches(' ').len();
            if ind <= indent || body.starts_with('#') {
                break;
            }
            let (segment, comment) =
                plain_segment(line, line.len() - body.len()).map_err(|p| err(at, p))?;
            fold(&mut text, breaks);
            text.push_str(segment);
            multiline = true;
            breaks = 0;
            at += 1;
            self.pos = at;
            ended = comment;
        }
        if !multiline && matches!(text.as_str(), "null" | "Null" | "NULL" | "~") {
            return Ok(Value::Null);
        }
        Ok(Value::Str(text))
    }

    /// A quoted scalar opening at `col` of line `ln`. Returns the text, the line it closes
    /// on and the column after the closing quote.
    fn quoted(&self, ln: usize, col: usize) -> Result<(String, usize, usize), YamlError> {
        let double = self.lines[ln].as_bytes()[col] == b'"';
        let mut text = String::new();
        let (mut l, mut i) = (ln, col + 1);
        loop {
            let line = self.lines[l];
            // Blanks typed before a line break are not part of the value.
            let mut trailing_blanks_from = None;
            let mut chars = line[i..].char_indices().map(|(o, c)| (i + o, c));
            let mut escaped_break = false;
            while let Some((at, c)) = chars.next() {
                match c {
                    '\'' if !double => {
                        if line[at + 1..].starts_with('\'') {
                            chars.next();
                            text.push('\'');
                            trailing_blanks_from = None;
                        } else {
                            return Ok((text, l, at + 1));
                        }
                    }
                    '"' if double => return Ok((text, l, at + 1)),
                    '\\' if double => {
                        trailing_blanks_from = None;
                        let Some((_, e)) = chars.next() else {
                            escaped_break = true;
                            break;
                        };
                        let hex_len = match e {
                            'x' => 2,
                            'u' => 4,
                            'U' => 8,
                            _ => {
                                text.push(simple_escape(e).ok_or(err(l, YamlProblem::BadEscape))?);
                                continue;
                            }
                        };
                        let digits = line
                            .get(at + 2..at + 2 + hex_len)
                            .ok_or(err(l, YamlProblem::BadEscape))?;
                        let code = u32::from_str_radix(digits, 16)
                            .ok()
                            .filter(|_| digits.bytes().all(|b| b.is_ascii_hexdigit()))
                            .and_then(char::from_u32)
                            .ok_or(err(l, YamlProblem::BadEscape))?;
                        text.push(code);
                        for _ in 0..hex_len {
                            chars.next();
                        }
                    }
                    ' ' | '\t' => {
                        trailing_blanks_from.get_or_insert(text.len());
                        text.push(c);
                    }
                    _ => {
                        trailing_blanks_from = None;
                        text.push(c);
                    }
                }
            }
            if let Some(cut) = trailing_blanks_from {
                text.truncate(cut);
            }
            // The value goes on over the line break: skip blank lines, counting them.
            let mut breaks = 0;
            loop {
                l += 1;
                let Some(&next) = self.lines.get(l) else {
                    return Err(err(ln, YamlProblem::UnterminatedQuote));
                };
                let body = next.trim_start_matches(is_blank);
                if body.is_empty() {
                    breaks += 1;
                    continue;
                }
                if is_marker(next, "---") || is_marker(next, "...") {
                    return Err(err(ln, YamlProblem::UnterminatedQuote));
                }
                i = next.len() - body.len();
                break;
            }
            if escaped_break {
                text.extend(std::iter::repeat_n('\n', breaks));
            } else {
                fold(&mut text, breaks);
            }
        }
    }

    /// After a closing quote, `{}` or `...`: only blanks and a comment may follow.
    fn expect_line_end(&self, ln: usize, col: usize) -> Result<(), YamlError> {
        let rest = &self.lines[ln][col..];
        let body = rest.trim_start_matches(is_blank);
        // YAML wants a blank before `#`; PyYAML reads `'v'# c` as a comment, and so do we.
        if body.is_empty() || body.starts_with('#') {
            Ok(())
        } else {
            Err(err(ln, YamlProblem::TrailingText))
        }
    }
}

/// A document marker (`---`, `...`) alone or followed by a blank, at column 0.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(is_blank))
}

fn is_sequence_entry(body: &str) -> bool {
    body == "-" || body.starts_with("- ") || body.starts_with("-\t")
}

/// Line folding: one break becomes a space, each blank line after it a newline.
fn fold(text: &mut String, blank_lines: usize) {
    if blank_lines == 0 {
        text.push(' ');
    } else {
        text.extend(std::iter::repeat_n('\n', blank_lines));
    }
}

/// Where the `:` ending a plain key is (followed by a blank or the end of the line).
fn plain_key_end(body: &str) -> Option<usize> {
    let comment = comment_start(body).unwrap_or(body.len());
    let bytes = body.as_bytes();
    (0..comment)
        .find(|&i| bytes[i] == b':' && (i + 1 == bytes.len() || is_blank(bytes[i + 1] as char)))
}

/// One line's worth of a plain scalar from `col`: the text (trailing blanks dropped) and
/// whether a comment ended it.
fn plain_segment(line: &str, col: usize) -> Result<(&str, bool), YamlProblem> {
    let body = &line[col..];
    let comment = comment_start(body);
    let text = &body[..comment.unwrap_or(body.len())];
    let bytes = text.as_bytes();
    if (0..bytes.len())
        .any(|i| bytes[i] == b':' && (i + 1 == bytes.len() || is_blank(bytes[i + 1] as char)))
    {
        return Err(YamlProblem::ColonInPlain);
    }
    Ok((text.trim_end_matches(is_blank), comment.is_some()))
}

/// The one-character escapes of double-quoted scalars (YAML 1.1 §5.6, as PyYAML reads them).
fn simple_escape(e: char) -> Option<char> {
    Some(match e {
        '0' => '\0',
        'a' => '\x07',
        'b' => '\x08',
        't' | '\t' => '\t',
        'n' => '\n',
        'v' => '\x0b',
        'f' => '\x0c',
        'r' => '\r',
        'e' => '\x1b',
        ' ' => ' ',
        '"' => '"',
        '/' => '/',
        '\\' => '\\',
        'N' => '\u{85}',
        '_' => '\u{a0}',
        'L' => '\u{2028}',
        'P' => '\u{2029}',
        _ => return None,
    })
}
