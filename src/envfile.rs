//! Env files: reading the operator's dotenv file (`--env-file`) and writing the
//! `NAME='value'` files the services load (POSIX `sh`, GoTrue's dotenv loader and compose's
//! `env_file` all read that form the same way, provided no value holds `'` or a newline).

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use zeroize::Zeroizing;

/// A Supabase `.env` is a few KiB; a larger env file is refused unread.
pub const MAX_BYTES: u64 = 1 << 20;

/// The variables of a dotenv file. Values are taken literally (no `${VAR}` expansion).
#[derive(Default)]
pub struct DotEnv {
    vars: HashMap<String, Zeroizing<String>>,
    bom: bool,
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

    /// Reads the operator's env file: a regular file (a FIFO would block the run), at most
    /// [`MAX_BYTES`], UTF-8 line by line.
    pub fn load(path: &Path) -> Result<DotEnv> {
        let bytes =
            crate::input::read_input(path, MAX_BYTES).map_err(|problem| Error::EnvFileRead {
                path: path.into(),
                problem: problem.to_string(),
            })?;
        let bytes = Zeroizing::new(bytes);
        DotEnv::parse_bytes(&bytes).map_err(|(line, problem)| Error::EnvFileSyntax {
            path: path.into(),
            line,
            problem,
        })
    }

    /// Parses the bytes of an env file, whose lines must each be UTF-8.
    pub fn parse_bytes(bytes: &[u8]) -> std::result::Result<DotEnv, (usize, &'static str)> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            (
                line + 1,
                "this line is not valid UTF-8 (save the file as UTF-8)",
            )
        })?;
        DotEnv::parse(text)
    }

    /// Parses dotenv text (a leading byte order mark is skipped); on error returns the
    /// 1-based line number and the problem.
    pub fn parse(text: &str) -> std::result::Result<DotEnv, (usize, &'static str)> {
        let (bom, text) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut vars = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (name, value) = line
                .split_once('=')
                .ok_or((index + 1, "no '=' on this line"))?;
            let name = name.trim();
            if !is_name(name) {
                return Err((index + 1, "the variable name is not [A-Za-z_][A-Za-z0-9_]*"));
            }
            let value = parse_value(value.trim_start()).map_err(|p| (index + 1, p))?;
            vars.insert(name.to_owned(), value);
        }
        Ok(DotEnv { vars, bom })
    }
}

fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse_value(value: &str) -> std::result::Result<Zeroizing<String>, &'static str> {
    let mut out = Zeroizing::new(String::new());
    let rest = if let Some(quoted) = value.strip_prefix('\'') {
        let end = quoted.find('\'').ok_or("unterminated single quote")?;
        out.push_str(&quoted[..end]);
        &quoted[end + 1..]
    } else if let Some(quoted) = value.strip_prefix('"') {
        let mut chars = quoted.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, e)) => out.push(e),
                    None => return Err("unterminated double quote"),
                },
                c => out.push(c),
            }
        }
        let end = end.ok_or("unterminated double quote")?;
        &quoted[end + 1..]
    } else {
        let end = value.find(" #").unwrap_or(value.len());
        out.push_str(value[..end].trim_end());
        ""
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(out)
    } else {
        Err("unexpected text after the closing quote")
    }
}

/// Renders an env file: a comment line, then one `NAME='value'` line per variable.
pub fn render(comment: &str, vars: &[(&str, &str)]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(format!("# {comment}\n").into_bytes());
    for (name, value) in vars {
        assert!(is_name(name), "env names are literals");
        assert!(
            !value.contains(['\'', '\n', '\r', '\0']),
            "values written to env files never contain quotes or newlines ({name})"
        );
        out.extend_from_slice(format!("{name}='{value}'\n").as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_a_supabase_env_uses() {
        let env = DotEnv::parse(
            "# comment\n\nA=plain\nexport B='single # not a comment'\nC=\"dq \\\"x\\\" \\n\"\nD=value # comment\nE=\nF=a=b\n",
        )
        .unwrap();
        assert_eq!(env.get("A"), Some("plain"));
        assert_eq!(env.get("B"), Some("single # not a comment"));
        assert_eq!(env.get("C"), Some("dq \"x\" \n"));
        assert_eq!(env.get("D"), Some("value"));
        assert_eq!(env.get("E"), Some(""));
        assert_eq!(env.get("F"), Some("a=b"));
    }

    #[test]
    fn reports_the_line_of_a_bad_entry() {
        assert_eq!(
            DotEnv::parse("A=1\nnot a line\n").err(),
            Some((2, "no '=' on this line"))
        );
        assert_eq!(DotEnv::parse("1A=1").err().unwrap().0, 1);
        assert_eq!(
            DotEnv::parse("A='open").err(),
            Some((1, "unterminated single quote"))
        );
        assert_eq!(
            DotEnv::parse("A='x' y").err(),
            Some((1, "unexpected text after the closing quote"))
        );
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
