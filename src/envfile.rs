//! Env files: reading the operator's dotenv file (`--env-file`) exactly as Docker Compose v2
//! reads a project's `.env`, and writing the `NAME='value'` files the services load (POSIX
//! `sh`, GoTrue's dotenv loader and Compose all read that form the same way, provided no
//! value holds `'`, `\` or a newline).
//!
//! The reading restates compose-go v2.9.1 (the version Docker Compose 2.40 is built with):
//! `dotenv/parser.go` (statements, quotes, escapes, comments), `dotenv/env.go` (which
//! variables `${NAME}` sees: the process environment first, then the file's earlier lines)
//! and `template/template.go` (`$NAME`, `${NAME}`, `${NAME-x}`, `${NAME:-x}`, `${NAME+x}`,
//! `${NAME:+x}`, `${NAME?x}`, `${NAME:?x}`, `$$`, defaults nested and interpolated). What
//! Compose refuses, supakeys refuses; the few things Compose reads in a way supakeys does not
//! reproduce are refused too, with the line number: a file is never read differently.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use zeroize::Zeroizing;

/// A Supabase `.env` is a few KiB; a larger env file is refused unread.
pub const MAX_BYTES: u64 = 1 << 20;
/// `$NAME` forms can make a value larger than the file: a value may reach the size of the
/// file, all values together sixteen times that, and `${...}` defaults nest this deep.
const MAX_VALUE_BYTES: usize = MAX_BYTES as usize;
const MAX_TOTAL_BYTES: usize = 16 * MAX_VALUE_BYTES;
const MAX_NESTING: usize = 32;
/// The values `$` forms may look up in all, counted even when unused (`${BIG:+x}` reads
/// BIG): without a bound, a 1 MiB file of such forms copies hundreds of gigabytes.
const MAX_LOOKUP_BYTES: usize = 64 * MAX_VALUE_BYTES;
const TOO_LARGE: &str = "its $ forms expand to more than 1 MiB, the file's values to more than 16 MiB in all, or its $ forms read more than 64 MiB of values; no Supabase .env comes near";
/// Unset variables noted one by one, before a count of the others.
const MAX_NOTES: usize = 10;

/// What the process environment holds for a name `${NAME}` refers to.
pub enum Lookup {
    Unset,
    Set(Zeroizing<String>),
    /// Set, but not UTF-8: a line that uses it is refused.
    NotUtf8,
}

/// A line the reader refuses: its 1-based number and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub problem: String,
}

/// The variables of a dotenv file, as Docker Compose gives them to the services.
#[derive(Default)]
pub struct DotEnv {
    vars: HashMap<String, Zeroizing<String>>,
    bom: bool,
    notes: Vec<String>,
}

impl std::fmt::Debug for DotEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("DotEnv")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

impl DotEnv {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.as_str())
    }

    /// Every variable, sorted by name.
    pub fn vars(&self) -> Vec<(&str, &str)> {
        let mut vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        vars.sort();
        vars
    }

    /// Whether the file started with a UTF-8 byte order mark (ignored, but worth a warning:
    /// other readers of the file may take it as part of the first name).
    pub fn had_bom(&self) -> bool {
        self.bom
    }

    /// What Compose would warn about while reading the file (a `$NAME` that is not set),
    /// each starting with its line number.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Reads the operator's env file: a regular file (a FIFO would block the run), at most
    /// [`MAX_BYTES`], UTF-8, with `${NAME}` resolved through `env` and the earlier lines.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Lookup) -> Result<DotEnv> {
        let bytes =
            crate::input::read_input(path, MAX_BYTES).map_err(|problem| Error::EnvFileRead {
                path: path.into(),
                problem: problem.to_string(),
            })?;
        let bytes = Zeroizing::new(bytes);
        DotEnv::parse_bytes(&bytes, env).map_err(|r| Error::EnvFileSyntax {
            path: path.into(),
            line: r.line,
            problem: r.problem,
        })
    }

    /// Parses the bytes of an env file, which must be UTF-8.
    pub fn parse_bytes(
        bytes: &[u8],
        env: &dyn Fn(&str) -> Lookup,
    ) -> std::result::Result<DotEnv, Refusal> {
        let text = std::str::from_utf8(bytes).map_err(|e| Refusal {
            line: line_at(bytes, e.valid_up_to()),
            problem: "this line is not valid UTF-8 (save the file as UTF-8)".into(),
        })?;
        DotEnv::parse_with(text, env)
    }

    /// Parses dotenv text with no process environment: the env files supakeys writes.
    pub fn parse(text: &str) -> std::result::Result<DotEnv, Refusal> {
        DotEnv::parse_with(text, &|_| Lookup::Unset)
    }

    /// Parses dotenv text as Docker Compose does (a leading byte order mark is skipped);
    /// `env` is the process environment that `${NAME}` sees before the file's own lines.
    pub fn parse_with(
        text: &str,
        env: &dyn Fn(&str) -> Lookup,
    ) -> std::result::Result<DotEnv, Refusal> {
        let (bom, body) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut reader = Reader {
            text: body,
            pos: 0,
            env,
            out: DotEnv {
                bom,
                ..DotEnv::default()
            },
            depth: 0,
            total: 0,
            looked_up: 0,
            unset: 0,
        };
        reader.statements()?;
        if reader.unset > MAX_NOTES {
            let more = reader.unset - MAX_NOTES;
            reader
                .out
                .notes
                .push(format!("{more} more $NAME forms are not set"));
        }
        Ok(reader.out)
    }
}

/// The 1-based line of a byte offset.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1
}

/// Go's `isSpace` of compose-go's parser: blanks, never a line break.
fn is_blank(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ' | '\u{85}' | '\u{a0}')
}

/// The letters Go's case-insensitive `[_a-z]` matches beyond ASCII: LATIN SMALL LETTER LONG S
/// folds to `s`, KELVIN SIGN to `k`. Compose takes `$ſ` as a variable; supakeys refuses it.
fn is_folded_letter(c: char) -> bool {
    matches!(c, '\u{17f}' | '\u{212a}')
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    env: &'a dyn Fn(&str) -> Lookup,
    out: DotEnv,
    /// How deep `${...}` defaults are nested at this point.
    depth: usize,
    /// The bytes of every value so far.
    total: usize,
    /// The bytes every lookup so far returned.
    looked_up: usize,
    /// How many `$NAME` were not set (the first [`MAX_NOTES`] become notes).
    unset: usize,
}

type Step<T> = std::result::Result<T, Refusal>;

impl<'a> Reader<'a> {
    fn refuse<T>(&self, at: usize, problem: impl Into<String>) -> Step<T> {
        Err(Refusal {
            line: line_at(self.text.as_bytes(), at),
            problem: problem.into(),
        })
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// One statement after another: blank space (line breaks included) and `#` comment
    /// lines are skipped; everything else is `[export ]NAME=value`, `NAME: value` or a bare
    /// `NAME` (which takes the variable from the environment or an earlier line).
    fn statements(&mut self) -> Step<()> {
        loop {
            let skipped = self.rest().len() - self.rest().trim_start().len();
            self.pos += skipped;
            if self.rest().is_empty() {
                return Ok(());
            }
            if self.rest().starts_with('#') {
                match self.rest().find('\n') {
                    Some(n) => self.pos += n,
                    None => return Ok(()),
                }
                continue;
            }
            self.statement()?;
        }
    }

    fn statement(&mut self) -> Step<()> {
        let start = self.pos;
        // `export` followed by a space, tab or line break (RE2's `\s`) is dropped.
        if let Some(after) = self.rest().strip_prefix("export")
            && after.starts_with(['\t', '\n', '\x0c', '\r', ' '])
        {
            self.pos += "export".len();
            self.pos += self.rest().len() - self.rest().trim_start_matches(is_blank).len();
        }
        let rest = self.rest();
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match c {
                '=' | ':' | '\n' => {
                    end = Some((i, c));
                    break;
                }
                c if is_blank(c) => {}
                'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '.' | '-' | '[' | ']' => {}
                c if c.is_ascii() => {
                    return self.refuse(
                        start,
                        format!(
                            "the variable name holds {c:?}, which Docker Compose refuses too (names are letters, digits, _ . - [ ])"
                        ),
                    );
                }
                _ => {
                    return self.refuse(
                        start,
                        "the variable name holds a character outside ASCII; supakeys reads ASCII names only (rename the variable)",
                    );
                }
            }
        }
        let Some((i, separator)) = end else {
            // A bare name on the file's last line, with no line break after it: Compose
            // sets no variable of that name, but files the text under the empty name.
            let text = rest.trim_start_matches(is_blank).trim_end();
            self.out
                .vars
                .insert(String::new(), Zeroizing::new(text.to_owned()));
            self.pos = self.text.len();
            return Ok(());
        };
        let name = rest[..i].trim_end();
        if name.contains(' ') {
            return self.refuse(
                start,
                "the variable name contains a space, which Docker Compose refuses too",
            );
        }
        let name = name.to_owned();
        self.pos += i + separator.len_utf8();
        if separator == '\n' {
            if let Some(value) = self.lookup(&name, start)? {
                self.out.vars.insert(name, value);
            }
            return Ok(());
        }
        self.pos += self.rest().len() - self.rest().trim_start_matches(is_blank).len();
        let value = match self.rest().chars().next() {
            Some(quote @ ('\'' | '"')) => self.quoted(quote, start)?,
            _ => {
                let line = self.rest().split('\n').next().unwrap_or_default();
                self.pos += line.len();
                // An inline comment starts at " #"; a tab before # does not start one.
                let line = line.split(" #").next().unwrap_or_default().trim_end();
                self.interpolate(line, start)?
            }
        };
        self.total += value.len();
        if self.total > MAX_TOTAL_BYTES {
            return self.refuse(start, TOO_LARGE);
        }
        if value.contains('\0') {
            return self.refuse(
                start,
                "the value holds a NUL character, which no environment variable can carry",
            );
        }
        self.out.vars.insert(name, value);
        Ok(())
    }

    /// A quoted value, which may span lines. A backslash before the quote character keeps
    /// the quote; a backslash before anything else stays in the value (for both quotes).
    /// Double quotes then expand escapes and `$` forms; single quotes take the text as is.
    fn quoted(&mut self, quote: char, start: usize) -> Step<Zeroizing<String>> {
        let body = &self.rest()[1..];
        let mut chars = Zeroizing::new(String::new());
        let mut escape = false;
        let mut close = None;
        for (i, c) in body.char_indices() {
            if c == quote && !escape {
                close = Some(i);
                break;
            }
            if c == '\\' && !escape {
                escape = true;
                continue;
            }
            if escape && c != quote {
                chars.push('\\');
            }
            escape = false;
            chars.push(c);
        }
        let Some(close) = close else {
            return self.refuse(
                start,
                "the quoted value is not closed, which Docker Compose refuses too (add the closing quote)",
            );
        };
        self.pos += 1 + close + 1;
        // What follows the closing quote on its line: blanks and a comment only. Compose
        // would read anything else as the start of another variable.
        let tail = self.rest().split('\n').next().unwrap_or_default();
        let tail = tail.trim_start();
        if !tail.is_empty() && !tail.starts_with('#') {
            return self.refuse(
                start,
                "there is text after the closing quote, which Docker Compose would read as another variable (put it inside the quotes, or on a line of its own)",
            );
        }
        if quote == '\'' {
            return Ok(chars);
        }
        let escaped = expand_escapes(&chars);
        self.interpolate(&escaped, start)
    }

    /// A name `${NAME}` refers to: the process environment first, then the file so far.
    fn lookup(&mut self, name: &str, at: usize) -> Step<Option<Zeroizing<String>>> {
        let value = match (self.env)(name) {
            Lookup::Set(value) => Some(value),
            Lookup::NotUtf8 => {
                return self.refuse(
                    at,
                    format!(
                        "the line uses {name}, which is set in the environment to a value that is not UTF-8"
                    ),
                );
            }
            Lookup::Unset => self
                .out
                .vars
                .get(name)
                .map(|v| Zeroizing::new(v.as_str().to_owned())),
        };
        self.looked_up += value.as_ref().map_or(0, |v| v.len());
        if self.looked_up > MAX_LOOKUP_BYTES {
            return self.refuse(at, TOO_LARGE);
        }
        Ok(value)
    }

    /// Resolves the `$` forms of an unquoted or double-quoted value.
    fn interpolate(&mut self, template: &str, at: usize) -> Step<Zeroizing<String>> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self.refuse(
                at,
                format!("the line nests ${{...}} forms more than {MAX_NESTING} deep"),
            );
        }
        let mut out = Zeroizing::new(String::new());
        let mut rest = template;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            match after.chars().next() {
                Some('$') => {
                    out.push('$');
                    rest = &after[1..];
                }
                Some('{') => {
                    let (value, len) = self.braced(&after[1..], at)?;
                    out.push_str(&value);
                    rest = &after[1 + len..];
                }
                Some(c) if c == '_' || c.is_ascii_alphabetic() || is_folded_letter(c) => {
                    let len = self.name_len(after, at)?;
                    let value = self.variable(&after[..len], at)?;
                    out.push_str(&value);
                    rest = &after[len..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
            if out.len() > MAX_VALUE_BYTES {
                return self.refuse(at, TOO_LARGE);
            }
        }
        out.push_str(rest);
        self.depth -= 1;
        Ok(out)
    }

    /// The length of the name at the start of `text` (`[_A-Za-z][_A-Za-z0-9]*`).
    fn name_len(&self, text: &str, at: usize) -> Step<usize> {
        let len = text
            .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric() || is_folded_letter(c)))
            .unwrap_or(text.len());
        if text[..len].chars().any(is_folded_letter) {
            return self.refuse(
                at,
                "a $ form names a variable with the letter \u{17f} or the Kelvin sign, which Docker Compose matches as s or k; supakeys refuses it (use ASCII names)",
            );
        }
        Ok(len)
    }

    /// `$NAME` and `${NAME}`: the value, or empty (with Compose's warning) when unset.
    fn variable(&mut self, name: &str, at: usize) -> Step<Zeroizing<String>> {
        match self.lookup(name, at)? {
            Some(value) => Ok(value),
            None => {
                self.unset += 1;
                if self.unset <= MAX_NOTES {
                    let line = line_at(self.text.as_bytes(), at);
                    self.out.notes.push(format!(
                        "line {line}: ${name} is not set (in the environment or on an earlier line), so it reads as empty, as with Docker Compose"
                    ));
                }
                Ok(Zeroizing::new(String::new()))
            }
        }
    }

    /// `${...}` after the `${`: the value and the length of the text it took. With an
    /// operator, Compose's pattern takes everything up to the last `}` of the line and ends
    /// the form at the first `}` that closes it; what lies between is read as more of the
    /// value, exactly as if it followed the form (the caller goes on from the form's end).
    fn braced(&mut self, text: &str, at: usize) -> Step<(Zeroizing<String>, usize)> {
        let invalid = |r: &Self| {
            r.refuse(
                at,
                "a ${ does not start a ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:+alt}, ${NAME+alt}, ${NAME:?error} or ${NAME?error} form on its line, which Docker Compose refuses too (write $$ for a literal $)",
            )
        };
        let starts_name = text
            .chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic() || is_folded_letter(c));
        if !starts_name {
            return invalid(self);
        }
        let name_len = self.name_len(text, at)?;
        let name = &text[..name_len];
        let after = &text[name_len..];
        if after.starts_with('}') {
            return Ok((self.variable(name, at)?, name_len + 1));
        }
        let op = [":-", ":+", ":?", "-", "+", "?"]
            .into_iter()
            .find(|op| after.starts_with(op));
        let Some(op) = op else {
            return invalid(self);
        };
        let Some(close) = closing_brace(text, name_len + op.len()) else {
            return invalid(self);
        };
        let body = &text[name_len + op.len()..close];
        // The default, alternative or message is interpolated first, used or not.
        let inner = self.interpolate(body, at)?;
        let value = self.lookup(name, at)?;
        // Set, and for the `:` forms also not empty.
        let present = value
            .as_ref()
            .is_some_and(|v| !(op.starts_with(':') && v.is_empty()));
        let result = match op.trim_start_matches(':') {
            "-" if present => value.unwrap_or_default(),
            "-" => inner,
            "+" if present => inner,
            "+" => value.unwrap_or_default(),
            _ if present => value.unwrap_or_default(),
            _ => {
                return self.refuse(
                    at,
                    format!(
                        "${{{name}{op}...}} requires {name}, which is {}: Docker Compose refuses the file too (set {name})",
                        if op == ":?" { "unset or empty" } else { "unset" }
                    ),
                );
            }
        };
        Ok((result, close + 1))
    }
}

/// Where the `${` form whose text (after `${`) is `text` ends: the first `}` that closes it,
/// or else the last `}` of its line; `None` when the line has no `}` from `from` on.
///
/// Compose's pattern takes the form up to the line's last `}`, then
/// `getFirstBraceClosingIndex` (template.go) counts `{` and `}` from the `${`, skipping the
/// character after each `{`, and cuts at the `}` that brings the count to zero.
fn closing_brace(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut open = 1;
    let mut last = None;
    // The count starts at the `{` of `${`, which skipped the name's first character.
    let mut i = 1;
    while i < bytes.len() && bytes[i] != b'\n' {
        match bytes[i] {
            b'}' => {
                if i >= from {
                    last = Some(i);
                }
                open -= 1;
                if open == 0 && i >= from {
                    return Some(i);
                }
            }
            b'{' => {
                open += 1;
                // The next character is skipped by the count, but a `}` there may still be
                // the line's last.
                match bytes.get(i + 1) {
                    Some(b'\n') | None => {}
                    Some(b) => {
                        if *b == b'}' {
                            last = Some(i + 1);
                        }
                        i += 1;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    last
}

/// The escapes of a double-quoted value: `\a \b \f \n \r \t \v \" \\`, `\$` (a literal `$`),
/// and `\0` followed by up to three digits (octal when they are three octal digits worth at
/// most 255; otherwise Compose keeps the text with the `0` dropped). Any other backslash
/// stays.
fn expand_escapes(text: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let simple = match after.chars().next() {
            Some('a') => Some("\x07"),
            Some('b') => Some("\x08"),
            Some('f') => Some("\x0c"),
            Some('n') => Some("\n"),
            Some('r') => Some("\r"),
            Some('t') => Some("\t"),
            Some('v') => Some("\x0b"),
            Some('"') => Some("\""),
            Some('\\') => Some("\\"),
            Some('$') => Some("$$"),
            _ => None,
        };
        if let Some(s) = simple {
            out.push_str(s);
            rest = &after[1..];
        } else if let Some(digits) = after.strip_prefix('0') {
            let n = digits
                .bytes()
                .take(3)
                .take_while(u8::is_ascii_digit)
                .count();
            let digits = &digits[..n];
            let octal = (n == 3 && digits.bytes().all(|b| b <= b'7'))
                .then(|| u32::from_str_radix(digits, 8).ok())
                .flatten()
                .filter(|v| *v <= 255)
                .and_then(char::from_u32);
            match octal {
                Some(c) => out.push(c),
                None => {
                    out.push('\\');
                    out.push_str(digits);
                }
            }
            rest = &after[1 + n..];
        } else {
            out.push('\\');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A name supakeys writes: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Renders an env file: a comment line, then one `NAME='value'` line per variable.
pub fn render(comment: &str, vars: &[(&str, &str)]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(format!("# {comment}\n").into_bytes());
    for (name, value) in vars {
        assert!(is_name(name), "env names are literals");
        assert!(
            !value.contains(['\'', '\\', '\n', '\r', '\0']),
            "values written to env files never contain quotes, backslashes or newlines ({name})"
        );
        out.extend_from_slice(format!("{name}='{value}'\n").as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Lookup {
        match name {
            "FROM_ENV" => Lookup::Set(Zeroizing::new("env value".into())),
            "EMPTY_ENV" => Lookup::Set(Zeroizing::new(String::new())),
            "BAD_ENV" => Lookup::NotUtf8,
            _ => Lookup::Unset,
        }
    }

    fn read(text: &str) -> DotEnv {
        DotEnv::parse_with(text, &env).unwrap_or_else(|r| panic!("{text:?}: {r:?}"))
    }

    fn value(text: &str, name: &str) -> Option<String> {
        read(text).get(name).map(str::to_owned)
    }

    fn refused(text: &str) -> Refusal {
        DotEnv::parse_with(text, &env).expect_err(text)
    }

    #[test]
    fn reads_values_as_docker_compose_does() {
        // (file, variable, value): each pair checked against Docker Compose 2.40.3 in
        // tests/dotenv_compose.rs; here the reader alone.
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("A=plain", "A", Some("plain")),
            ("export A=2", "A", Some("2")),
            ("export\tA=2", "A", Some("2")),
            ("exportA=2", "exportA", Some("2")),
            ("A: yaml style", "A", Some("yaml style")),
            ("A = spaced ", "A", Some("spaced")),
            ("A=value # comment", "A", Some("value")),
            (
                "A=value\t# tab: no comment",
                "A",
                Some("value\t# tab: no comment"),
            ),
            ("A=123#not-a-comment", "A", Some("123#not-a-comment")),
            ("A= #starts with hash", "A", Some("#starts with hash")),
            ("A=a=b:c", "A", Some("a=b:c")),
            ("A=", "A", Some("")),
            ("A=crlf\r\n", "A", Some("crlf")),
            ("A='single $B \\n'", "A", Some("single $B \\n")),
            ("A='it\\'s'", "A", Some("it's")),
            (
                "A=\"dq \\\"x\\\" \\n \\t \\\\ \\$B\"",
                "A",
                Some("dq \"x\" \n \t \\ $B"),
            ),
            (
                "A=\"\\0123 \\0 \\01 \\0777 \\x41\"",
                "A",
                Some("S \\ \\1 \\777 \\x41"),
            ),
            ("A=\"two\nlines\" # c", "A", Some("two\nlines")),
            ("B=b\nA=$B${B}$$B", "A", Some("bb$B")),
            ("A=$UNSET.${UNSET}", "A", Some(".")),
            ("A=$1 $ $-", "A", Some("$1 $ $-")),
            // E is set on a later line: not yet when A is read.
            ("A=${E-d} ${E:-d}\nE=", "A", Some("d d")),
            ("E=\nA=${E-d} ${E:-d} ${E+a} ${E:+a}", "A", Some(" d a ")),
            ("A=${UNSET+a}|${UNSET:+a}|${FROM_ENV:+a}", "A", Some("||a")),
            (
                "A=${FROM_ENV?x} ${FROM_ENV:?x}",
                "A",
                Some("env value env value"),
            ),
            ("A=${UNSET:-${FROM_ENV:-x}}", "A", Some("env value")),
            ("A=${UNSET:-{\"keys\":[]}}", "A", Some("{\"keys\":[]}")),
            ("A=${UNSET:-x}y}", "A", Some("xy}")),
            ("A=${UNSET-a}${UNSET-b}", "A", Some("ab")),
            ("A=${UNSET:-{}", "A", Some("{")),
            ("A=${UNSET:-{}}", "A", Some("{}")),
            ("A=${UNSET:-{x}{", "A", Some("{x{")),
            ("A='x'\nA=${A}y", "A", Some("xy")),
            ("FROM_ENV=file\nA=$FROM_ENV", "A", Some("env value")),
            ("EMPTY_ENV=file\nA=${EMPTY_ENV-unset}", "A", Some("")),
            ("FROM_ENV", "FROM_ENV", None),
            ("FROM_ENV\n", "FROM_ENV", Some("env value")),
            ("B=1\nB\n", "B", Some("1")),
            ("\u{feff}A=bom", "A", Some("bom")),
            ("A.B-c[1]=odd", "A.B-c[1]", Some("odd")),
        ];
        for (text, name, expected) in cases {
            assert_eq!(
                value(text, name).as_deref(),
                *expected,
                "{name} in {text:?}"
            );
        }
    }

    #[test]
    fn refuses_what_compose_refuses_and_what_it_reads_otherwise() {
        let cases: &[(&str, usize, &str)] = &[
            ("A=1\nB='open\n", 2, "not closed"),
            ("A=1\n\nB=\"open\\\"", 3, "not closed"),
            ("A B=1", 1, "contains a space"),
            ("A$=1", 1, "Docker Compose refuses too"),
            ("\u{e9}=1", 1, "outside ASCII"),
            ("A='x' B=2", 1, "after the closing quote"),
            ("A=${B", 1, "${ does not start"),
            ("A=${B:x}", 1, "${ does not start"),
            ("A=${}", 1, "${ does not start"),
            ("A=\"${B:-x\n}\"", 1, "${ does not start"),
            ("A=${UNSET?must be set}", 1, "requires UNSET"),
            ("A=${EMPTY_ENV:?x}", 1, "unset or empty"),
            ("A=${FROM_ENV:-${UNSET?x}}", 1, "requires UNSET"),
            ("A=$\u{17f}", 1, "Kelvin"),
            ("A=${B\u{212a}}", 1, "Kelvin"),
            ("A=\"\\0000\"", 1, "NUL"),
            ("A=$BAD_ENV", 1, "not UTF-8"),
        ];
        for (text, line, problem) in cases {
            let r = refused(text);
            assert_eq!(r.line, *line, "{text:?}: {r:?}");
            assert!(r.problem.contains(problem), "{text:?}: {r:?}");
        }
    }

    #[test]
    fn notes_an_unset_variable_with_its_line() {
        let env = read("A=1\nB=$NOPE\n");
        assert_eq!(env.notes().len(), 1);
        assert!(env.notes()[0].starts_with("line 2: $NOPE is not set"));
    }

    #[test]
    fn debug_lists_names_only() {
        let env = DotEnv::parse("JWT_SECRET=topsecretvalue").unwrap();
        assert!(!format!("{env:?}").contains("topsecretvalue"));
    }

    #[test]
    fn renders_single_quoted_lines() {
        let out = render("for auth", &[("A", "{\"k\":[1]}"), ("B", "x y")]);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "# for auth\nA='{\"k\":[1]}'\nB='x y'\n"
        );
    }
}
