//! Regression tests for the failure classes of issue 10, named after what broke. The
//! bad-input cases that only need an exit code and a message are in `errors.rs` and in the
//! evidence harness (`tests/evidence/hostile.py`); these need more than one run, a closed
//! pipe, a non-UTF-8 value, or a look at the warnings of a successful run.

use crate::support::*;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

fn output(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn anon(t: &Test) -> String {
    t.var("supabase.env", "ANON_KEY_ASYMMETRIC")
}

// Class 1: minted API tokens were never renewed; after their exp every service refused
// them and `init` repaired nothing.

#[test]
fn expired_minted_tokens_are_renewed_by_init() {
    let mut t = Test::new();
    t.env("SUPAKEYS_TOKEN_TTL", "2");
    t.run().success();
    let kid = t.kid();
    std::thread::sleep(std::time::Duration::from_millis(2200));
    t.clone_args(&["check"]).run().fails_with(6, "expired on");
    t.unset("SUPAKEYS_TOKEN_TTL");
    let out = t.run();
    out.success();
    assert!(
        out.stderr
            .contains("renewed the minted API tokens (they expired)"),
        "{}",
        out.stderr
    );
    let exp = claims(&anon(&t))["exp"].as_i64().unwrap();
    assert!((exp - (now() + 5 * 365 * 86_400)).abs() < 60, "{exp}");
    assert_eq!(t.kid(), kid, "the keypair stays");
    assert!(verifies(&anon(&t), &t.json("jwks.json")));
    t.clone_args(&["check"]).run().success();
    // The renewed tokens are stable: a rerun writes nothing.
    let before = t.snapshot();
    t.run().success();
    assert_eq!(t.snapshot(), before);
}

#[test]
fn minted_tokens_are_renewed_in_the_last_fifth_of_their_lifetime() {
    let t = Test::new();
    t.run().success();
    let ttl = 5 * 365 * 86_400;
    // Three years old: two fifths are left, nothing to renew.
    let iat = now() - 3 * 365 * 86_400;
    t.edit_state(|s| s["minted"] = json!({"iat": iat, "exp": iat + ttl}));
    let out = t.run();
    out.success();
    assert!(!out.stderr.contains("renewed"), "{}", out.stderr);
    assert_eq!(claims(&anon(&t))["iat"], json!(iat));
    let report: Value = serde_json::from_str(
        &t.clone_args(&["keys", "list", "--format", "json"])
            .run()
            .stdout,
    )
    .unwrap();
    assert_eq!(report["api_tokens"]["source"], "minted");
    assert_eq!(report["api_tokens"]["renewal_due"], false);
    assert!(report["api_tokens"]["renew_from"].is_string(), "{report}");
    let table = t.clone_args(&["keys", "list"]).run();
    assert!(
        table.stdout.contains("renews them from"),
        "{}",
        table.stdout
    );

    // Four years and a day old: less than a fifth (one year) is left.
    let iat = now() - 4 * 365 * 86_400 - 86_400;
    t.edit_state(|s| s["minted"] = json!({"iat": iat, "exp": iat + ttl}));
    let out = t.run();
    out.success();
    assert!(
        out.stderr.contains(
            "renewed the minted API tokens (less than a fifth of their lifetime was left)"
        ),
        "{}",
        out.stderr
    );
    assert!(claims(&anon(&t))["iat"].as_i64().unwrap() >= now() - 60);
}

#[test]
fn keys_list_says_when_renewal_is_due() {
    let mut t = Test::new();
    // A lifetime of 5 s is renewed from its fourth second on.
    t.env("SUPAKEYS_TOKEN_TTL", "5");
    t.run().success();
    std::thread::sleep(std::time::Duration::from_millis(4200));
    let out = t.clone_args(&["keys", "list"]).run();
    out.success();
    assert!(out.stdout.contains("renewal due"), "{}", out.stdout);
    let report: Value = serde_json::from_str(
        &t.clone_args(&["keys", "list", "--format", "json"])
            .run()
            .stdout,
    )
    .unwrap();
    assert_eq!(report["api_tokens"]["renewal_due"], true);
}

#[test]
fn rotate_now_never_resigns_an_expired_minted_payload() {
    let t = Test::new();
    t.run().success();
    t.edit_state(|s| {
        s["minted"] = json!({"iat": now() - 6 * 365 * 86_400, "exp": now() - 10});
    });
    t.clone_args(&["keys", "rotate", "--now"]).run().success();
    let claims = claims(&anon(&t));
    assert!(
        claims["exp"].as_i64().unwrap() > now() + 4 * 365 * 86_400,
        "{claims}"
    );
    assert!(verifies(&anon(&t), &t.json("jwks.json")));
}

#[test]
fn a_changed_token_ttl_applies_to_minted_tokens_and_reruns_are_stable() {
    let mut t = Test::new();
    t.run().success();
    t.env("SUPAKEYS_TOKEN_TTL", "90d");
    let out = t.run();
    out.success();
    assert!(
        out.stderr.contains("SUPAKEYS_TOKEN_TTL differs"),
        "{}",
        out.stderr
    );
    let c = claims(&anon(&t));
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        90 * 86_400
    );
    let before = t.snapshot();
    t.run().success();
    assert_eq!(t.snapshot(), before);
}

#[test]
fn legacy_payloads_keep_their_own_exp() {
    let mut t = Test::with_legacy_keys();
    t.run().success();
    let legacy_exp = claims(&t.var("supabase.env", "ANON_KEY"))["exp"].clone();
    t.env("SUPAKEYS_TOKEN_TTL", "90d");
    let out = t.run();
    out.success();
    assert!(
        out.stderr.contains("SUPAKEYS_TOKEN_TTL does not apply"),
        "{}",
        out.stderr
    );
    assert_eq!(claims(&anon(&t))["exp"], legacy_exp);
    let report: Value = serde_json::from_str(
        &t.clone_args(&["keys", "list", "--format", "json"])
            .run()
            .stdout,
    )
    .unwrap();
    assert_eq!(report["api_tokens"]["source"], "legacy keys re-signed");
}

// Class 2: a closed stderr (a log reader that went away) aborted the run.

/// A pipe whose read end is closed: every write to it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

#[test]
fn a_closed_stderr_never_stops_a_run() {
    let t = Test::new();
    for args in [
        &["init"][..],
        &["init"],
        &["check"],
        &["keys", "list"],
        &["print-env"],
        &["keys", "standby"],
    ] {
        let mut cmd = t.command();
        cmd.args(args)
            .env("SUPAKEYS_LOG_LEVEL", "trace")
            .stderr(closed_pipe())
            .stdout(Stdio::null());
        let status = cmd.status().unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {status}");
    }
    assert_eq!(t.json("state.json")["keys"].as_array().unwrap().len(), 2);
}

#[test]
fn a_closed_stdout_is_an_error_with_a_code_not_an_abort() {
    let t = Test::new();
    t.run().success();
    for args in [&["print-env"][..], &["keys", "list"]] {
        let mut cmd = t.command();
        cmd.args(args).stdout(closed_pipe());
        let out = output(cmd);
        assert_eq!(out.code, 4, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("cannot write to standard output"),
            "{}",
            out.stderr
        );
        // Both closed: still a clean exit code.
        let mut cmd = t.command();
        cmd.args(args).stdout(closed_pipe()).stderr(closed_pipe());
        assert_eq!(cmd.status().unwrap().code(), Some(4), "{args:?}");
    }
    // The reload hint of a transition is not worth failing a committed change for.
    let mut cmd = t.command();
    cmd.args(["keys", "standby"]).stdout(closed_pipe());
    let out = output(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("the files are written"),
        "{}",
        out.stderr
    );
}

// Class 6: a value that is not UTF-8 counted as unset (JWT_KEYS ignored: a new keypair).

#[test]
fn non_utf8_values_are_bad_input_naming_their_variable_or_flag() {
    let bad = OsStr::from_bytes(b"abc\xff");
    for (name, first_run) in [
        ("JWT_KEYS", true),
        ("SUPABASE_SECRET_KEY", false),
        ("JWT_SECRET", true),
        ("ANON_KEY", true),
        ("DASHBOARD_PASSWORD", true),
        ("SUPAKEYS_DIR", true),
        ("SUPAKEYS_ALG", true),
        ("SUPAKEYS_KONG_TEMPLATE", true),
        ("SUPAKEYS_ENV_FILE", true),
    ] {
        let t = Test::new();
        if !first_run {
            t.run().success();
        }
        let before = t.snapshot();
        let mut cmd = t.command();
        cmd.env(name, bad);
        let out = output(cmd);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("{name}: is not valid UTF-8")),
            "{name}: {}",
            out.stderr
        );
        assert_eq!(t.snapshot(), before, "{name}: the directory changed");
    }
    let t = Test::new();
    for (args, name) in [
        (vec![OsStr::new("--dir"), bad], "--dir"),
        (vec![OsStr::new("--alg"), bad], "--alg"),
        (vec![OsStr::new("--kong-template"), bad], "--kong-template"),
        (
            vec![OsStr::new("keys"), OsStr::new("revoke"), bad],
            "KID (the argument of keys revoke)",
        ),
        (
            vec![
                OsStr::new("keys"),
                OsStr::new("list"),
                OsStr::new("--format"),
                bad,
            ],
            "--format",
        ),
    ] {
        let mut cmd = t.command();
        cmd.args(&args);
        let out = output(cmd);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("{name}: is not valid UTF-8")),
            "{}",
            out.stderr
        );
    }
    assert!(t.snapshot().is_empty());
}

#[test]
fn a_non_utf8_line_of_the_env_file_is_named() {
    let mut t = Test::new();
    let path = t.scratch().join("x.env");
    std::fs::write(&path, b"A=1\nB=caf\xe9\n").unwrap();
    t.env("SUPAKEYS_ENV_FILE", &path.display().to_string());
    t.run()
        .fails_with(2, "x.env:2: this line is not valid UTF-8");
}

// Class 10: messages that named the wrong thing or nothing useful.

#[test]
fn a_bad_flag_value_names_the_flag_and_an_env_file_value_names_the_file() {
    let mut t = Test::new();
    t.args(&["--alg", "ES265"]);
    let out = t.run();
    out.fails_with(2, "--alg: must be ES256 or RS256");
    assert!(!out.stderr.contains("SUPAKEYS_ALG"), "{}", out.stderr);
    let path = t.scratch().join("s.env");
    std::fs::write(&path, "SUPAKEYS_ALG=ES265\n").unwrap();
    t.args(&["--env-file", &path.display().to_string()]);
    t.run()
        .fails_with(2, &format!("SUPAKEYS_ALG (in {}): must be", path.display()));
    t.args(&[]).env("SUPAKEYS_RSA_BITS", "4096 ");
    t.run().fails_with(
        2,
        "SUPAKEYS_RSA_BITS: must be 2048, 3072 or 4096 (the value ends with a space)",
    );
}

#[test]
fn keys_revoke_blames_its_argument_not_supakeys_kid() {
    let mut t = Test::new();
    t.env("SUPAKEYS_KID", "first");
    t.run().success();
    t.args(&["keys", "revoke", "bad kid"]);
    let out = t.run();
    out.fails_with(2, "KID (the argument of keys revoke): contains a space");
    assert!(!out.stderr.contains("SUPAKEYS_KID"), "{}", out.stderr);
    t.args(&["keys", "revoke", "unknown"]);
    t.run().fails_with(2, "no key has kid unknown");
}

#[test]
fn an_env_file_with_a_byte_order_mark_is_read_with_a_warning() {
    let mut t = Test::new();
    t.unset("JWT_SECRET");
    let path = t.scratch().join("bom.env");
    std::fs::write(&path, format!("\u{feff}JWT_SECRET={SECRET}\n")).unwrap();
    t.env("SUPAKEYS_ENV_FILE", &path.display().to_string());
    let out = t.run();
    out.success();
    assert!(out.stderr.contains("byte order mark"), "{}", out.stderr);
}

#[test]
fn whitespace_around_a_pasted_key_is_dropped_with_a_warning() {
    for suffix in ["\n", " ", "\r\n", "\t"] {
        let mut t = Test::new();
        let key = legacy_key("anon");
        t.env("ANON_KEY", &format!("{key}{suffix}"))
            .env("SERVICE_ROLE_KEY", &legacy_key("service_role"));
        let out = t.run();
        out.success();
        assert!(out.stderr.contains("ANON_KEY ends with"), "{}", out.stderr);
        assert_eq!(t.var("storage.env", "ANON_KEY"), key);
    }
    // Inside a key, whitespace is an error that says so.
    let mut t = Test::new();
    let key = legacy_key("anon");
    let (a, b) = key.split_at(20);
    t.env("ANON_KEY", &format!("{a}\n{b}"))
        .env("SERVICE_ROLE_KEY", &legacy_key("service_role"));
    t.run().fails_with(2, "ANON_KEY: contains a newline");
}

// Class 8: legacy tokens with valid but unusual NumericDates.

fn legacy_pair(t: &mut Test, anon_claims: Value) {
    t.env("ANON_KEY", &hs256(anon_claims, SECRET))
        .env("SERVICE_ROLE_KEY", &legacy_key("service_role"));
}

#[test]
fn fractional_and_exponent_exp_claims_are_accepted() {
    for exp in [json!(1.9e9), json!(1_900_000_000.5), json!(4e9)] {
        let mut t = Test::new();
        legacy_pair(
            &mut t,
            json!({"role": "anon", "iss": "supabase", "iat": 1, "exp": exp}),
        );
        t.run().success();
        assert_eq!(
            claims(&anon(&t))["exp"],
            exp,
            "the payload is re-signed as it is"
        );
        t.clone_args(&["check"]).run().success();
    }
}

#[test]
fn a_future_nbf_or_iat_is_warned_about() {
    let mut t = Test::new();
    legacy_pair(
        &mut t,
        json!({"role": "anon", "iss": "supabase", "iat": now() + 86_400, "nbf": now() + 86_400, "exp": now() + 999_999}),
    );
    let out = t.run();
    out.success();
    assert!(
        out.stderr.contains("ANON_KEY is not valid before its nbf"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("ANON_KEY was issued in the future"),
        "{}",
        out.stderr
    );
    for (claim, value, message) in [
        ("exp", json!("soon"), "exp claim that is not a number"),
        ("nbf", json!("now"), "nbf claim that is not a number"),
        ("exp", json!(3e11), "after the year 9999"),
    ] {
        let mut t = Test::new();
        let mut c = json!({"role": "anon", "iss": "supabase", "iat": 1, "exp": now() + 9999});
        c[claim] = value;
        legacy_pair(&mut t, c);
        t.run().fails_with(2, message);
    }
}

// Class 11: settings an existing state cannot apply were silently ignored.

#[test]
fn settings_for_new_keys_on_an_existing_state_are_explained() {
    let mut t = Test::new();
    t.run().success();
    let kid = t.kid();
    t.env("SUPAKEYS_ALG", "RS256")
        .env("SUPAKEYS_KID", "another")
        .env("SUPAKEYS_RSA_BITS", "4096");
    let before = t.snapshot();
    let out = t.run();
    out.success();
    for needle in [
        "SUPAKEYS_ALG=RS256 applies to newly generated keys only",
        "keys standby --alg RS256",
        &format!("SUPAKEYS_KID=another names a newly generated key only; the current key is {kid}"),
    ] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
    assert_eq!(t.snapshot(), before);
    // Given as flags, they are named as flags.
    t.unset("SUPAKEYS_ALG").args(&["--alg", "RS256"]);
    let out = t.run();
    assert!(out.stderr.contains("--alg=RS256 applies"), "{}", out.stderr);
    // keys standby is where they apply: no warning there.
    t.args(&["keys", "standby", "--kid", "standby1"]);
    let out = t.run();
    out.success();
    assert!(
        !out.stderr.contains("applies to newly generated"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_rsa_size_differing_from_the_current_key_is_explained() {
    let mut t = Test::new();
    t.env("SUPAKEYS_ALG", "RS256");
    t.run().success();
    t.env("SUPAKEYS_RSA_BITS", "3072");
    let out = t.run();
    out.success();
    assert!(
        out.stderr
            .contains("SUPAKEYS_RSA_BITS=3072 applies to newly generated keys only")
            && out.stderr.contains("has 2048 bits"),
        "{}",
        out.stderr
    );
}

// Class 4: a root run left root-owned files in a directory that belongs to another uid.

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The command run as `uid` through setpriv (the suite runs as root in CI).
fn as_uid(t: &Test, uid: u32) -> Command {
    let inner = t.command();
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear()
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    cmd
}

#[test]
fn a_root_run_gives_the_files_to_the_directory_owner() {
    use std::os::unix::fs::MetadataExt;
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Test::new();
    std::fs::set_permissions(
        t.scratch(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::chown(&t.dir, Some(1000), Some(1000)).unwrap();
    t.run().success();
    let foreign: Vec<_> = std::fs::read_dir(&t.dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let m = e.metadata().unwrap();
            (m.uid(), m.gid()) != (1000, 1000)
        })
        .map(|e| e.file_name())
        .collect();
    assert!(foreign.is_empty(), "not owned by 1000:1000: {foreign:?}");
    // Afterwards the directory's owner runs it without changes, and check passes.
    let before = t.snapshot();
    let out = output(as_uid(&t, 1000));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(t.snapshot(), before);
    let mut check = as_uid(&t, 1000);
    check.arg("check");
    assert_eq!(output(check).code, 0);

    // A file left by an older root run is reported by check, and repaired by either run.
    std::os::unix::fs::chown(t.dir.join("auth.env"), Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(t.dir.join("jwks.json"), Some(0), Some(0)).unwrap();
    let c = t.clone_args(&["check"]);
    c.run()
        .fails_with(6, "auth.env belongs to uid 0, the directory to uid 1000");
    let out = output(as_uid(&t, 1000));
    assert_eq!(
        out.code, 4,
        "uid 1000 cannot read a root 0600 file: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("it belongs to uid 0 and this run is uid 1000"),
        "{}",
        out.stderr
    );
    let out = t.run();
    out.success();
    assert!(
        out.stderr.contains("owner_fixed=auth.env,jwks.json"),
        "{}",
        out.stderr
    );
    c.run().success();
}

#[test]
fn a_run_that_cannot_match_the_directory_owner_says_so() {
    use std::os::unix::fs::PermissionsExt;
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Test::new();
    std::fs::set_permissions(t.scratch(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&t.dir, Some(1001), Some(1001)).unwrap();
    std::fs::set_permissions(&t.dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = output(as_uid(&t, 1000));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the directory belongs to uid 1001 but this run is uid 1000"),
        "{}",
        out.stderr
    );
    t.clone_args(&["check"]).run().fails_with(
        6,
        "state.json belongs to uid 1000, the directory to uid 1001",
    );
}

/// In a root-owned directory the owners are the operator's arrangement (say, files given
/// to GoTrue's uid by hand): a root run keeps them, also on the files it rewrites.
#[test]
fn a_root_run_in_a_root_directory_keeps_the_owners_it_finds() {
    use std::os::unix::fs::MetadataExt;
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut t = Test::new();
    t.run().success();
    for entry in std::fs::read_dir(&t.dir).unwrap() {
        std::os::unix::fs::chown(entry.unwrap().path(), Some(1000), Some(1000)).unwrap();
    }
    t.env(
        "JWT_SECRET",
        "another-secret-that-is-also-at-least-32-characters",
    );
    let out = t.run();
    out.success();
    assert!(!out.stderr.contains("belongs to uid"), "{}", out.stderr);
    for entry in std::fs::read_dir(&t.dir).unwrap() {
        let entry = entry.unwrap();
        let m = entry.metadata().unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1000), "{:?}", entry.file_name());
    }
    t.clone_args(&["check"]).run().success();
}

// Class 5: a mode fix-up after the renames could fail the run after files were replaced.

#[test]
fn a_foreign_file_with_a_wrong_mode_is_replaced_not_chmodded() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut t = Test::new();
    std::fs::set_permissions(t.scratch(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&t.dir, Some(1000), Some(1000)).unwrap();
    t.run().success();
    // An older root run left jwks.json root-owned with a wrong (but readable) mode, and the
    // secret changed: uid 1000 cannot chmod that file, but may replace it.
    let jwks = t.dir.join("jwks.json");
    std::os::unix::fs::chown(&jwks, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&jwks, std::fs::Permissions::from_mode(0o604)).unwrap();
    t.env(
        "JWT_SECRET",
        "another-secret-that-is-also-at-least-32-characters",
    );
    let out = output(as_uid(&t, 1000));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let m = std::fs::metadata(&jwks).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (1000, 0o644));
}

impl Test {
    /// A copy of this test's environment running `args` (the keys directory is shared).
    fn clone_args(&self, args: &[&str]) -> ArgsRun<'_> {
        ArgsRun {
            test: self,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// Runs the test's binary with other arguments (same environment and directory).
struct ArgsRun<'a> {
    test: &'a Test,
    args: Vec<String>,
}

impl ArgsRun<'_> {
    fn run(&self) -> Output {
        let mut cmd = self.test.command();
        cmd.args(&self.args);
        output(cmd)
    }
}
