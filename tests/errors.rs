//! Every bad input an operator can meet: the documented exit code, a message naming the
//! culprit, no byte of the keys directory changed, and no secret in the output.

use crate::support::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

struct Case {
    name: &'static str,
    /// Run `init` once successfully before breaking things.
    initialised: bool,
    prepare: fn(&mut Test),
    code: i32,
    message: &'static str,
}

fn other_secret_key(role: &str) -> String {
    hs256(
        json!({"role": role, "iss": "supabase", "iat": 0, "exp": now() + 9999}),
        "a-completely-different-secret-of-32-characters-or-more",
    )
}

fn signer_jwk(kid: &str) -> serde_json::Value {
    supakeys::jwk::SigningKey::generate(
        supakeys::jwk::KeySpec::Es256,
        supakeys::jwk::Kid::parse(kid).unwrap(),
    )
    .unwrap()
    .private_jwk()
}

const CASES: &[Case] = &[
    Case {
        name: "missing JWT_SECRET",
        initialised: false,
        code: 2,
        message: "JWT_SECRET is not set",
        prepare: |t| {
            t.unset("JWT_SECRET");
        },
    },
    Case {
        name: "short JWT_SECRET",
        initialised: false,
        code: 2,
        message: "JWT_SECRET: is 11 characters long",
        prepare: |t| {
            t.env("JWT_SECRET", "tooshort123");
        },
    },
    Case {
        name: "malformed ANON_KEY",
        initialised: false,
        code: 2,
        message: "ANON_KEY: is not a JWT",
        prepare: |t| {
            t.env("ANON_KEY", "garbage")
                .env("SERVICE_ROLE_KEY", &legacy_key("service_role"));
        },
    },
    Case {
        name: "ANON_KEY signed with another secret",
        initialised: false,
        code: 2,
        message: "ANON_KEY: its signature does not verify with JWT_SECRET",
        prepare: |t| {
            t.env("ANON_KEY", &other_secret_key("anon"))
                .env("SERVICE_ROLE_KEY", &legacy_key("service_role"));
        },
    },
    Case {
        name: "SERVICE_ROLE_KEY with role anon",
        initialised: false,
        code: 2,
        message: "SERVICE_ROLE_KEY: has role \"anon\", expected \"service_role\"",
        prepare: |t| {
            let wrong = hs256(
                json!({"role":"anon","iss":"supabase","iat":1,"exp":now()+999}),
                SECRET,
            );
            t.env("ANON_KEY", &legacy_key("anon"))
                .env("SERVICE_ROLE_KEY", &wrong);
        },
    },
    Case {
        name: "expired ANON_KEY",
        initialised: false,
        code: 2,
        message: "ANON_KEY: expired on",
        prepare: |t| {
            let expired = hs256(
                json!({"role":"anon","iss":"supabase","iat":1,"exp":now()-60}),
                SECRET,
            );
            t.env("ANON_KEY", &expired)
                .env("SERVICE_ROLE_KEY", &legacy_key("service_role"));
        },
    },
    Case {
        name: "identical legacy keys (template bug)",
        initialised: false,
        code: 2,
        message: "identical to ANON_KEY",
        prepare: |t| {
            let no_role = hs256(json!({"iss":"supabase","iat":1,"exp":now()+999}), SECRET);
            t.env("ANON_KEY", &no_role)
                .env("SERVICE_ROLE_KEY", &no_role);
        },
    },
    Case {
        name: "ANON_KEY without SERVICE_ROLE_KEY",
        initialised: false,
        code: 2,
        message: "SERVICE_ROLE_KEY is not set",
        prepare: |t| {
            t.env("ANON_KEY", &legacy_key("anon"));
        },
    },
    Case {
        name: "bad SUPAKEYS_ALG",
        initialised: false,
        code: 2,
        message: "SUPAKEYS_ALG: must be ES256 or RS256",
        prepare: |t| {
            t.env("SUPAKEYS_ALG", "HS256");
        },
    },
    Case {
        name: "bad SUPAKEYS_RSA_BITS",
        initialised: false,
        code: 2,
        message: "SUPAKEYS_RSA_BITS: must be 2048, 3072 or 4096",
        prepare: |t| {
            t.env("SUPAKEYS_ALG", "RS256")
                .env("SUPAKEYS_RSA_BITS", "1024");
        },
    },
    Case {
        name: "unsafe SUPAKEYS_KID",
        initialised: false,
        code: 2,
        message: "SUPAKEYS_KID: must be 1-128 characters",
        prepare: |t| {
            t.env("SUPAKEYS_KID", "2024-01-01T00:00:00Z");
        },
    },
    Case {
        name: "bad SUPAKEYS_LEGACY_API_KEYS",
        initialised: false,
        code: 2,
        message: "SUPAKEYS_LEGACY_API_KEYS: must be keep or resign",
        prepare: |t| {
            t.env("SUPAKEYS_LEGACY_API_KEYS", "drop");
        },
    },
    Case {
        name: "bad SUPAKEYS_TOKEN_TTL",
        initialised: false,
        code: 2,
        message: "SUPAKEYS_TOKEN_TTL",
        prepare: |t| {
            t.env("SUPAKEYS_TOKEN_TTL", "forever");
        },
    },
    Case {
        name: "JWT_KEYS not JSON",
        initialised: false,
        code: 2,
        message: "JWT_KEYS: is not valid JSON",
        prepare: |t| {
            t.env("JWT_KEYS", "[{not json");
        },
    },
    Case {
        name: "JWT_KEYS as an object",
        initialised: false,
        code: 2,
        message: "JWT_KEYS: must be a JSON array",
        prepare: |t| {
            t.env("JWT_KEYS", r#"{"keys":[]}"#);
        },
    },
    Case {
        name: "JWT_KEYS with two signing keys",
        initialised: false,
        code: 2,
        message: "has 2 keys with \"sign\"",
        prepare: |t| {
            t.env(
                "JWT_KEYS",
                &json!([signer_jwk("a"), signer_jwk("b")]).to_string(),
            );
        },
    },
    Case {
        name: "JWT_KEYS key with a foreign public part",
        initialised: false,
        code: 2,
        message: "key 0: its public members x/y",
        prepare: |t| {
            let mut jwk = signer_jwk("a");
            jwk["x"] = signer_jwk("b")["x"].clone();
            t.env("JWT_KEYS", &json!([jwk]).to_string());
        },
    },
    Case {
        name: "bad opaque key",
        initialised: false,
        code: 2,
        message: "SUPABASE_SECRET_KEY: does not start with sb_secret_",
        prepare: |t| {
            t.env(
                "SUPABASE_SECRET_KEY",
                "sb_publishable_abcdefghijklmnopqrstuv_1234",
            );
        },
    },
    Case {
        name: "bad JWT_ISSUER",
        initialised: false,
        code: 2,
        message: "JWT_ISSUER: must start with http",
        prepare: |t| {
            t.env("JWT_ISSUER", "example.com/auth/v1");
        },
    },
    Case {
        name: "missing kong template",
        initialised: false,
        code: 2,
        message: "cannot be read",
        prepare: |t| {
            t.env("SUPAKEYS_KONG_TEMPLATE", "/nonexistent/kong.yml");
        },
    },
    Case {
        name: "kong template not YAML",
        initialised: false,
        code: 2,
        message: "is not valid YAML",
        prepare: |t| {
            let path = t.scratch().join("kong.yml");
            std::fs::write(&path, "services: [\n").unwrap();
            t.env("SUPAKEYS_KONG_TEMPLATE", &path.display().to_string());
        },
    },
    Case {
        name: "kong template with an unknown placeholder",
        initialised: false,
        code: 2,
        message: "uses $SOMETHING_ELSE",
        prepare: |t| {
            let path = t.scratch().join("kong.yml");
            std::fs::write(
                &path,
                "_format_version: '2.1'\nconsumers:\n  - username: $SOMETHING_ELSE\n",
            )
            .unwrap();
            t.env("SUPAKEYS_KONG_TEMPLATE", &path.display().to_string());
        },
    },
    Case {
        name: "SUPAKEYS_KONG_ENV names a secret",
        initialised: false,
        code: 2,
        message: "SUPAKEYS_KONG_ENV: names JWT_SECRET, a variable supakeys reads itself",
        prepare: |t| {
            t.env("SUPAKEYS_KONG_ENV", "KONG_STORAGE_READ_TIMEOUT, JWT_SECRET");
        },
    },
    Case {
        name: "SUPAKEYS_KONG_ENV names a placeholder",
        initialised: false,
        code: 2,
        message: "names DASHBOARD_PASSWORD, a placeholder supakeys fills in itself",
        prepare: |t| {
            t.env("SUPAKEYS_KONG_ENV", "DASHBOARD_PASSWORD");
        },
    },
    Case {
        name: "SUPAKEYS_KONG_ENV with an empty name",
        initialised: false,
        code: 2,
        message: "SUPAKEYS_KONG_ENV: has an empty name",
        prepare: |t| {
            t.env("SUPAKEYS_KONG_ENV", "KONG_A,,KONG_B");
        },
    },
    Case {
        name: "SUPAKEYS_KONG_ENV with a bad name",
        initialised: false,
        code: 2,
        message: "names \"9LIVES\", which is not a variable name",
        prepare: |t| {
            t.env("SUPAKEYS_KONG_ENV", "9LIVES");
        },
    },
    Case {
        name: "a SUPAKEYS_KONG_ENV value with $",
        initialised: false,
        code: 2,
        message: "KONG_STORAGE_READ_TIMEOUT: contains '$'",
        prepare: |t| {
            t.env("SUPAKEYS_KONG_ENV", "KONG_STORAGE_READ_TIMEOUT")
                .env("KONG_STORAGE_READ_TIMEOUT", "$SUPABASE_SECRET_KEY");
        },
    },
    Case {
        name: "dashboard password unset",
        initialised: false,
        code: 2,
        message: "uses $DASHBOARD_PASSWORD but DASHBOARD_PASSWORD is not set",
        prepare: |t| {
            t.unset("DASHBOARD_PASSWORD");
        },
    },
    Case {
        name: "missing directory",
        initialised: false,
        code: 4,
        message: "does not exist or is not a directory",
        prepare: |t| {
            let missing = t.dir.join("missing").display().to_string();
            t.env("SUPAKEYS_DIR", &missing);
        },
    },
    Case {
        name: "unreadable env file",
        initialised: false,
        code: 2,
        message: "cannot read the env file",
        prepare: |t| {
            t.env("SUPAKEYS_ENV_FILE", "/nonexistent/.env");
        },
    },
    Case {
        name: "malformed env file",
        initialised: false,
        code: 2,
        message: ".env:2: the variable name contains a space",
        prepare: |t| {
            let path = t.scratch().join(".env");
            std::fs::write(&path, "A=1\nthis is not a variable\n").unwrap();
            t.env("SUPAKEYS_ENV_FILE", &path.display().to_string());
        },
    },
    Case {
        name: "truncated state.json",
        initialised: true,
        code: 3,
        message: "state.json cannot be trusted: not valid JSON",
        prepare: |t| {
            let state = t.read("state.json");
            std::fs::write(t.dir.join("state.json"), &state[..state.len() / 2]).unwrap();
        },
    },
    Case {
        name: "tampered private key in state.json",
        initialised: true,
        code: 3,
        message: "public members x/y do not belong",
        prepare: |t| {
            t.edit_state(|s| {
                s["keys"][0]["jwk"]["d"] = signer_jwk("x")["d"].clone();
            })
        },
    },
    Case {
        name: "state.json without a current key",
        initialised: true,
        code: 3,
        message: "0 keys have status \"current\"",
        prepare: |t| {
            t.edit_state(|s| {
                s["keys"] = json!([]);
            })
        },
    },
    Case {
        name: "state.json from a newer supakeys",
        initialised: true,
        code: 3,
        message: "It was written by supakeys 9.1.0: use that version or a newer one",
        prepare: |t| {
            t.edit_state(|s| {
                s["version"] = json!(4);
                s["written_by"] = json!("9.1.0");
            })
        },
    },
    Case {
        name: "state.json with an unknown field",
        initialised: true,
        code: 3,
        message: "unexpected structure",
        prepare: |t| {
            t.edit_state(|s| {
                s["surprise"] = json!(1);
            })
        },
    },
    Case {
        name: "symlinked output file",
        initialised: true,
        code: 4,
        message: "kong.yml is a symlink, not a regular file",
        prepare: |t| {
            std::fs::remove_file(t.dir.join("kong.yml")).unwrap();
            std::os::unix::fs::symlink("/etc/hostname", t.dir.join("kong.yml")).unwrap();
        },
    },
];

fn secrets_of(t: &Test) -> Vec<String> {
    let mut secrets = vec![SECRET.to_owned(), PASSWORD.to_owned()];
    if let Ok(text) = std::fs::read_to_string(t.dir.join("state.json"))
        && let Ok(state) = serde_json::from_str::<serde_json::Value>(&text)
    {
        if let Some(d) = state["keys"][0]["jwk"]["d"].as_str() {
            secrets.push(d.to_owned());
        }
        if let Some(s) = state["secret_key"].as_str() {
            secrets.push(s.to_owned());
        }
    }
    secrets
}

#[test]
fn every_bad_input_fails_clearly_and_changes_nothing() {
    for case in CASES {
        let mut t = Test::new();
        t.env("SUPAKEYS_LOG_LEVEL", "trace");
        if case.initialised {
            t.run().success();
        }
        (case.prepare)(&mut t);
        let before = t.snapshot();
        let secrets = secrets_of(&t);
        let out = t.run();
        assert_eq!(
            out.code, case.code,
            "{}: stderr:\n{}",
            case.name, out.stderr
        );
        assert!(
            out.stderr.contains(case.message),
            "{}: expected {:?} in:\n{}",
            case.name,
            case.message,
            out.stderr
        );
        assert_eq!(t.snapshot(), before, "{}: the directory changed", case.name);
        for secret in secrets {
            assert!(
                !out.stderr.contains(&secret),
                "{}: a secret reached the log",
                case.name
            );
        }
        for token in ["ANON_KEY", "SERVICE_ROLE_KEY", "JWT_KEYS"] {
            let given = t
                .command()
                .get_envs()
                .find(|(k, _)| *k == token)
                .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()));
            if let Some(value) = given.filter(|v| v.len() > 20) {
                assert!(
                    !out.stderr.contains(&value),
                    "{}: {token} reached the log",
                    case.name
                );
            }
        }
    }
}

/// A directory the process may not write to. CI runs as root, which ignores permission
/// bits, so the binary is then started as `nobody` through setpriv.
#[test]
fn unwritable_directory_is_an_io_error() {
    let t = Test::new();
    std::fs::set_permissions(t.scratch(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&t.dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let mut cmd = t.command();
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap();
    if root {
        let inner = cmd;
        cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(inner.get_program())
            .env_clear()
            .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("cannot create"), "{stderr}");
    assert!(t.snapshot().is_empty());
}

#[test]
fn lock_timeout_when_another_run_holds_the_lock() {
    let mut t = Test::new();
    t.env("SUPAKEYS_LOCK_TIMEOUT", "1");
    let dir = std::fs::File::open(&t.dir).unwrap();
    dir.lock().unwrap();
    t.run().fails_with(5, "held the lock");
    dir.unlock().unwrap();
    t.run().success();
}
