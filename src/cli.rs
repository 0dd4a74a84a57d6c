//! Command-line flags and environment variables, declared once with clap.
//!
//! Secrets (`JWT_SECRET`, legacy keys, opaque keys, `JWT_KEYS`, `DASHBOARD_PASSWORD`) have
//! no flag: flags show up in `ps`. They are read from the environment or the env file in
//! [`crate::config`].
//!
//! Every value is taken as an `OsString` and decoded in [`crate::config`], which can then
//! name the flag or variable whose value is not UTF-8 (clap's own message names neither).
//! [`parse`] also records which settings were given as flags, so that an error names
//! `--alg` rather than `SUPAKEYS_ALG` when the value came from the command line.

use crate::secret::Secret;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;

/// Parses the process's command line (exits with clap's message and code 2 on a bad one).
pub fn parse() -> Cli {
    parse_from(std::env::args_os())
}

/// Parses `args` like [`parse`]; for tests.
pub fn parse_from<I, T>(args: I) -> Cli
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Cli::command().get_matches_from(args);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.settings.from_command_line = from_command_line(&matches);
    cli
}

/// The ids of the settings given on the command line, at any subcommand level (global
/// flags may follow the subcommand).
fn from_command_line(matches: &ArgMatches) -> Vec<String> {
    let mut ids = Vec::new();
    let mut level = Some(matches);
    while let Some(m) = level {
        for id in m.ids() {
            if m.value_source(id.as_str()) == Some(ValueSource::CommandLine) {
                ids.push(id.as_str().to_owned());
            }
        }
        level = m.subcommand().map(|(_, sub)| sub);
    }
    ids
}

#[derive(Debug, Parser)]
#[command(
    name = "supakeys",
    version,
    about = "Gives self-hosted Supabase asymmetric JWT signing keys: generates them once, \
             reuses them on every run, and writes the files each service reads.",
    after_help = "Secrets come from the environment or --env-file only: JWT_SECRET (required), \
                  ANON_KEY, SERVICE_ROLE_KEY, SUPABASE_PUBLISHABLE_KEY, SUPABASE_SECRET_KEY, \
                  JWT_KEYS, DASHBOARD_PASSWORD.\nExit codes: 0 ok, 1 internal, 2 bad input, \
                  3 bad state, 4 I/O or permission (Kubernetes: API, 401/403), 5 lock timeout \
                  (Kubernetes: conflicts through every retry), 6 check found problems, \
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
/// --sign-in-anonymously asks for an anonymous user. Values are decoded in
/// [`crate::doctor`], which names the flag of a value that is not UTF-8.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Base URL of the API gateway [default: http://api-gw:8000, its name inside the compose
    /// network]. From elsewhere, pass the public https:// URL (plain http:// is refused beyond
    /// the local network: see --allow-plain-http).
    #[arg(long, env = "SUPAKEYS_DOCTOR_URL", value_name = "URL")]
    pub url: Option<OsString>,
    /// A signed-in user's access token, to check which key Auth signs with (never printed).
    /// Prefer SUPAKEYS_ACCESS_TOKEN (flags show up in `ps`); `-` reads it from standard input.
    #[arg(
        long,
        env = "SUPAKEYS_ACCESS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = secret_value
    )]
    pub access_token: Option<Secret>,
    /// Get a token by signing in anonymously (creates one anonymous user: the only change
    /// doctor makes, and only when asked). Not with --access-token (an empty
    /// SUPAKEYS_ACCESS_TOKEN counts as unset, so the two are checked in `doctor`, not here).
    #[arg(long)]
    pub sign_in_anonymously: bool,
    /// `text` for people, `json` for scripts [default: text].
    #[arg(long, value_name = "text|json")]
    pub format: Option<OsString>,
    /// Seconds to wait for the name lookup and for each answer: a number, or with s or m
    /// [default: 5]. A whole run ends within 4 times this.
    #[arg(long, env = "SUPAKEYS_DOCTOR_TIMEOUT", value_name = "SECONDS")]
    pub timeout: Option<OsString>,
    /// Send the secret key and service-role tokens over plain http:// to an address outside
    /// the local network (loopback, private, link-local or a compose service name), where
    /// anyone on the way can read them. Refused without this flag.
    #[arg(
        long,
        env = "SUPAKEYS_DOCTOR_ALLOW_PLAIN_HTTP",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub allow_plain_http: bool,
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
        /// `table` for people, `json` for scripts [default: table].
        #[arg(long, value_name = "table|json")]
        format: Option<OsString>,
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
        /// The kid of the key to revoke (its own clap id: `--kid` is the kid of a new key).
        #[arg(id = "revoke_kid", value_name = "KID")]
        kid: OsString,
    },
}

/// Settings: each is a flag and an environment variable; an empty variable counts as unset.
/// Values not given either way are looked up in --env-file, then defaulted.
#[derive(Debug, Args)]
pub struct Settings {
    /// Dotenv file read before anything else; variables already in the environment win.
    #[arg(long, global = true, env = "SUPAKEYS_ENV_FILE", value_name = "PATH")]
    pub env_file: Option<OsString>,
    /// The shared keys directory [default: /keys].
    #[arg(long, global = true, env = "SUPAKEYS_DIR", value_name = "DIR")]
    pub dir: Option<OsString>,
    /// Where the state and the output live: `dir` (the keys directory) or `kubernetes`
    /// (Secrets of the pod's namespace, through the API server) [default: dir].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_STORE",
        value_name = "dir|kubernetes"
    )]
    pub store: Option<OsString>,
    /// Kubernetes: the prefix of the Secrets supakeys writes: PREFIX-state, PREFIX-apikey
    /// (for the chart's secret.apikey.secretRef) and PREFIX-files [default: supakeys].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_KUBERNETES_SECRETS",
        value_name = "PREFIX"
    )]
    pub kubernetes_secrets: Option<OsString>,
    /// Kubernetes: key names of the apikey Secret that differ from the chart's, as the
    /// chart's secret.apikey.secretRefKey renames them: `jwtKeys=KEY,jwtJwks=KEY,…`.
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_KUBERNETES_APIKEY_KEYS",
        value_name = "NAME=KEY,…"
    )]
    pub kubernetes_apikey_keys: Option<OsString>,
    /// Kubernetes: a Secret with the chart's apikey keys whose keys a first run adopts (the
    /// release's hand-filled `RELEASE-supabase-apikey`, or an earlier secretRef Secret).
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_KUBERNETES_ADOPT",
        value_name = "SECRET"
    )]
    pub kubernetes_adopt: Option<OsString>,
    /// Kubernetes: the chart's Helm release, to name its Deployments in the restart lines
    /// [default: supabase].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_KUBERNETES_RELEASE",
        value_name = "RELEASE"
    )]
    pub kubernetes_release: Option<OsString>,
    /// Kubernetes: the service account directory (token, ca.crt, namespace) [default:
    /// /var/run/secrets/kubernetes.io/serviceaccount, where the kubelet mounts it].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_KUBERNETES_SERVICEACCOUNT",
        value_name = "DIR"
    )]
    pub kubernetes_serviceaccount: Option<OsString>,
    /// Algorithm of a newly generated key: ES256 or RS256 [default: ES256].
    #[arg(long, global = true, env = "SUPAKEYS_ALG")]
    pub alg: Option<OsString>,
    /// RSA modulus size for RS256: 2048, 3072 or 4096 [default: 2048].
    #[arg(long, global = true, env = "SUPAKEYS_RSA_BITS")]
    pub rsa_bits: Option<OsString>,
    /// Key id of a newly generated key [default: a random UUID v4].
    #[arg(long, global = true, env = "SUPAKEYS_KID")]
    pub kid: Option<OsString>,
    /// `keep`: services keep the legacy ANON_KEY/SERVICE_ROLE_KEY; `resign`: the re-signed
    /// asymmetric tokens replace them [default: keep].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_LEGACY_API_KEYS",
        value_name = "MODE"
    )]
    pub legacy_api_keys: Option<OsString>,
    /// `accept`: verifiers keep accepting legacy HS256 tokens; `reject`: the legacy secret
    /// leaves every key set [default: accept].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_LEGACY_HS256",
        value_name = "MODE"
    )]
    pub legacy_hs256: Option<OsString>,
    /// A kong.yml template with $NAME placeholders [default: none, no kong.yml].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_KONG_TEMPLATE",
        value_name = "PATH"
    )]
    pub kong_template: Option<OsString>,
    /// Comma-separated names of variables the kong template takes from Kong's environment
    /// (e.g. Coolify's KONG_STORAGE_CONNECT_TIMEOUT); supakeys fills them in from its own.
    #[arg(long, global = true, env = "SUPAKEYS_KONG_ENV", value_name = "NAMES")]
    pub kong_env: Option<OsString>,
    /// Lifetime of newly minted API tokens: seconds, or a number with s, m, h, d or y [default: 5y].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_TOKEN_TTL",
        value_name = "DURATION"
    )]
    pub token_ttl: Option<OsString>,
    /// Seconds to wait for another supakeys holding the directory lock [default: 60].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_LOCK_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub lock_timeout: Option<OsString>,
    /// Log format: text or json [default: text].
    #[arg(
        long,
        global = true,
        env = "SUPAKEYS_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: Option<OsString>,
    /// Log level: error, warn, info, debug or trace [default: info].
    #[arg(long, global = true, env = "SUPAKEYS_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<OsString>,
    /// Public URL of Auth, used for Kong's OAuth metadata route (e.g. https://example.com/auth/v1).
    #[arg(long, global = true, env = "JWT_ISSUER", value_name = "URL")]
    pub jwt_issuer: Option<OsString>,
    /// Studio's basic-auth user name, for the kong template.
    #[arg(long, global = true, env = "DASHBOARD_USERNAME", value_name = "NAME")]
    pub dashboard_username: Option<OsString>,
    /// The clap ids (field names) of the settings given as flags; the others came from
    /// the environment. Filled by [`parse`].
    #[arg(skip)]
    pub from_command_line: Vec<String>,
}
