//! Validation of the inherited HS256 material: `JWT_SECRET`, `ANON_KEY`, `SERVICE_ROLE_KEY`.
//!
//! Template generators have shipped broken keys (no `role`, both keys identical, signed with
//! another secret); each fails here with a message naming the variable, before any file
//! is touched.

use crate::clock::date;
use crate::error::{Error, Result};
use crate::jwt::{self, Role};
use crate::secret::Secret;

/// PostgREST >= 13 refuses shorter secrets.
pub const MIN_SECRET_CHARS: usize = 32;
/// A legacy key expiring within this many seconds gets a warning.
pub const EXPIRY_WARNING_SECS: i64 = 30 * 24 * 3600;

/// A validated legacy API key.
#[derive(Debug)]
pub struct LegacyKey {
    pub role: Role,
    pub token: Secret,
    /// The payload segment exactly as it was, re-signed with the new key.
    pub payload_b64: String,
}

/// The validated legacy inputs.
#[derive(Debug)]
pub struct Legacy {
    pub secret: Secret,
    /// Both legacy keys, or neither.
    pub keys: Option<[LegacyKey; 2]>,
}

impl Legacy {
    pub fn key(&self, role: Role) -> Option<&LegacyKey> {
        self.keys.as_ref()?.iter().find(|k| k.role == role)
    }
}

fn variable(role: Role) -> &'static str {
    match role {
        Role::Anon => "ANON_KEY",
        Role::ServiceRole => "SERVICE_ROLE_KEY",
    }
}

const SAME_ENV: &str = "Copy it from the same Supabase .env as JWT_SECRET (both keys must be \
                        HS256 JWTs signed with JWT_SECRET), or unset both ANON_KEY and \
                        SERVICE_ROLE_KEY to have supakeys mint new API tokens.";

/// Validates `JWT_SECRET` and the optional legacy keys at time `now` (unix seconds).
pub fn validate(
    secret: Option<Secret>,
    anon: Option<Secret>,
    service: Option<Secret>,
    now: i64,
) -> Result<Legacy> {
    let secret = secret.ok_or(Error::MissingInput {
        name: "JWT_SECRET",
        fix: "Set it to the JWT_SECRET of your Supabase .env (at least 32 characters), or pass \
              that file with --env-file.",
    })?;
    let chars = secret.expose().chars().count();
    if chars < MIN_SECRET_CHARS {
        return Err(Error::invalid(
            "JWT_SECRET",
            format!(
                "is {chars} characters long; at least {MIN_SECRET_CHARS} are required (PostgREST refuses shorter secrets)"
            ),
            "Use a longer random secret, e.g. `openssl rand -base64 48`, and regenerate ANON_KEY and SERVICE_ROLE_KEY with it.",
        ));
    }
    let keys = match (anon, service) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(Error::MissingInput {
                name: "SERVICE_ROLE_KEY",
                fix: "ANON_KEY is set: set SERVICE_ROLE_KEY from the same .env too, or unset both.",
            });
        }
        (None, Some(_)) => {
            return Err(Error::MissingInput {
                name: "ANON_KEY",
                fix: "SERVICE_ROLE_KEY is set: set ANON_KEY from the same .env too, or unset both.",
            });
        }
        (Some(anon), Some(service)) => {
            if anon == service {
                return Err(Error::invalid(
                    "SERVICE_ROLE_KEY",
                    "is identical to ANON_KEY (a known template-generator bug)",
                    "Generate two distinct keys, one with role anon and one with role service_role.",
                ));
            }
            Some([
                check_key(Role::Anon, anon, &secret, now)?,
                check_key(Role::ServiceRole, service, &secret, now)?,
            ])
        }
    };
    Ok(Legacy { secret, keys })
}

/// A NumericDate claim (RFC 7519 section 2: a JSON number, fractions allowed): `Ok(None)`
/// when absent, `Err` with a description when it is not a number.
fn numeric_date(
    payload: &serde_json::Value,
    claim: &str,
) -> std::result::Result<Option<f64>, String> {
    match payload.get(claim) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| {
                format!("has a {claim} claim that is not a number (RFC 7519 NumericDate)")
            }),
    }
}

/// A NumericDate as whole seconds, for messages.
fn whole(secs: f64) -> i64 {
    secs.floor() as i64
}

fn check_key(role: Role, token: Secret, secret: &Secret, now: i64) -> Result<LegacyKey> {
    let name = variable(role);
    let bad = |problem: String| Error::invalid(name, problem, SAME_ENV);
    if let Some(ws) = crate::error::stray_whitespace(token.expose()) {
        return Err(bad(format!(
            "{ws}; a JWT has none (copy the key again, in one piece)"
        )));
    }
    let parsed = jwt::parse(token.expose()).map_err(|p| bad(p.describe().into()))?;
    let alg = parsed.header.get("alg").and_then(|a| a.as_str());
    if alg != Some("HS256") {
        return Err(Error::invalid(
            name,
            format!(
                "has header alg {}, not HS256",
                shown(parsed.header.get("alg"))
            ),
            "Give the legacy HS256 key here; supakeys makes the asymmetric one itself.",
        ));
    }
    if !jwt::hs256_verifies(&parsed, secret.expose()) {
        let hint = match crate::error::stray_whitespace(secret.expose()) {
            Some(ws) if secret.expose().trim() != secret.expose() => {
                format!(" (JWT_SECRET {ws}, which is part of the secret)")
            }
            _ => String::new(),
        };
        return Err(bad(format!(
            "its signature does not verify with JWT_SECRET{hint}"
        )));
    }
    let claim_role = parsed.payload.get("role").and_then(|r| r.as_str());
    if claim_role != Some(role.as_str()) {
        return Err(bad(format!(
            "has role {}, expected \"{}\"",
            shown(parsed.payload.get("role")),
            role.as_str()
        )));
    }
    // Compared as numbers: `1.9e9` and `1900000000.5` are valid NumericDates.
    let exp = numeric_date(&parsed.payload, "exp")
        .map_err(bad)?
        .ok_or_else(|| bad("has no numeric exp claim".into()))?;
    let now_f = now as f64;
    if exp <= now_f {
        return Err(Error::invalid(
            name,
            format!("expired on {}", date(whole(exp))),
            "Generate new legacy keys with JWT_SECRET (or unset both keys to have supakeys mint new tokens).",
        ));
    }
    if exp > crate::clock::MAX_TIME as f64 {
        return Err(bad(
            "has an exp after the year 9999, which verifiers cannot represent".into(),
        ));
    }
    if exp - now_f < EXPIRY_WARNING_SECS as f64 {
        tracing::warn!(variable = name, expires = %date(whole(exp)), "legacy API key expires within 30 days; generate new keys soon");
    }
    numeric_date(&parsed.payload, "nbf").map_err(bad)?;
    numeric_date(&parsed.payload, "iat").map_err(bad)?;
    // The re-signed token carries the same claims: one not valid yet stays invalid. Only its
    // issuer can give a new one, so this is a warning (and `check` reports it).
    if let Some(nbf) = jwt::not_before(&parsed.payload, now) {
        tracing::warn!(
            variable = name,
            not_before = %date(nbf),
            "{name} is not valid before its nbf; the re-signed asymmetric token inherits it, so services refuse both until then"
        );
    }
    if let Some(iat) = jwt::issued_in_future(&parsed.payload, now) {
        tracing::warn!(
            variable = name,
            issued_at = %date(iat),
            "{name} was issued in the future (its iat; a clock was wrong?); the re-signed token inherits it, and PostgREST refuses both (\"JWT issued at future\") until then. Issue new legacy keys with a right clock"
        );
    }
    let payload_b64 = parsed.payload_b64.to_owned();
    Ok(LegacyKey {
        role,
        token,
        payload_b64,
    })
}

/// A claim value for an error message: short, and only when it is a plain word.
fn shown(value: Option<&serde_json::Value>) -> String {
    match value {
        None => "(missing)".into(),
        Some(serde_json::Value::String(s))
            if s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            format!("\"{s}\"")
        }
        Some(_) => "(not a short word)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::b64;
    use serde_json::json;

    const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
    const NOW: i64 = 1_800_000_000;

    fn hs256(payload: serde_json::Value, secret: &str) -> Secret {
        let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = b64(payload.to_string().as_bytes());
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap();
        let msg = format!("{header}.{body}");
        let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .unwrap();
        Secret::new(format!("{msg}.{sig}"))
    }

    fn key(role: &str, exp: i64) -> Secret {
        hs256(
            json!({"role": role, "iss": "supabase", "iat": 0, "exp": exp}),
            SECRET,
        )
    }

    fn run(anon: Option<Secret>, service: Option<Secret>) -> Result<Legacy> {
        validate(Some(Secret::new(SECRET)), anon, service, NOW)
    }

    fn message(r: Result<Legacy>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn accepts_valid_keys_and_keeps_payload_bytes() {
        let anon = key("anon", NOW + 1000 * 86_400);
        let legacy = run(
            Some(anon.clone()),
            Some(key("service_role", NOW + 1_000_000_000)),
        )
        .unwrap();
        let k = legacy.key(Role::Anon).unwrap();
        assert_eq!(anon.expose().split('.').nth(1).unwrap(), k.payload_b64);
    }

    #[test]
    fn missing_and_short_secret() {
        assert!(message(validate(None, None, None, NOW)).starts_with("JWT_SECRET is not set"));
        let short = validate(Some(Secret::new("short")), None, None, NOW);
        assert!(message(short).contains("5 characters"));
    }

    #[test]
    fn each_bad_key_names_its_variable_and_never_echoes_it() {
        let good_service = || Some(key("service_role", NOW + 99_999));
        let cases: Vec<(Secret, &str)> = vec![
            (Secret::new("not-a-jwt"), "three dot-separated"),
            (
                hs256(
                    json!({"role":"anon","exp":NOW+99}),
                    "another-secret-of-at-least-32-chars!!",
                ),
                "does not verify",
            ),
            (key("service", NOW + 99), "expected \"anon\""),
            (key("anon", NOW - 1), "expired on"),
            (hs256(json!({"role":"anon"}), SECRET), "no numeric exp"),
        ];
        for (token, expected) in cases {
            let text = message(run(Some(token.clone()), good_service()));
            assert!(text.starts_with("ANON_KEY: "), "{text}");
            assert!(text.contains(expected), "{text} should contain {expected}");
            assert!(!text.contains(token.expose()));
            assert!(!text.contains(SECRET));
        }
    }

    #[test]
    fn identical_keys_are_refused() {
        let k = key("anon", NOW + 99);
        assert!(message(run(Some(k.clone()), Some(k))).contains("identical"));
    }

    #[test]
    fn one_key_without_the_other_is_refused() {
        assert!(
            message(run(Some(key("anon", NOW + 9)), None))
                .starts_with("SERVICE_ROLE_KEY is not set")
        );
    }
}
