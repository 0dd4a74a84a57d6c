//! `state.json`: the material that must survive between runs (keypair, opaque keys, the
//! claims of minted tokens), its strict parser, and the pure decision of what the next state
//! is given the previous one and this run's inputs.

use crate::clock::{MAX_TIME, date};
use crate::config::{Config, LegacyHs256};
use crate::error::{Error, Result};
use crate::jwk::{Algorithm, KeySpec, Kid, SigningKey};
use crate::opaque::{self, Kind};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use zeroize::Zeroizing;

pub const FILE: &str = "state.json";
/// Revoking a key that stopped signing less than this long ago gets a warning.
const REVOKE_GRACE_SECS: i64 = 24 * 3600;
/// The schema version this supakeys writes. Older versions are migrated forward on load
/// (see [`migrate`]); newer ones are refused.
pub const VERSION: u64 = 3;
/// The oldest schema version this supakeys still reads.
pub const OLDEST_VERSION: u64 = 1;
/// A state with one RSA-4096 key is 4 KiB, with a hundred keys 400 KiB; a bigger file is
/// not read (and a transition that would write one is refused).
pub const MAX_BYTES: u64 = 1 << 20;
/// The longest lifetime of minted tokens (`SUPAKEYS_TOKEN_TTL` allows up to 100 years).
const MAX_TTL_SECS: i64 = 100 * 365 * 86_400;
/// Minted API tokens are renewed once less than this fraction of their lifetime is left
/// (the last year of the default five): clients holding the old token then have that long
/// to pick up the new one while the old one still verifies, and a stack restarted only once
/// a year still renews in time.
pub const RENEW_DIVISOR: i64 = 5;

/// Where a key stands in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Published in every JWKS, signs nothing yet (verifiers cache JWKS: publish first).
    Standby,
    /// The one key that signs.
    Current,
    /// Signed before the last rotation; still verifies until revoked.
    Previous,
    /// Removed from every JWKS; its private material is gone.
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Standby => "standby",
            Status::Current => "current",
            Status::Previous => "previous",
            Status::Revoked => "revoked",
        }
    }
}

#[derive(Debug)]
pub struct StoredKey {
    pub kid: Kid,
    pub alg: Algorithm,
    pub status: Status,
    pub created_at: i64,
    /// When the key entered its status.
    pub changed_at: i64,
    /// The private key; `None` once revoked.
    pub key: Option<SigningKey>,
}

impl StoredKey {
    fn new(key: SigningKey, status: Status, now: i64) -> StoredKey {
        StoredKey {
            kid: key.kid().clone(),
            alg: key.algorithm(),
            status,
            created_at: now,
            changed_at: now,
            key: Some(key),
        }
    }
}

/// `iat`/`exp` of the API tokens minted when no legacy keys were given, so that every run
/// signs the same payload and produces the same token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minted {
    pub iat: i64,
    pub exp: i64,
}

/// Why minted API tokens are renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Their `exp` has passed.
    Expired,
    /// Less than a fifth of their lifetime is left.
    Due,
    /// `SUPAKEYS_TOKEN_TTL` differs from their lifetime.
    TtlChanged,
    /// Their `iat` lies ahead of this clock beyond what verifiers allow (a run whose clock
    /// was ahead minted them): PostgREST would refuse them until then.
    IssuedInFuture,
}

impl Minted {
    fn new(now: i64, ttl: i64) -> Minted {
        Minted {
            iat: now,
            exp: now + ttl,
        }
    }

    /// From when `init` renews these tokens.
    pub fn renew_from(self) -> i64 {
        self.exp - (self.exp - self.iat) / RENEW_DIVISOR
    }

    /// Whether (and why) a run at `now` with lifetime `ttl` renews these tokens.
    pub fn renewal(self, ttl: i64, now: i64) -> Option<Renewal> {
        if self.exp <= now {
            Some(Renewal::Expired)
        } else if self.iat > now + crate::jwt::IAT_LEEWAY_SECS {
            Some(Renewal::IssuedInFuture)
        } else if self.exp - self.iat != ttl {
            Some(Renewal::TtlChanged)
        } else if now >= self.renew_from() {
            Some(Renewal::Due)
        } else {
            None
        }
    }
}

/// Whether verifiers accept legacy HS256, and since when. Retiring HS256 is a transition
/// like a rotation: a run changes it only when `SUPAKEYS_LEGACY_HS256` is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hs256 {
    pub mode: LegacyHs256,
    /// When the mode was set; `None` for a mode carried over from a schema-2 state, which
    /// kept no record of it.
    pub changed_at: Option<i64>,
}

/// "since DATE" for a mode's `changed_at`, in words when it is not known.
pub fn since(changed_at: Option<i64>) -> String {
    match changed_at {
        Some(t) => format!("since {}", date(t)),
        None => "since before the upgrade from state schema 2 (when is not recorded)".into(),
    }
}

/// The HS256 mode a `jwt_jwks.json` written by supakeys shows: it holds the oct key exactly
/// while HS256 is accepted. `None` when the bytes are not a key set.
pub fn hs256_mode_of_jwt_jwks(bytes: &[u8]) -> Option<LegacyHs256> {
    let jwks: Value = serde_json::from_slice(bytes).ok()?;
    let keys = jwks.get("keys")?.as_array()?;
    Some(if keys.iter().any(|k| k["kty"] == "oct") {
        LegacyHs256::Accept
    } else {
        LegacyHs256::Reject
    })
}

/// What a state of schema 2 or older does not record, asked of whoever reads it: the HS256
/// mode its directory's files show (`None` when they show none: then accept, the default of
/// those versions).
pub type Hs256InFiles<'a> = &'a dyn Fn() -> Option<LegacyHs256>;

/// Short fingerprints of the legacy inputs, to tell an operator what changed since the last
/// run without ever logging the values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprints {
    pub jwt_secret: String,
    pub anon_key: Option<String>,
    pub service_role_key: Option<String>,
}

#[derive(Debug)]
pub struct State {
    pub keys: Vec<StoredKey>,
    pub publishable_key: Secret,
    pub secret_key: Secret,
    /// A random secret that replaces `JWT_SECRET` where a service verifies kid-less HS256
    /// tokens with a raw secret (Storage, Realtime, Edge Functions) once legacy HS256 is
    /// rejected: tokens signed with `JWT_SECRET` then verify nowhere, while what those
    /// services sign for themselves (Storage's signed URLs) keeps working.
    pub internal_jwt_secret: Secret,
    pub legacy_hs256: Hs256,
    pub minted: Minted,
    pub inputs: Fingerprints,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRecord {
    kid: String,
    alg: String,
    status: Status,
    created_at: i64,
    changed_at: i64,
    /// The private JWK; absent for revoked keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwk: Option<Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u64,
    /// The supakeys version that wrote the file, so that an older supakeys meeting a newer
    /// schema can name the version to use.
    written_by: String,
    keys: Vec<KeyRecord>,
    publishable_key: String,
    secret_key: String,
    internal_jwt_secret: String,
    legacy_hs256: Hs256,
    minted: Minted,
    inputs: Fingerprints,
}

/// One thing this run changed in the state, for the log (never carries a value).
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Generated {
        kid: String,
        alg: Algorithm,
    },
    Adopted {
        kid: String,
    },
    OpaqueGenerated(Kind),
    OpaqueAdopted(Kind),
    JwtSecretChanged,
    LegacyKeysChanged,
    /// The minted API tokens got a new `iat`/`exp`.
    TokensRenewed {
        why: Renewal,
        old: Minted,
        new: Minted,
    },
    /// Legacy HS256 is retired, as the setting (named) asks.
    Hs256Rejected {
        origin: String,
    },
    /// Legacy HS256 is accepted again, as the setting (named) asks, after it was retired.
    Hs256Accepted {
        origin: String,
        rejected_since: Option<i64>,
    },
}

/// What a `keys` command did to the state.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    /// Nothing to do (the command had already been applied).
    Unchanged(String),
    Done(String),
}

/// A lifecycle command that cannot be applied; the message says why and what to do.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl State {
    pub fn current(&self) -> &SigningKey {
        self.keys
            .iter()
            .find(|k| k.status == Status::Current)
            .and_then(|k| k.key.as_ref())
            .expect("a validated state has one current key with its private part")
    }

    /// The keys every verifier trusts: current, then standby, then previous (newest first).
    pub fn verifiers(&self) -> Vec<&SigningKey> {
        let mut keys: Vec<&StoredKey> = self
            .keys
            .iter()
            .filter(|k| k.status != Status::Revoked)
            .collect();
        let rank = |s: Status| match s {
            Status::Current => 0,
            Status::Standby => 1,
            _ => 2,
        };
        keys.sort_by_key(|k| (rank(k.status), std::cmp::Reverse(k.changed_at)));
        keys.iter().filter_map(|k| k.key.as_ref()).collect()
    }

    /// `keys standby`: adds a key that is published but does not sign yet.
    pub fn add_standby(
        &mut self,
        spec: KeySpec,
        kid: Option<Kid>,
        now: i64,
    ) -> Result<Result<Transition, Refused>> {
        if let Some(k) = self.keys.iter().find(|k| k.status == Status::Standby) {
            return Ok(Ok(Transition::Unchanged(format!(
                "a standby key already exists ({}); rotate to it or revoke it first",
                k.kid
            ))));
        }
        let kid = match kid {
            Some(kid) => kid,
            None => Kid::random()?,
        };
        if self.keys.iter().any(|k| k.kid == kid) {
            return Ok(Err(Refused(format!(
                "the state already has a key with kid {kid} (SUPAKEYS_KID names the first key); pass --kid with a new id, or an empty --kid= for a random one"
            ))));
        }
        let key = SigningKey::generate(spec, kid)?;
        let done = format!(
            "generated standby key {} ({})",
            key.kid(),
            key.algorithm().as_str()
        );
        self.keys.push(StoredKey::new(key, Status::Standby, now));
        Ok(Ok(Transition::Done(done)))
    }

    /// `keys rotate`: the standby key signs from now on; the current one becomes previous.
    pub fn rotate(&mut self, now: i64) -> Result<Transition, Refused> {
        let Some(standby) = self.keys.iter().position(|k| k.status == Status::Standby) else {
            return Err(Refused(
                "there is no standby key. Run `supakeys keys standby`, restart the services so every \
                 verifier publishes it, wait for cached JWKS to expire (10 minutes for supabase-js), \
                 then rotate; or use `keys rotate --now` to create and promote one in one step. \
                 If an earlier rotate was interrupted, it may have completed: see `supakeys keys list`"
                    .into(),
            ));
        };
        for key in &mut self.keys {
            if key.status == Status::Current {
                key.status = Status::Previous;
                key.changed_at = now;
            }
        }
        let key = &mut self.keys[standby];
        key.status = Status::Current;
        key.changed_at = now;
        Ok(Transition::Done(format!("key {} is now current", key.kid)))
    }

    /// `keys revoke KID`: removes a previous or standby key from every JWKS.
    pub fn revoke(&mut self, kid: &str, now: i64) -> Result<Transition, Refused> {
        let Some(key) = self.keys.iter_mut().find(|k| k.kid.as_str() == kid) else {
            let known: Vec<_> = self.keys.iter().map(|k| k.kid.to_string()).collect();
            return Err(Refused(format!(
                "no key has kid {kid} (known: {})",
                known.join(", ")
            )));
        };
        match key.status {
            Status::Revoked => Ok(Transition::Unchanged(format!(
                "key {kid} is already revoked"
            ))),
            Status::Current => Err(Refused(format!(
                "key {kid} is the current signing key; rotate to another key first"
            ))),
            Status::Standby | Status::Previous => {
                if key.status == Status::Previous && now - key.changed_at < REVOKE_GRACE_SECS {
                    tracing::warn!(
                        %kid,
                        "this key signed tokens until {}; access tokens it signed may still be valid (they live for GOTRUE_JWT_EXP, 1 hour by default)",
                        date(key.changed_at)
                    );
                }
                key.status = Status::Revoked;
                key.changed_at = now;
                key.key = None;
                Ok(Transition::Done(format!("key {kid} is revoked")))
            }
        }
    }

    /// Parses and validates `state.json`, migrating an older schema forward in memory (the
    /// next write stores the current schema). Anything unexpected is an error: the state is
    /// the only copy of the private key, so it is reported, never repaired by guessing.
    pub fn parse(bytes: &[u8], path: &Path, hs256_in_files: Hs256InFiles) -> Result<State> {
        let mut value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::state(path, format!("not valid JSON ({e})")))?;
        let version = value.get("version").and_then(Value::as_u64);
        match version {
            Some(v) if v > VERSION => {
                let written_by = value
                    .get("written_by")
                    .and_then(Value::as_str)
                    .filter(|v| is_version(v))
                    .map(str::to_owned);
                return Err(Error::StateTooNew {
                    path: path.into(),
                    version: v,
                    written_by,
                    reads: OLDEST_VERSION..=VERSION,
                });
            }
            Some(v) if v >= OLDEST_VERSION => {
                if v < VERSION {
                    migrate(&mut value, v, hs256_in_files).map_err(|p| Error::state(path, p))?;
                    tracing::info!(
                        from = v,
                        to = VERSION,
                        "state.json uses an older schema; it is migrated and written in the current one"
                    );
                }
            }
            _ => return Err(Error::state(path, "\"version\" is missing or unknown")),
        }
        let file: StateFile = serde_json::from_value(value)
            .map_err(|e| Error::state(path, format!("unexpected structure ({e})")))?;
        let mut keys = Vec::with_capacity(file.keys.len());
        for (i, record) in file.keys.into_iter().enumerate() {
            let bad = |problem: String| Error::state(path, format!("keys[{i}]: {problem}"));
            let kid =
                Kid::parse(&record.kid).ok_or_else(|| bad("kid is not a valid key id".into()))?;
            let alg = Algorithm::from_name(&record.alg)
                .ok_or_else(|| bad("alg is not ES256 or RS256".into()))?;
            let key = match (record.status, &record.jwk) {
                (Status::Revoked, None) => None,
                (Status::Revoked, Some(_)) => {
                    return Err(bad("a revoked key still has its jwk".into()));
                }
                (_, None) => return Err(bad("the jwk is missing".into())),
                (_, Some(jwk)) => {
                    let key = SigningKey::from_private_jwk(jwk).map_err(|p| bad(p.0))?;
                    if key.kid() != &kid || key.algorithm() != alg {
                        return Err(bad("kid or alg differ from those of its jwk".into()));
                    }
                    Some(key)
                }
            };
            if keys.iter().any(|k: &StoredKey| k.kid == kid) {
                return Err(bad(format!("duplicate kid {kid}")));
            }
            for (name, time) in [
                ("created_at", record.created_at),
                ("changed_at", record.changed_at),
            ] {
                if !(0..=MAX_TIME).contains(&time) {
                    return Err(bad(format!("{name} is not a time between 1970 and 9999")));
                }
            }
            keys.push(StoredKey {
                kid,
                alg,
                status: record.status,
                created_at: record.created_at,
                changed_at: record.changed_at,
                key,
            });
        }
        for (status, allowed) in [(Status::Current, 1..=1), (Status::Standby, 0..=1)] {
            let count = keys.iter().filter(|k| k.status == status).count();
            if !allowed.contains(&count) {
                let rule = if status == Status::Current {
                    "exactly one"
                } else {
                    "at most one"
                };
                return Err(Error::state(
                    path,
                    format!(
                        "{count} keys have status \"{}\" ({rule} allowed)",
                        status.as_str()
                    ),
                ));
            }
        }
        for (kind, value) in [
            (Kind::Publishable, &file.publishable_key),
            (Kind::Secret, &file.secret_key),
        ] {
            opaque::validate(kind, value)
                .map_err(|_| Error::state(path, format!("{} is malformed", field(kind))))?;
        }
        if !is_internal_secret(&file.internal_jwt_secret) {
            return Err(Error::state(path, "internal_jwt_secret is malformed"));
        }
        if file
            .legacy_hs256
            .changed_at
            .is_some_and(|t| !(0..=MAX_TIME).contains(&t))
        {
            return Err(Error::state(
                path,
                "legacy_hs256.changed_at is not a time between 1970 and 9999",
            ));
        }
        if file.minted.exp <= file.minted.iat {
            return Err(Error::state(path, "minted.exp is not after minted.iat"));
        }
        if !(0..=MAX_TIME).contains(&file.minted.iat)
            || !(0..=MAX_TIME).contains(&file.minted.exp)
            || file.minted.exp - file.minted.iat > MAX_TTL_SECS
        {
            return Err(Error::state(
                path,
                "minted.iat and minted.exp must be times between 1970 and 9999, at most 100 years apart",
            ));
        }
        let fingerprint_ok = |f: &str| {
            f.len() == 16
                && f.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let inputs = &file.inputs;
        if !fingerprint_ok(&inputs.jwt_secret)
            || !inputs.anon_key.as_deref().is_none_or(fingerprint_ok)
            || !inputs
                .service_role_key
                .as_deref()
                .is_none_or(fingerprint_ok)
        {
            return Err(Error::state(
                path,
                "inputs holds a fingerprint that is not 16 hexadecimal digits",
            ));
        }
        Ok(State {
            keys,
            publishable_key: Secret::new(file.publishable_key),
            secret_key: Secret::new(file.secret_key),
            internal_jwt_secret: Secret::new(file.internal_jwt_secret),
            legacy_hs256: file.legacy_hs256,
            minted: file.minted,
            inputs: file.inputs,
        })
    }

    /// The latest time this state records that lies ahead of `now` (beyond the leeway
    /// verifiers allow), with what it is: a run whose clock was ahead wrote it, or this
    /// clock is behind. Only minted tokens are re-minted for it; the other times are the
    /// history of the keys and stay.
    pub fn recorded_after(&self, now: i64) -> Option<(String, i64)> {
        let keys = self.keys.iter().flat_map(|k| {
            [
                (format!("key {} was created", k.kid), k.created_at),
                (
                    format!("key {} became {}", k.kid, k.status.as_str()),
                    k.changed_at,
                ),
            ]
        });
        let hs256 = self.legacy_hs256.changed_at.map(|t| {
            let mode = match self.legacy_hs256.mode {
                LegacyHs256::Accept => "accepted",
                LegacyHs256::Reject => "rejected",
            };
            (format!("legacy HS256 was {mode}"), t)
        });
        let minted = ("the API tokens were minted".to_owned(), self.minted.iat);
        keys.chain(hs256)
            .chain([minted])
            .filter(|(_, t)| *t > now + crate::jwt::IAT_LEEWAY_SECS)
            .max_by_key(|(_, t)| *t)
    }

    /// The canonical bytes of `state.json` (pretty JSON, trailing newline).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let file = StateFile {
            version: VERSION,
            written_by: env!("CARGO_PKG_VERSION").into(),
            keys: self
                .keys
                .iter()
                .map(|k| KeyRecord {
                    kid: k.kid.to_string(),
                    alg: k.alg.as_str().into(),
                    status: k.status,
                    created_at: k.created_at,
                    changed_at: k.changed_at,
                    jwk: k.key.as_ref().map(SigningKey::private_jwk),
                })
                .collect(),
            publishable_key: self.publishable_key.expose().into(),
            secret_key: self.secret_key.expose().into(),
            internal_jwt_secret: self.internal_jwt_secret.expose().into(),
            legacy_hs256: self.legacy_hs256,
            minted: self.minted,
            inputs: self.inputs.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).expect("state serializes");
        bytes.push(b'\n');
        Zeroizing::new(bytes)
    }
}

/// A clock that is obviously wrong is said: earlier than this supakeys' release, or earlier
/// than a time the state records.
pub fn warn_about_clock(now: i64, state: Option<&State>) {
    if let Some(wrong) = crate::clock::before_release(now) {
        tracing::warn!("{wrong}");
    }
    if let Some((what, at)) = state.and_then(|s| s.recorded_after(now)) {
        tracing::warn!(
            "state.json records that {what} at {}, after this clock ({}): a run had its clock ahead then, or this clock is behind now. Check the clock (NTP); supakeys re-mints API tokens issued in the future, the other times stay as recorded",
            date(at),
            date(now)
        );
    }
}

/// Schema migrations, one step per version: `from` is the version `value` has. Each step
/// only adds or reshapes fields; validation happens after the last step, as for a file
/// written in the current schema.
fn migrate(
    value: &mut Value,
    from: u64,
    hs256_in_files: Hs256InFiles,
) -> std::result::Result<(), String> {
    let object = value
        .as_object_mut()
        .ok_or("the top level is not a JSON object")?;
    for version in from..VERSION {
        match version {
            // 1 -> 2: the internal HS256 secret for SUPAKEYS_LEGACY_HS256=reject, and the
            // version of the writer.
            1 => {
                if object.contains_key("internal_jwt_secret") || object.contains_key("written_by") {
                    return Err("schema 1 has no internal_jwt_secret or written_by".into());
                }
                let secret = new_internal_secret().map_err(|e| e.to_string())?;
                object.insert(
                    "internal_jwt_secret".into(),
                    Value::String(secret.expose().into()),
                );
                object.insert("written_by".into(), Value::String("0.0.0".into()));
            }
            // 2 -> 3: the HS256 mode becomes a record of the state. Schema 2 kept none: the
            // mode was the setting of each run, and the files of the last run show it. When
            // it was set is not known.
            2 => {
                if object.contains_key("legacy_hs256") {
                    return Err("schema 2 has no legacy_hs256".into());
                }
                let record = Hs256 {
                    mode: hs256_in_files().unwrap_or(LegacyHs256::Accept),
                    changed_at: None,
                };
                object.insert(
                    "legacy_hs256".into(),
                    serde_json::to_value(record).expect("serializes"),
                );
            }
            _ => unreachable!("every version below VERSION has a migration step"),
        }
        object.insert("version".into(), Value::from(version + 1));
    }
    Ok(())
}

/// A new internal HS256 secret: 32 random bytes, base64url (43 characters).
fn new_internal_secret() -> Result<Secret> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    crate::fill_random(bytes.as_mut_slice())?;
    Ok(Secret::new(crate::jwk::b64(bytes.as_slice())))
}

fn is_internal_secret(value: &str) -> bool {
    value.len() == 43 && crate::jwk::unb64(value).is_some_and(|b| b.len() == 32)
}

/// `MAJOR.MINOR.PATCH` with optional pre-release, short enough to print.
fn is_version(text: &str) -> bool {
    (5..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
}

/// The settings of this `init` that an existing state cannot apply, each as a sentence
/// saying what applies and what to run instead (a warning: the run itself succeeds).
pub fn unused_settings(previous: Option<&State>, config: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    let requested = &config.requested;
    if let (Some(origin), Some(_)) = (&requested.token_ttl, &config.legacy.keys) {
        notes.push(format!(
            "{origin} does not apply: the API tokens are ANON_KEY and SERVICE_ROLE_KEY re-signed, which keep their own exp; unset it, or unset both legacy keys to have supakeys mint tokens"
        ));
    }
    let Some(state) = previous else {
        return notes;
    };
    let current = state.current();
    let alg = match config.key_spec {
        KeySpec::Es256 => Algorithm::Es256,
        KeySpec::Rs256 { .. } => Algorithm::Rs256,
    };
    let standby = |how: &str| {
        format!(
            "to move to such a key without logging anyone out, run `supakeys keys standby {how}`, restart what it prints, wait 10 minutes, then `supakeys keys rotate` (README: Rotating keys)"
        )
    };
    if let Some(origin) = &requested.alg
        && alg != current.algorithm()
    {
        notes.push(format!(
            "{origin}={} applies to newly generated keys only; the current key {} is {}: {}",
            alg.as_str(),
            current.kid(),
            current.algorithm().as_str(),
            standby(&format!("--alg {}", alg.as_str()))
        ));
    }
    if let (Some((origin, bits)), Some(current_bits)) = (&requested.rsa_bits, current.rsa_bits())
        && *bits != current_bits
    {
        notes.push(format!(
            "{origin}={bits} applies to newly generated keys only; the current key {} has {current_bits} bits: {}",
            current.kid(),
            standby(&format!("--alg RS256 --rsa-bits {bits}"))
        ));
    }
    if let (Some(origin), Some(kid)) = (&requested.kid, &config.kid)
        && kid != current.kid()
    {
        notes.push(format!(
            "{origin}={kid} names a newly generated key only; the current key is {} and keeps its kid. Remove the setting, or use it with `supakeys keys standby` to name a new key",
            current.kid()
        ));
    }
    notes
}

fn field(kind: Kind) -> &'static str {
    match kind {
        Kind::Publishable => "publishable_key",
        Kind::Secret => "secret_key",
    }
}

fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(format!("supakeys-fingerprint|{value}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn fingerprints(config: &Config) -> Fingerprints {
    let legacy = &config.legacy;
    let key = |i: usize| {
        legacy
            .keys
            .as_ref()
            .map(|keys| fingerprint(keys[i].token.expose()))
    };
    Fingerprints {
        jwt_secret: fingerprint(legacy.secret.expose()),
        anon_key: key(0),
        service_role_key: key(1),
    }
}

/// The state this run should end with, given the previous one (pure apart from randomness
/// for keys that do not exist yet), and the list of changes made.
pub fn reconcile(previous: Option<State>, config: &Config) -> Result<(State, Vec<Change>)> {
    let mut changes = Vec::new();
    let inputs = fingerprints(config);
    let opaque_key = |kind: Kind,
                      given: &Option<Secret>,
                      old: Option<&Secret>,
                      changes: &mut Vec<Change>|
     -> Result<Secret> {
        Ok(match (given, old) {
            (Some(given), Some(old)) if given == old => old.clone(),
            (Some(given), _) => {
                changes.push(Change::OpaqueAdopted(kind));
                given.clone()
            }
            (None, Some(old)) => old.clone(),
            (None, None) => {
                changes.push(Change::OpaqueGenerated(kind));
                opaque::generate(kind)?
            }
        })
    };
    let state = match previous {
        Some(previous) => {
            if let Some(adopted) = &config.jwt_keys {
                // The adopted key may since have been rotated away: any live key of the state
                // with the same kid and public part is the same key.
                let known = previous
                    .keys
                    .iter()
                    .filter_map(|k| k.key.as_ref())
                    .any(|k| k.kid() == adopted.kid() && k.public_jwk() == adopted.public_jwk());
                if !known {
                    return Err(Error::JwtKeysMismatch {
                        state_path: config.dir.join(FILE),
                        given_kid: adopted.kid().to_string(),
                        state_kids: previous
                            .keys
                            .iter()
                            .map(|k| k.kid.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
            if previous.inputs.jwt_secret != inputs.jwt_secret {
                changes.push(Change::JwtSecretChanged);
            }
            if (&previous.inputs.anon_key, &previous.inputs.service_role_key)
                != (&inputs.anon_key, &inputs.service_role_key)
            {
                changes.push(Change::LegacyKeysChanged);
            }
            // Minted tokens are only used without legacy keys (those keep their own exp).
            let minted = match previous.minted.renewal(config.token_ttl, config.now) {
                Some(why) if config.legacy.keys.is_none() => {
                    let new = Minted::new(config.now, config.token_ttl);
                    changes.push(Change::TokensRenewed {
                        why,
                        old: previous.minted,
                        new,
                    });
                    new
                }
                _ => previous.minted,
            };
            let legacy_hs256 = match &config.legacy_hs256 {
                Some((mode, origin)) if *mode != previous.legacy_hs256.mode => {
                    changes.push(match mode {
                        LegacyHs256::Reject => Change::Hs256Rejected {
                            origin: origin.clone(),
                        },
                        LegacyHs256::Accept => Change::Hs256Accepted {
                            origin: origin.clone(),
                            rejected_since: previous.legacy_hs256.changed_at,
                        },
                    });
                    Hs256 {
                        mode: *mode,
                        changed_at: Some(config.now),
                    }
                }
                _ => previous.legacy_hs256,
            };
            State {
                publishable_key: opaque_key(
                    Kind::Publishable,
                    &config.publishable_key,
                    Some(&previous.publishable_key),
                    &mut changes,
                )?,
                secret_key: opaque_key(
                    Kind::Secret,
                    &config.secret_key,
                    Some(&previous.secret_key),
                    &mut changes,
                )?,
                keys: previous.keys,
                internal_jwt_secret: previous.internal_jwt_secret,
                legacy_hs256,
                minted,
                inputs,
            }
        }
        None => {
            let key = match &config.jwt_keys {
                Some(adopted) => {
                    changes.push(Change::Adopted {
                        kid: adopted.kid().to_string(),
                    });
                    SigningKey::from_private_jwk(&adopted.private_jwk())
                        .expect("an imported key re-imports")
                }
                None => {
                    let kid = match &config.kid {
                        Some(kid) => kid.clone(),
                        None => Kid::random()?,
                    };
                    let key = SigningKey::generate(config.key_spec, kid)?;
                    changes.push(Change::Generated {
                        kid: key.kid().to_string(),
                        alg: key.algorithm(),
                    });
                    key
                }
            };
            if let Some((LegacyHs256::Reject, origin)) = &config.legacy_hs256 {
                changes.push(Change::Hs256Rejected {
                    origin: origin.clone(),
                });
            }
            State {
                keys: vec![StoredKey::new(key, Status::Current, config.now)],
                publishable_key: opaque_key(
                    Kind::Publishable,
                    &config.publishable_key,
                    None,
                    &mut changes,
                )?,
                secret_key: opaque_key(Kind::Secret, &config.secret_key, None, &mut changes)?,
                internal_jwt_secret: new_internal_secret()?,
                legacy_hs256: Hs256 {
                    mode: match &config.legacy_hs256 {
                        Some((mode, _)) => *mode,
                        None => LegacyHs256::Accept,
                    },
                    changed_at: Some(config.now),
                },
                minted: Minted::new(config.now, config.token_ttl),
                inputs,
            }
        }
    };
    Ok((state, changes))
}
