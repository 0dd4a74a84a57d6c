//! A small builder to run the binary: `Test::new().env(..).run()`, then inspect the keys
//! directory.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

pub const SECRET: &str = "your-super-secret-jwt-token-with-at-least-32-characters-long";
pub const PASSWORD: &str = "this_password_is_insecure_and_should_be_updated";
/// The test kong template (every placeholder, shaped like upstream's `volumes/api/kong.yml`).
pub const KONG_TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kong.template.yml"
);

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An HS256 JWT signed with `secret`, header `{"alg":"HS256","typ":"JWT"}`.
pub fn hs256(payload: Value, secret: &str) -> String {
    let b64 = supakeys::jwk::b64;
    let msg = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(payload.to_string().as_bytes())
    );
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap();
    let sig =
        jsonwebtoken::crypto::sign(msg.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    format!("{msg}.{sig}")
}

/// A legacy API key like the ones in a Supabase `.env`.
pub fn legacy_key(role: &str) -> String {
    hs256(
        json!({"role": role, "iss": "supabase", "iat": now() - 100, "exp": now() + 10 * 365 * 86_400}),
        SECRET,
    )
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, 0, "stderr:\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn fails_with(&self, code: i32, message: &str) -> &Self {
        assert_eq!(self.code, code, "stderr:\n{}", self.stderr);
        assert!(
            self.stderr.contains(message),
            "stderr should contain {message:?}:\n{}",
            self.stderr
        );
        self
    }
}

pub struct Test {
    _temp: tempfile::TempDir,
    pub dir: PathBuf,
    env: BTreeMap<String, String>,
    args: Vec<String>,
}

impl Test {
    /// A test with an empty keys directory, JWT_SECRET, the dashboard credentials and the
    /// test kong template set.
    pub fn new() -> Test {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("keys");
        std::fs::create_dir(&dir).unwrap();
        let mut test = Test {
            _temp: temp,
            dir,
            env: BTreeMap::new(),
            args: Vec::new(),
        };
        let keys_dir = test.dir.display().to_string();
        test.env("SUPAKEYS_DIR", &keys_dir)
            .env("JWT_SECRET", SECRET)
            .env("DASHBOARD_USERNAME", "supabase")
            .env("DASHBOARD_PASSWORD", PASSWORD)
            .env("SUPAKEYS_KONG_TEMPLATE", KONG_TEMPLATE);
        test
    }

    /// The same as `new`, with the legacy API keys set.
    pub fn with_legacy_keys() -> Test {
        let mut test = Test::new();
        test.env("ANON_KEY", &legacy_key("anon"))
            .env("SERVICE_ROLE_KEY", &legacy_key("service_role"));
        test
    }

    pub fn env(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.into(), value.into());
        self
    }

    pub fn unset(&mut self, name: &str) -> &mut Self {
        self.env.remove(name);
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    pub fn scratch(&self) -> &Path {
        self._temp.path()
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_supakeys"));
        cmd.env_clear().envs(&self.env).args(&self.args);
        cmd
    }

    pub fn run(&self) -> Output {
        let out = self.command().output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }

    /// A variable of an env file in the keys directory.
    pub fn var(&self, file: &str, name: &str) -> String {
        let text = self.read(file);
        let prefix = format!("{name}='");
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{file} has no {name}"));
        line[prefix.len()..line.len() - 1].to_owned()
    }

    /// Rewrites `state.json` with `edit` applied (pretty JSON; supakeys' own layout is not needed).
    pub fn edit_state(&self, edit: impl FnOnce(&mut Value)) {
        let mut state = self.json("state.json");
        edit(&mut state);
        std::fs::write(
            self.dir.join("state.json"),
            serde_json::to_vec_pretty(&state).unwrap(),
        )
        .unwrap();
    }

    pub fn json(&self, name: &str) -> Value {
        serde_json::from_str(&self.read(name)).unwrap()
    }

    pub fn kid(&self) -> String {
        self.json("state.json")["keys"][0]["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Every entry of the keys directory: name -> (bytes, mode, mtime in ns).
    pub fn snapshot(&self) -> BTreeMap<String, (Vec<u8>, u32, i128)> {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                let bytes = if m.is_file() {
                    std::fs::read(e.path()).unwrap()
                } else {
                    Vec::new()
                };
                let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
                (
                    e.file_name().to_string_lossy().into_owned(),
                    (bytes, m.permissions().mode() & 0o7777, mtime),
                )
            })
            .collect()
    }
}

/// Verifies `token` against the keys of a JWKS file with jsonwebtoken.
pub fn verifies(token: &str, jwks: &Value) -> bool {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = match &header.kid {
        Some(kid) => set.find(kid),
        None => set.keys.iter().find(|k| {
            matches!(
                k.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
            )
        }),
    };
    let Some(jwk) = jwk else { return false };
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
}

/// The claims of a JWT, unverified.
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&supakeys::jwk::unb64(payload).unwrap()).unwrap()
}

pub fn header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&supakeys::jwk::unb64(header).unwrap()).unwrap()
}

/// Values for rendering kong templates in tests, with the given dashboard credentials.
pub fn kong_values<'a>(username: &'a str, password: &'a str) -> supakeys::kong::Values<'a> {
    supakeys::kong::Values {
        anon_key: "ANON",
        service_key: "SERVICE",
        publishable_key: "sb_publishable_P",
        secret_key: "sb_secret_S",
        anon_asymmetric: "ANON_ES",
        service_asymmetric: "SERVICE_ES",
        extra_anon: None,
        extra_service: None,
        dashboard_username: Some(username),
        dashboard_password: Some(password),
        jwt_issuer: None,
    }
}
