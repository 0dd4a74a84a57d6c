//! The validated configuration of one run, built once at the edge from flags, the
//! environment and `--env-file`. Nothing after this module reads the environment.

use crate::cli::Settings;
use crate::envfile::DotEnv;
use crate::error::{Error, Result};
use crate::jwk::{KeySpec, Kid, RSA_BITS, SigningKey};
use crate::kong::Template;
use crate::legacy::{self, Legacy};
use crate::opaque::{self, Kind};
use crate::secret::Secret;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_DIR: &str = "/keys";
const DEFAULT_TTL_SECS: i64 = 5 * 365 * 86_400;
const DEFAULT_LOCK_SECS: u64 = 60;

/// Which API keys the services and Kong's consumers carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKeyMode {
    /// Services keep the legacy HS256 keys (upstream's model); asymmetric tokens are used
    /// behind the opaque keys.
    Keep,
    /// The re-signed asymmetric tokens replace the legacy keys everywhere; Kong still accepts
    /// the legacy keys from clients.
    Resign,
}

/// Whether verifiers keep accepting tokens signed with the legacy HS256 `JWT_SECRET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyHs256 {
    Accept,
    /// The oct key leaves every key set; HS256 leaves the valid methods; Kong stops
    /// accepting the legacy API keys.
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub key_spec: KeySpec,
    pub kid: Option<Kid>,
    pub mode: ApiKeyMode,
    pub legacy_hs256: LegacyHs256,
    /// The kong template to render `kong.yml` from; none means no `kong.yml`.
    pub kong: Option<Template>,
    pub token_ttl: i64,
    pub lock_timeout: Duration,
    pub legacy: Legacy,
    pub publishable_key: Option<Secret>,
    pub secret_key: Option<Secret>,
    /// The asymmetric key of an adopted `JWT_KEYS`.
    pub jwt_keys: Option<SigningKey>,
    pub dashboard_username: Option<String>,
    pub dashboard_password: Option<Secret>,
    pub jwt_issuer: Option<String>,
    /// The time of this run (unix seconds).
    pub now: i64,
}

/// Flags and environment, plus the env file: the raw material of a [`Config`].
pub struct Inputs {
    settings: Settings,
    file: DotEnv,
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_owned)
}

impl Inputs {
    pub fn load(settings: Settings) -> Result<Inputs> {
        let file = match &settings.env_file {
            Some(path) => DotEnv::load(path)?,
            None => DotEnv::default(),
        };
        Ok(Inputs { settings, file })
    }

    /// A setting: flag or process environment first, then the env file.
    fn setting(&self, given: &Option<String>, name: &str) -> Option<String> {
        non_empty(given.as_deref()).or_else(|| non_empty(self.file.get(name)))
    }

    /// A secret: process environment first, then the env file. Never a flag.
    pub(crate) fn secret(&self, name: &str) -> Option<Secret> {
        non_empty(std::env::var(name).ok().as_deref())
            .or_else(|| non_empty(self.file.get(name)))
            .map(Secret::new)
    }

    pub fn dir(&self) -> PathBuf {
        PathBuf::from(
            self.setting(&self.settings.dir, "SUPAKEYS_DIR")
                .unwrap_or_else(|| DEFAULT_DIR.into()),
        )
    }

    pub fn has_jwt_secret(&self) -> bool {
        self.secret("JWT_SECRET").is_some()
    }

    /// A setting that takes one of a few words; the first word is the default.
    fn choice<T: Copy>(
        &self,
        given: &Option<String>,
        name: &'static str,
        choices: &[(&str, T)],
    ) -> Result<T> {
        let Some(value) = self.setting(given, name) else {
            return Ok(choices[0].1);
        };
        if let Some((_, chosen)) = choices.iter().find(|(word, _)| *word == value) {
            return Ok(*chosen);
        }
        let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
        let (last, rest) = words.split_last().expect("at least one choice");
        Err(Error::invalid(
            name,
            format!("must be {} or {last}", rest.join(", ")),
            format!("Unset it for {}.", words[0]),
        ))
    }

    pub fn log_format(&self) -> Result<LogFormat> {
        self.choice(
            &self.settings.log_format,
            "SUPAKEYS_LOG_FORMAT",
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        )
    }

    pub fn log_level(&self) -> Result<tracing::Level> {
        let level = self.setting(&self.settings.log_level, "SUPAKEYS_LOG_LEVEL");
        match level.as_deref().unwrap_or("info") {
            "error" => Ok(tracing::Level::ERROR),
            "warn" => Ok(tracing::Level::WARN),
            "info" => Ok(tracing::Level::INFO),
            "debug" => Ok(tracing::Level::DEBUG),
            "trace" => Ok(tracing::Level::TRACE),
            _ => Err(Error::invalid(
                "SUPAKEYS_LOG_LEVEL",
                "must be error, warn, info, debug or trace",
                "Unset it for info.",
            )),
        }
    }

    /// Validates everything an `init` needs, reading nothing but the kong template.
    pub fn config(&self, now: i64) -> Result<Config> {
        let s = &self.settings;
        let alg = self.setting(&s.alg, "SUPAKEYS_ALG");
        let key_spec = match alg.as_deref().unwrap_or("ES256") {
            "ES256" => KeySpec::Es256,
            "RS256" => KeySpec::Rs256 {
                bits: self.rsa_bits()?,
            },
            _ => {
                return Err(Error::invalid(
                    "SUPAKEYS_ALG",
                    "must be ES256 or RS256",
                    "Unset it for ES256 (recommended).",
                ));
            }
        };
        if alg.as_deref() != Some("RS256")
            && self.setting(&s.rsa_bits, "SUPAKEYS_RSA_BITS").is_some()
        {
            self.rsa_bits()?;
        }
        let kid = match self.setting(&s.kid, "SUPAKEYS_KID") {
            None => None,
            Some(text) => Some(Kid::parse(&text).ok_or_else(|| {
                Error::invalid(
                    "SUPAKEYS_KID",
                    "must be 1-128 characters of A-Z a-z 0-9 . _ -",
                    "Unset it to get a random UUID.",
                )
            })?),
        };
        let mode = self.choice(
            &s.legacy_api_keys,
            "SUPAKEYS_LEGACY_API_KEYS",
            &[("keep", ApiKeyMode::Keep), ("resign", ApiKeyMode::Resign)],
        )?;
        let legacy_hs256 = self.choice(
            &s.legacy_hs256,
            "SUPAKEYS_LEGACY_HS256",
            &[
                ("accept", LegacyHs256::Accept),
                ("reject", LegacyHs256::Reject),
            ],
        )?;
        if legacy_hs256 == LegacyHs256::Reject && mode == ApiKeyMode::Keep {
            tracing::warn!(
                "SUPAKEYS_LEGACY_HS256=reject: services now use the asymmetric API tokens; clients still on the legacy ANON_KEY/SERVICE_ROLE_KEY are refused (give them the opaque sb_publishable_/sb_secret_ keys), and Studio's HS256 role-impersonation tokens stop working"
            );
        }
        let token_ttl = match self.setting(&s.token_ttl, "SUPAKEYS_TOKEN_TTL") {
            None => DEFAULT_TTL_SECS,
            Some(text) => parse_duration(&text).ok_or_else(|| {
                Error::invalid(
                    "SUPAKEYS_TOKEN_TTL",
                    "must be a positive duration of at most 100 years, e.g. 31536000, 90d or 5y",
                    "Unset it for 5 years.",
                )
            })?,
        };
        let lock_timeout = match self.setting(&s.lock_timeout, "SUPAKEYS_LOCK_TIMEOUT") {
            None => DEFAULT_LOCK_SECS,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= 3600)
                .ok_or_else(|| {
                    Error::invalid(
                        "SUPAKEYS_LOCK_TIMEOUT",
                        "must be a whole number of seconds from 0 to 3600",
                        "Unset it for 60.",
                    )
                })?,
        };
        let legacy = legacy::validate(
            self.secret("JWT_SECRET"),
            self.secret("ANON_KEY"),
            self.secret("SERVICE_ROLE_KEY"),
            now,
        )?;
        let publishable_key = self.opaque(Kind::Publishable)?;
        let secret_key = self.opaque(Kind::Secret)?;
        let jwt_keys = match self.secret("JWT_KEYS") {
            None => None,
            Some(text) => adopt_jwt_keys(text.expose(), &legacy)?,
        };
        let jwt_issuer = match self.setting(&s.jwt_issuer, "JWT_ISSUER") {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(Error::invalid(
                    "JWT_ISSUER",
                    "must start with http:// or https://",
                    "Set it to the public URL of Auth, e.g. https://example.com/auth/v1, or unset it.",
                ));
            }
            other => other,
        };
        let dashboard_username = self.setting(&s.dashboard_username, "DASHBOARD_USERNAME");
        let dashboard_password = self.secret("DASHBOARD_PASSWORD");
        let kong = match self.setting(&s.kong_template, "SUPAKEYS_KONG_TEMPLATE") {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| Error::KongTemplate {
                    path: path.clone(),
                    problem: format!(
                        "cannot be read ({e}); check SUPAKEYS_KONG_TEMPLATE, or unset it if no Kong reads kong.yml"
                    ),
                })?;
                Some(Template::parse(&path, &text)?)
            }
        };
        for (name, present) in [
            ("DASHBOARD_USERNAME", dashboard_username.is_some()),
            ("DASHBOARD_PASSWORD", dashboard_password.is_some()),
        ] {
            if let Some(kong) = &kong
                && kong.uses(name)
                && !present
            {
                return Err(Error::KongTemplate {
                    path: kong.name().into(),
                    problem: format!(
                        "uses ${name} but {name} is not set; set it (Kong would otherwise use the literal text ${name})"
                    ),
                });
            }
        }
        Ok(Config {
            dir: self.dir(),
            key_spec,
            kid,
            mode,
            legacy_hs256,
            kong,
            token_ttl,
            lock_timeout: Duration::from_secs(lock_timeout),
            legacy,
            publishable_key,
            secret_key,
            jwt_keys,
            dashboard_username,
            dashboard_password,
            jwt_issuer,
            now,
        })
    }

    fn rsa_bits(&self) -> Result<usize> {
        match self.setting(&self.settings.rsa_bits, "SUPAKEYS_RSA_BITS") {
            None => Ok(2048),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|b| RSA_BITS.contains(b))
                .ok_or_else(|| {
                    Error::invalid(
                        "SUPAKEYS_RSA_BITS",
                        "must be 2048, 3072 or 4096",
                        "Unset it for 2048.",
                    )
                }),
        }
    }

    fn opaque(&self, kind: Kind) -> Result<Option<Secret>> {
        let value = self.secret(kind.variable());
        if let Some(v) = &value {
            opaque::validate(kind, v.expose())?;
        }
        Ok(value)
    }
}

/// `5y`, `90d`, `12h`, `30m`, `45s` or plain seconds; positive and at most 100 years.
pub fn parse_duration(text: &str) -> Option<i64> {
    let (number, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'y' => 365 * 86_400,
        _ => return None,
    };
    let secs = number.parse::<i64>().ok()?.checked_mul(factor)?;
    (1..=100 * 365 * 86_400).contains(&secs).then_some(secs)
}

/// Parses upstream's `JWT_KEYS` (a JSON array: one private signing JWK plus the oct key)
/// and returns its asymmetric key. `[]` is upstream's "legacy only" value and Dokploy's
/// template default: it means there is nothing to adopt.
fn adopt_jwt_keys(text: &str, legacy: &Legacy) -> Result<Option<SigningKey>> {
    const FIX: &str = "Give the JWT_KEYS value written by upstream's add-new-auth-keys.sh \
                       (a JSON array of one private EC or RSA JWK with key_ops [\"sign\",\"verify\"] \
                       and the oct key), or unset it to generate a new key.";
    let bad = |problem: String| Error::invalid("JWT_KEYS", problem, FIX);
    let value: Value = serde_json::from_str(text).map_err(|_| bad("is not valid JSON".into()))?;
    let Value::Array(keys) = value else {
        return Err(bad(
            "must be a JSON array of JWKs, not an object or a string".into(),
        ));
    };
    if keys.is_empty() {
        tracing::info!("JWT_KEYS is [] (legacy only): nothing to adopt");
        return Ok(None);
    }
    let signers = keys
        .iter()
        .filter(|k| {
            k.get("key_ops")
                .and_then(Value::as_array)
                .is_some_and(|ops| ops.iter().any(|op| op == "sign"))
        })
        .count();
    if signers != 1 {
        return Err(bad(format!(
            "has {signers} keys with \"sign\" in key_ops; exactly one is needed"
        )));
    }
    let mut asymmetric = Vec::new();
    for (i, jwk) in keys.iter().enumerate() {
        if jwk.get("kty").and_then(Value::as_str) == Some("oct") {
            let expected = crate::jwk::oct_jwk(legacy.secret.expose());
            if jwk.get("k") != expected.get("k") {
                tracing::warn!(
                    "JWT_KEYS: its oct key is not JWT_SECRET; supakeys derives the HS256 key from JWT_SECRET and ignores it"
                );
            }
            continue;
        }
        let key =
            SigningKey::from_private_jwk(jwk).map_err(|p| bad(format!("key {i}: {}", p.0)))?;
        asymmetric.push(key);
    }
    match asymmetric.len() {
        1 => Ok(Some(asymmetric.remove(0))),
        n => Err(bad(format!(
            "has {n} asymmetric keys; supakeys adopts exactly one"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5y"), Some(5 * 365 * 86_400));
        assert_eq!(parse_duration("90d"), Some(90 * 86_400));
        assert_eq!(parse_duration("3600"), Some(3600));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("-5d"), None);
        assert_eq!(parse_duration("101y"), None);
        assert_eq!(parse_duration("5w"), None);
        assert_eq!(parse_duration(""), None);
    }
}
