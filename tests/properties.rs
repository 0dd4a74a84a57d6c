//! Properties of the parsers and renderers, checked on generated inputs (proptest): JWK round
//! trips, env-file quoting, kong placeholder substitution without YAML injection, and parsers
//! that never panic on arbitrary bytes. Case counts are modest so the suite stays fast.

use crate::support::{Test, kong_values};
use proptest::prelude::*;
use std::path::Path;
use supakeys::envfile::{self, DotEnv};
use supakeys::jwk::{Kid, SigningKey, unb64};
use supakeys::kong::Template;
use supakeys::state::State;
use yaml_rust2::{Yaml, YamlLoader};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A `[A-Za-z_][A-Za-z0-9_]*` env variable name.
fn env_name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,20}"
}

/// Any text an env file may carry between single quotes: everything but `'`, `\`, CR, LF and
/// NUL (Compose reads `\'` inside single quotes as a quote, so a value ending in `\` would
/// not read back).
fn env_value() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..40).prop_map(|chars| {
        chars
            .into_iter()
            .filter(|c| !matches!(c, '\'' | '\\' | '\n' | '\r' | '\0'))
            .collect()
    })
}

/// Strings built to break YAML or the substitution, mixed with arbitrary characters.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just(": ".to_owned()),
        Just(" #".to_owned()),
        Just("\n".to_owned()),
        Just("\n- injected: true\n".to_owned()),
        Just("\ninjected: true".to_owned()),
        Just("{a: b}".to_owned()),
        Just("[x]".to_owned()),
        Just("&anchor ".to_owned()),
        Just("*alias".to_owned()),
        Just("!!binary ".to_owned()),
        Just("---".to_owned()),
        Just("$DASHBOARD_PASSWORD".to_owned()),
        Just("$DASHBOARD_USERNAME".to_owned()),
        Just("$NOT_A_PLACEHOLDER".to_owned()),
        Just("\\".to_owned()),
        Just("\t".to_owned()),
        Just(" ".to_owned()),
        Just("~".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("0x1F".to_owned()),
        Just("1e3".to_owned()),
        any::<char>().prop_map(String::from),
        "[a-z0-9]{1,8}",
    ];
    proptest::collection::vec(pieces, 1..8).prop_map(|p| p.concat())
}

const TEMPLATE: &str = "_format_version: '2.1'\n\
basicauth_credentials:\n  - consumer: DASHBOARD\n    username: $DASHBOARD_USERNAME\n    password: $DASHBOARD_PASSWORD\n\
greeting: 'user $DASHBOARD_USERNAME here'\n";

fn keys_of(doc: &Yaml) -> Vec<String> {
    doc.as_hash()
        .map(|h| {
            h.keys()
                .map(|k| k.as_str().unwrap_or("<non-string key>").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A real `state.json`, written by the binary, to mutate.
fn valid_state() -> Vec<u8> {
    let test = Test::new();
    test.run().success();
    std::fs::read(test.dir.join("state.json")).unwrap()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn p256_jwk_round_trips(scalar in any::<[u8; 32]>(), kid in "[A-Za-z0-9._-]{1,64}") {
        // Most 32-byte strings are valid scalars; zero and values >= the order are refused.
        let Ok(key) = SigningKey::from_p256_scalar(Kid::parse(&kid).unwrap(), &scalar) else {
            return Ok(());
        };
        let private = key.private_jwk();
        for member in ["x", "y", "d"] {
            let bytes = unb64(private[member].as_str().unwrap()).unwrap();
            prop_assert_eq!(bytes.len(), 32, "member {} keeps its leading zeros", member);
        }
        prop_assert_eq!(unb64(private["d"].as_str().unwrap()).unwrap(), scalar.to_vec());
        let back = SigningKey::from_private_jwk(&private).unwrap();
        prop_assert_eq!(back.public_jwk(), key.public_jwk());
        prop_assert_eq!(back.private_jwk(), private);
        prop_assert!(key.public_jwk().get("d").is_none());
    }

    #[test]
    fn env_files_read_back_what_was_written(
        vars in proptest::collection::vec((env_name(), env_value()), 0..8),
    ) {
        // Distinct names (a later duplicate would win on reading).
        let mut seen = std::collections::HashSet::new();
        let vars: Vec<(String, String)> =
            vars.into_iter().filter(|(n, _)| seen.insert(n.clone())).collect();
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let text = envfile::render("generated", &pairs);
        let env = DotEnv::parse(std::str::from_utf8(&text).unwrap()).unwrap();
        for (name, value) in &vars {
            prop_assert_eq!(env.get(name), Some(value.as_str()));
        }
    }

    #[test]
    fn kong_values_cannot_inject_yaml(username in hostile_text(), password in hostile_text()) {
        let template = Template::parse("prop.yml", TEMPLATE).unwrap();
        let out = template.render(&kong_values(&username, &password)).unwrap();
        let docs = YamlLoader::load_from_str(&out).unwrap();
        prop_assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        prop_assert_eq!(
            keys_of(doc),
            vec!["_format_version", "basicauth_credentials", "greeting"],
            "no key was injected at the top level"
        );
        let credential = &doc["basicauth_credentials"][0];
        prop_assert_eq!(keys_of(credential), vec!["consumer", "username", "password"]);
        prop_assert_eq!(credential["username"].as_str(), Some(username.as_str()));
        prop_assert_eq!(credential["password"].as_str(), Some(password.as_str()));
        prop_assert_eq!(
            doc["greeting"].as_str().map(str::to_owned),
            Some(format!("user {username} here"))
        );
    }

    #[test]
    fn state_parse_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = State::parse(&bytes, Path::new("state.json"), &|| None);
    }

    #[test]
    fn jwt_and_env_parsers_never_panic(text in "\\PC{0,200}") {
        let _ = supakeys::jwt::parse(&text);
        let _ = DotEnv::parse(&text);
        let _ = Template::parse("prop.yml", &text);
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Mutations of a real state: truncations, byte flips and splices are either refused with
    /// an error or, when harmless (whitespace), accepted; never a panic.
    #[test]
    fn state_parse_never_panics_on_mutated_states(
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        splice in proptest::option::of(hostile_text()),
    ) {
        thread_local!(static STATE: Vec<u8> = valid_state());
        let mut bytes = STATE.with(|s| s.clone());
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Some(text) = splice {
            let i = cut.index(bytes.len());
            bytes.splice(i..i, text.into_bytes());
        } else {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let _ = State::parse(&bytes, Path::new("state.json"), &|| None);
    }
}
