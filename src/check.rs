//! `supakeys check`: verifies a store (the keys directory, or the Kubernetes Secrets)
//! offline and lists every problem.

use crate::config::Config;
use crate::envfile::DotEnv;
use crate::error::{Error, Result};
use crate::render;
use crate::state;
use crate::store::Store;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};

/// Env-file variables that hold API tokens, checked against `jwt_jwks.json`.
const TOKENS: [(&str, &str); 6] = [
    ("storage.env", "ANON_KEY"),
    ("storage.env", "SERVICE_KEY"),
    ("studio.env", "SUPABASE_ANON_KEY"),
    ("studio.env", "SUPABASE_SERVICE_KEY"),
    ("supabase.env", "ANON_KEY_ASYMMETRIC"),
    ("supabase.env", "SERVICE_ROLE_KEY_ASYMMETRIC"),
];

/// Checks the store. With a `config` (JWT_SECRET available), every file is also compared
/// with what `init` would write now. Returns the problems found, each one sentence.
pub fn check(store: &dyn Store, config: Option<&Config>) -> Result<Vec<String>> {
    let state = store.state()?.ok_or(Error::NoState {
        path: store.path_of(state::FILE),
    })?;
    let mut problems = store.inspect()?;
    if let Some(config) = config {
        let (expected, _) = state::reconcile(Some(state), config)?;
        for file in render::plan(config, &expected)? {
            if let Some(actual) = store.read(file.name)?
                && actual[..] != file.bytes[..]
            {
                problems.push(format!(
                    "{} differs from what init would write now (inputs changed, or the file was edited)",
                    file.name
                ));
            }
        }
    } else {
        tracing::info!("JWT_SECRET is not set: skipping the comparison with what init would write");
    }
    problems.extend(check_tokens(store)?);
    Ok(problems)
}

/// Every API token in the env files must verify against `jwt_jwks.json`.
fn check_tokens(store: &dyn Store) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let Some(jwks) = store.read("jwt_jwks.json")? else {
        return Ok(problems);
    };
    let Ok(set) = serde_json::from_slice::<JwkSet>(&jwks) else {
        problems.push("jwt_jwks.json is not a JWKS object".into());
        return Ok(problems);
    };
    for (file, variable) in TOKENS {
        let Some(bytes) = store.read(file)? else {
            continue;
        };
        let Ok(env) = DotEnv::parse(&String::from_utf8_lossy(&bytes)) else {
            problems.push(format!("{file} is not a valid env file"));
            continue;
        };
        let Some(token) = env.get(variable) else {
            problems.push(format!("{file} has no {variable}"));
            continue;
        };
        if let Err(why) = verify(token, &set) {
            problems.push(format!(
                "{variable} in {file} does not verify against jwt_jwks.json: {why}"
            ));
        }
    }
    Ok(problems)
}

fn verify(token: &str, set: &JwkSet) -> std::result::Result<(), String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let jwk = match &header.kid {
        Some(kid) => set.find(kid).ok_or("no key with its kid")?,
        None => set
            .keys
            .iter()
            .find(|k| {
                matches!(
                    k.algorithm,
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
                )
            })
            .ok_or("it has no kid and there is no HS256 key")?,
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    // RFC 7519 NumericDates may be fractional (jsonwebtoken reads integers only): the
    // expiry is compared here as a number.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    match claims.get("exp").and_then(serde_json::Value::as_f64) {
        None => Err("it has no numeric exp claim".into()),
        Some(exp) if exp <= now => Err(format!(
            "it expired on {} (run `supakeys init`: it renews minted tokens)",
            crate::clock::date(exp as i64)
        )),
        Some(_) => Ok(()),
    }
}
