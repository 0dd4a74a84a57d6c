//! Kong templates are read as Kong reads them (lyaml, YAML 1.1): plain `yes`, `0755`,
//! `1_000` or `1:20` keep their YAML 1.1 meaning in kong.yml, `<<` merges, aliases expand
//! within a budget, and what cannot be reproduced is refused with the line and a fix.
//! Each case here was wrong before (issue 10, class 7): the value changed type, the merge
//! key became a literal key, a billion-laughs template exhausted memory, a BOM hid
//! `_format_version`, a placeholder in a key stayed verbatim.

use crate::support::kong_values;
use std::collections::BTreeMap;
use supakeys::kong::{KongEnv, Template, Values};
use yaml_rust2::{Yaml, YamlLoader};

const FMT: &str = "_format_version: '2.1'\n";

fn values() -> Values<'static> {
    kong_values("supabase", "pw")
}

/// Renders `body` (after the format line) and reads kong.yml back with a YAML 1.2 parser;
/// the writer spells every value so that YAML 1.1 reads it the same way.
fn render(body: &str) -> Yaml {
    let text = format!("{FMT}{body}");
    let out = Template::parse("t.yml", &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .render(&values())
        .unwrap();
    YamlLoader::load_from_str(&out).unwrap().remove(0)
}

fn refused(text: &str) -> String {
    Template::parse("t.yml", text)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn yaml_1_1_booleans_stay_booleans() {
    let doc = render("a: yes\nb: No\nc: on\nd: OFF\ne: True\nf: 'yes'\ng: y\n");
    for (key, expected) in [
        ("a", true),
        ("b", false),
        ("c", true),
        ("d", false),
        ("e", true),
    ] {
        assert_eq!(doc[key], Yaml::Boolean(expected), "{key}");
    }
    assert_eq!(
        doc["f"].as_str(),
        Some("yes"),
        "a quoted value stays a string"
    );
    assert_eq!(doc["g"].as_str(), Some("y"), "lyaml has no y/n booleans");
}

#[test]
fn yaml_1_1_numbers_keep_their_value() {
    let doc = render(
        "octal: 0755\nunderscores: 1_000\nhex: 0x1F\nbin: 0b1010\nsexagesimal: 1:20\n\
         sexfloat: 1:20.5\nfloat: 1_000.5\nexp: 1e3\nneg: -0o17\nnot_octal: 08\nzero: 0\n\
         inf: .Inf\nnull1: ~\nnull2: Null\nbin_short: 0b1\nurl: http://auth:9999/verify\n",
    );
    assert_eq!(doc["octal"], Yaml::Integer(493));
    assert_eq!(doc["underscores"], Yaml::Integer(1000));
    assert_eq!(doc["hex"], Yaml::Integer(31));
    assert_eq!(doc["bin"], Yaml::Integer(10));
    assert_eq!(doc["sexagesimal"], Yaml::Integer(80));
    assert_eq!(doc["sexfloat"].as_f64(), Some(80.5));
    assert_eq!(doc["float"].as_f64(), Some(1000.5));
    assert_eq!(doc["exp"].as_f64(), Some(1000.0));
    assert_eq!(doc["neg"].as_str(), Some("-0o17"), "0o is YAML 1.2 only");
    assert_eq!(doc["not_octal"], Yaml::Integer(8));
    assert_eq!(doc["zero"], Yaml::Integer(0));
    assert_eq!(doc["inf"].as_f64(), Some(f64::INFINITY));
    assert_eq!(doc["null1"], Yaml::Null);
    assert_eq!(doc["null2"], Yaml::Null);
    assert_eq!(
        doc["bin_short"].as_str(),
        Some("0b1"),
        "lyaml needs two binary digits"
    );
    assert_eq!(doc["url"].as_str(), Some("http://auth:9999/verify"));
}

#[test]
fn plain_keys_are_typed_too() {
    let doc = render("on: 1\n'off': 2\n");
    let map = doc.as_hash().unwrap();
    assert_eq!(map[&Yaml::Boolean(true)], Yaml::Integer(1));
    assert_eq!(map[&Yaml::String("off".into())], Yaml::Integer(2));
}

#[test]
fn merge_keys_are_expanded_with_explicit_keys_winning() {
    let doc = render(
        "base: &base {strip_path: yes, protocols: [http], x: 1}\n\
         other: &other {y: 2, x: 3}\n\
         one: {<<: *base, x: 9}\n\
         many:\n  x: 0\n  <<: [*other, *base]\n",
    );
    assert_eq!(doc["one"]["strip_path"], Yaml::Boolean(true));
    assert_eq!(doc["one"]["x"], Yaml::Integer(9));
    assert_eq!(doc["one"]["protocols"][0].as_str(), Some("http"));
    assert!(doc["one"]["<<"].is_badvalue(), "no literal << key");
    assert_eq!(doc["many"]["x"], Yaml::Integer(0));
    assert_eq!(doc["many"]["y"], Yaml::Integer(2));
    assert_eq!(doc["many"]["strip_path"], Yaml::Boolean(true));
    assert!(refused(&format!("{FMT}a: {{<<: 5}}\n")).contains("merge key"));
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let text = format!("\u{feff}{FMT}services: []\n");
    Template::parse("t.yml", &text).unwrap();
}

#[test]
fn billion_laughs_is_refused_quickly() {
    let mut text = format!("{FMT}a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        text.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    let start = std::time::Instant::now();
    let e = refused(&text);
    assert!(e.contains("billion laughs") && e.contains("line "), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn deep_nesting_is_refused() {
    // Block nesting: yaml-rust2 limits flow nesting itself, not this.
    let body: String = (0..100)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    let e = refused(&format!("{FMT}{body}{}v\n", " ".repeat(100)));
    assert!(e.contains("deeper than 64"), "{e}");
}

#[test]
fn placeholders_in_keys_are_refused() {
    let e = refused(&format!("{FMT}consumers:\n  - $DASHBOARD_PASSWORD: x\n"));
    assert!(
        e.contains("$DASHBOARD_PASSWORD") && e.contains("mapping key"),
        "{e}"
    );
}

#[test]
fn what_cannot_be_reproduced_is_refused_with_its_line() {
    for (body, needle) in [
        ("a: 1\na: 2\n", "twice"),
        ("a: !!binary aGVsbG8=\n", "tag !!binary"),
        ("a: !custom x\n", "tag !custom"),
        ("a: 99999999999999999999\n", "64 bits"),
        ("a: 0x1.8p1\n", "hexadecimal float"),
        ("? [a]\n: b\n", "as a mapping key"),
        ("a: &x [*x]\n", "recursive alias"),
    ] {
        let e = refused(&format!("{FMT}{body}"));
        assert!(e.contains(needle), "{body:?}: {e}");
        assert!(
            e.contains("line 2") || e.contains("line 3"),
            "{body:?}: {e}"
        );
    }
    assert_eq!(
        render("a: !!str 0755\n")["a"].as_str(),
        Some("0755"),
        "!!str keeps the text"
    );
}

#[test]
fn format_version_must_be_a_string() {
    let e = refused("_format_version: 2.1\n");
    assert!(e.contains("not a string"), "{e}");
}

#[test]
fn a_template_that_renders_too_large_is_refused() {
    let body: String = (0..4000)
        .map(|i| format!("k{i}: '{}'\n", ["$LUA_AUTH_EXPR"; 10].join(" ")))
        .collect();
    let t = Template::parse("t.yml", &format!("{FMT}{body}")).unwrap();
    match t.render(&values()) {
        Ok(out) => panic!("rendered {} bytes", out.len()),
        Err(e) => assert!(e.to_string().contains("renders to more than"), "{e}"),
    }
}

/// Coolify's kong.yml (coollabsio/coolify templates/compose/supabase.yaml, 2026-04) takes
/// Storage's timeouts and buffering from Kong's environment, which its Kong entrypoint
/// substituted into the text before Kong read it. supakeys fills the names listed in
/// SUPAKEYS_KONG_ENV the same way: `connect_timeout: $T` becomes the number Kong's schema
/// wants (services.lua: integer), `request_buffering: $B` the boolean (routes.lua), and a
/// quoted placeholder stays a string. Before SUPAKEYS_KONG_ENV such a template was refused.
const COOLIFY_STORAGE: &str = "services:\n  - name: storage-v1\n    url: http://supabase-storage:5000/\n    \
    connect_timeout: $KONG_STORAGE_CONNECT_TIMEOUT\n    read_timeout: $KONG_STORAGE_READ_TIMEOUT\n    \
    routes:\n      - name: storage-v1-all\n        paths: [/storage/v1/]\n        \
    request_buffering: $KONG_STORAGE_REQUEST_BUFFERING\n        note: '$KONG_STORAGE_READ_TIMEOUT s'\n";

fn kong_env(vars: &[(&str, Option<&str>)]) -> KongEnv {
    KongEnv::new(
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[test]
fn kong_environment_placeholders_take_the_type_textual_substitution_gives() {
    let env = kong_env(&[
        ("KONG_STORAGE_CONNECT_TIMEOUT", Some("60")),
        ("KONG_STORAGE_READ_TIMEOUT", Some("3600")),
        ("KONG_STORAGE_REQUEST_BUFFERING", Some("false")),
    ]);
    let out = Template::parse_with("t.yml", &format!("{FMT}{COOLIFY_STORAGE}"), &env)
        .unwrap_or_else(|e| panic!("{e}"))
        .render(&values())
        .unwrap();
    let doc = YamlLoader::load_from_str(&out).unwrap().remove(0);
    let service = doc["services"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some("storage-v1"))
        .unwrap();
    assert_eq!(service["connect_timeout"], Yaml::Integer(60));
    assert_eq!(service["read_timeout"], Yaml::Integer(3600));
    assert_eq!(
        service["routes"][0]["request_buffering"],
        Yaml::Boolean(false)
    );
    assert_eq!(
        service["routes"][0]["note"].as_str(),
        Some("3600 s"),
        "a quoted value stays a string"
    );
    assert!(!out.contains("$KONG"), "{out}");
}

#[test]
fn kong_environment_placeholders_are_refused_unless_named_and_set() {
    let text = format!("{FMT}{COOLIFY_STORAGE}");
    let e = refused(&text);
    assert!(
        e.contains("$KONG_STORAGE_CONNECT_TIMEOUT") && e.contains("SUPAKEYS_KONG_ENV"),
        "an unknown placeholder points at SUPAKEYS_KONG_ENV: {e}"
    );
    let env = kong_env(&[
        ("KONG_STORAGE_CONNECT_TIMEOUT", Some("60")),
        ("KONG_STORAGE_READ_TIMEOUT", None),
        ("KONG_STORAGE_REQUEST_BUFFERING", Some("false")),
    ]);
    let e = Template::parse_with("t.yml", &text, &env)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("uses $KONG_STORAGE_READ_TIMEOUT, named in SUPAKEYS_KONG_ENV, but KONG_STORAGE_READ_TIMEOUT is not set"),
        "{e}"
    );
}

#[test]
fn kong_environment_values_are_filled_once_and_never_into_keys() {
    // A value is not searched for placeholders again, and keys are never filled in.
    let env = kong_env(&[("KONG_X", Some("1"))]);
    let e = Template::parse_with("t.yml", &format!("{FMT}$KONG_X: a\n"), &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("in a mapping key"), "{e}");
    let doc = Template::parse_with(
        "t.yml",
        &format!("{FMT}a: $KONG_X$KONG_X\nb: x$KONG_X\n"),
        &env,
    )
    .unwrap()
    .render(&values())
    .map(|out| YamlLoader::load_from_str(&out).unwrap().remove(0))
    .unwrap();
    assert_eq!(doc["a"], Yaml::Integer(11));
    assert_eq!(doc["b"].as_str(), Some("x1"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Plain scalars YAML 1.1 and YAML 1.2 (or Kong and a naive reader) disagree about,
    /// mixed with anchors, aliases, merge keys and flow collections.
    fn yamlish_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("yes".to_owned()),
            Just("Off".to_owned()),
            Just("~".to_owned()),
            Just("0755".to_owned()),
            Just("1_000".to_owned()),
            Just("0x1F".to_owned()),
            Just("0b101".to_owned()),
            Just("1:20:30".to_owned()),
            Just("1:20.5".to_owned()),
            Just("1e3".to_owned()),
            Just(".5".to_owned()),
            Just("-.inf".to_owned()),
            Just(".NaN".to_owned()),
            Just("08".to_owned()),
            Just("0o17".to_owned()),
            Just("'quoted yes'".to_owned()),
            Just("\"0755\"".to_owned()),
            Just("[a, yes, 1_0]".to_owned()),
            Just("{k: on, n: 012}".to_owned()),
            Just("$DASHBOARD_PASSWORD".to_owned()),
            "[a-z]{1,6}",
            "-?[0-9_]{1,6}(\\.[0-9]{0,3})?",
        ]
    }

    fn template() -> impl Strategy<Value = String> {
        proptest::collection::vec((yamlish_value(), any::<bool>()), 1..12).prop_map(|items| {
            let mut text = String::from("_format_version: '2.1'\nbase: &base {x: 1, y: yes}\n");
            for (i, (value, merge)) in items.into_iter().enumerate() {
                if merge {
                    text.push_str(&format!("m{i}:\n  <<: *base\n  v: {value}\n"));
                } else {
                    text.push_str(&format!("k{i}: {value}\nl{i}: [{value}, *base]\n"));
                }
            }
            text
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// kong.yml reads back, as Kong reads it, as the tree it was written from: rendering
        /// it again (YAML 1.1 typing, no placeholder left) gives the same bytes.
        #[test]
        fn rendered_kong_yml_means_the_same_to_kong(text in template()) {
            let first = Template::parse("t.yml", &text).unwrap().render(&values()).unwrap();
            let second = Template::parse("t.yml", &first).unwrap().render(&values()).unwrap();
            prop_assert_eq!(first, second);
        }
    }
}
