//! Splitting an exec session's command into words the way the task's shell sessions
//! have always been split: POSIX-like, without expansion.
//!
//! - Words are separated by space, tab, CR and LF.
//! - `'…'` keeps everything literally; `"…"` keeps everything except that `\` takes the
//!   next character literally (whatever it is, and the backslash goes).
//! - Outside quotes `\` takes the next character literally.
//! - `#` at the start of a word begins a comment up to the end of the line; elsewhere it
//!   is an ordinary character.
//! - `""` and `''` make an empty word.
//!
//! An unclosed quote, or a `\` at the very end, is an error; so is a command with no
//! word at all (there would be nothing to run).

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// The command holds no word (empty, blank, or only comments).
    Empty,
    /// A `'` or `"` is never closed.
    UnclosedQuote,
    /// The command ends with a lone `\`.
    TrailingEscape,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SplitError::Empty => "the command is empty",
            SplitError::UnclosedQuote => "the command has an unclosed quote",
            SplitError::TrailingEscape => "the command ends with a lone backslash",
        })
    }
}

impl std::error::Error for SplitError {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between words.
    Start,
    Word,
    /// After `\` outside quotes.
    Escape,
    Single,
    Double,
    /// After `\` inside double quotes.
    DoubleEscape,
    Comment,
}

/// The words of `command`; never an empty list.
pub fn split(command: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Start;
    for c in command.chars() {
        let space = matches!(c, ' ' | '\t' | '\r' | '\n');
        state = match state {
            State::Start | State::Word => match c {
                _ if space && state == State::Word => {
                    words.push(std::mem::take(&mut word));
                    State::Start
                }
                _ if space => State::Start,
                '#' if state == State::Start => State::Comment,
                '\'' => State::Single,
                '"' => State::Double,
                '\\' => State::Escape,
                _ => {
                    word.push(c);
                    State::Word
                }
            },
            State::Escape => {
                word.push(c);
                State::Word
            }
            State::Single if c == '\'' => State::Word,
            State::Double if c == '"' => State::Word,
            State::Double if c == '\\' => State::DoubleEscape,
            State::Single | State::Double => {
                word.push(c);
                state
            }
            State::DoubleEscape => {
                word.push(c);
                State::Double
            }
            State::Comment if c == '\n' => State::Start,
            State::Comment => State::Comment,
        };
    }
    match state {
        State::Start | State::Comment => {}
        State::Word => words.push(word),
        State::Escape | State::DoubleEscape => return Err(SplitError::TrailingEscape),
        State::Single | State::Double => return Err(SplitError::UnclosedQuote),
    }
    if words.is_empty() {
        return Err(SplitError::Empty);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(command: &str) -> Vec<String> {
        split(command).unwrap_or_else(|e| panic!("{command:?}: {e}"))
    }

    #[test]
    fn plain_words_split_on_any_blank() {
        assert_eq!(ok("bash"), ["bash"]);
        assert_eq!(ok("  /bin/sh -c\t'x'\r\n y "), ["/bin/sh", "-c", "x", "y"]);
    }

    #[test]
    fn single_quotes_keep_everything() {
        assert_eq!(
            ok(r#"sh -c 'echo "a b" \n $X'"#),
            ["sh", "-c", r#"echo "a b" \n $X"#]
        );
    }

    #[test]
    fn double_quotes_take_an_escaped_character_literally() {
        assert_eq!(ok(r#"echo "a \"b\" \\ \n""#), ["echo", r#"a "b" \ n"#]);
    }

    #[test]
    fn quotes_and_escapes_join_into_one_word() {
        assert_eq!(ok(r#"a'b c'"d e"f\ g"#), ["ab cd ef g"]);
        assert_eq!(ok(r#"x "" '' y"#), ["x", "", "", "y"]);
    }

    #[test]
    fn a_hash_starts_a_comment_only_at_a_word_start() {
        assert_eq!(ok("ls # the rest\npwd a#b"), ["ls", "pwd", "a#b"]);
        assert_eq!(ok("'#' \\#x"), ["#", "#x"]);
    }

    #[test]
    fn nothing_to_run_is_an_error() {
        for command in ["", "   ", "\t\n", "# only a comment"] {
            assert_eq!(split(command), Err(SplitError::Empty), "{command:?}");
        }
    }

    #[test]
    fn unfinished_quotes_and_escapes_are_errors() {
        assert_eq!(split("echo 'a"), Err(SplitError::UnclosedQuote));
        assert_eq!(split("echo \"a\\\""), Err(SplitError::UnclosedQuote));
        assert_eq!(split("echo a\\"), Err(SplitError::TrailingEscape));
        assert_eq!(split("echo \"a\\"), Err(SplitError::TrailingEscape));
    }

    #[test]
    fn non_ascii_words_survive() {
        assert_eq!(ok("echo 'héllo wörld' ✓"), ["echo", "héllo wörld", "✓"]);
    }
}
