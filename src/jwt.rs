//! Compact JWTs: signing API tokens with a [`SigningKey`] and reading the legacy HS256 keys.

use crate::jwk::{SigningKey, b64, unb64};
use serde_json::{Value, json};

/// The API roles supakeys issues tokens for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Anon,
    ServiceRole,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Anon => "anon",
            Role::ServiceRole => "service_role",
        }
    }
}

/// The base64url payload of a freshly minted API token: `{role, iss, iat, exp}`.
pub fn minted_payload(role: Role, iat: i64, exp: i64) -> String {
    let claims = json!({"role": role.as_str(), "iss": "supabase", "iat": iat, "exp": exp});
    b64(claims.to_string().as_bytes())
}

/// Signs an already encoded payload. The header is `{"alg","typ":"JWT","kid"}`: Realtime wants
/// `typ`, PostgREST, Realtime and supabase-js pick the key by `kid`.
pub fn sign(key: &SigningKey, payload_b64: &str) -> String {
    let header = json!({"alg": key.algorithm().as_str(), "typ": "JWT", "kid": key.kid().as_str()});
    let signing_input = format!("{}.{payload_b64}", b64(header.to_string().as_bytes()));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{signature}")
}

/// A JWT split into its three segments, with header and payload parsed.
pub struct Parsed<'a> {
    pub header: Value,
    pub payload: Value,
    pub header_b64: &'a str,
    pub payload_b64: &'a str,
    pub signature_b64: &'a str,
}

/// Why a string is not a usable JWT. Never contains any part of the token.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseProblem {
    NotThreeSegments,
    NotBase64,
    NotJsonObject,
}

impl ParseProblem {
    pub fn describe(&self) -> &'static str {
        match self {
            ParseProblem::NotThreeSegments => "is not a JWT (three dot-separated segments)",
            ParseProblem::NotBase64 => "has a segment that is not base64url",
            ParseProblem::NotJsonObject => "has a header or payload that is not a JSON object",
        }
    }
}

pub fn parse(token: &str) -> Result<Parsed<'_>, ParseProblem> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseProblem::NotThreeSegments);
    };
    let object = |segment: &str| -> Result<Value, ParseProblem> {
        let bytes = unb64(segment).ok_or(ParseProblem::NotBase64)?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|_| ParseProblem::NotJsonObject)?;
        value
            .is_object()
            .then_some(value)
            .ok_or(ParseProblem::NotJsonObject)
    };
    if unb64(s).is_none() {
        return Err(ParseProblem::NotBase64);
    }
    Ok(Parsed {
        header: object(h)?,
        payload: object(p)?,
        header_b64: h,
        payload_b64: p,
        signature_b64: s,
    })
}

/// True when the HS256 signature of `parsed` verifies with `secret` (jsonwebtoken's HMAC).
pub fn hs256_verifies(parsed: &Parsed<'_>, secret: &str) -> bool {
    let Ok(key) = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()) else {
        return false;
    };
    let message = format!("{}.{}", parsed.header_b64, parsed.payload_b64);
    jsonwebtoken::crypto::verify(
        parsed.signature_b64,
        message.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap_or(false)
}

/// How far ahead of a verifier's clock a token's `iat` may lie: PostgREST's
/// `allowedSkewSeconds` (PostgREST/postgrest, src/PostgREST/Auth.hs), beyond which it refuses
/// the token with "JWT issued at future".
pub const IAT_LEEWAY_SECS: i64 = 30;

/// Why a token is not valid yet at `now`, and from when it is: an `iat` more than
/// [`IAT_LEEWAY_SECS`] ahead (PostgREST refuses it until then), or an `nbf` ahead (verifiers
/// differ in the leeway they allow; some allow none). `None` when it is valid now, or says
/// neither. The one test of "issued in the future", wherever supakeys judges it.
pub fn not_yet_valid(payload: &Value, now: i64) -> Option<(&'static str, i64)> {
    issued_in_future(payload, now)
        .map(|iat| ("iat", iat))
        .or_else(|| not_before(payload, now).map(|nbf| ("nbf", nbf)))
}

/// The `iat` of `payload`, in whole seconds, when it lies more than [`IAT_LEEWAY_SECS`]
/// ahead of `now`.
pub fn issued_in_future(payload: &Value, now: i64) -> Option<i64> {
    numeric(payload, "iat")
        .filter(|iat| *iat > (now + IAT_LEEWAY_SECS) as f64)
        .map(|iat| iat.floor() as i64)
}

/// The `nbf` of `payload`, in whole seconds, when it lies ahead of `now`.
pub fn not_before(payload: &Value, now: i64) -> Option<i64> {
    numeric(payload, "nbf")
        .filter(|nbf| *nbf > now as f64)
        .map(|nbf| nbf.floor() as i64)
}

fn numeric(payload: &Value, claim: &str) -> Option<f64> {
    payload
        .get(claim)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::{KeySpec, Kid};

    #[test]
    fn minted_token_has_the_contract_header_and_claims() {
        let key = SigningKey::generate(KeySpec::Es256, Kid::parse("k").unwrap()).unwrap();
        let token = sign(&key, &minted_payload(Role::Anon, 100, 200));
        let parsed = parse(&token).unwrap();
        assert_eq!(parsed.header, json!({"alg":"ES256","typ":"JWT","kid":"k"}));
        assert_eq!(
            parsed.payload,
            json!({"role":"anon","iss":"supabase","iat":100,"exp":200})
        );
    }

    #[test]
    fn parse_rejects_malformed_tokens() {
        assert_eq!(parse("a.b").err(), Some(ParseProblem::NotThreeSegments));
        assert_eq!(parse("a.b.c.d").err(), Some(ParseProblem::NotThreeSegments));
        assert_eq!(parse("!!.e30.e30").err(), Some(ParseProblem::NotBase64));
        // "W10" is `[]`: JSON, but not an object.
        assert_eq!(parse("W10.e30.AA").err(), Some(ParseProblem::NotJsonObject));
    }

    #[test]
    fn a_token_issued_beyond_the_leeway_is_not_valid_yet() {
        let now = 1_800_000_000;
        let at = |iat: f64| not_yet_valid(&json!({ "iat": iat }), now);
        assert_eq!(at((now + 30) as f64), None, "PostgREST allows 30 s");
        assert_eq!(at((now + 31) as f64), Some(("iat", now + 31)));
        assert_eq!(at(now as f64 + 30.5), Some(("iat", now + 30)));
        assert_eq!(
            not_yet_valid(&json!({ "nbf": now + 1 }), now),
            Some(("nbf", now + 1))
        );
        assert_eq!(not_yet_valid(&json!({ "iat": "soon" }), now), None);
        assert_eq!(not_yet_valid(&json!({}), now), None);
    }
}
