//! The pure heart of supakeys: from the configuration and the state, the exact bytes of
//! every file in the keys directory. Nothing here touches the disk.

use crate::config::{ApiKeyMode, Config, LegacyHs256};
use crate::envfile;
use crate::error::Result;
use crate::jwk::oct_jwk;
use crate::jwt::{self, Role};
use crate::kong;
use crate::state::{self, State};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// Mode of files holding private keys or secret API keys.
pub const PRIVATE: u32 = 0o600;
/// Mode of files with public keys or with keys every client holds anyway.
pub const PUBLIC: u32 = 0o644;

/// One file as it must be on disk.
pub struct PlannedFile {
    pub name: &'static str,
    pub mode: u32,
    pub bytes: Zeroizing<Vec<u8>>,
}

/// The API tokens of this run.
struct Tokens {
    anon_asymmetric: String,
    service_asymmetric: String,
    /// What services use as ANON_KEY / SERVICE_ROLE_KEY, per the mode.
    anon: String,
    service: String,
    /// The keys clients hold, which the gateway accepts (Envoy's ANON_KEY / SERVICE_ROLE_KEY):
    /// the legacy keys while HS256 is accepted, else the asymmetric tokens.
    gateway_anon: String,
    gateway_service: String,
}

fn tokens(config: &Config, state: &State) -> Tokens {
    let key = state.current();
    let asymmetric = |role: Role| {
        let payload = match config.legacy.key(role) {
            // The legacy payload is re-signed byte for byte: same claims, same expiry.
            Some(legacy) => legacy.payload_b64.clone(),
            None => jwt::minted_payload(role, state.minted.iat, state.minted.exp),
        };
        jwt::sign(key, &payload)
    };
    let anon_asymmetric = asymmetric(Role::Anon);
    let service_asymmetric = asymmetric(Role::ServiceRole);
    let hs256 = state.legacy_hs256.mode;
    let effective =
        |role: Role, asymmetric: &String| match (config.mode, hs256, config.legacy.key(role)) {
            (ApiKeyMode::Keep, LegacyHs256::Accept, Some(legacy)) => {
                legacy.token.expose().to_owned()
            }
            _ => asymmetric.clone(),
        };
    let gateway = |role: Role, asymmetric: &String| match (hs256, config.legacy.key(role)) {
        (LegacyHs256::Accept, Some(legacy)) => legacy.token.expose().to_owned(),
        _ => asymmetric.clone(),
    };
    Tokens {
        anon: effective(Role::Anon, &anon_asymmetric),
        service: effective(Role::ServiceRole, &service_asymmetric),
        gateway_anon: gateway(Role::Anon, &anon_asymmetric),
        gateway_service: gateway(Role::ServiceRole, &service_asymmetric),
        anon_asymmetric,
        service_asymmetric,
    }
}

fn json_line(value: &Value) -> Zeroizing<Vec<u8>> {
    let mut bytes = serde_json::to_vec(value).expect("JSON serializes");
    bytes.push(b'\n');
    Zeroizing::new(bytes)
}

/// The legacy HS256 secret in a `jwt_jwks.json` that [`plan`] wrote: its oct key is there
/// exactly while legacy HS256 is accepted, which is how `keys list` and `doctor` read the
/// mode of a directory. `None` when HS256 is rejected (or the file is not of that shape).
pub fn legacy_hs256_secret(jwt_jwks: &Value) -> Option<crate::secret::Secret> {
    jwt_jwks
        .get("keys")?
        .as_array()?
        .iter()
        .find(|k| k["kty"] == "oct")?
        .get("k")?
        .as_str()
        .and_then(crate::jwk::unb64)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(crate::secret::Secret::new)
}

/// `vars` followed by `extra`, when there is one.
fn with_extra<'a>(
    vars: &[(&'static str, &'a str)],
    extra: Option<(&'static str, &'a str)>,
) -> Vec<(&'static str, &'a str)> {
    vars.iter().copied().chain(extra).collect()
}

/// Every file of the keys directory, `state.json` first (it is the commit point: once it
/// is written, a crash before the others are leaves a state the next run completes).
pub fn plan(config: &Config, state: &State) -> Result<Vec<PlannedFile>> {
    let key = state.current();
    let verifiers = state.verifiers();
    // With legacy HS256 rejected, the oct key leaves every key set and HS256 the methods.
    let oct = match state.legacy_hs256.mode {
        LegacyHs256::Accept => Some(oct_jwk(config.legacy.secret.expose())),
        LegacyHs256::Reject => None,
    };
    let public: Vec<Value> = verifiers.iter().map(|k| k.public_jwk()).collect();
    let jwks = json!({ "keys": public });
    let jwt_jwks = json!({ "keys": public.iter().chain(&oct).collect::<Vec<_>>() });
    let gotrue_keys: Vec<Value> = verifiers
        .iter()
        .map(|k| {
            if k.kid() == key.kid() {
                k.private_jwk()
            } else {
                k.private_verify_jwk()
            }
        })
        .chain(oct.clone())
        .collect();
    let gotrue_keys = Zeroizing::new(Value::Array(gotrue_keys).to_string());
    let mut methods: Vec<&str> = Vec::new();
    for k in &verifiers {
        let alg = k.algorithm().as_str();
        if !methods.contains(&alg) {
            methods.push(alg);
        }
    }
    if oct.is_some() {
        methods.push("HS256");
    }
    let valid_methods = methods.join(",");
    let jwks_text = jwks.to_string();
    let jwt_jwks_text = jwt_jwks.to_string();
    let t = tokens(config, state);
    let publishable = state.publishable_key.expose();
    let secret = state.secret_key.expose();
    // Newer function code reads the opaque keys as named maps (`default` is the one key).
    let publishable_map = json!({ "default": publishable }).to_string();
    let secret_map = Zeroizing::new(json!({ "default": secret }).to_string());
    // Kong keeps accepting the key clients hold where services were given another one (the
    // legacy key next to its re-signed form, in resign mode while HS256 is accepted).
    let kong_values = kong::Values {
        anon_key: &t.anon,
        service_key: &t.service,
        publishable_key: publishable,
        secret_key: secret,
        anon_asymmetric: &t.anon_asymmetric,
        service_asymmetric: &t.service_asymmetric,
        extra_anon: (t.gateway_anon != t.anon).then_some(t.gateway_anon.as_str()),
        extra_service: (t.gateway_service != t.service).then_some(t.gateway_service.as_str()),
        dashboard_username: config.dashboard_username.as_deref(),
        dashboard_password: config.dashboard_password.as_ref().map(|p| p.expose()),
        jwt_issuer: config.jwt_issuer.as_deref(),
    };
    let kong = match &config.kong {
        Some(template) => Some(template.render(&kong_values)?),
        None => None,
    };
    // Where a service verifies kid-less HS256 tokens with a raw secret, rejecting legacy
    // HS256 means giving it a secret nobody else holds (see `State::internal_jwt_secret`).
    let internal = match state.legacy_hs256.mode {
        LegacyHs256::Accept => None,
        LegacyHs256::Reject => Some(state.internal_jwt_secret.expose()),
    };

    let env = |name: &'static str, mode: u32, comment: &str, vars: &[(&str, &str)]| PlannedFile {
        name,
        mode,
        bytes: envfile::render(comment, vars),
    };
    let mut files = vec![
        PlannedFile {
            name: state::FILE,
            mode: PRIVATE,
            bytes: state.to_bytes(),
        },
        env(
            "auth.env",
            PRIVATE,
            "Written by supakeys for auth (GoTrue: auth --config this file). Holds the private signing key.",
            &[
                ("GOTRUE_JWT_KEYS", &gotrue_keys),
                ("GOTRUE_JWT_VALID_METHODS", &valid_methods),
                ("GOTRUE_JWT_VALIDMETHODS", &valid_methods),
            ],
        ),
        PlannedFile {
            name: "jwks.json",
            mode: PUBLIC,
            bytes: json_line(&jwks),
        },
        PlannedFile {
            name: "jwt_jwks.json",
            mode: PUBLIC,
            bytes: json_line(&jwt_jwks),
        },
        env(
            "realtime.env",
            PUBLIC,
            "Written by supakeys for realtime.",
            &with_extra(
                &[("API_JWT_JWKS", &jwt_jwks_text)],
                internal.map(|s| ("API_JWT_SECRET", s)),
            ),
        ),
        env(
            "storage.env",
            PUBLIC,
            "Written by supakeys for storage.",
            &with_extra(
                &[
                    ("JWT_JWKS", &jwt_jwks_text),
                    ("ANON_KEY", &t.anon),
                    ("SERVICE_KEY", &t.service),
                ],
                internal.map(|s| ("AUTH_JWT_SECRET", s)),
            ),
        ),
        env(
            "functions.env",
            PUBLIC,
            "Written by supakeys for functions (edge-runtime).",
            &with_extra(
                &[
                    ("SUPABASE_JWKS", &jwks_text),
                    ("SUPABASE_ANON_KEY", &t.anon),
                    ("SUPABASE_SERVICE_ROLE_KEY", &t.service),
                    ("SUPABASE_PUBLISHABLE_KEY", publishable),
                    ("SUPABASE_SECRET_KEY", secret),
                    ("SUPABASE_PUBLISHABLE_KEYS", &publishable_map),
                    ("SUPABASE_SECRET_KEYS", &secret_map),
                ],
                internal.map(|s| ("JWT_SECRET", s)),
            ),
        ),
        env(
            "studio.env",
            PUBLIC,
            "Written by supakeys for studio.",
            &[
                ("SUPABASE_ANON_KEY", &t.anon),
                ("SUPABASE_SERVICE_KEY", &t.service),
                ("SUPABASE_PUBLISHABLE_KEY", publishable),
                ("SUPABASE_SECRET_KEY", secret),
            ],
        ),
        env(
            "supabase.env",
            PRIVATE,
            "Written by supakeys: every generated value under upstream Supabase's names.",
            &[
                ("JWT_KEYS", &gotrue_keys),
                ("JWT_JWKS", &jwt_jwks_text),
                ("ANON_KEY_ASYMMETRIC", &t.anon_asymmetric),
                ("SERVICE_ROLE_KEY_ASYMMETRIC", &t.service_asymmetric),
                ("SUPABASE_PUBLISHABLE_KEY", publishable),
                ("SUPABASE_SECRET_KEY", secret),
                ("ANON_KEY", &t.anon),
                ("SERVICE_ROLE_KEY", &t.service),
            ],
        ),
        env(
            "gateway.env",
            PUBLIC,
            "Written by supakeys for the API gateway (api-gw: Envoy's entrypoint reads these names).",
            &[
                ("ANON_KEY", &t.gateway_anon),
                ("SERVICE_ROLE_KEY", &t.gateway_service),
                ("SUPABASE_PUBLISHABLE_KEY", publishable),
                ("SUPABASE_SECRET_KEY", secret),
                ("ANON_KEY_ASYMMETRIC", &t.anon_asymmetric),
                ("SERVICE_ROLE_KEY_ASYMMETRIC", &t.service_asymmetric),
            ],
        ),
    ];
    if let Some(kong) = kong {
        files.push(PlannedFile {
            name: KONG_FILE,
            mode: PUBLIC,
            bytes: Zeroizing::new(kong.into_bytes()),
        });
    }
    Ok(files)
}

/// Which service reads which file, and how it picks up a change.
pub const READERS: [(&str, &str, &str); 8] = [
    ("auth.env", "auth", "docker compose restart auth"),
    (
        "jwt_jwks.json",
        "rest",
        "psql -c \"NOTIFY pgrst, 'reload config'\" (or restart rest)",
    ),
    (
        "realtime.env",
        "realtime",
        "docker compose restart realtime",
    ),
    ("storage.env", "storage", "docker compose restart storage"),
    (
        "functions.env",
        "functions",
        "docker compose restart functions",
    ),
    ("studio.env", "studio", "docker compose restart studio"),
    ("gateway.env", "api-gw", "docker compose restart api-gw"),
    ("kong.yml", "api-gw", "docker compose restart api-gw"),
];

/// The Kong declarative config, written only when a kong template is configured.
pub const KONG_FILE: &str = "kong.yml";

/// Every managed file with its mode, in the order [`plan`] returns them (`kong.yml` only
/// with a kong template).
pub const FILES: [(&str, u32); 11] = [
    (state::FILE, PRIVATE),
    ("auth.env", PRIVATE),
    ("jwks.json", PUBLIC),
    ("jwt_jwks.json", PUBLIC),
    ("realtime.env", PUBLIC),
    ("storage.env", PUBLIC),
    ("functions.env", PUBLIC),
    ("studio.env", PUBLIC),
    ("supabase.env", PRIVATE),
    ("gateway.env", PUBLIC),
    (KONG_FILE, PUBLIC),
];
