//! Reads a kong template the way Kong does, and writes a YAML tree for Kong with every
//! string double-quoted.
//!
//! Kong reads its config with lyaml, a YAML 1.1 loader: plain scalars such as `yes`, `off`,
//! `0755` (octal), `1_000`, `0b1010`, `1:20` (sexagesimal) or `+.inf` are booleans and
//! numbers there, `<<` merges mappings, and aliases share their anchor's node. [`load_filled`]
//! gives every plain scalar the type lyaml gives it, expands aliases and merge keys (within
//! a budget: a "billion laughs" template is refused, not expanded), and refuses what it
//! cannot reproduce exactly (tags, duplicate keys, collections as keys, numbers too large
//! for 64 bits). [`to_string`] then writes each value in a form YAML 1.1 and YAML 1.2 read
//! alike: strings double-quoted with escapes (a password with quotes, `: `, `#` or newlines
//! reads back exactly), numbers and booleans in their canonical spelling.

use std::collections::HashMap;
use std::fmt::Write;
use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::yaml::Hash;

/// How large a template may grow once every alias is expanded (upstream's kong.yml has
/// about 700 nodes and 10 KiB of text), and how deep it may nest.
const MAX_NODES: usize = 100_000;
const MAX_TEXT_BYTES: usize = 8 << 20;
const MAX_DEPTH: usize = 64;

/// Why a template cannot be read, and the line (1-based) where it was found.
#[derive(Debug, PartialEq, Eq)]
pub struct LoadError {
    pub line: usize,
    pub problem: String,
}

/// A node with its size, counted as expanded: what an alias to it costs.
struct Built {
    node: Yaml,
    nodes: usize,
    text: usize,
}

enum Frame {
    Seq {
        items: Vec<Yaml>,
        anchor: usize,
        nodes: usize,
        text: usize,
    },
    Map {
        explicit: Hash,
        merged: Vec<Hash>,
        key: Option<(Yaml, Marker)>,
        anchor: usize,
        nodes: usize,
        text: usize,
    },
}

/// Loads every document of `text` as Kong's lyaml would see it, with `fill` applied first
/// to the text of every scalar that is a value (never a mapping key): where it returns a
/// new text, a plain scalar is typed from that text, as if the substitution had been made
/// in the file before lyaml read it (`timeout: $T` with T=60 is the number 60), and a
/// quoted one stays a string.
pub fn load_filled(
    text: &str,
    fill: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Yaml>, LoadError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Built> = HashMap::new();
    let (mut nodes, mut text_bytes) = (0usize, 0usize);
    let err = |mark: Marker, problem: String| LoadError {
        line: mark.line(),
        problem,
    };
    loop {
        let (event, mark) = parser.next_token().map_err(|e| LoadError {
            line: e.marker().line(),
            problem: format!("is not valid YAML ({})", e.info()),
        })?;
        let built = match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentStart | Event::Nothing => continue,
            Event::DocumentEnd => {
                anchors.clear();
                continue;
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_tag(tag.as_ref()).map_err(|p| err(mark, p))?;
                nodes += 1;
                if stack.len() >= MAX_DEPTH {
                    return Err(err(mark, format!("nests deeper than {MAX_DEPTH} levels")));
                }
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    nodes: 1,
                    text: 0,
                });
                continue;
            }
            Event::MappingStart(anchor, tag) => {
                refuse_tag(tag.as_ref()).map_err(|p| err(mark, p))?;
                nodes += 1;
                if stack.len() >= MAX_DEPTH {
                    return Err(err(mark, format!("nests deeper than {MAX_DEPTH} levels")));
                }
                stack.push(Frame::Map {
                    explicit: Hash::new(),
                    merged: Vec::new(),
                    key: None,
                    anchor,
                    nodes: 1,
                    text: 0,
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    items,
                    anchor,
                    nodes,
                    text,
                }) => {
                    let built = Built {
                        node: Yaml::Array(items),
                        nodes,
                        text,
                    };
                    remember(&mut anchors, anchor, &built);
                    built
                }
                _ => return Err(err(mark, "is not valid YAML (unbalanced sequence)".into())),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    mut explicit,
                    merged,
                    anchor,
                    nodes,
                    text,
                    ..
                }) => {
                    // YAML 1.1 merge keys (as lyaml applies them): explicit keys win, then
                    // the first merged mapping that has a key.
                    for map in merged {
                        for (k, v) in map {
                            if !explicit.contains_key(&k) {
                                explicit.insert(k, v);
                            }
                        }
                    }
                    let built = Built {
                        node: Yaml::Hash(explicit),
                        nodes,
                        text,
                    };
                    remember(&mut anchors, anchor, &built);
                    built
                }
                _ => return Err(err(mark, "is not valid YAML (unbalanced mapping)".into())),
            },
            Event::Scalar(value, style, anchor, tag) => {
                let is_key = matches!(stack.last(), Some(Frame::Map { key: None, .. }));
                let value = if is_key {
                    value
                } else {
                    fill(&value).unwrap_or(value)
                };
                let node = read_scalar(&value, style, tag.as_ref()).map_err(|p| err(mark, p))?;
                let built = Built {
                    node,
                    nodes: 1,
                    text: value.len(),
                };
                remember(&mut anchors, anchor, &built);
                nodes += 1;
                text_bytes += value.len();
                built
            }
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    return Err(err(
                        mark,
                        "refers to an anchor from inside its own node (a recursive alias)".into(),
                    ));
                };
                nodes += target.nodes;
                text_bytes += target.text;
                if nodes > MAX_NODES || text_bytes > MAX_TEXT_BYTES {
                    return Err(err(
                        mark,
                        format!(
                            "expands to more than {MAX_NODES} nodes or {} MiB of text once its aliases are expanded (a \"billion laughs\" template?)",
                            MAX_TEXT_BYTES >> 20
                        ),
                    ));
                }
                Built {
                    node: target.node.clone(),
                    nodes: target.nodes,
                    text: target.text,
                }
            }
        };
        if nodes > MAX_NODES || text_bytes > MAX_TEXT_BYTES {
            return Err(err(
                mark,
                format!(
                    "is larger than {MAX_NODES} nodes or {} MiB of text",
                    MAX_TEXT_BYTES >> 20
                ),
            ));
        }
        match stack.last_mut() {
            None => docs.push(built.node),
            Some(Frame::Seq {
                items, nodes, text, ..
            }) => {
                *nodes += built.nodes;
                *text += built.text;
                items.push(built.node);
            }
            Some(Frame::Map {
                explicit,
                merged,
                key,
                nodes,
                text,
                ..
            }) => {
                *nodes += built.nodes;
                *text += built.text;
                match key.take() {
                    None => {
                        if matches!(built.node, Yaml::Array(_) | Yaml::Hash(_)) {
                            return Err(err(
                                mark,
                                "has a sequence or mapping as a mapping key".into(),
                            ));
                        }
                        *key = Some((built.node, mark));
                    }
                    Some((k, key_mark)) if k.as_str() == Some("<<") => match built.node {
                        Yaml::Hash(map) => merged.push(map),
                        Yaml::Array(maps) => {
                            for m in maps {
                                let Yaml::Hash(map) = m else {
                                    return Err(err(
                                        key_mark,
                                        "has a merge key (<<) whose list holds something other than mappings".into(),
                                    ));
                                };
                                merged.push(map);
                            }
                        }
                        _ => {
                            return Err(err(
                                key_mark,
                                "has a merge key (<<) whose value is not a mapping or a list of mappings".into(),
                            ));
                        }
                    },
                    Some((k, key_mark)) => {
                        if explicit.contains_key(&k) {
                            return Err(err(
                                key_mark,
                                format!(
                                    "has the key {} twice in one mapping (Kong would silently keep the last one); remove one",
                                    describe_key(&k)
                                ),
                            ));
                        }
                        explicit.insert(k, built.node);
                    }
                }
            }
        }
    }
    Ok(docs)
}

fn remember(anchors: &mut HashMap<usize, Built>, anchor: usize, built: &Built) {
    if anchor > 0 {
        anchors.insert(
            anchor,
            Built {
                node: built.node.clone(),
                nodes: built.nodes,
                text: built.text,
            },
        );
    }
}

fn describe_key(k: &Yaml) -> String {
    match k {
        Yaml::String(s) if s.len() <= 64 => format!("\"{}\"", s.escape_debug()),
        Yaml::String(_) => "(a long string)".into(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Real(r) => r.clone(),
        Yaml::Boolean(b) => b.to_string(),
        _ => "null".into(),
    }
}

/// Only `!!str` has a meaning supakeys reproduces; any other tag is refused.
fn refuse_tag(tag: Option<&Tag>) -> Result<(), String> {
    match tag {
        None => Ok(()),
        Some(t) => Err(format!(
            "uses the tag {}{}; tags are not supported in a kong template (quote a value to make it a string)",
            if t.handle == "tag:yaml.org,2002:" {
                "!!"
            } else {
                &t.handle
            },
            t.suffix
        )),
    }
}

fn read_scalar(value: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Yaml, String> {
    match tag {
        Some(t) if t.handle == "tag:yaml.org,2002:" && t.suffix == "str" => {
            return Ok(Yaml::String(value.to_owned()));
        }
        Some(_) => return refuse_tag(tag).map(|()| Yaml::Null),
        None => {}
    }
    if style != TScalarStyle::Plain {
        return Ok(Yaml::String(value.to_owned()));
    }
    resolve_1_1(value)
}

/// The type lyaml (Kong's YAML 1.1 loader) gives a plain scalar, tried in lyaml's order:
/// null, octal, decimal, float, bool, inf, nan, hexadecimal, binary, sexagesimal (integer,
/// then float), else a string.
pub fn resolve_1_1(s: &str) -> Result<Yaml, String> {
    let too_large = || {
        format!(
            "has the plain number {s}, which does not fit in 64 bits (Kong would round it); quote it if it is text"
        )
    };
    let int = |v: Option<i64>| v.map(Yaml::Integer).ok_or_else(too_large);
    if matches!(s, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(Yaml::Null);
    }
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let signed = |v: Option<i64>| v.map(|v| if negative { -v } else { v });
    let digits = |text: &str, radix: u32| -> Option<i64> {
        let mut v: i64 = 0;
        for c in text.chars().filter(|c| *c != '_') {
            v = v
                .checked_mul(i64::from(radix))?
                .checked_add(i64::from(c.to_digit(radix)?))?;
        }
        Some(v)
    };
    // Octal: 0_*[0-7][0-7_]*
    if let Some(rest) = unsigned.strip_prefix('0') {
        let rest = rest.trim_start_matches('_');
        if rest.starts_with(|c: char| ('0'..='7').contains(&c))
            && rest.chars().all(|c| ('0'..='7').contains(&c) || c == '_')
        {
            return int(signed(digits(rest, 8)));
        }
    }
    // Decimal: _*[0-9][0-9_]*
    let rest = unsigned.trim_start_matches('_');
    if rest.starts_with(|c: char| c.is_ascii_digit())
        && rest.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return int(signed(digits(rest, 10)));
    }
    // Float: Lua's tonumber() of the text without underscores, if it has '.', 'e' or 'E'.
    if s.contains(['.', 'e', 'E']) {
        let bare: String = s.chars().filter(|c| *c != '_').collect();
        if let Some(v) = lua_decimal(&bare) {
            return Ok(real(v));
        }
        let (neg, body) = match bare.as_bytes().first() {
            Some(b'-') => (true, &bare[1..]),
            Some(b'+') => (false, &bare[1..]),
            _ => (false, &bare[..]),
        };
        if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X"))
            && !hex.is_empty()
        {
            if hex.chars().all(|c| c.is_ascii_hexdigit()) {
                let v = digits(hex, 16).ok_or_else(too_large)?;
                return Ok(Yaml::Integer(if neg { -v } else { v }));
            }
            if hex.contains(['.', 'p', 'P']) {
                return Err(format!(
                    "has the plain value {s}, a hexadecimal float for Kong; write it in decimal, or quote it if it is text"
                ));
            }
        }
    }
    match s {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Ok(Yaml::Boolean(true));
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Ok(Yaml::Boolean(false));
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Ok(Yaml::Real(".inf".into()));
        }
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Yaml::Real("-.inf".into())),
        ".nan" | ".NaN" | ".NAN" => return Ok(Yaml::Real(".nan".into())),
        _ => {}
    }
    // Hexadecimal: 0x_*[0-9a-fA-F][0-9a-fA-F_]*
    if let Some(rest) = unsigned.strip_prefix("0x") {
        let rest = rest.trim_start_matches('_');
        if rest.starts_with(|c: char| c.is_ascii_hexdigit())
            && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '_')
        {
            return int(signed(digits(rest, 16)));
        }
    }
    // Binary: 0b_*[01][01_]+ (at least two characters after the underscores)
    if let Some(rest) = unsigned.strip_prefix("0b") {
        let rest = rest.trim_start_matches('_');
        if rest.len() >= 2
            && rest.starts_with(['0', '1'])
            && rest.chars().all(|c| matches!(c, '0' | '1' | '_'))
        {
            return int(signed(digits(rest, 2)));
        }
    }
    // Sexagesimal: [0-9]+:[0-5]?[0-9][:0-9]* (every run of digits is a base-60 digit), then
    // the same with a fraction.
    let (base, fraction) = match unsigned.split_once('.') {
        Some((base, fraction))
            if !fraction.is_empty() && fraction.chars().all(|c| c.is_ascii_digit()) =>
        {
            (base, Some(fraction))
        }
        _ => (unsigned, None),
    };
    if let Some((head, tail)) = base.split_once(':')
        && !head.is_empty()
        && head.chars().all(|c| c.is_ascii_digit())
        && tail.starts_with(|c: char| c.is_ascii_digit())
        && tail.chars().all(|c| c.is_ascii_digit() || c == ':')
    {
        let mut v: i64 = 0;
        for run in base.split(':').filter(|r| !r.is_empty()) {
            v = v
                .checked_mul(60)
                .and_then(|v| v.checked_add(run.parse::<i64>().ok()?))
                .ok_or_else(too_large)?;
        }
        let v = if negative { -v } else { v };
        return Ok(match fraction {
            None => Yaml::Integer(v),
            Some(f) => {
                let frac: f64 = format!("0.{f}").parse().map_err(|_| too_large())?;
                real(if negative {
                    v as f64 - frac
                } else {
                    v as f64 + frac
                })
            }
        });
    }
    Ok(Yaml::String(s.to_owned()))
}

/// Lua's decimal number syntax: `[+-]? (digits [. digits?] | . digits) ([eE][+-]? digits)?`.
fn lua_decimal(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = all_digits(int) && all_digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    (mantissa_ok && exponent_ok)
        .then(|| text.parse::<f64>().ok())
        .flatten()
}

/// A float in a spelling YAML 1.1 (lyaml) and YAML 1.2 read as the same number.
fn real(v: f64) -> Yaml {
    Yaml::Real(if v.is_nan() {
        ".nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { ".inf" } else { "-.inf" }.into()
    } else {
        // `{:e}` is the shortest text that reads back as `v`, always with an exponent (so
        // that both parsers see a float): 1.5e0, 1e5, -2.5e-3.
        format!("{v:e}")
    })
}

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
