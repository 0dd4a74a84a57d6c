//! `supakeys init` end to end: fresh run, reruns, changed inputs, modes, algorithms,
//! adoption, concurrency, `check` and `print-env`.

use crate::support::*;
use serde_json::{Value, json};

const FILES: [(&str, u32); 11] = [
    ("state.json", 0o600),
    ("auth.env", 0o600),
    ("jwks.json", 0o644),
    ("jwt_jwks.json", 0o644),
    ("realtime.env", 0o644),
    ("storage.env", 0o644),
    ("functions.env", 0o644),
    ("studio.env", 0o644),
    ("supabase.env", 0o600),
    ("gateway.env", 0o644),
    ("kong.yml", 0o644),
];

fn asymmetric_tokens(t: &Test) -> [String; 2] {
    [
        t.var("supabase.env", "ANON_KEY_ASYMMETRIC"),
        t.var("supabase.env", "SERVICE_ROLE_KEY_ASYMMETRIC"),
    ]
}

#[test]
fn fresh_run_writes_the_whole_output_contract() {
    let mut t = Test::new();
    t.run().success();
    let snapshot = t.snapshot();
    let names: Vec<_> = snapshot.keys().cloned().collect();
    let mut expected: Vec<_> = FILES.iter().map(|(n, _)| n.to_string()).collect();
    expected.sort();
    assert_eq!(
        names, expected,
        "exactly the contract's files, no lock or temp file"
    );
    for (name, mode) in FILES {
        assert_eq!(snapshot[name].1, mode, "mode of {name}");
    }

    let kid = t.kid();
    let gotrue: Value = serde_json::from_str(&t.var("auth.env", "GOTRUE_JWT_KEYS")).unwrap();
    let keys = gotrue.as_array().expect("GOTRUE_JWT_KEYS is an array");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["kid"], json!(kid));
    assert_eq!(keys[0]["key_ops"], json!(["sign", "verify"]));
    assert!(keys[0].get("d").is_some());
    assert_eq!(
        keys[1],
        json!({"kty":"oct","k":supakeys::jwk::b64(SECRET.as_bytes()),"alg":"HS256"})
    );
    assert_eq!(t.var("auth.env", "GOTRUE_JWT_VALID_METHODS"), "ES256,HS256");
    assert_eq!(t.var("auth.env", "GOTRUE_JWT_VALIDMETHODS"), "ES256,HS256");

    let jwks = t.json("jwks.json");
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert!(jwks["keys"][0].get("d").is_none());
    assert_eq!(jwks["keys"][0]["key_ops"], json!(["verify"]));
    let jwt_jwks = t.json("jwt_jwks.json");
    assert_eq!(jwt_jwks["keys"][1]["kty"], "oct");
    assert_eq!(
        t.var("realtime.env", "API_JWT_JWKS"),
        t.read("jwt_jwks.json").trim_end()
    );
    assert_eq!(
        t.var("storage.env", "JWT_JWKS"),
        t.read("jwt_jwks.json").trim_end()
    );
    assert_eq!(
        t.var("functions.env", "SUPABASE_JWKS"),
        t.read("jwks.json").trim_end()
    );

    // Without legacy keys the tokens are minted: {role, iss, iat, exp = iat + 5 years}.
    for (token, role) in asymmetric_tokens(&t).iter().zip(["anon", "service_role"]) {
        assert_eq!(header(token), json!({"alg":"ES256","typ":"JWT","kid":kid}));
        let c = claims(token);
        assert_eq!(c["role"], role);
        assert_eq!(c["iss"], "supabase");
        assert_eq!(
            c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
            5 * 365 * 86_400
        );
        assert!(verifies(token, &jwks) && verifies(token, &jwt_jwks));
    }
    // In keep mode without legacy keys, the asymmetric tokens are the services' keys.
    assert_eq!(t.var("storage.env", "ANON_KEY"), asymmetric_tokens(&t)[0]);
    let publishable = t.var("supabase.env", "SUPABASE_PUBLISHABLE_KEY");
    assert!(publishable.starts_with("sb_publishable_"));
    assert!(
        t.var("studio.env", "SUPABASE_SECRET_KEY")
            .starts_with("sb_secret_")
    );
    assert!(t.read("kong.yml").contains(&publishable));
    t.args(&["check"]);
    t.run().success();
}

#[test]
fn rerun_changes_nothing_not_even_mtimes() {
    let t = Test::with_legacy_keys();
    t.run().success();
    let before = t.snapshot();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = t.run();
    out.success();
    assert_eq!(t.snapshot(), before);
    assert!(out.stderr.contains("unchanged=11"), "{}", out.stderr);
}

#[test]
fn changed_jwt_secret_keeps_the_keypair_and_updates_derived_files() {
    let mut t = Test::new();
    t.run().success();
    let kid = t.kid();
    let private = t.json("state.json")["keys"][0]["jwk"].clone();
    let anon = asymmetric_tokens(&t)[0].clone();
    let new_secret = "another-secret-that-is-also-at-least-32-characters";
    t.env("JWT_SECRET", new_secret);
    let out = t.run();
    out.success();
    assert!(out.stderr.contains("JWT_SECRET changed"), "{}", out.stderr);
    assert!(!out.stderr.contains(new_secret));
    assert_eq!(t.kid(), kid);
    assert_eq!(t.json("state.json")["keys"][0]["jwk"], private);
    assert_eq!(
        asymmetric_tokens(&t)[0],
        anon,
        "minted tokens do not depend on the secret"
    );
    assert_eq!(
        t.json("jwt_jwks.json")["keys"][1]["k"],
        json!(supakeys::jwk::b64(new_secret.as_bytes()))
    );
}

#[test]
fn keep_mode_gives_services_the_legacy_keys() {
    let t = Test::with_legacy_keys();
    t.run().success();
    let anon = t.var("storage.env", "ANON_KEY");
    assert_eq!(header(&anon)["alg"], "HS256");
    assert_eq!(t.var("studio.env", "SUPABASE_ANON_KEY"), anon);
    assert_eq!(t.var("supabase.env", "ANON_KEY"), anon);
    // The asymmetric tokens carry the legacy payload byte for byte.
    let [anon_es, service_es] = asymmetric_tokens(&t);
    assert_eq!(anon_es.split('.').nth(1), anon.split('.').nth(1));
    assert_eq!(claims(&service_es)["role"], "service_role");
    assert!(
        verifies(&anon, &t.json("jwt_jwks.json")),
        "legacy keys verify with the oct key"
    );
    assert!(
        !verifies(&anon, &t.json("jwks.json")),
        "jwks.json has no oct key"
    );
}

#[test]
fn resign_mode_replaces_the_legacy_keys_and_kong_accepts_both() {
    let legacy_anon = legacy_key("anon");
    let mut t = Test::with_legacy_keys();
    t.env("SUPAKEYS_LEGACY_API_KEYS", "resign")
        .env("ANON_KEY", &legacy_anon);
    t.run().success();
    let [anon_es, _] = asymmetric_tokens(&t);
    assert_eq!(t.var("storage.env", "ANON_KEY"), anon_es);
    assert_eq!(t.var("studio.env", "SUPABASE_ANON_KEY"), anon_es);
    let kong = t.read("kong.yml");
    assert!(kong.contains(&anon_es));
    assert_eq!(t.var("supabase.env", "ANON_KEY"), anon_es);
    // The legacy key is still a Kong credential, so existing clients keep working.
    assert!(kong.contains(&legacy_anon));
}

#[test]
fn rs256_keys_have_all_crt_members() {
    let mut t = Test::new();
    t.env("SUPAKEYS_ALG", "RS256")
        .env("SUPAKEYS_RSA_BITS", "3072");
    t.run().success();
    let keys: Value = serde_json::from_str(&t.var("auth.env", "GOTRUE_JWT_KEYS")).unwrap();
    for member in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
        assert!(keys[0].get(member).is_some(), "{member}");
    }
    let n = supakeys::jwk::unb64(keys[0]["n"].as_str().unwrap()).unwrap();
    assert_eq!(n.len() * 8, 3072);
    assert_eq!(t.var("auth.env", "GOTRUE_JWT_VALID_METHODS"), "RS256,HS256");
    let [anon, _] = asymmetric_tokens(&t);
    assert_eq!(header(&anon)["alg"], "RS256");
    assert!(verifies(&anon, &t.json("jwks.json")));
    // A rerun reproduces the RSA signatures byte for byte (PKCS#1 v1.5 is deterministic).
    let before = t.snapshot();
    t.run().success();
    assert_eq!(t.snapshot(), before);
}

#[test]
fn given_kid_and_opaque_keys_are_used() {
    let mut t = Test::new();
    let publishable = "sb_publishable_abcdefghijklmnopqrstuv_12345678";
    t.env("SUPAKEYS_KID", "my-key-1")
        .env("SUPABASE_PUBLISHABLE_KEY", publishable);
    t.run().success();
    assert_eq!(t.kid(), "my-key-1");
    assert_eq!(
        t.var("functions.env", "SUPABASE_PUBLISHABLE_KEY"),
        publishable
    );
    // Later runs keep the generated secret key without it being in the environment.
    let secret = t.var("functions.env", "SUPABASE_SECRET_KEY");
    t.run().success();
    assert_eq!(t.var("functions.env", "SUPABASE_SECRET_KEY"), secret);
}

/// Upstream's add-new-auth-keys.sh output, for migration.
fn upstream_jwt_keys(kid: &str) -> (String, Value) {
    let key = supakeys::jwk::SigningKey::generate(
        supakeys::jwk::KeySpec::Es256,
        supakeys::jwk::Kid::parse(kid).unwrap(),
    )
    .unwrap();
    let keys = json!([key.private_jwk(), {"kty":"oct","k":supakeys::jwk::b64(SECRET.as_bytes()),"alg":"HS256"}]);
    (keys.to_string(), key.public_jwk())
}

#[test]
fn jwt_keys_is_adopted_then_must_stay_the_same() {
    let (jwt_keys, public) = upstream_jwt_keys("2b0f3c7e-8a51-4d3e-9c1a-6f2e4b7d9a10");
    let mut t = Test::new();
    t.env("JWT_KEYS", &jwt_keys);
    let out = t.run();
    out.success();
    assert!(out.stderr.contains("adopted"), "{}", out.stderr);
    assert_eq!(t.json("jwks.json")["keys"][0], public);
    // Rerunning with the same JWT_KEYS is fine, and so is upstream's "legacy only" `[]`.
    t.run().success();
    t.env("JWT_KEYS", "[]");
    t.run().success();
    // A different JWT_KEYS is an error, never a silent switch.
    let before = t.snapshot();
    let (other, _) = upstream_jwt_keys("other");
    t.env("JWT_KEYS", &other);
    t.run().fails_with(2, "JWT_KEYS holds the key other");
    assert_eq!(t.snapshot(), before);
}

#[test]
fn env_file_is_read_and_the_environment_wins() {
    let mut t = Test::new();
    let file = t.scratch().join("supabase.env");
    std::fs::write(
        &file,
        format!(
            "# a Supabase .env\nJWT_SECRET={SECRET}\nANON_KEY={}\nSERVICE_ROLE_KEY={}\nSUPAKEYS_KID=from-file\nDASHBOARD_PASSWORD='p@ss word'\n",
            legacy_key("anon"),
            legacy_key("service_role")
        ),
    )
    .unwrap();
    t.unset("JWT_SECRET")
        .unset("DASHBOARD_PASSWORD")
        .env("SUPAKEYS_KID", "from-env")
        .env("SUPAKEYS_ENV_FILE", &file.display().to_string());
    t.run().success();
    assert_eq!(t.kid(), "from-env");
    assert_eq!(header(&t.var("storage.env", "ANON_KEY"))["alg"], "HS256");
    assert!(t.read("kong.yml").contains("p@ss word"));
}

#[test]
fn empty_variables_count_as_unset() {
    let mut t = Test::new();
    t.env("SUPAKEYS_ALG", "")
        .env("ANON_KEY", "")
        .env("SERVICE_ROLE_KEY", "")
        .env("SUPAKEYS_KID", "");
    t.run().success();
    assert_eq!(t.json("state.json")["keys"][0]["alg"], "ES256");
}

#[test]
fn concurrent_runs_end_with_one_keypair_and_identical_files() {
    let t = Test::new();
    let children: Vec<_> = (0..8).map(|_| t.command().spawn().unwrap()).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let first = t.snapshot();
    assert_eq!(first.len(), 11);
    t.run().success();
    assert_eq!(t.snapshot(), first);
}

#[test]
fn wrong_mode_of_a_reused_file_is_fixed() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new();
    t.run().success();
    let path = t.dir.join("auth.env");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = t.run();
    out.success();
    assert!(out.stderr.contains("mode_fixed=auth.env"), "{}", out.stderr);
    assert_eq!(t.snapshot()["auth.env"].1, 0o600);
}

#[test]
fn check_reports_edited_files_and_wrong_modes() {
    use std::os::unix::fs::PermissionsExt;
    let mut t = Test::new();
    t.run().success();
    std::fs::write(t.dir.join("jwks.json"), "{\"keys\":[]}\n").unwrap();
    std::fs::set_permissions(
        t.dir.join("supabase.env"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    t.args(&["check"]);
    let out = t.run();
    out.fails_with(6, "jwks.json differs");
    out.fails_with(6, "supabase.env has mode 0644, expected 0600");
    // Without JWT_SECRET, check still verifies modes and tokens.
    t.unset("JWT_SECRET");
    t.run().fails_with(6, "supabase.env has mode 0644");
}

#[test]
fn check_without_state_says_to_run_init() {
    let mut t = Test::new();
    t.args(&["check"]);
    t.run().fails_with(3, "Run `supakeys init` first");
}

#[test]
fn print_env_prints_upstream_names() {
    let mut t = Test::new();
    t.args(&["print-env", "--init"]);
    let out = t.run();
    out.success();
    assert!(out.stdout.contains("ANON_KEY_ASYMMETRIC='"));
    assert!(out.stdout.contains("JWT_KEYS='[{"));
    assert_eq!(out.stdout, t.read("supabase.env"));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut t = Test::new();
    t.env("SUPAKEYS_LOG_FORMAT", "json");
    let out = t.run();
    out.success();
    for line in out.stderr.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v.get("level").is_some());
    }
}

#[test]
fn version_and_help() {
    let mut t = Test::new();
    t.args(&["--version"]);
    assert!(t.run().success().stdout.starts_with("supakeys "));
    t.args(&["--help"]);
    let help = t.run();
    help.success();
    assert!(help.stdout.contains("SUPAKEYS_DIR") && help.stdout.contains("Exit codes"));
}

/// Regression: Coolify's Supabase template (coollabsio/coolify templates/compose/supabase.yaml)
/// puts `$KONG_STORAGE_*` placeholders into kong.yml, filled from Kong's environment by its
/// entrypoint. supakeys refused the template (exit 2, unknown placeholder); with the names
/// in SUPAKEYS_KONG_ENV it fills them from its own environment, typed as Kong reads them.
#[test]
fn kong_template_with_kong_environment_placeholders_renders() {
    let mut t = Test::new();
    let template = t.scratch().join("coolify-kong.yml");
    std::fs::write(
        &template,
        "_format_version: '2.1'\nconsumers:\n  - username: anon\n    keyauth_credentials:\n      - key: $SUPABASE_ANON_KEY\n\
         services:\n  - name: storage-v1\n    url: http://supabase-storage:5000/\n    connect_timeout: $KONG_STORAGE_CONNECT_TIMEOUT\n\
         \x20   routes:\n      - name: storage-v1-all\n        paths: [/storage/v1/]\n        response_buffering: $KONG_STORAGE_RESPONSE_BUFFERING\n",
    )
    .unwrap();
    t.env("SUPAKEYS_KONG_TEMPLATE", &template.display().to_string())
        .env(
            "SUPAKEYS_KONG_ENV",
            "KONG_STORAGE_CONNECT_TIMEOUT,KONG_STORAGE_RESPONSE_BUFFERING",
        )
        .env("KONG_STORAGE_CONNECT_TIMEOUT", "60")
        .env("KONG_STORAGE_RESPONSE_BUFFERING", "false");
    t.run().success();
    let kong = t.read("kong.yml");
    assert!(kong.contains("connect_timeout: 60\n"), "{kong}");
    assert!(kong.contains("response_buffering: false\n"), "{kong}");
    // `check` renders the template again from the same environment: nothing differs.
    t.args(&["check"]);
    t.run().success();
}
