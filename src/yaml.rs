//! Writes a YAML tree for Kong with every string double-quoted.
//!
//! Kong reads its config with a YAML 1.1 parser, where plain scalars such as `1_000`,
//! `0b1010`, `yes` or `+.inf` are numbers or booleans; block scalars lose leading spaces and
//! trailing newlines. Quoting every string with escapes leaves no room for either: any value
//! (a password with quotes, `: `, `#` or newlines) reads back exactly.

use std::fmt::Write;
use yaml_rust2::Yaml;

/// The YAML text of `root` (a mapping), block style, two-space indentation.
pub fn to_string(root: &Yaml) -> String {
    let mut out = String::new();
    node(root, 0, &mut out);
    out
}

/// A double-quoted scalar: `\\`, `\"`, and every character outside printable ASCII escaped.
fn quoted(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xffff => write!(out, "\\u{:04x}", c as u32).expect("String write"),
            c => write!(out, "\\U{:08x}", c as u32).expect("String write"),
        }
    }
    out.push('"');
}

/// A mapping key: plain when it is an identifier YAML cannot read as anything else.
fn key(k: &Yaml, out: &mut String) {
    match k {
        Yaml::String(s)
            if s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
                ) =>
        {
            out.push_str(s)
        }
        other => scalar(other, out),
    }
}

fn scalar(n: &Yaml, out: &mut String) {
    match n {
        Yaml::String(s) => quoted(s, out),
        Yaml::Integer(i) => write!(out, "{i}").expect("String write"),
        Yaml::Real(r) => out.push_str(r),
        Yaml::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Yaml::Array(a) if a.is_empty() => out.push_str("[]"),
        Yaml::Hash(h) if h.is_empty() => out.push_str("{}"),
        _ => out.push_str("null"),
    }
}

fn is_block(n: &Yaml) -> bool {
    matches!(n, Yaml::Array(a) if !a.is_empty()) || matches!(n, Yaml::Hash(h) if !h.is_empty())
}

/// Writes `n` whose first line starts at the current position (after `- ` or at column
/// `indent`), further lines at `indent`.
fn node(n: &Yaml, indent: usize, out: &mut String) {
    match n {
        Yaml::Hash(map) if !map.is_empty() => {
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                key(k, out);
                out.push(':');
                value(v, indent + 2, out);
            }
        }
        Yaml::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str("- ");
                if is_block(item) {
                    node(item, indent + 2, out);
                } else {
                    scalar(item, out);
                    out.push('\n');
                }
            }
        }
        other => {
            scalar(other, out);
            out.push('\n');
        }
    }
}

/// The value after `key:`: inline for scalars, on the next lines for blocks.
fn value(v: &Yaml, indent: usize, out: &mut String) {
    if is_block(v) {
        out.push('\n');
        out.push_str(&" ".repeat(indent));
        node(v, indent, out);
    } else {
        out.push(' ');
        scalar(v, out);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yaml_rust2::YamlLoader;

    fn round_trip(text: &str) -> String {
        let tree = YamlLoader::load_from_str(text).unwrap().remove(0);
        let out = to_string(&tree);
        assert_eq!(
            YamlLoader::load_from_str(&out).unwrap().remove(0),
            tree,
            "{out}"
        );
        out
    }

    #[test]
    fn nested_blocks() {
        let out = round_trip(
            "a: 1\nb:\n  - x\n  - {c: [1, 2], d: {}}\n  - []\n  - [y, [z]]\ne: {f: true, g: null}\n",
        );
        assert_eq!(
            out,
            "a: 1\nb:\n  - \"x\"\n  - c:\n      - 1\n      - 2\n    d: {}\n  - []\n  - - \"y\"\n    - - \"z\"\ne:\n  f: true\n  g: null\n"
        );
    }

    #[test]
    fn strings_yaml_1_1_would_misread_stay_strings() {
        for s in [
            "1_000",
            "0b1010",
            "+.inf",
            "yes",
            "1:20",
            " a\nb",
            "\n",
            "a\n\n",
            "é\u{2028}\u{1F600}",
            "\"'\\#: x",
        ] {
            let mut map = yaml_rust2::yaml::Hash::new();
            map.insert(Yaml::String("password".into()), Yaml::String(s.into()));
            let out = to_string(&Yaml::Hash(map));
            let back = YamlLoader::load_from_str(&out).unwrap().remove(0);
            assert_eq!(back["password"].as_str(), Some(s), "{out}");
            assert!(out.is_ascii());
        }
    }
}
