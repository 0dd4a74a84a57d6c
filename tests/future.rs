//! Tokens from the future. A run whose clock was ahead mints API tokens with a future `iat`;
//! once the clock is right, PostgREST refuses them ("JWT issued at future") until that date.
//! Regressions of issue 16 (class 8): `init` kept such tokens and `check` passed. Now `init`
//! re-mints them with a warning, `check` reports every token not valid yet (legacy ones
//! too), and a state that records times ahead of the clock is said.
//!
//! The directory such a run leaves is made here from a normal one: every time in
//! `state.json` moved ahead, and the minted tokens signed again with the moved `iat`/`exp`
//! by the state's own key (the evidence harness runs the binary under `faketime` instead).

use crate::support::*;
use serde_json::Value;
use supakeys::jwk::SigningKey;
use supakeys::jwt::{Role, minted_payload, sign};

const TEN_DAYS: i64 = 10 * 86_400;

/// Rewrites the directory of `t` as a run whose clock was `ahead` seconds fast would have
/// left it.
fn written_with_clock_ahead(t: &Test, ahead: i64) {
    let state = t.json("state.json");
    let (iat, exp) = (
        state["minted"]["iat"].as_i64().unwrap(),
        state["minted"]["exp"].as_i64().unwrap(),
    );
    let key = SigningKey::from_private_jwk(&state["keys"][0]["jwk"]).unwrap();
    let token = |role, iat, exp| sign(&key, &minted_payload(role, iat, exp));
    let replacements = [
        (
            token(Role::Anon, iat, exp),
            token(Role::Anon, iat + ahead, exp + ahead),
        ),
        (
            token(Role::ServiceRole, iat, exp),
            token(Role::ServiceRole, iat + ahead, exp + ahead),
        ),
    ];
    for entry in std::fs::read_dir(&t.dir).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (old, new) in &replacements {
            text = text.replace(old.as_str(), new);
        }
        std::fs::write(&path, text).unwrap();
    }
    t.edit_state(|s| {
        for key in s["keys"].as_array_mut().unwrap() {
            for field in ["created_at", "changed_at"] {
                key[field] = (key[field].as_i64().unwrap() + ahead).into();
            }
        }
        s["legacy_hs256"]["changed_at"] =
            (s["legacy_hs256"]["changed_at"].as_i64().unwrap() + ahead).into();
        s["minted"]["iat"] = (iat + ahead).into();
        s["minted"]["exp"] = (exp + ahead).into();
    });
}

fn iat(token: &str) -> i64 {
    claims(token)["iat"].as_i64().unwrap()
}

fn run(t: &mut Test, args: &[&str]) -> Output {
    t.args(args);
    let out = t.run();
    t.args(&[]);
    out
}

#[test]
fn check_reports_minted_tokens_issued_in_the_future() {
    let mut t = Test::new();
    t.run().success();
    written_with_clock_ahead(&t, TEN_DAYS);
    assert!(iat(&t.var("supabase.env", "ANON_KEY_ASYMMETRIC")) > now() + TEN_DAYS - 60);
    let list = run(&mut t, &["keys", "list", "--format", "json"]);
    let report: Value = serde_json::from_str(&list.success().stdout).unwrap();
    assert_eq!(
        report["api_tokens"]["renewal_due"], true,
        "init would re-mint them"
    );
    // Without JWT_SECRET check compares no bytes: the tokens themselves must be looked at.
    t.unset("JWT_SECRET");
    let out = run(&mut t, &["check"]);
    out.fails_with(6, "ANON_KEY_ASYMMETRIC in supabase.env")
        .fails_with(6, "its iat is")
        .fails_with(6, "PostgREST refuses it until then");
    assert!(
        out.stderr.contains("after this clock"),
        "the state's times ahead of the clock are said:\n{}",
        out.stderr
    );
}

#[test]
fn init_re_mints_tokens_issued_in_the_future_with_a_warning() {
    let t = Test::new();
    t.run().success();
    let created_at = t.json("state.json")["keys"][0]["created_at"].clone();
    written_with_clock_ahead(&t, TEN_DAYS);
    let out = t.run();
    out.success();
    assert!(
        out.stderr.contains("re-minted the API tokens"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("after this clock"), "{}", out.stderr);
    let state = t.json("state.json");
    assert!(state["minted"]["iat"].as_i64().unwrap() <= now());
    for (file, name) in [
        ("supabase.env", "ANON_KEY_ASYMMETRIC"),
        ("supabase.env", "SERVICE_ROLE_KEY_ASYMMETRIC"),
        ("storage.env", "ANON_KEY"),
        ("studio.env", "SUPABASE_SERVICE_KEY"),
    ] {
        assert!(iat(&t.var(file, name)) <= now(), "{name} in {file}");
    }
    // The history of the keys stays as recorded; the re-minted tokens are stable.
    assert_ne!(state["keys"][0]["created_at"], created_at);
    let before = t.snapshot();
    let again = t.run();
    again.success();
    assert_eq!(t.snapshot(), before);
    assert!(!again.stderr.contains("re-minted"));
    let mut t = t;
    run(&mut t, &["check"]).success();
}

#[test]
fn legacy_keys_issued_in_the_future_are_warned_about_and_reported_by_check() {
    let mut t = Test::new();
    let future = |role: &str| {
        hs256(
            serde_json::json!({"role": role, "iss": "supabase", "iat": now() + TEN_DAYS, "exp": now() + 3650 * 86_400}),
            SECRET,
        )
    };
    t.env("ANON_KEY", &future("anon"))
        .env("SERVICE_ROLE_KEY", &future("service_role"));
    let out = t.run();
    out.success();
    assert!(
        out.stderr.contains("was issued in the future"),
        "{}",
        out.stderr
    );
    // The re-signed asymmetric token inherits the legacy payload, so both are reported.
    let out = run(&mut t, &["check"]);
    out.fails_with(6, "ANON_KEY in storage.env")
        .fails_with(6, "ANON_KEY_ASYMMETRIC in supabase.env")
        .fails_with(6, "legacy keys issued in the future must be issued again");
    let claims: Value = claims(&t.var("supabase.env", "ANON_KEY_ASYMMETRIC"));
    assert!(claims["iat"].as_i64().unwrap() > now());
}
