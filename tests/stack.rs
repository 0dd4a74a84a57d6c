//! What the files give today's upstream stack: the gateway's values (`gateway.env`), the
//! legacy-key consumers, HS256 retired at every verifier that checks a raw secret, kong.yml
//! only from a template, and `state.json` schemas migrating forward.

use crate::support::*;

/// The values upstream's Envoy entrypoint reads, as `gateway.env` holds them.
fn gateway(t: &Test) -> [String; 6] {
    [
        "ANON_KEY",
        "SERVICE_ROLE_KEY",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_SECRET_KEY",
        "ANON_KEY_ASYMMETRIC",
        "SERVICE_ROLE_KEY_ASYMMETRIC",
    ]
    .map(|name| t.var("gateway.env", name))
}

fn asymmetric(t: &Test) -> [String; 2] {
    [
        t.var("supabase.env", "ANON_KEY_ASYMMETRIC"),
        t.var("supabase.env", "SERVICE_ROLE_KEY_ASYMMETRIC"),
    ]
}

#[test]
fn gateway_gets_all_four_translation_values_and_the_mode_s_legacy_keys() {
    let anon = legacy_key("anon");
    let service = legacy_key("service_role");
    // (api key mode, HS256 mode, gateway's ANON_KEY is the legacy key)
    for (mode, hs256, legacy_accepted) in [
        ("keep", "accept", true),
        ("resign", "accept", true),
        ("keep", "reject", false),
        ("resign", "reject", false),
    ] {
        let mut t = Test::new();
        t.env("ANON_KEY", &anon)
            .env("SERVICE_ROLE_KEY", &service)
            .env("SUPAKEYS_LEGACY_API_KEYS", mode)
            .env("SUPAKEYS_LEGACY_HS256", hs256);
        t.run().success();
        let g = gateway(&t);
        let [anon_es, service_es] = asymmetric(&t);
        assert!(
            g.iter().all(|v| !v.is_empty()),
            "{mode}/{hs256}: a value is empty"
        );
        assert_eq!(g[2], t.var("supabase.env", "SUPABASE_PUBLISHABLE_KEY"));
        assert_eq!(g[3], t.var("supabase.env", "SUPABASE_SECRET_KEY"));
        assert_eq!([&g[4], &g[5]], [&anon_es, &service_es]);
        let expected = if legacy_accepted {
            [&anon, &service]
        } else {
            [&anon_es, &service_es]
        };
        assert_eq!([&g[0], &g[1]], expected, "{mode}/{hs256}");
        // Never a private key or the key arrays: gateway.env is not supabase.env.
        let text = t.read("gateway.env");
        assert!(
            !text.contains("\"d\"") && !text.contains("JWT_KEYS"),
            "{text}"
        );
        assert!(!text.contains(SECRET));
    }
}

#[test]
fn functions_get_the_effective_legacy_key_names() {
    let mut t = Test::with_legacy_keys();
    t.run().success();
    for (functions, storage) in [
        ("SUPABASE_ANON_KEY", "ANON_KEY"),
        ("SUPABASE_SERVICE_ROLE_KEY", "SERVICE_KEY"),
    ] {
        assert_eq!(
            t.var("functions.env", functions),
            t.var("storage.env", storage)
        );
    }
    t.env("SUPAKEYS_LEGACY_API_KEYS", "resign");
    t.run().success();
    assert_eq!(
        t.var("functions.env", "SUPABASE_ANON_KEY"),
        asymmetric(&t)[0]
    );
}

/// Storage (AUTH_JWT_SECRET), Realtime (API_JWT_SECRET) and Edge Functions (JWT_SECRET)
/// verify kid-less HS256 tokens with a raw secret whatever their JWKS says; with HS256
/// rejected they get a secret only supakeys knows, kept in state.json.
#[test]
fn rejecting_hs256_replaces_the_raw_secrets_services_verify_with() {
    let mut t = Test::with_legacy_keys();
    t.run().success();
    for (file, name) in [
        ("storage.env", "AUTH_JWT_SECRET"),
        ("realtime.env", "API_JWT_SECRET"),
        ("functions.env", "JWT_SECRET"),
    ] {
        assert!(
            !t.read(file).contains(&format!("{name}=")),
            "accept mode leaves {name} to upstream's environment"
        );
    }
    t.env("SUPAKEYS_LEGACY_HS256", "reject");
    t.run().success();
    let internal = t.json("state.json")["internal_jwt_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(internal.len(), 43);
    for (file, name) in [
        ("storage.env", "AUTH_JWT_SECRET"),
        ("realtime.env", "API_JWT_SECRET"),
        ("functions.env", "JWT_SECRET"),
    ] {
        assert_eq!(t.var(file, name), internal, "{file} {name}");
    }
    assert_ne!(internal, SECRET);
    // A legacy token does not verify with the replacement secret.
    let legacy = legacy_key("anon");
    let oct = serde_json::json!({"keys": [{"kty": "oct", "k": supakeys::jwk::b64(internal.as_bytes()), "alg": "HS256"}]});
    assert!(!verifies(&legacy, &oct));
    // The replacement is stable: reruns change nothing (Storage's signed URLs stay valid).
    let before = t.snapshot();
    t.run().success();
    assert_eq!(t.snapshot(), before);
}

#[test]
fn no_kong_template_means_no_kong_yml() {
    let mut t = Test::new();
    t.unset("SUPAKEYS_KONG_TEMPLATE")
        .unset("DASHBOARD_USERNAME")
        .unset("DASHBOARD_PASSWORD");
    t.run().success();
    assert!(!t.dir.join("kong.yml").exists());
    t.args(&["check"]);
    t.run().success();
}

/// A kong.yml left by an earlier supakeys (built-in template) would keep old keys after a
/// rotation: without a template, init refuses and says what to set.
#[test]
fn a_kong_yml_without_a_template_is_refused_not_left_stale() {
    let mut t = Test::new();
    t.run().success();
    let before = t.snapshot();
    t.unset("SUPAKEYS_KONG_TEMPLATE");
    t.run().fails_with(2, "SUPAKEYS_KONG_TEMPLATE is not set");
    assert_eq!(t.snapshot(), before);
}

/// Every schema version supakeys has shipped loads and migrates forward: same keys, same
/// statuses, the new fields filled, then byte-identical reruns.
#[test]
fn state_schema_1_migrates_forward() {
    let fixture = include_str!("fixtures/state-v1.json");
    let old: serde_json::Value = serde_json::from_str(fixture).unwrap();
    let t = Test::new();
    std::fs::write(t.dir.join("state.json"), fixture).unwrap();
    std::fs::set_permissions(
        t.dir.join("state.json"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = t.run();
    out.success();
    assert!(out.stderr.contains("older schema"), "{}", out.stderr);
    let new = t.json("state.json");
    assert_eq!(new["version"], 3);
    assert_eq!(new["legacy_hs256"]["mode"], "accept");
    assert_eq!(new["written_by"], env!("CARGO_PKG_VERSION"));
    assert_eq!(new["keys"], old["keys"]);
    for field in ["publishable_key", "secret_key", "minted", "inputs"] {
        assert_eq!(new[field], old[field], "{field}");
    }
    assert_eq!(new["internal_jwt_secret"].as_str().unwrap().len(), 43);
    assert_eq!(
        header(&t.var("supabase.env", "ANON_KEY_ASYMMETRIC"))["kid"],
        "fixture-schema-1-rsa"
    );
    let before = t.snapshot();
    t.run().success();
    assert_eq!(t.snapshot(), before);
}
