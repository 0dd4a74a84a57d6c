//! Signing keys (P-256 or RSA) and their JSON Web Key forms, in the exact shape the
//! Supabase services accept (see the README's output contract).
//!
//! Private material lives in [`SigningKey`], which never prints it: its `Debug` shows the
//! kid and algorithm only, and its buffers are wiped when dropped.

use crate::error::{Error, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::elliptic_curve::sec1::ToSec1Point;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use std::fmt;
use zeroize::Zeroizing;

/// Encodes bytes as unpadded base64url, the encoding of every JOSE member.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url; `None` on any other alphabet or padding.
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// The asymmetric algorithms supakeys signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Es256,
    Rs256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Algorithm::Es256),
            "RS256" => Some(Algorithm::Rs256),
            _ => None,
        }
    }

    fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

/// What to generate: the algorithm plus, for RSA, the modulus size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    Es256,
    Rs256 { bits: usize },
}

/// The RSA modulus sizes supakeys generates (all >= 2048, as the services require).
pub const RSA_BITS: [usize; 3] = [2048, 3072, 4096];

/// A key id: 1 to 128 characters of `A-Z a-z 0-9 . _ -`.
///
/// The set keeps kids safe inside env files, JSON, YAML and Lua strings, and excludes the
/// `:` of RFC 3339 timestamps, which PostgREST's JOSE library treats specially.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kid(String);

impl Kid {
    pub fn parse(text: &str) -> Option<Kid> {
        let ok = (1..=128).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| Kid(text.to_owned()))
    }

    /// A random UUID v4, the form upstream's tooling uses.
    pub fn random() -> Result<Kid> {
        let mut b = [0u8; 16];
        crate::fill_random(&mut b)?;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Ok(Kid(format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

enum Material {
    /// The P-256 scalar and its public point's x and y (computed once: a scalar
    /// multiplication costs as much as the rest of a no-op run).
    Ec(p256::SecretKey, [u8; 32], [u8; 32]),
    /// PKCS#1 DER of the RSA private key (the form jsonwebtoken signs with).
    Rsa(Zeroizing<Vec<u8>>),
}

/// A private signing key with its kid.
pub struct SigningKey {
    kid: Kid,
    material: Material,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// Why a JWK was refused. The text names members, never their values.
#[derive(Debug, PartialEq, Eq)]
pub struct JwkProblem(pub String);

fn problem(text: impl Into<String>) -> JwkProblem {
    JwkProblem(text.into())
}

/// A base64url member of a JWK, decoded.
fn member(jwk: &Value, name: &str) -> Result<Zeroizing<Vec<u8>>, JwkProblem> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| problem(format!("member \"{name}\" is missing or not a string")))?;
    let bytes = unb64(text)
        .ok_or_else(|| problem(format!("member \"{name}\" is not unpadded base64url")))?;
    Ok(Zeroizing::new(bytes))
}

/// Left-pads a big-endian integer to exactly 32 bytes (P-256 members must be 32 bytes).
fn fixed32(bytes: &[u8], name: &str) -> Result<[u8; 32], JwkProblem> {
    let significant = bytes.iter().skip_while(|b| **b == 0).count();
    if significant > 32 {
        return Err(problem(format!(
            "member \"{name}\" is longer than 32 bytes"
        )));
    }
    let mut out = [0u8; 32];
    out[32 - significant..].copy_from_slice(&bytes[bytes.len() - significant..]);
    Ok(out)
}

fn rsa_err(_: impl fmt::Debug) -> JwkProblem {
    problem("the RSA members do not form a valid RSA private key")
}

impl SigningKey {
    /// Generates a new key with the operating system's randomness.
    pub fn generate(spec: KeySpec, kid: Kid) -> Result<SigningKey> {
        let mut rng = getrandom::SysRng;
        let random_err = |e: getrandom::Error| Error::Randomness {
            source: e.to_string(),
        };
        let material = match spec {
            KeySpec::Es256 => {
                use p256::elliptic_curve::Generate;
                ec(p256::SecretKey::try_generate_from_rng(&mut rng).map_err(random_err)?)
            }
            KeySpec::Rs256 { bits } => {
                let key = rsa::PrivateKey::new(&mut rng, bits).map_err(|e| Error::Randomness {
                    source: format!("RSA key generation failed: {e}"),
                })?;
                Material::Rsa(pkcs1_der(&key))
            }
        };
        Ok(SigningKey { kid, material })
    }

    /// A P-256 key from its 32-byte scalar (used by tests and by JWK import).
    pub fn from_p256_scalar(kid: Kid, d: &[u8; 32]) -> Result<SigningKey, JwkProblem> {
        let secret = p256::SecretKey::from_bytes(d.into())
            .map_err(|_| problem("member \"d\" is not a valid P-256 private scalar"))?;
        Ok(SigningKey {
            kid,
            material: ec(secret),
        })
    }

    /// Imports a private JWK (upstream's `JWT_KEYS` member or a key from `state.json`),
    /// checking that the private part matches the public members it carries.
    pub fn from_private_jwk(jwk: &Value) -> Result<SigningKey, JwkProblem> {
        let kid_text = jwk
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| problem("the key has no \"kid\""))?;
        let kid = Kid::parse(kid_text)
            .ok_or_else(|| problem("its \"kid\" must be 1-128 characters of A-Z a-z 0-9 . _ -"))?;
        let kty = jwk.get("kty").and_then(Value::as_str);
        let alg = jwk.get("alg").and_then(Value::as_str);
        let key = match (kty, alg) {
            (Some("EC"), Some("ES256")) => {
                if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
                    return Err(problem("an ES256 key must have \"crv\":\"P-256\""));
                }
                let d = fixed32(&member(jwk, "d")?, "d")?;
                let key = SigningKey::from_p256_scalar(kid, &d)?;
                let x = fixed32(&member(jwk, "x")?, "x")?;
                let y = fixed32(&member(jwk, "y")?, "y")?;
                let (px, py) = key.ec_point().expect("an EC key has a point");
                if px != x || py != y {
                    return Err(problem("its public members x/y do not belong to its \"d\""));
                }
                key
            }
            (Some("RSA"), Some("RS256")) => {
                let names = ["n", "e", "d", "p", "q", "dp", "dq", "qi"];
                let mut m = Vec::with_capacity(names.len());
                for name in names {
                    m.push(member(jwk, name)?);
                }
                let uint = |i: usize| rsa::pkcs1::UintRef::new(&m[i]).map_err(rsa_err);
                let given = rsa::pkcs1::RsaPrivateKey {
                    modulus: uint(0)?,
                    public_exponent: uint(1)?,
                    private_exponent: uint(2)?,
                    prime1: uint(3)?,
                    prime2: uint(4)?,
                    exponent1: uint(5)?,
                    exponent2: uint(6)?,
                    coefficient: uint(7)?,
                    other_prime_infos: None,
                };
                let der = given.to_pkcs1_der().map_err(rsa_err)?;
                let parsed = rsa::PrivateKey::from_pkcs1_der(der.as_bytes()).map_err(rsa_err)?;
                parsed.validate().map_err(rsa_err)?;
                // The same sizes and exponent as the keys supakeys generates: a larger key
                // slows every run and every verifier, e=3 invites the known small-exponent
                // pitfalls, and a shorter key is refused by the services.
                let bits = parsed.n().bit_width() as usize;
                if !RSA_BITS.contains(&bits) {
                    return Err(problem(format!(
                        "its modulus has {bits} bits; supakeys accepts RSA keys of 2048, 3072 or 4096 bits"
                    )));
                }
                if parsed.e() != &rsa::BoxedUint::from(65_537u32) {
                    return Err(problem(
                        "its public exponent (\"e\") is not 65537, the exponent every RSA key should use",
                    ));
                }
                let key = SigningKey {
                    kid,
                    material: Material::Rsa(pkcs1_der(&parsed)),
                };
                // The CRT members are recomputed from the primes: they must agree with the
                // ones given, or a consumer using them would sign garbage.
                if key.private_jwk() != canonical_rsa(jwk) {
                    return Err(problem(
                        "its CRT members (dp, dq, qi) do not match its primes",
                    ));
                }
                key
            }
            (Some(kty), Some(alg)) => {
                return Err(problem(format!(
                    "kty \"{kty}\" with alg \"{alg}\" is not supported (use EC/ES256 with P-256 or RSA/RS256)"
                )));
            }
            _ => return Err(problem("the key needs string members \"kty\" and \"alg\"")),
        };
        Ok(key)
    }

    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            Material::Ec(..) => Algorithm::Es256,
            Material::Rsa(_) => Algorithm::Rs256,
        }
    }

    /// The RSA modulus size in bits, `None` for EC keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.material {
            Material::Ec(..) => None,
            Material::Rsa(der) => rsa::pkcs1::RsaPrivateKeyRef::try_from(der.as_slice())
                .ok()
                .map(|k| k.modulus.as_bytes().len() * 8),
        }
    }

    fn ec_point(&self) -> Option<([u8; 32], [u8; 32])> {
        match &self.material {
            Material::Ec(_, x, y) => Some((*x, *y)),
            Material::Rsa(_) => None,
        }
    }

    /// Public members in JWK order (`crv, x, y` or `n, e`).
    fn public_members(&self) -> Vec<(&'static str, String)> {
        match &self.material {
            Material::Ec(..) => {
                let (x, y) = self.ec_point().expect("EC key");
                vec![("crv", "P-256".into()), ("x", b64(&x)), ("y", b64(&y))]
            }
            Material::Rsa(der) => {
                let k = rsa::pkcs1::RsaPrivateKeyRef::try_from(der.as_slice())
                    .expect("stored PKCS#1 DER parses");
                vec![
                    ("n", b64(k.modulus.as_bytes())),
                    ("e", b64(k.public_exponent.as_bytes())),
                ]
            }
        }
    }

    fn jwk_with(&self, key_ops: &[&str], private: bool) -> Value {
        let mut jwk = serde_json::Map::new();
        jwk.insert("kty".into(), json!(self.kty()));
        jwk.insert("kid".into(), json!(self.kid.as_str()));
        jwk.insert("use".into(), json!("sig"));
        jwk.insert("key_ops".into(), json!(key_ops));
        jwk.insert("alg".into(), json!(self.algorithm().as_str()));
        jwk.insert("ext".into(), json!(true));
        for (name, value) in self.public_members() {
            jwk.insert(name.into(), json!(value));
        }
        if private {
            match &self.material {
                Material::Ec(secret, ..) => {
                    let d = Zeroizing::new(secret.to_bytes());
                    jwk.insert("d".into(), json!(b64(d.as_slice())));
                }
                Material::Rsa(der) => {
                    let k = rsa::pkcs1::RsaPrivateKeyRef::try_from(der.as_slice())
                        .expect("stored PKCS#1 DER parses");
                    for (name, value) in [
                        ("d", k.private_exponent),
                        ("p", k.prime1),
                        ("q", k.prime2),
                        ("dp", k.exponent1),
                        ("dq", k.exponent2),
                        ("qi", k.coefficient),
                    ] {
                        jwk.insert(name.into(), json!(b64(value.as_bytes())));
                    }
                }
            }
        }
        Value::Object(jwk)
    }

    fn kty(&self) -> &'static str {
        match self.material {
            Material::Ec(..) => "EC",
            Material::Rsa(_) => "RSA",
        }
    }

    /// The private JWK of the signing key, `key_ops: ["sign","verify"]` (GoTrue signs with
    /// the one key that has `sign`).
    pub fn private_jwk(&self) -> Value {
        self.jwk_with(&["sign", "verify"], true)
    }

    /// The private JWK of a key that verifies but must not sign (standby, previous):
    /// GoTrue signs only with the one key whose `key_ops` has `sign`.
    pub fn private_verify_jwk(&self) -> Value {
        self.jwk_with(&["verify"], true)
    }

    /// The public JWK, `key_ops: ["verify"]` (the only value WebCrypto accepts besides none).
    pub fn public_jwk(&self) -> Value {
        self.jwk_with(&["verify"], false)
    }

    /// Signs `message` and returns the base64url JWS signature (raw r||s for ES256).
    pub fn sign(&self, message: &[u8]) -> String {
        let key = match &self.material {
            Material::Ec(secret, ..) => {
                let der = secret
                    .to_pkcs8_der()
                    .expect("a valid P-256 key encodes as PKCS#8");
                jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes())
            }
            Material::Rsa(der) => jsonwebtoken::EncodingKey::from_rsa_der(der),
        };
        jsonwebtoken::crypto::sign(message, &key, self.algorithm().jsonwebtoken())
            .expect("signing with a validated key cannot fail")
    }
}

fn ec(secret: p256::SecretKey) -> Material {
    let point = secret.public_key().to_sec1_point(false);
    let mut x = [0u8; 32];
    let mut y = [0u8; 32];
    x.copy_from_slice(point.x().expect("uncompressed point has x"));
    y.copy_from_slice(point.y().expect("uncompressed point has y"));
    Material::Ec(secret, x, y)
}

fn pkcs1_der(key: &rsa::PrivateKey) -> Zeroizing<Vec<u8>> {
    let doc = key
        .to_pkcs1_der()
        .expect("a valid RSA key encodes as PKCS#1");
    Zeroizing::new(doc.as_bytes().to_vec())
}

/// The given RSA JWK rebuilt with supakeys' member set and order, for comparison.
fn canonical_rsa(jwk: &Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("kty".into(), json!("RSA"));
    out.insert("kid".into(), jwk["kid"].clone());
    out.insert("use".into(), json!("sig"));
    out.insert("key_ops".into(), json!(["sign", "verify"]));
    out.insert("alg".into(), json!("RS256"));
    out.insert("ext".into(), json!(true));
    for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
        // Members are compared as integers: drop leading zero bytes of the given form.
        let bytes = unb64(jwk[name].as_str().unwrap_or_default()).unwrap_or_default();
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        out.insert(name.into(), json!(b64(&bytes[start..])));
    }
    Value::Object(out)
}

/// The legacy HS256 secret as an `oct` JWK: no kid, no key_ops (it must never sign).
pub fn oct_jwk(secret: &str) -> Value {
    json!({"kty": "oct", "k": b64(secret.as_bytes()), "alg": "HS256"})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kid(s: &str) -> Kid {
        Kid::parse(s).unwrap()
    }

    #[test]
    fn kid_charset() {
        assert!(Kid::parse("0b8c6a3e-1f2d-4c5b-9a8e-7d6c5b4a3f21").is_some());
        assert!(Kid::parse("key_1.v2").is_some());
        assert!(Kid::parse("").is_none());
        assert!(Kid::parse("2024-01-01T00:00:00Z").is_none());
        assert!(Kid::parse("a'b").is_none());
        assert!(Kid::parse(&"a".repeat(129)).is_none());
    }

    #[test]
    fn random_kid_is_uuid_v4() {
        let k = Kid::random().unwrap();
        let s = k.as_str();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
    }

    /// GoTrue refuses P-256 members that are not exactly 32 bytes; about one key in 128 has a
    /// coordinate with a leading zero byte. Find one deterministically and check the padding.
    #[test]
    fn p256_coordinate_with_leading_zero_is_emitted_as_32_bytes() {
        let mut found = None;
        for i in 1u32..5000 {
            let mut d = [0u8; 32];
            d[28..].copy_from_slice(&i.to_be_bytes());
            let key = SigningKey::from_p256_scalar(kid("lz"), &d).unwrap();
            let (x, y) = key.ec_point().unwrap();
            if x[0] == 0 || y[0] == 0 {
                found = Some(key);
                break;
            }
        }
        let key = found.expect("a point with a leading zero byte among the first 5000 scalars");
        let jwk = key.private_jwk();
        for name in ["x", "y", "d"] {
            let bytes = unb64(jwk[name].as_str().unwrap()).unwrap();
            assert_eq!(bytes.len(), 32, "member {name}");
        }
        // d = small integer: many leading zero bytes, still 32.
        assert!(jwk["d"].as_str().unwrap().starts_with("AAAA"));
        let back = SigningKey::from_private_jwk(&jwk).unwrap();
        assert_eq!(back.public_jwk(), key.public_jwk());
    }

    #[test]
    fn ec_jwk_shape_matches_upstream() {
        let key = SigningKey::generate(KeySpec::Es256, kid("k1")).unwrap();
        let private = key.private_jwk();
        let names: Vec<_> = private.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            names,
            [
                "kty", "kid", "use", "key_ops", "alg", "ext", "crv", "x", "y", "d"
            ]
        );
        assert_eq!(private["key_ops"], json!(["sign", "verify"]));
        let public = key.public_jwk();
        assert!(public.get("d").is_none());
        assert_eq!(public["key_ops"], json!(["verify"]));
    }

    #[test]
    fn ec_import_rejects_mismatched_public_part() {
        let a = SigningKey::generate(KeySpec::Es256, kid("a")).unwrap();
        let b = SigningKey::generate(KeySpec::Es256, kid("a")).unwrap();
        let mut jwk = a.private_jwk();
        jwk["x"] = b.public_jwk()["x"].clone();
        let err = SigningKey::from_private_jwk(&jwk).unwrap_err();
        assert!(err.0.contains("x/y"), "{err:?}");
    }

    #[test]
    fn rsa_round_trip_and_crt_check() {
        let key = SigningKey::generate(KeySpec::Rs256 { bits: 2048 }, kid("r")).unwrap();
        assert_eq!(key.rsa_bits(), Some(2048));
        let jwk = key.private_jwk();
        let back = SigningKey::from_private_jwk(&jwk).unwrap();
        assert_eq!(back.private_jwk(), jwk);
        let mut bad = jwk.clone();
        bad["dp"] = jwk["dq"].clone();
        assert!(SigningKey::from_private_jwk(&bad).is_err());
        let mut missing = jwk;
        missing.as_object_mut().unwrap().remove("qi");
        assert!(
            SigningKey::from_private_jwk(&missing)
                .unwrap_err()
                .0
                .contains("qi")
        );
    }

    #[test]
    fn debug_never_shows_private_material() {
        let key = SigningKey::generate(KeySpec::Es256, kid("dbg")).unwrap();
        let d = key.private_jwk()["d"].as_str().unwrap().to_owned();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&d));
        assert!(shown.contains("dbg"));
    }

    #[test]
    fn es256_signature_is_raw_64_bytes_and_deterministic() {
        let key = SigningKey::generate(KeySpec::Es256, kid("s")).unwrap();
        let sig = key.sign(b"header.payload");
        assert_eq!(unb64(&sig).unwrap().len(), 64);
        assert_eq!(sig, key.sign(b"header.payload"));
    }
}
