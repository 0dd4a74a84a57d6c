//! `state.json`: the material that must survive between runs (keypair, opaque keys, the
//! claims of minted tokens), its strict parser, and the pure decision of what the next state
//! is given the previous one and this run's inputs.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::jwk::{Algorithm, Kid, SigningKey};
use crate::opaque::{self, Kind};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use zeroize::Zeroizing;

pub const FILE: &str = "state.json";
pub const VERSION: u64 = 1;

/// Where a key stands. Only one key exists today, and it signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Current,
}

#[derive(Debug)]
pub struct StoredKey {
    pub key: SigningKey,
    pub status: Status,
    pub created_at: i64,
}

/// `iat`/`exp` of the API tokens minted when no legacy keys were given, so that every run
/// signs the same payload and produces the same token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minted {
    pub iat: i64,
    pub exp: i64,
}

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
    jwk: Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u64,
    keys: Vec<KeyRecord>,
    publishable_key: String,
    secret_key: String,
    minted: Minted,
    inputs: Fingerprints,
}

/// One thing this run changed in the state, for the log (never carries a value).
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Generated { kid: String, alg: Algorithm },
    Adopted { kid: String },
    OpaqueGenerated(Kind),
    OpaqueAdopted(Kind),
    JwtSecretChanged,
    LegacyKeysChanged,
}

impl State {
    pub fn current(&self) -> &SigningKey {
        &self
            .keys
            .iter()
            .find(|k| k.status == Status::Current)
            .expect("a validated state has one current key")
            .key
    }

    /// Parses and validates `state.json`. Anything unexpected is an error: the state is the
    /// only copy of the private key, so it is reported, never repaired by guessing.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<State> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::state(path, format!("not valid JSON ({e})")))?;
        let version = value.get("version").and_then(Value::as_u64);
        match version {
            Some(VERSION) => {}
            Some(v) if v > VERSION => {
                return Err(Error::StateTooNew {
                    path: path.into(),
                    version: v,
                });
            }
            _ => return Err(Error::state(path, "\"version\" is missing or unknown")),
        }
        let file: StateFile = serde_json::from_value(value)
            .map_err(|e| Error::state(path, format!("unexpected structure ({e})")))?;
        let mut keys = Vec::with_capacity(file.keys.len());
        for (i, record) in file.keys.into_iter().enumerate() {
            let key = SigningKey::from_private_jwk(&record.jwk)
                .map_err(|p| Error::state(path, format!("keys[{i}]: {}", p.0)))?;
            if key.kid().as_str() != record.kid || key.algorithm().as_str() != record.alg {
                return Err(Error::state(
                    path,
                    format!("keys[{i}]: kid or alg differ from those of its jwk"),
                ));
            }
            if keys.iter().any(|k: &StoredKey| k.key.kid() == key.kid()) {
                return Err(Error::state(
                    path,
                    format!("keys[{i}]: duplicate kid {}", record.kid),
                ));
            }
            keys.push(StoredKey {
                key,
                status: record.status,
                created_at: record.created_at,
            });
        }
        let current = keys.iter().filter(|k| k.status == Status::Current).count();
        if current != 1 {
            return Err(Error::state(
                path,
                format!("{current} keys have status \"current\"; exactly one must"),
            ));
        }
        for (kind, value) in [
            (Kind::Publishable, &file.publishable_key),
            (Kind::Secret, &file.secret_key),
        ] {
            opaque::validate(kind, value)
                .map_err(|_| Error::state(path, format!("{} is malformed", field(kind))))?;
        }
        if file.minted.exp <= file.minted.iat {
            return Err(Error::state(path, "minted.exp is not after minted.iat"));
        }
        Ok(State {
            keys,
            publishable_key: Secret::new(file.publishable_key),
            secret_key: Secret::new(file.secret_key),
            minted: file.minted,
            inputs: file.inputs,
        })
    }

    /// The canonical bytes of `state.json` (pretty JSON, trailing newline).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let file = StateFile {
            version: VERSION,
            keys: self
                .keys
                .iter()
                .map(|k| KeyRecord {
                    kid: k.key.kid().to_string(),
                    alg: k.key.algorithm().as_str().into(),
                    status: k.status,
                    created_at: k.created_at,
                    jwk: k.key.private_jwk(),
                })
                .collect(),
            publishable_key: self.publishable_key.expose().into(),
            secret_key: self.secret_key.expose().into(),
            minted: self.minted,
            inputs: self.inputs.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).expect("state serializes");
        bytes.push(b'\n');
        Zeroizing::new(bytes)
    }
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
                let known = previous.keys.iter().any(|k| {
                    k.key.kid() == adopted.kid() && k.key.public_jwk() == adopted.public_jwk()
                });
                if !known {
                    return Err(Error::JwtKeysMismatch {
                        state_path: config.dir.join(FILE),
                        given_kid: adopted.kid().to_string(),
                        state_kids: previous
                            .keys
                            .iter()
                            .map(|k| k.key.kid().to_string())
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
                minted: previous.minted,
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
            State {
                keys: vec![StoredKey {
                    key,
                    status: Status::Current,
                    created_at: config.now,
                }],
                publishable_key: opaque_key(
                    Kind::Publishable,
                    &config.publishable_key,
                    None,
                    &mut changes,
                )?,
                secret_key: opaque_key(Kind::Secret, &config.secret_key, None, &mut changes)?,
                minted: Minted {
                    iat: config.now,
                    exp: config.now + config.token_ttl,
                },
                inputs,
            }
        }
    };
    Ok((state, changes))
}
