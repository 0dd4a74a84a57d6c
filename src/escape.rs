//! Text that supakeys did not write, made safe to print: what a service answered, a file
//! name a writer of the keys directory chose, a value read from a file.
//!
//! Such text may carry control characters that a terminal obeys: ESC starts sequences that
//! clear the screen, move the cursor or write to the clipboard (OSC 52), BEL ends them, C1
//! characters (U+0080 to U+009F) are the same sequences in one character, CR and LF forge
//! lines, and the bidirectional controls reorder what is shown. Each is written the way
//! Rust's `char::escape_debug` writes it (`\u{1b}`, `\r`, `\u{202e}`), so the evidence stays
//! readable and nothing reaches the terminal as a command. Every other character, quotes
//! and backslashes included, is kept as it is.

use std::borrow::Cow;
use std::fmt::Write;
use std::path::Path;

/// True for the characters [`text`] escapes: C0 controls, DEL, C1 controls, and the
/// bidirectional marks, embeddings, overrides and isolates.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character escaped, newlines included (the result is one line).
pub fn text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "{}", c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A path as text, escaped; bytes that are not UTF-8 are shown as U+FFFD.
pub fn path(path: &Path) -> String {
    text(&path.to_string_lossy()).into_owned()
}

/// `text` with every unsafe character escaped except the newlines that end its lines: for
/// output that is made of lines (a log, an env file).
pub fn lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&self::text(line));
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_sequences_are_shown_not_obeyed() {
        assert_eq!(
            text("\u{1b}]52;c;SGk=\u{7}\u{9b}2J\r\n\u{202e}x\u{7f}"),
            r"\u{1b}]52;c;SGk=\u{7}\u{9b}2J\r\n\u{202e}x\u{7f}"
        );
        assert_eq!(lines("a\u{1b}b\nc\n"), "a\\u{1b}b\nc\n");
    }

    #[test]
    fn ordinary_text_is_kept_as_it_is() {
        for plain in ["", "storage refused it: \"kid\" 'x' \\ é ✓ 日本"] {
            assert!(matches!(text(plain), Cow::Borrowed(_)));
            assert!(matches!(lines(plain), Cow::Borrowed(_)));
        }
        assert_eq!(
            path(Path::new("/keys/.supakeys-tmp-\u{1b}x")),
            r"/keys/.supakeys-tmp-\u{1b}x"
        );
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        let once = text("\u{1b}[2J\t\u{0}").into_owned();
        assert_eq!(text(&once), once);
    }
}
