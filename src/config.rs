//! The validated configuration of one run, built once at the edge from flags, the
//! environment and `--env-file`. Nothing after this module reads the environment.

use crate::cli::Settings;
use crate::envfile::{DotEnv, Lookup};
use crate::error::{Error, Result, stray_whitespace};
use crate::jwk::{KeySpec, Kid, RSA_BITS, SigningKey};
use crate::kong::{KongEnv, PLACEHOLDERS, Template};
use crate::legacy::{self, Legacy};
use crate::opaque::{self, Kind};
use crate::secret::Secret;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

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

/// Whether verifiers keep accepting tokens signed with the legacy HS256 `JWT_SECRET`. The
/// mode in force is recorded in the state: a run only changes it when the setting is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
    /// `SUPAKEYS_LEGACY_HS256` when given, with where it came from; `None` keeps the mode
    /// the state records.
    pub legacy_hs256: Option<(LegacyHs256, String)>,
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
    /// Which of the settings for new keys were given rather than defaulted.
    pub requested: Requested,
    /// The time of this run (unix seconds).
    pub now: i64,
}

/// The settings that shape a newly generated key or newly minted tokens, when they were
/// given explicitly: each holds where its value came from (`--alg`, `SUPAKEYS_ALG`, ...).
/// A run on an existing state says which of them it cannot apply.
#[derive(Debug, Default)]
pub struct Requested {
    pub alg: Option<String>,
    /// With the modulus size given.
    pub rsa_bits: Option<(String, usize)>,
    pub kid: Option<String>,
    pub token_ttl: Option<String>,
}

/// Where a value came from, so that a message names what the operator must change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `--alg`.
    Flag(&'static str),
    /// A variable of the process environment.
    Env(&'static str),
    /// A variable of the `--env-file`.
    File { name: &'static str, path: String },
}

impl Origin {
    /// `--alg`, `SUPAKEYS_ALG`, or `SUPAKEYS_ALG (in /path/.env)`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Flag(flag) => (*flag).to_owned(),
            Origin::Env(name) => (*name).to_owned(),
            Origin::File { name, path } => format!("{name} (in {path})"),
        }
    }
}

/// A non-empty value and where it came from.
#[derive(Clone)]
struct Given {
    value: Secret,
    origin: Origin,
}

/// A setting: its variable, its flag, and its clap id (the field of [`Settings`]).
struct Def {
    env: &'static str,
    flag: &'static str,
    id: &'static str,
}

const fn def(env: &'static str, flag: &'static str, id: &'static str) -> Def {
    Def { env, flag, id }
}

const SETTINGS: [Def; 21] = [
    def("SUPAKEYS_ENV_FILE", "--env-file", "env_file"),
    def("SUPAKEYS_DIR", "--dir", "dir"),
    def("SUPAKEYS_STORE", "--store", "store"),
    def(
        "SUPAKEYS_KUBERNETES_SECRETS",
        "--kubernetes-secrets",
        "kubernetes_secrets",
    ),
    def(
        "SUPAKEYS_KUBERNETES_APIKEY_KEYS",
        "--kubernetes-apikey-keys",
        "kubernetes_apikey_keys",
    ),
    def(
        "SUPAKEYS_KUBERNETES_ADOPT",
        "--kubernetes-adopt",
        "kubernetes_adopt",
    ),
    def(
        "SUPAKEYS_KUBERNETES_RELEASE",
        "--kubernetes-release",
        "kubernetes_release",
    ),
    def(
        "SUPAKEYS_KUBERNETES_SERVICEACCOUNT",
        "--kubernetes-serviceaccount",
        "kubernetes_serviceaccount",
    ),
    def("SUPAKEYS_ALG", "--alg", "alg"),
    def("SUPAKEYS_RSA_BITS", "--rsa-bits", "rsa_bits"),
    def("SUPAKEYS_KID", "--kid", "kid"),
    def(
        "SUPAKEYS_LEGACY_API_KEYS",
        "--legacy-api-keys",
        "legacy_api_keys",
    ),
    def("SUPAKEYS_LEGACY_HS256", "--legacy-hs256", "legacy_hs256"),
    def("SUPAKEYS_KONG_TEMPLATE", "--kong-template", "kong_template"),
    def("SUPAKEYS_KONG_ENV", "--kong-env", "kong_env"),
    def("SUPAKEYS_TOKEN_TTL", "--token-ttl", "token_ttl"),
    def("SUPAKEYS_LOCK_TIMEOUT", "--lock-timeout", "lock_timeout"),
    def("SUPAKEYS_LOG_FORMAT", "--log-format", "log_format"),
    def("SUPAKEYS_LOG_LEVEL", "--log-level", "log_level"),
    def("JWT_ISSUER", "--jwt-issuer", "jwt_issuer"),
    def(
        "DASHBOARD_USERNAME",
        "--dashboard-username",
        "dashboard_username",
    ),
];

fn field<'a>(settings: &'a Settings, id: &str) -> &'a Option<OsString> {
    match id {
        "env_file" => &settings.env_file,
        "dir" => &settings.dir,
        "store" => &settings.store,
        "kubernetes_secrets" => &settings.kubernetes_secrets,
        "kubernetes_apikey_keys" => &settings.kubernetes_apikey_keys,
        "kubernetes_adopt" => &settings.kubernetes_adopt,
        "kubernetes_release" => &settings.kubernetes_release,
        "kubernetes_serviceaccount" => &settings.kubernetes_serviceaccount,
        "alg" => &settings.alg,
        "rsa_bits" => &settings.rsa_bits,
        "kid" => &settings.kid,
        "legacy_api_keys" => &settings.legacy_api_keys,
        "legacy_hs256" => &settings.legacy_hs256,
        "kong_template" => &settings.kong_template,
        "kong_env" => &settings.kong_env,
        "token_ttl" => &settings.token_ttl,
        "lock_timeout" => &settings.lock_timeout,
        "log_format" => &settings.log_format,
        "log_level" => &settings.log_level,
        "jwt_issuer" => &settings.jwt_issuer,
        "dashboard_username" => &settings.dashboard_username,
        other => unreachable!("no setting {other}"),
    }
}

/// Variables with no flag (flags show up in `ps`).
const SECRETS: [&str; 7] = [
    "JWT_SECRET",
    "ANON_KEY",
    "SERVICE_ROLE_KEY",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    "JWT_KEYS",
    "DASHBOARD_PASSWORD",
];

/// Variables the platform sets in the process environment (never read from the env file):
/// the kubelet gives every container the API server's address.
const PLATFORM: [&str; 2] = ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"];

/// Where the state and the output live.
#[derive(Debug)]
pub enum Home {
    /// The keys directory (`SUPAKEYS_DIR`).
    Dir(PathBuf),
    /// Secrets of the pod's namespace (`SUPAKEYS_STORE=kubernetes`).
    Kubernetes(Box<KubernetesSettings>),
}

/// The Kubernetes store's settings, validated by [`Inputs::home`].
#[derive(Clone, Debug)]
pub struct KubernetesSettings {
    /// The API server (`KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT`).
    pub host: String,
    pub port: u16,
    /// The service account directory: `token`, `ca.crt`, `namespace`.
    pub serviceaccount: PathBuf,
    /// The prefix of the three Secret names.
    pub prefix: String,
    /// The apikey Secret's key for each of [`crate::chart::CHART_KEYS`], in that order.
    pub apikey_keys: [String; 6],
    /// A Secret with the chart's apikey keys that a first run adopts.
    pub adopt: Option<String>,
    /// The chart's Helm release, for the names of its Deployments.
    pub release: String,
}

/// A value a store found where the state lives, which a first run adopts as if the
/// variable `variable` held it (values of the environment and the env file win).
pub struct Adoptable {
    pub variable: &'static str,
    pub value: Secret,
    /// Where it was found, for messages: `Secret supabase-apikey, key jwtKeys`.
    pub source: String,
}

/// Kong templates are a few KiB (upstream's is 10 KiB); a larger one is refused unread.
pub const MAX_TEMPLATE_BYTES: u64 = 1 << 20;
/// Bounds on values copied into the output files (a key set of two RSA-4096 keys is 7 KiB).
const MAX_PATH_BYTES: usize = 4096;
const MAX_JWT_SECRET_BYTES: usize = 4096;
const MAX_TOKEN_BYTES: usize = 16 << 10;
const MAX_JWT_KEYS_BYTES: usize = 64 << 10;
const MAX_ISSUER_BYTES: usize = 2048;
const MAX_DASHBOARD_BYTES: usize = 1024;
/// `SUPAKEYS_KONG_ENV`: a handful of Kong settings (Coolify's template uses five).
const MAX_KONG_ENV_NAMES: usize = 32;
const MAX_KONG_ENV_NAME_BYTES: usize = 128;
const MAX_KONG_ENV_VALUE_BYTES: usize = 1024;

/// Flags and environment, plus the env file: the raw material of a [`Config`], every value
/// already decoded (a value that is not UTF-8 is an error naming its flag or variable).
#[derive(Clone)]
pub struct Inputs {
    /// By variable name; `None` for a setting explicitly emptied with its flag (`--kid=`),
    /// which the env file cannot fill in again.
    values: HashMap<&'static str, Option<Given>>,
    /// Warnings found before logging was set up (the env file is read first).
    notes: Vec<String>,
    /// The variables `SUPAKEYS_KONG_ENV` names, each with its value if it has one.
    kong_env: BTreeMap<String, Option<String>>,
}

/// The process environment as `${NAME}` in the env file sees it.
fn process_environment(name: &str) -> Lookup {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Lookup::Unset;
    }
    match std::env::var_os(name).map(OsString::into_string) {
        None => Lookup::Unset,
        Some(Ok(value)) => Lookup::Set(Zeroizing::new(value)),
        Some(Err(_)) => Lookup::NotUtf8,
    }
}

fn decode(value: OsString, origin: &Origin) -> Result<String> {
    value.into_string().map_err(|_| {
        Error::invalid(
            origin.describe(),
            "is not valid UTF-8",
            "Give it as UTF-8 text (check the encoding of the file or the shell that sets it).",
        )
    })
}

impl Inputs {
    pub fn load(settings: Settings) -> Result<Inputs> {
        let mut values: HashMap<&'static str, Option<Given>> = HashMap::new();
        for d in &SETTINGS {
            let Some(raw) = field(&settings, d.id).clone() else {
                continue;
            };
            let from_flag = settings.from_command_line.iter().any(|id| id == d.id);
            let origin = if from_flag {
                Origin::Flag(d.flag)
            } else {
                Origin::Env(d.env)
            };
            let value = decode(raw, &origin)?;
            if !value.is_empty() {
                values.insert(
                    d.env,
                    Some(Given {
                        value: Secret::new(value),
                        origin,
                    }),
                );
            } else if from_flag {
                values.insert(d.env, None);
            }
        }
        for name in SECRETS.into_iter().chain(PLATFORM) {
            if let Some(raw) = std::env::var_os(name) {
                let origin = Origin::Env(name);
                let value = decode(raw, &origin)?;
                if !value.is_empty() {
                    values.insert(
                        name,
                        Some(Given {
                            value: Secret::new(value),
                            origin,
                        }),
                    );
                }
            }
        }
        let mut notes = Vec::new();
        let mut env_file = None;
        if let Some(Some(given)) = values.get("SUPAKEYS_ENV_FILE") {
            check_path(given)?;
            let path = PathBuf::from(given.value.expose());
            let file = DotEnv::load(&path, &process_environment)?;
            let shown = path.display();
            notes.extend(file.notes().iter().map(|n| format!("{shown}, {n}")));
            if file.had_bom() {
                notes.push(format!(
                    "the env file {} starts with a UTF-8 byte order mark; supakeys ignores it, but other readers of the file may not (save it without a BOM)",
                    path.display()
                ));
            }
            let names = SETTINGS
                .iter()
                .map(|d| d.env)
                .filter(|n| *n != "SUPAKEYS_ENV_FILE")
                .chain(SECRETS);
            for name in names {
                if values.contains_key(name) {
                    continue;
                }
                let in_file = file.get(name).filter(|v| !v.is_empty());
                // As with Docker Compose, a variable set in the environment wins over the
                // file even when it is empty (and empty counts as unset).
                if std::env::var_os(name).is_some() {
                    if in_file.is_some() {
                        notes.push(format!(
                            "{name} is set but empty in the environment: as with Docker Compose, that hides {name} of the env file {shown}, and supakeys takes it as unset (unset the variable to use the file's value)"
                        ));
                    }
                    continue;
                }
                if let Some(value) = in_file {
                    let origin = Origin::File {
                        name,
                        path: path.display().to_string(),
                    };
                    values.insert(
                        name,
                        Some(Given {
                            value: Secret::new(value),
                            origin,
                        }),
                    );
                }
            }
            env_file = Some((file, path));
        }
        for name in [
            "SUPAKEYS_DIR",
            "SUPAKEYS_KONG_TEMPLATE",
            "SUPAKEYS_KUBERNETES_SERVICEACCOUNT",
        ] {
            if let Some(Some(given)) = values.get(name) {
                check_path(given)?;
            }
        }
        let mut kong_env = BTreeMap::new();
        if let Some(Some(given)) = values.get("SUPAKEYS_KONG_ENV") {
            for name in kong_env_names(given)? {
                let value = match std::env::var_os(&name) {
                    Some(raw) => Some((
                        raw.into_string().map_err(|_| {
                            Error::invalid(
                                name.clone(),
                                "is not valid UTF-8",
                                "Give it as UTF-8 text.",
                            )
                        })?,
                        name.clone(),
                    )),
                    None => env_file.as_ref().and_then(|(file, path)| {
                        let v = file.get(&name)?;
                        Some((v.to_owned(), format!("{name} (in {})", path.display())))
                    }),
                };
                let value = value.filter(|(v, _)| !v.is_empty());
                if let Some((v, origin)) = &value {
                    check_kong_env_value(origin, v)?;
                }
                kong_env.insert(name, value.map(|(v, _)| v));
            }
        }
        Ok(Inputs {
            values,
            notes,
            kong_env,
        })
    }

    /// Warnings found while loading, to log once logging is set up.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn given(&self, name: &str) -> Option<&Given> {
        self.values.get(name).and_then(Option::as_ref)
    }

    /// A setting's value, if given (flag, environment, then env file).
    fn setting(&self, name: &str) -> Option<&str> {
        self.given(name).map(|g| g.value.expose())
    }

    /// Where a setting came from, for a message; its variable name when it was not given.
    fn origin(&self, name: &'static str) -> String {
        self.given(name)
            .map(|g| g.origin.describe())
            .unwrap_or_else(|| name.to_owned())
    }

    /// A secret: process environment first, then the env file. Never a flag.
    pub(crate) fn secret(&self, name: &str) -> Option<Secret> {
        self.given(name).map(|g| g.value.clone())
    }

    /// A token-shaped secret (JWT or opaque key): such values never contain whitespace, so
    /// whitespace around one is copy-paste residue; it is dropped with a warning.
    pub(crate) fn token(&self, name: &'static str) -> Option<Secret> {
        let value = self.secret(name)?;
        let trimmed = value.expose().trim();
        if trimmed.len() == value.expose().len() {
            return Some(value);
        }
        let what = stray_whitespace(value.expose()).unwrap_or_default();
        tracing::warn!(
            variable = name,
            "{name} {what}; supakeys uses the value without the surrounding whitespace (remove it from the source too)"
        );
        (!trimmed.is_empty()).then(|| Secret::new(trimmed))
    }

    pub fn dir(&self) -> PathBuf {
        PathBuf::from(self.setting("SUPAKEYS_DIR").unwrap_or(DEFAULT_DIR))
    }

    pub fn has_jwt_secret(&self) -> bool {
        self.given("JWT_SECRET").is_some()
    }

    /// These inputs with `adopted` values for the variables that have none.
    pub fn adopting(&self, adopted: &[Adoptable]) -> Inputs {
        let mut inputs = self.clone();
        for a in adopted {
            if !inputs.values.contains_key(a.variable) {
                inputs.values.insert(
                    a.variable,
                    Some(Given {
                        value: a.value.clone(),
                        origin: Origin::File {
                            name: a.variable,
                            path: a.source.clone(),
                        },
                    }),
                );
            }
        }
        inputs
    }

    /// Where the state lives: the keys directory, or (`SUPAKEYS_STORE=kubernetes`) the
    /// Secrets of the pod's namespace, with the API server's address from the kubelet.
    pub fn home(&self) -> Result<Home> {
        use crate::chart;
        let kind = self.choice("SUPAKEYS_STORE", &[("dir", false), ("kubernetes", true)])?;
        if !kind {
            return Ok(Home::Dir(self.dir()));
        }
        let name_setting = |name: &'static str, default: &str, what: &str| -> Result<String> {
            let value = self.setting(name).unwrap_or(default);
            if chart::is_name(value) {
                Ok(value.to_owned())
            } else {
                Err(self.bad(
                    name,
                    &format!(
                        "is not a valid {what} (1-{} characters of a-z 0-9 - ., starting and ending with a letter or digit)",
                        chart::MAX_PREFIX
                    ),
                    "Give a lowercase name, e.g. supakeys.",
                ))
            }
        };
        let prefix = name_setting(
            "SUPAKEYS_KUBERNETES_SECRETS",
            "supakeys",
            "Secret name prefix",
        )?;
        if prefix.len() > chart::MAX_PREFIX {
            return Err(self.bad(
                "SUPAKEYS_KUBERNETES_SECRETS",
                &format!("is longer than {} characters", chart::MAX_PREFIX),
                "Choose a shorter prefix.",
            ));
        }
        let release = name_setting(
            "SUPAKEYS_KUBERNETES_RELEASE",
            "supabase",
            "Helm release name",
        )?;
        let adopt = match self.setting("SUPAKEYS_KUBERNETES_ADOPT") {
            None => None,
            Some(_) => Some(name_setting(
                "SUPAKEYS_KUBERNETES_ADOPT",
                "",
                "Secret name",
            )?),
        };
        let mut apikey_keys = chart::CHART_KEYS.map(|(key, _)| key.to_owned());
        if let Some(renames) = self.setting("SUPAKEYS_KUBERNETES_APIKEY_KEYS") {
            for pair in renames.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let fix = "Write it as the chart's secretRefKey: jwtKeys=KEY,jwtJwks=KEY,… with the names publishableKey, secretKey, anonKeyAsymmetric, serviceRoleKeyAsymmetric, jwtKeys, jwtJwks.";
                let Some((name, key)) = pair.split_once('=') else {
                    return Err(self.bad(
                        "SUPAKEYS_KUBERNETES_APIKEY_KEYS",
                        &format!("has {pair:?}, which is not NAME=KEY"),
                        fix,
                    ));
                };
                let Some(i) = chart::CHART_KEYS.iter().position(|(k, _)| *k == name) else {
                    return Err(self.bad(
                        "SUPAKEYS_KUBERNETES_APIKEY_KEYS",
                        &format!("names {name:?}, which is not a key of the chart's apikey Secret"),
                        fix,
                    ));
                };
                if !chart::is_key(key) {
                    return Err(self.bad(
                        "SUPAKEYS_KUBERNETES_APIKEY_KEYS",
                        &format!(
                            "gives {name} the key {key:?}, which is not a Secret key (1-253 characters of A-Z a-z 0-9 - _ .)"
                        ),
                        fix,
                    ));
                }
                apikey_keys[i] = key.to_owned();
            }
        }
        let serviceaccount = PathBuf::from(
            self.setting("SUPAKEYS_KUBERNETES_SERVICEACCOUNT")
                .unwrap_or(chart::SERVICEACCOUNT_DIR),
        );
        let fix_env = "supakeys --store kubernetes runs in a pod, where the kubelet sets it; outside a cluster use the keys directory (SUPAKEYS_STORE=dir).";
        let host = self
            .setting("KUBERNETES_SERVICE_HOST")
            .ok_or(Error::MissingInput {
                name: "KUBERNETES_SERVICE_HOST",
                fix: fix_env,
            })?;
        if host.len() > 253
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        {
            return Err(self.bad(
                "KUBERNETES_SERVICE_HOST",
                "is not a host name or an IP address",
                fix_env,
            ));
        }
        let port = self
            .setting("KUBERNETES_SERVICE_PORT")
            .ok_or(Error::MissingInput {
                name: "KUBERNETES_SERVICE_PORT",
                fix: fix_env,
            })?
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                self.bad(
                    "KUBERNETES_SERVICE_PORT",
                    "is not a port number from 1 to 65535",
                    fix_env,
                )
            })?;
        Ok(Home::Kubernetes(Box::new(KubernetesSettings {
            host: host.to_owned(),
            port,
            serviceaccount,
            prefix,
            apikey_keys,
            adopt,
            release,
        })))
    }

    /// An error about the value of setting `name`, naming where it came from; mentions
    /// stray whitespace, which a message cannot show.
    fn bad(&self, name: &'static str, problem: &str, fix: &str) -> Error {
        let problem = match self.setting(name).and_then(stray_whitespace) {
            Some(ws) => format!("{problem} (the value {ws})"),
            None => problem.to_owned(),
        };
        Error::invalid(self.origin(name), problem, fix)
    }

    /// A setting that takes one of a few words; the first word is the default.
    fn choice<T: Copy>(&self, name: &'static str, choices: &[(&str, T)]) -> Result<T> {
        let Some(value) = self.setting(name) else {
            return Ok(choices[0].1);
        };
        if let Some((_, chosen)) = choices.iter().find(|(word, _)| *word == value) {
            return Ok(*chosen);
        }
        let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
        let (last, rest) = words.split_last().expect("at least one choice");
        Err(self.bad(
            name,
            &format!("must be {} or {last}", rest.join(", ")),
            &format!("Unset it for {}.", words[0]),
        ))
    }

    pub fn log_format(&self) -> Result<LogFormat> {
        self.choice(
            "SUPAKEYS_LOG_FORMAT",
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        )
    }

    pub fn log_level(&self) -> Result<tracing::Level> {
        use tracing::Level;
        self.choice(
            "SUPAKEYS_LOG_LEVEL",
            &[
                ("info", Level::INFO),
                ("error", Level::ERROR),
                ("warn", Level::WARN),
                ("debug", Level::DEBUG),
                ("trace", Level::TRACE),
            ],
        )
    }

    /// Validates everything an `init` needs, reading nothing but the kong template.
    pub fn config(&self, now: i64) -> Result<Config> {
        let mut requested = Requested::default();
        let alg = self.setting("SUPAKEYS_ALG");
        if alg.is_some() {
            requested.alg = Some(self.origin("SUPAKEYS_ALG"));
        }
        let key_spec = match alg.unwrap_or("ES256") {
            "ES256" => KeySpec::Es256,
            "RS256" => KeySpec::Rs256 {
                bits: self.rsa_bits()?,
            },
            _ => {
                return Err(self.bad(
                    "SUPAKEYS_ALG",
                    "must be ES256 or RS256",
                    "Unset it for ES256 (recommended).",
                ));
            }
        };
        if self.setting("SUPAKEYS_RSA_BITS").is_some() {
            requested.rsa_bits = Some((self.origin("SUPAKEYS_RSA_BITS"), self.rsa_bits()?));
        }
        let kid = match self.setting("SUPAKEYS_KID") {
            None => None,
            Some(text) => {
                requested.kid = Some(self.origin("SUPAKEYS_KID"));
                Some(Kid::parse(text).ok_or_else(|| {
                    self.bad(
                        "SUPAKEYS_KID",
                        "must be 1-128 characters of A-Z a-z 0-9 . _ -",
                        "Unset it to get a random UUID.",
                    )
                })?)
            }
        };
        let mode = self.choice(
            "SUPAKEYS_LEGACY_API_KEYS",
            &[("keep", ApiKeyMode::Keep), ("resign", ApiKeyMode::Resign)],
        )?;
        let legacy_hs256 = match self.setting("SUPAKEYS_LEGACY_HS256") {
            None => None,
            Some(_) => Some((
                self.choice(
                    "SUPAKEYS_LEGACY_HS256",
                    &[
                        ("accept", LegacyHs256::Accept),
                        ("reject", LegacyHs256::Reject),
                    ],
                )?,
                self.origin("SUPAKEYS_LEGACY_HS256"),
            )),
        };
        let token_ttl = match self.setting("SUPAKEYS_TOKEN_TTL") {
            None => DEFAULT_TTL_SECS,
            Some(text) => {
                requested.token_ttl = Some(self.origin("SUPAKEYS_TOKEN_TTL"));
                parse_duration(text).ok_or_else(|| {
                    self.bad(
                        "SUPAKEYS_TOKEN_TTL",
                        "must be a positive duration of at most 100 years, e.g. 31536000, 90d or 5y",
                        "Unset it for 5 years.",
                    )
                })?
            }
        };
        let lock_timeout = match self.setting("SUPAKEYS_LOCK_TIMEOUT") {
            None => DEFAULT_LOCK_SECS,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= 3600)
                .ok_or_else(|| {
                    self.bad(
                        "SUPAKEYS_LOCK_TIMEOUT",
                        "must be a whole number of seconds from 0 to 3600",
                        "Unset it for 60.",
                    )
                })?,
        };
        let jwt_secret = self.secret("JWT_SECRET");
        if let Some(secret) = &jwt_secret {
            check_jwt_secret(secret)?;
        }
        let [anon, service] = ["ANON_KEY", "SERVICE_ROLE_KEY"].map(|name| self.token(name));
        for (name, value) in [("ANON_KEY", &anon), ("SERVICE_ROLE_KEY", &service)] {
            if value
                .as_ref()
                .is_some_and(|v| v.expose().len() > MAX_TOKEN_BYTES)
            {
                return Err(Error::invalid(
                    name,
                    format!(
                        "is longer than {} KiB; API keys are a few hundred bytes",
                        MAX_TOKEN_BYTES >> 10
                    ),
                    "Copy the key itself from your Supabase .env.",
                ));
            }
        }
        let legacy = legacy::validate(jwt_secret, anon, service, now)?;
        let publishable_key = self.opaque(Kind::Publishable)?;
        let secret_key = self.opaque(Kind::Secret)?;
        let jwt_keys = match self.secret("JWT_KEYS") {
            None => None,
            Some(text) if text.expose().len() > MAX_JWT_KEYS_BYTES => {
                return Err(Error::invalid(
                    "JWT_KEYS",
                    format!(
                        "is longer than {} KiB; upstream's JWT_KEYS (one private key and the oct key) is at most a few KiB",
                        MAX_JWT_KEYS_BYTES >> 10
                    ),
                    "Give the JWT_KEYS value written by upstream's add-new-auth-keys.sh, or unset it.",
                ));
            }
            Some(text) => adopt_jwt_keys(text.expose(), &legacy)?,
        };
        let jwt_issuer = match self.setting("JWT_ISSUER") {
            None => None,
            Some(url) => {
                self.check_issuer(url)?;
                Some(url.to_owned())
            }
        };
        let dashboard_username = match self.setting("DASHBOARD_USERNAME") {
            None => None,
            Some(name) => {
                self.check_dashboard("DASHBOARD_USERNAME", name)?;
                if name.contains(':') {
                    return Err(self.bad(
                        "DASHBOARD_USERNAME",
                        "contains ':' (HTTP basic auth splits the user name from the password at the first ':', so this user could never log in)",
                        "Choose a user name without ':'.",
                    ));
                }
                Some(name.to_owned())
            }
        };
        let dashboard_password = self.secret("DASHBOARD_PASSWORD");
        if let Some(password) = &dashboard_password {
            self.check_dashboard("DASHBOARD_PASSWORD", password.expose())?;
        }
        let kong = match self.setting("SUPAKEYS_KONG_TEMPLATE") {
            None => None,
            Some(path) => Some(self.template(path)?),
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
            requested,
            now,
        })
    }

    /// Reads and parses the kong template: a regular file (never a FIFO, which would block),
    /// at most [`MAX_TEMPLATE_BYTES`], UTF-8.
    fn template(&self, path: &str) -> Result<Template> {
        let err = |problem: String| Error::KongTemplate {
            path: path.to_owned(),
            problem,
        };
        let origin = self.origin("SUPAKEYS_KONG_TEMPLATE");
        let bytes = crate::input::read_input(Path::new(path), MAX_TEMPLATE_BYTES).map_err(|p| {
            err(format!(
                "{p}; check {origin}, or unset it if no Kong reads kong.yml"
            ))
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            err(format!(
                "is not valid UTF-8 (line {line}); save it as UTF-8"
            ))
        })?;
        Template::parse_with(path, &text, &KongEnv::new(self.kong_env.clone()))
    }

    /// `JWT_ISSUER` ends up in a Kong route path and in GoTrue's metadata: an http(s) URL
    /// without whitespace, control characters, quotes, query or fragment (RFC 8414 section 2).
    fn check_issuer(&self, url: &str) -> Result<()> {
        const FIX: &str =
            "Set it to the public URL of Auth, e.g. https://example.com/auth/v1, or unset it.";
        let problem = if !(url.starts_with("http://") || url.starts_with("https://")) {
            "must start with http:// or https://".to_owned()
        } else if url.len() > MAX_ISSUER_BYTES {
            format!("is longer than {MAX_ISSUER_BYTES} bytes")
        } else if let Some(ws) = stray_whitespace(url) {
            format!("{ws}; a URL has none")
        } else if url.chars().any(char::is_control) {
            "contains a control character".to_owned()
        } else if url.contains(['"', '\'', '\\', '`', '<', '>']) {
            "contains a quote, backslash or angle bracket".to_owned()
        } else if url.contains(['?', '#']) {
            "has a query or fragment ('?' or '#'); an issuer URL has neither (RFC 8414)".to_owned()
        } else {
            return Ok(());
        };
        Err(Error::invalid(self.origin("JWT_ISSUER"), problem, FIX))
    }

    /// Dashboard credentials go into kong.yml: bounded, without control characters.
    fn check_dashboard(&self, name: &'static str, value: &str) -> Result<()> {
        if value.len() > MAX_DASHBOARD_BYTES {
            return Err(Error::invalid(
                self.origin(name),
                format!("is longer than {MAX_DASHBOARD_BYTES} bytes"),
                "Choose a shorter value.",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(Error::invalid(
                self.origin(name),
                match stray_whitespace(value) {
                    Some(ws) => format!("{ws}, a control character"),
                    None => "contains a control character".to_owned(),
                },
                "Remove it (HTTP basic auth cannot carry it).",
            ));
        }
        Ok(())
    }

    fn rsa_bits(&self) -> Result<usize> {
        match self.setting("SUPAKEYS_RSA_BITS") {
            None => Ok(2048),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|b| RSA_BITS.contains(b))
                .ok_or_else(|| {
                    self.bad(
                        "SUPAKEYS_RSA_BITS",
                        "must be 2048, 3072 or 4096",
                        "Unset it for 2048.",
                    )
                }),
        }
    }

    fn opaque(&self, kind: Kind) -> Result<Option<Secret>> {
        let value = self.token(kind.variable());
        if let Some(v) = &value {
            opaque::validate(kind, v.expose())?;
        }
        Ok(value)
    }
}

/// `JWT_SECRET` is used as it is (every service reads the same bytes), so whitespace is
/// kept but pointed out; its length is bounded like every value supakeys copies.
fn check_jwt_secret(secret: &Secret) -> Result<()> {
    let text = secret.expose();
    if text.len() > MAX_JWT_SECRET_BYTES {
        return Err(Error::invalid(
            "JWT_SECRET",
            format!("is longer than {MAX_JWT_SECRET_BYTES} bytes"),
            "Use a random secret of 32 to a few hundred characters, e.g. `openssl rand -base64 48`.",
        ));
    }
    if text.trim() != text {
        let what = stray_whitespace(text).unwrap_or_default();
        tracing::warn!(
            "JWT_SECRET {what}: it is part of the secret, for supakeys as for every service that reads it; if it came from copy-paste, remove it everywhere"
        );
    }
    Ok(())
}

/// A path given as a setting: bounded, and without control characters (the template's
/// path is written into a comment of kong.yml, every path into the log).
fn check_path(given: &Given) -> Result<()> {
    let path = given.value.expose();
    let problem = if path.len() > MAX_PATH_BYTES {
        format!("is longer than {MAX_PATH_BYTES} bytes")
    } else if path.chars().any(char::is_control) {
        "contains a control character (a newline or tab?)".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::invalid(
        given.origin.describe(),
        problem,
        "Give a plain path.",
    ))
}

/// The names of `SUPAKEYS_KONG_ENV`: comma-separated variable names, none of them one that
/// supakeys reads or fills in itself (a secret would land in the world-readable kong.yml).
fn kong_env_names(given: &Given) -> Result<Vec<String>> {
    const FIX: &str = "List the variables your kong template takes from Kong's environment, comma-separated, e.g. KONG_STORAGE_CONNECT_TIMEOUT,KONG_STORAGE_READ_TIMEOUT; or unset it.";
    let bad = |problem: String| Error::invalid(given.origin.describe(), problem, FIX);
    let mut names = Vec::new();
    for name in given.value.expose().split(',').map(str::trim) {
        let valid = name.len() <= MAX_KONG_ENV_NAME_BYTES
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if name.is_empty() {
            return Err(bad(
                "has an empty name (two commas in a row, or one at an end)".into(),
            ));
        }
        if !valid {
            return Err(bad(format!(
                "names \"{}\", which is not a variable name (letters, digits and _, not starting with a digit, at most {MAX_KONG_ENV_NAME_BYTES} bytes)",
                name.escape_debug()
            )));
        }
        if PLACEHOLDERS.contains(&name) {
            return Err(bad(format!(
                "names {name}, a placeholder supakeys fills in itself; remove it from the list"
            )));
        }
        if name.starts_with("SUPAKEYS_")
            || SECRETS.contains(&name)
            || SETTINGS.iter().any(|d| d.env == name)
        {
            return Err(bad(format!(
                "names {name}, a variable supakeys reads itself; it cannot be a Kong setting too (and a secret must not go into kong.yml, which every service reads)"
            )));
        }
        names.push(name.to_owned());
    }
    if names.len() > MAX_KONG_ENV_NAMES {
        return Err(bad(format!(
            "names {} variables; at most {MAX_KONG_ENV_NAMES} are supported",
            names.len()
        )));
    }
    Ok(names)
}

/// A value filled into kong.yml for `SUPAKEYS_KONG_ENV`: bounded, one line, and without
/// `$` (supakeys would take it for a placeholder of its own).
fn check_kong_env_value(origin: &str, value: &str) -> Result<()> {
    let problem = if value.len() > MAX_KONG_ENV_VALUE_BYTES {
        format!("is longer than {MAX_KONG_ENV_VALUE_BYTES} bytes")
    } else if value.chars().any(char::is_control) {
        "contains a control character (a newline or tab?)".to_owned()
    } else if value.contains('$') {
        "contains '$', which supakeys would read as a placeholder in kong.yml".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::invalid(
        origin.to_owned(),
        problem,
        "Give the plain value Kong should get (a number, true or false, a word), or unset it.",
    ))
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
