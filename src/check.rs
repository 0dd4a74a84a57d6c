//! `supakeys check`: verifies a store (the keys directory, or the Kubernetes Secrets)
//! offline and lists every problem.

use crate::config::{Config, LegacyHs256};
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
    let now = crate::clock::now();
    state::warn_about_clock(now, Some(&state));
    let mut problems = store.inspect()?;
    problems.extend(check_hs256_mode(store, &state)?);
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
    problems.extend(check_tokens(store, now)?);
    Ok(problems)
}

/// `jwt_jwks.json` holds the HS256 key exactly while the state records HS256 as accepted.
fn check_hs256_mode(store: &dyn Store, state: &state::State) -> Result<Vec<String>> {
    let Some(in_files) = store
        .read("jwt_jwks.json")?
        .and_then(|bytes| state::hs256_mode_of_jwt_jwks(&bytes))
        .map(|mode| mode == LegacyHs256::Accept)
    else {
        return Ok(Vec::new());
    };
    let recorded = state.legacy_hs256.mode == LegacyHs256::Accept;
    if in_files == recorded {
        return Ok(Vec::new());
    }
    Ok(vec![format!(
        "state.json records legacy HS256 as {} {}, but jwt_jwks.json {} the HS256 key; run `supakeys init` to bring the files in line",
        if recorded { "accepted" } else { "rejected" },
        state::since(state.legacy_hs256.changed_at),
        if in_files { "holds" } else { "lacks" },
    )])
}

/// Every API token in the env files must verify against `jwt_jwks.json`.
fn check_tokens(store: &dyn Store, now: i64) -> Result<Vec<String>> {
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
        if let Err(why) = verify(token, &set, now) {
            problems.push(format!(
                "{variable} in {file} does not verify against jwt_jwks.json: {why}"
            ));
        }
    }
    Ok(problems)
}

fn verify(token: &str, set: &JwkSet, now: i64) -> std::result::Result<(), String> {
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
    match claims.get("exp").and_then(serde_json::Value::as_f64) {
        None => return Err("it has no numeric exp claim".into()),
        Some(exp) if exp <= now as f64 => {
            return Err(format!(
                "it expired on {} (run `supakeys init`: it renews minted tokens)",
                crate::clock::date(exp as i64)
            ));
        }
        Some(_) => {}
    }
    match crate::jwt::not_yet_valid(&claims, now) {
        Some((claim, at)) => Err(format!(
            "its {claim} is {}, ahead of this clock: PostgREST refuses it until then (run `supakeys init`: it re-mints minted tokens issued in the future; legacy keys issued in the future must be issued again)",
            crate::clock::date(at)
        )),
        None => Ok(()),
    }
}
