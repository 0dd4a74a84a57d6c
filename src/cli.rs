//! Command-line flags and environment variables, declared once with clap.
//!
//! Secrets (`JWT_SECRET`, legacy keys, opaque keys, `JWT_KEYS`, `DASHBOARD_PASSWORD`) have
//! no flag: flags show up in `ps`. They are read from the environment or the env file in
//! [`crate::config`].

use crate::secret::Secret;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "supakeys",
    version,
    about = "Gives self-hosted Supabase asymmetric JWT signing keys: generates them once, \
             reuses them on every run, and writes the files each service reads.",
    after_help = "Secrets come from the environment or --env-file only: JWT_SECRET (required), \
                  ANON_KEY, SERVICE_ROLE_KEY, SUPABASE_PUBLISHABLE_KEY, SUPABASE_SECRET_KEY, \
                  JWT_KEYS, DASHBOARD_PASSWORD.\nExit codes: 0 ok, 1 internal, 2 bad input, \
                  3 bad state, 4 I/O or permission, 5 lock timeout, 6 check found problems, \
                  7 doctor: the deployment does not match the keys."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the keys directory (the default command).
    Init,
    /// Verify a keys directory offline; exits 6 listing each problem.
    Check,
    /// Print supabase.env (upstream's variable names) to stdout.
    PrintEnv {
        /// Run init first.
        #[arg(long)]
        init: bool,
    },
    /// Key lifecycle: list, standby, rotate, revoke.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check, through the API gateway, that the running services use these keys; exits 7
    /// naming the cause and the fix of each mismatch.
    Doctor(DoctorArgs),
}

/// `supakeys doctor`: one HTTP request per check; nothing is changed unless
/// --sign-in-anonymously asks for an anonymous user.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Base URL of the API gateway [default: http://api-gw:8000, its name inside the compose
    /// network]. From the host, pass the public URL (https:// needs a build with `--features tls`).
    #[arg(long, env = "SUPAKEYS_DOCTOR_URL", value_name = "URL")]
    pub url: Option<String>,
    /// A signed-in user's access token, to check which key Auth signs with (never printed).
    /// Prefer SUPAKEYS_ACCESS_TOKEN (flags show up in `ps`); `-` reads it from standard input.
    #[arg(
        long,
        env = "SUPAKEYS_ACCESS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = secret_value,
        conflicts_with = "sign_in_anonymously"
    )]
    pub access_token: Option<Secret>,
    /// Get a token by signing in anonymously (creates one anonymous user: the only change
    /// doctor makes, and only when asked).
    #[arg(long)]
    pub sign_in_anonymously: bool,
    /// `text` for people, `json` for scripts.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Seconds to wait for each answer: a number, or with s or m [default: 5].
    #[arg(long, env = "SUPAKEYS_DOCTOR_TIMEOUT", value_name = "SECONDS")]
    pub timeout: Option<String>,
}

/// Keeps a secret flag value out of `Debug` output from the moment it is parsed.
fn secret_value(text: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(text))
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Each key with its status and dates, legacy HS256 on/off, API token expiry.
    #[command(visible_alias = "status")]
    List {
        /// `table` for people, `json` for scripts.
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Generate a key that every verifier publishes but nothing signs with yet.
    Standby,
    /// Make the standby key the signing key; the current key keeps verifying as previous.
    Rotate {
        /// Create a standby key and promote it at once (verifiers with a cached JWKS will
        /// reject new tokens until their cache expires).
        #[arg(long)]
        now: bool,
    },
    /// Remove a previous or standby key from every JWKS and drop its private part.
    Revoke {
        /// The kid of the key to revoke.
        kid: String,
    },
}

/// Settings: each is a flag and an environment variable; an empty variable counts as unset.
/// Values not given either way are looked up in --env-file, then defaulted.
#[derive(Debug, Args)]
pub struct Settings {
    /// Dotenv file read before anything else; variables already in the environment win.
    #[arg(long, global = true, env = "SUPAKEYS_ENV_FILE", value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// The shared keys directory [default: /keys].
    #[arg(long, global = true, env = "SUPAKEYS_DIR", value_name = "DIR")]
    pub dir: Option<String>,
    /// Algorithm of a newly generated key: ES256 or RS256 [default: ES256].
    #[arg(long, global = true, env = "SUPAKEYS_ALG")]
    pub alg: Option<String>,
    /// RSA modulus size for RS256: 2048, 3072 or 4096 [default: 2048].
    #[arg(long, global = true, env = "SUPAKEYS_RSA_BITS")]
    pub rsa_bits: Option<String>,
    /// Key id of a newly generated key [default: a random UUID v4].
    #[arg(long, global = true, env = "SUPAKEYS_KID")]
    pub kid: Option<String>,
    /// `keep`: services keep the legacy ANON_KEY/SERVICE_ROLE_KEY; `resign`: the re-signed
    /// asymmetric tokens replace them [default: keep].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_LEGACY_API_KEYS",
        value_name = "MODE"
    )]
    pub legacy_api_keys: Option<String>,
    /// `accept`: verifiers keep accepting legacy HS256 tokens; `reject`: the legacy secret
    /// leaves every key set [default: accept].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_LEGACY_HS256",
        value_name = "MODE"
    )]
    pub legacy_hs256: Option<String>,
    /// A kong.yml template with $NAME placeholders [default: the built-in template].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_KONG_TEMPLATE",
        value_name = "PATH"
    )]
    pub kong_template: Option<String>,
    /// Lifetime of newly minted API tokens: seconds, or a number with s, m, h, d or y [default: 5y].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_TOKEN_TTL",
        value_name = "DURATION"
    )]
    pub token_ttl: Option<String>,
    /// Seconds to wait for another supakeys holding the directory lock [default: 60].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_LOCK_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub lock_timeout: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: Option<String>,
    /// Log level: error, warn, info, debug or trace [default: info].
    #[arg(long, global = true, env = "SUPAKEYS_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Public URL of Auth, used for Kong's OAuth metadata route (e.g. https://example.com/auth/v1).
    #[arg(long, global = true, env = "JWT_ISSUER", value_name = "URL")]
    pub jwt_issuer: Option<String>,
    /// Studio's basic-auth user name, for the kong template.
    #[arg(long, global = true, env = "DASHBOARD_USERNAME", value_name = "NAME")]
    pub dashboard_username: Option<String>,
}
