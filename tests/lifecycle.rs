//! The key lifecycle: standby, rotate, revoke, and rejecting legacy HS256, checked after
//! each step by verifying tokens against the JWKS files (jsonwebtoken; the compatibility
//! suite repeats this with the services' own libraries).

use crate::support::*;
use serde_json::Value;

fn anon_asymmetric(t: &Test) -> String {
    t.var("supabase.env", "ANON_KEY_ASYMMETRIC")
}

fn statuses(t: &Test) -> Vec<(String, String)> {
    t.json("state.json")["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Asserts which of `tokens` verify against both verifier key sets.
#[track_caller]
fn accepted(t: &Test, tokens: &[(&str, &str, bool)]) {
    let jwt_jwks = t.json("jwt_jwks.json");
    let jwks = t.json("jwks.json");
    for (name, token, expected) in tokens {
        assert_eq!(
            verifies(token, &jwt_jwks),
            *expected,
            "{name} against jwt_jwks.json"
        );
        if header(token)["alg"] != "HS256" {
            assert_eq!(
                verifies(token, &jwks),
                *expected,
                "{name} against jwks.json"
            );
        }
    }
}

fn keys(t: &mut Test, args: &[&str]) -> Output {
    let mut full = vec!["keys"];
    full.extend_from_slice(args);
    t.args(&full);
    let out = t.run();
    t.args(&[]);
    out
}

fn walk(first: &str, second: &str) {
    let legacy = legacy_key("anon");
    let mut t = Test::with_legacy_keys();
    t.env("ANON_KEY", &legacy).env("SUPAKEYS_ALG", first);
    t.run().success();
    let old_kid = t.kid();
    let old_token = anon_asymmetric(&t);
    accepted(&t, &[("old", &old_token, true), ("legacy", &legacy, true)]);

    // Rotating without a standby key is refused and changes nothing.
    let before = t.snapshot();
    keys(&mut t, &["rotate"]).fails_with(2, "there is no standby key");
    assert_eq!(t.snapshot(), before);

    // Standby: published everywhere, signs nothing.
    let out = keys(&mut t, &["standby", "--alg", second]);
    out.success();
    assert!(
        out.stdout.contains("docker compose restart auth"),
        "{}",
        out.stdout
    );
    let standby_kid = statuses(&t)
        .into_iter()
        .find(|(_, s)| s == "standby")
        .unwrap()
        .0;
    assert_eq!(t.json("jwks.json")["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        anon_asymmetric(&t),
        old_token,
        "the current key still signs"
    );
    let gotrue: Value = serde_json::from_str(&t.var("auth.env", "GOTRUE_JWT_KEYS")).unwrap();
    let signers: Vec<_> = gotrue
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| {
            k["key_ops"]
                .as_array()
                .is_some_and(|o| o.iter().any(|x| x == "sign"))
        })
        .collect();
    assert_eq!(signers.len(), 1);
    assert_eq!(signers[0]["kid"].as_str(), Some(old_kid.as_str()));
    // A second standby is a no-op.
    let before = t.snapshot();
    keys(&mut t, &["standby"]).success();
    assert_eq!(t.snapshot(), before);

    // Rotate: the standby key signs, the old one keeps verifying.
    keys(&mut t, &["rotate"]).success();
    let new_token = anon_asymmetric(&t);
    assert_eq!(
        header(&new_token)["kid"].as_str(),
        Some(standby_kid.as_str())
    );
    assert_eq!(header(&new_token)["alg"].as_str(), Some(second));
    assert_eq!(
        claims(&new_token),
        claims(&old_token),
        "same claims, new signature"
    );
    accepted(
        &t,
        &[
            ("old", &old_token, true),
            ("new", &new_token, true),
            ("legacy", &legacy, true),
        ],
    );
    assert_eq!(
        statuses(&t),
        [
            (old_kid.clone(), "previous".to_owned()),
            (standby_kid.clone(), "current".to_owned())
        ]
    );

    // init never undoes a transition.
    let before = t.snapshot();
    t.run().success();
    assert_eq!(t.snapshot(), before);

    // The current key cannot be revoked; the previous one can, and loses its private part.
    keys(&mut t, &["revoke", &standby_kid]).fails_with(2, "is the current signing key");
    keys(&mut t, &["revoke", &old_kid]).success();
    accepted(
        &t,
        &[
            ("old", &old_token, false),
            ("new", &new_token, true),
            ("legacy", &legacy, true),
        ],
    );
    let state = t.json("state.json");
    assert!(
        state["keys"][0].get("jwk").is_none(),
        "a revoked key keeps no key material"
    );
    keys(&mut t, &["revoke", &old_kid]).success();
    keys(&mut t, &["revoke", "no-such-kid"]).fails_with(2, "no key has kid no-such-kid");

    // Retire HS256: the oct key leaves every key set, services get asymmetric tokens.
    t.env("SUPAKEYS_LEGACY_HS256", "reject");
    t.run().success();
    accepted(&t, &[("new", &new_token, true), ("legacy", &legacy, false)]);
    assert_eq!(t.var("auth.env", "GOTRUE_JWT_VALID_METHODS"), second);
    assert_eq!(t.var("storage.env", "ANON_KEY"), new_token);
    assert!(!t.read("kong.yml").contains(&legacy));
    let out = keys(&mut t, &["list"]);
    out.success();
    assert!(
        out.stdout.contains("legacy HS256: rejected"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("revoked"), "{}", out.stdout);
}

#[test]
fn es256_lifecycle() {
    walk("ES256", "ES256");
}

#[test]
fn rs256_lifecycle() {
    walk("RS256", "RS256");
}

#[test]
fn es256_to_rs256_lifecycle() {
    walk("ES256", "RS256");
}

#[test]
fn rotate_now_creates_and_promotes_with_a_warning() {
    let mut t = Test::new();
    t.run().success();
    let old = t.kid();
    let out = keys(&mut t, &["rotate", "--now"]);
    out.success();
    assert!(
        out.stderr.contains("promoting it at once"),
        "{}",
        out.stderr
    );
    let s = statuses(&t);
    assert_eq!(s[0], (old, "previous".to_owned()));
    assert_eq!(s[1].1, "current");
}

#[test]
fn keys_commands_need_an_initialised_directory() {
    let mut t = Test::new();
    keys(&mut t, &["standby"]).fails_with(3, "Run `supakeys init` first");
    assert!(t.snapshot().is_empty());
}

#[test]
fn list_as_json() {
    let mut t = Test::new();
    t.run().success();
    let out = keys(&mut t, &["status", "--format", "json"]);
    out.success();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["keys"][0]["status"], "current");
    assert_eq!(report["legacy_hs256"], "accepted");
    assert!(
        report["keys"][0]["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "auth.env")
    );
}

/// SUPAKEYS_KID stays in a compose environment after the first run; a standby key then
/// needs its own kid, and the message says how to give one.
#[test]
fn standby_with_the_kid_of_the_first_key_says_how_to_pick_another() {
    let mut t = Test::new();
    t.env("SUPAKEYS_KID", "first");
    t.run().success();
    keys(&mut t, &["standby"]).fails_with(2, "pass --kid with a new id");
    keys(&mut t, &["standby", "--kid="]).success();
    keys(&mut t, &["standby", "--kid=second"]).success();
    let kids: Vec<_> = statuses(&t).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kids.len(),
        2,
        "the second standby call is a no-op: {kids:?}"
    );
}
