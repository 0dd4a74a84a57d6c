//! Retiring legacy HS256 is a transition recorded in `state.json`, like a rotation: a later
//! run without `SUPAKEYS_LEGACY_HS256` keeps it, whatever the command; going back takes an
//! explicit `accept` and is logged as a warning. Regressions of issue 16 (class 7): a
//! `keys rotate --now` from a plain shell, or a `.env` that lost the setting, used to put
//! `JWT_SECRET` back into every verifier and HS256 back into Auth's valid methods, silently.

use crate::support::*;

/// Whether the directory's files accept legacy HS256, looked at in every place that says so.
#[track_caller]
fn hs256_accepted(t: &Test) -> bool {
    let oct = t.json("jwt_jwks.json")["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kty"] == "oct");
    let gotrue_oct = t
        .var("auth.env", "GOTRUE_JWT_KEYS")
        .contains("\"kty\":\"oct\"");
    let methods = t.var("auth.env", "GOTRUE_JWT_VALID_METHODS");
    let internal = t.read("storage.env").contains("AUTH_JWT_SECRET=");
    let accepted = oct && gotrue_oct && methods.contains("HS256") && !internal;
    let rejected = !oct && !gotrue_oct && !methods.contains("HS256") && internal;
    assert!(accepted || rejected, "the files disagree on the HS256 mode");
    accepted
}

fn run(t: &mut Test, args: &[&str]) -> Output {
    t.args(args);
    let out = t.run();
    t.args(&[]);
    out
}

fn mode_in_state(t: &Test) -> String {
    t.json("state.json")["legacy_hs256"]["mode"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_run_without_the_setting_keeps_hs256_retired_whatever_the_command() {
    let mut t = Test::with_legacy_keys();
    t.env("SUPAKEYS_LEGACY_API_KEYS", "resign");
    t.env("SUPAKEYS_LEGACY_HS256", "reject");
    t.run().success();
    assert!(!hs256_accepted(&t));

    t.unset("SUPAKEYS_LEGACY_HS256");
    for args in [
        &[][..],
        &["init"],
        &["keys", "standby"],
        &["keys", "rotate"],
        &["keys", "rotate", "--now"],
        &["print-env", "--init"],
    ] {
        run(&mut t, args).success();
        assert!(!hs256_accepted(&t), "after {args:?}");
    }
    let previous = t.json("state.json")["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["status"] == "previous")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    run(&mut t, &["keys", "revoke", &previous]).success();
    assert!(!hs256_accepted(&t));
    run(&mut t, &["check"]).success();
    assert_eq!(mode_in_state(&t), "reject");
}

#[test]
fn going_back_to_hs256_takes_an_explicit_accept_and_a_warning() {
    let mut t = Test::with_legacy_keys();
    t.env("SUPAKEYS_LEGACY_HS256", "reject")
        .env("SUPAKEYS_LEGACY_API_KEYS", "resign");
    t.run().success();
    let retired_at = t.json("state.json")["legacy_hs256"]["changed_at"].clone();

    t.env("SUPAKEYS_LEGACY_HS256", "accept");
    let out = t.run();
    out.success();
    assert!(hs256_accepted(&t));
    assert_eq!(mode_in_state(&t), "accept");
    assert!(
        out.stderr.contains("WARN") && out.stderr.contains("HS256 is accepted again"),
        "{}",
        out.stderr
    );
    assert!(t.json("state.json")["legacy_hs256"]["changed_at"].as_i64() >= retired_at.as_i64());

    // Once back, a run without the setting keeps accepting, and says nothing more.
    t.unset("SUPAKEYS_LEGACY_HS256");
    let before = t.snapshot();
    let out = t.run();
    out.success();
    assert_eq!(t.snapshot(), before);
    assert!(!out.stderr.contains("HS256 is accepted again"));
}

#[test]
fn keys_list_and_check_read_the_mode_from_the_state() {
    let mut t = Test::new();
    t.env("SUPAKEYS_LEGACY_HS256", "reject");
    t.run().success();
    let list = run(&mut t, &["keys", "list", "--format", "json"]);
    list.success();
    let report: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(report["legacy_hs256"], "rejected");
    assert!(
        report["legacy_hs256_since"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // The state says rejected; files that accept HS256 contradict it (check without
    // JWT_SECRET compares no bytes, but reads the mode).
    t.edit_state(|s| s["legacy_hs256"]["mode"] = "accept".into());
    t.unset("SUPAKEYS_LEGACY_HS256");
    let out = run(&mut t, &["check"]);
    t.unset("JWT_SECRET");
    let without_secret = run(&mut t, &["check"]);
    out.fails_with(6, "jwt_jwks.json");
    without_secret.fails_with(6, "state.json records legacy HS256 as accepted");
}

/// A state of schema 2 (supakeys 0.1.0) has no record of the mode: the files it wrote are
/// the record (jwt_jwks.json holds the oct key exactly while HS256 is accepted).
#[test]
fn a_schema_2_state_keeps_the_mode_its_files_show() {
    for (mode, accepted) in [("reject", false), ("accept", true)] {
        let mut t = Test::new();
        for file in ["state.json", "jwt_jwks.json"] {
            let path = format!(
                "{}/tests/fixtures/state-v2-{mode}/{file}",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::copy(path, t.dir.join(file)).unwrap();
        }
        let old = t.json("state.json");
        assert_eq!(old["version"], 2);
        t.env("SUPAKEYS_LEGACY_API_KEYS", "resign");
        let out = t.run();
        out.success();
        assert!(out.stderr.contains("older schema"), "{}", out.stderr);
        assert_eq!(hs256_accepted(&t), accepted, "{mode}");
        let new = t.json("state.json");
        assert_eq!(new["version"], 3);
        assert_eq!(new["legacy_hs256"]["mode"], mode);
        assert!(
            new["legacy_hs256"]["changed_at"].is_null(),
            "when is not known"
        );
        for field in [
            "keys",
            "publishable_key",
            "secret_key",
            "internal_jwt_secret",
            "minted",
        ] {
            assert_eq!(new[field], old[field], "{field}");
        }
        let before = t.snapshot();
        t.run().success();
        assert_eq!(t.snapshot(), before, "a second run changes nothing");
    }
}
