//! Every failure an operator can meet, with the file or variable it concerns, what to do
//! about it, and the exit code it maps to.
//!
//! Messages never contain secret values: variants carry names, paths and descriptions of
//! the problem, not the offending input.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

/// Exit codes, documented in the README. `main` maps every error to one of these.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// A bug or an unexpected failure of the operating system (no randomness).
    pub const INTERNAL: i32 = 1;
    /// Bad input: a variable, flag, env file, `JWT_KEYS` or kong template is wrong.
    pub const BAD_INPUT: i32 = 2;
    /// The existing `state.json` is corrupt, inconsistent or from a newer supakeys.
    pub const BAD_STATE: i32 = 3;
    /// Reading or writing the directory failed (missing, permissions, disk full, symlink);
    /// in Kubernetes mode: the API server failed, refused the token (401) or a request
    /// (403, RBAC), or one of the Secrets cannot be written (immutable, managed by Helm).
    pub const IO: i32 = 4;
    /// Another supakeys held the directory lock for longer than the timeout; in Kubernetes
    /// mode: the Secrets kept changing under concurrent writers through every retry.
    pub const LOCK_TIMEOUT: i32 = 5;
    /// `supakeys check` found problems.
    pub const CHECK_FAILED: i32 = 6;
    /// `supakeys doctor`: the running deployment does not match the keys.
    pub const DEPLOYMENT_MISMATCH: i32 = 7;
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug)]
pub enum Error {
    /// A required variable is unset or empty.
    MissingInput {
        name: &'static str,
        fix: &'static str,
    },
    /// A variable or flag has a value supakeys cannot use. `name` says where the value came
    /// from: `--alg`, `SUPAKEYS_ALG`, or `SUPAKEYS_ALG (in /path/.env)`.
    InvalidInput {
        name: Cow<'static, str>,
        problem: String,
        fix: String,
    },
    /// `--env-file` names a file that cannot be read (missing, not a regular file, too big).
    EnvFileRead { path: PathBuf, problem: String },
    /// A line of an env file cannot be read as Docker Compose reads it.
    EnvFileSyntax {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    /// The kong template cannot be read, is not YAML, or has a placeholder without a value.
    KongTemplate { path: String, problem: String },
    /// The directory has a `kong.yml` that no template keeps up to date any more.
    KongTemplateMissing { path: PathBuf },
    /// `JWT_KEYS` holds an asymmetric key that the state does not know.
    JwtKeysMismatch {
        state_path: PathBuf,
        given_kid: String,
        state_kids: String,
    },
    /// `state.json` exists but cannot be trusted.
    StateCorrupt { path: PathBuf, problem: String },
    /// `state.json` was written by a newer supakeys.
    StateTooNew {
        path: PathBuf,
        version: u64,
        written_by: Option<String>,
        /// The schema versions this supakeys reads.
        reads: std::ops::RangeInclusive<u64>,
    },
    /// The output directory does not exist or is not a directory.
    DirMissing { path: PathBuf },
    /// A file supakeys manages is a symlink (or not a regular file); it will not write through it.
    NotARegularFile { path: PathBuf, what: &'static str },
    /// A file supakeys manages is bigger than any file it writes.
    TooLarge { path: PathBuf, limit: u64 },
    /// A managed file belongs to another uid and this one may not read it.
    NotReadable { path: PathBuf, owner: u32, uid: u32 },
    /// Standard output could not be written (closed pipe, full disk).
    Output { source: std::io::Error },
    /// `supakeys check` or `print-env` needs a state that is not there.
    NoState { path: PathBuf },
    /// A read, write, rename, sync or permission change failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another process kept the directory lock for too long.
    LockTimeout { path: PathBuf, seconds: u64 },
    /// The operating system gave no randomness.
    Randomness { source: String },
    /// A `keys` command cannot be applied to the current state.
    Refused {
        command: &'static str,
        reason: String,
    },
    /// `supakeys check` found this many problems (each already printed).
    CheckFailed { problems: usize },
    /// `supakeys doctor` found this many checks failing (each already printed).
    DoctorFailed { failed: usize, dir: PathBuf },
    /// A request to the Kubernetes API failed: network, TLS, or an answer supakeys cannot use.
    KubernetesApi { action: String, problem: String },
    /// The API server did not accept the service account token (401).
    KubernetesUnauthorized { action: String, token: PathBuf },
    /// RBAC refused a request (403): the Role lacks the rule for this verb and name.
    KubernetesForbidden {
        verb: &'static str,
        /// `None` for `create`, which RBAC cannot limit by name.
        name: Option<String>,
        namespace: String,
    },
    /// Every attempt met a concurrent change of the Secrets (409 each time).
    KubernetesConflicts { attempts: u32, location: String },
    /// A Secret supakeys would write is larger than it may be.
    KubernetesSecretTooLarge {
        name: String,
        bytes: usize,
        limit: usize,
    },
    /// A Secret supakeys must write exists but cannot be written by it.
    KubernetesSecretUnusable { name: String, problem: String },
}

impl Error {
    pub fn invalid(
        name: impl Into<Cow<'static, str>>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Error::InvalidInput {
            name: name.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub fn state(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::StateCorrupt {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// The process exit code for this error (see [`exit`]).
    pub fn code(&self) -> i32 {
        match self {
            Error::MissingInput { .. }
            | Error::InvalidInput { .. }
            | Error::EnvFileSyntax { .. }
            | Error::KongTemplate { .. }
            | Error::KongTemplateMissing { .. }
            | Error::JwtKeysMismatch { .. }
            | Error::Refused { .. } => exit::BAD_INPUT,
            Error::EnvFileRead { .. } => exit::BAD_INPUT,
            Error::StateCorrupt { .. } | Error::StateTooNew { .. } | Error::NoState { .. } => {
                exit::BAD_STATE
            }
            Error::DirMissing { .. }
            | Error::NotARegularFile { .. }
            | Error::TooLarge { .. }
            | Error::NotReadable { .. }
            | Error::Output { .. }
            | Error::Io { .. } => exit::IO,
            Error::LockTimeout { .. } => exit::LOCK_TIMEOUT,
            Error::Randomness { .. } => exit::INTERNAL,
            Error::CheckFailed { .. } => exit::CHECK_FAILED,
            Error::DoctorFailed { .. } => exit::DEPLOYMENT_MISMATCH,
            Error::KubernetesApi { .. }
            | Error::KubernetesUnauthorized { .. }
            | Error::KubernetesForbidden { .. }
            | Error::KubernetesSecretUnusable { .. } => exit::IO,
            Error::KubernetesConflicts { .. } => exit::LOCK_TIMEOUT,
            Error::KubernetesSecretTooLarge { .. } => exit::BAD_INPUT,
        }
    }
}

/// Messages carry paths and, in a few places, text from a file (the version that wrote a
/// state, a template's placeholder): control characters in them are escaped, whatever the
/// variant (see [`crate::escape`]).
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::escape::text(&Message(self).to_string()))
    }
}

/// The message of an error, before escaping.
struct Message<'a>(&'a Error);

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Error::MissingInput { name, fix } => write!(f, "{name} is not set. {fix}"),
            Error::InvalidInput { name, problem, fix } => write!(f, "{name}: {problem}. {fix}"),
            Error::EnvFileRead { path, problem } => write!(
                f,
                "cannot read the env file {}: it {problem}. Check the path given to --env-file or SUPAKEYS_ENV_FILE.",
                path.display()
            ),
            Error::EnvFileSyntax {
                path,
                line,
                problem,
            } => write!(
                f,
                "{}:{line}: {problem}. supakeys reads the env file as Docker Compose v2 reads a \
                 project's .env, and refuses what it cannot read the same way (README: \"The env \
                 file\").",
                path.display()
            ),
            Error::KongTemplate { path, problem } => write!(f, "kong template {path}: {problem}"),
            Error::KongTemplateMissing { path } => write!(
                f,
                "{} exists, but SUPAKEYS_KONG_TEMPLATE is not set, so it would keep old keys while \
                 the other files change (supakeys has no built-in template). Set \
                 SUPAKEYS_KONG_TEMPLATE to your Kong template (upstream's volumes/api/kong.yml; \
                 docker-compose.supakeys.yml mounts it), or delete kong.yml if no Kong reads it.",
                path.display()
            ),
            Error::JwtKeysMismatch {
                state_path,
                given_kid,
                state_kids,
            } => write!(
                f,
                "JWT_KEYS holds the key {given_kid}, but {} holds {state_kids}; supakeys never \
                 switches keys silently (it would log every user out). Remove JWT_KEYS from the \
                 environment: the state already holds the key in use.",
                state_path.display()
            ),
            Error::StateCorrupt { path, problem } => write!(
                f,
                "{} cannot be trusted: {problem}. Nothing was changed. Restore the file from a \
                 backup; to start over with a new keypair instead (this logs every user out), \
                 move it away and run supakeys again.",
                path.display()
            ),
            Error::StateTooNew {
                path,
                version,
                written_by,
                reads,
            } => {
                write!(
                    f,
                    "{} has schema version {version}; this supakeys ({}) reads schema versions {} to {}. \
                     Nothing was changed. ",
                    path.display(),
                    env!("CARGO_PKG_VERSION"),
                    reads.start(),
                    reads.end(),
                )?;
                match written_by {
                    Some(v) => write!(
                        f,
                        "It was written by supakeys {v}: use that version or a newer one (set SUPAKEYS_IMAGE), or see the README's downgrade steps."
                    ),
                    None => write!(
                        f,
                        "Use the supakeys version that wrote it, or a newer one (set SUPAKEYS_IMAGE)."
                    ),
                }
            }
            Error::DirMissing { path } => write!(
                f,
                "the directory {} does not exist or is not a directory. Create it or mount the \
                 keys volume there (set SUPAKEYS_DIR or --dir to use another path).",
                path.display()
            ),
            Error::NotARegularFile { path, what } => write!(
                f,
                "{} is {what}, not a regular file; supakeys neither reads nor writes through it. \
                 Remove it and run supakeys again.",
                path.display()
            ),
            Error::TooLarge { path, limit } => write!(
                f,
                "{} is larger than {} KiB, bigger than any file supakeys writes; it was not read. \
                 Remove it (or restore it from a backup) and run supakeys again.",
                path.display(),
                limit / 1024
            ),
            Error::NotReadable { path, owner, uid } => write!(
                f,
                "cannot read {}: it belongs to uid {owner} and this run is uid {uid}. Run supakeys \
                 once as root (it gives every file to the directory's owner), or run it as uid {owner}.",
                path.display()
            ),
            Error::Output { source } => write!(
                f,
                "cannot write to standard output: {source}. Its reader went away (e.g. a pipe \
                 closed early); redirect the output to a file instead."
            ),
            Error::NoState { path } => write!(
                f,
                "{} does not exist. Run `supakeys init` first.",
                path.display()
            ),
            Error::Io {
                action,
                path,
                source,
            } => write!(
                f,
                "cannot {action} {}: {source}. Check that the directory is writable by this \
                 user (uid and mode) and that the disk is not full.",
                path.display()
            ),
            Error::LockTimeout { path, seconds } => write!(
                f,
                "another supakeys has held the lock on {} for more than {seconds}s. Wait for it \
                 to finish, or raise SUPAKEYS_LOCK_TIMEOUT.",
                path.display()
            ),
            Error::Randomness { source } => write!(
                f,
                "the operating system gave no randomness ({source}); cannot generate keys"
            ),
            Error::Refused { command, reason } => {
                write!(f, "keys {command}: {reason}. Nothing was changed.")
            }
            Error::CheckFailed { problems } => write!(
                f,
                "check found {problems} problem(s); run `supakeys init` to repair the files"
            ),
            Error::DoctorFailed { failed, dir } => write!(
                f,
                "doctor: {failed} check(s) failed: the running deployment does not match the keys in {}; \
                 each failed line above names the likely cause and the fix",
                dir.display()
            ),
            Error::KubernetesApi { action, problem } => write!(
                f,
                "Kubernetes API: cannot {action}: {problem}. Check that the API server is \
                 reachable from the pod (KUBERNETES_SERVICE_HOST/PORT) and read its message above."
            ),
            Error::KubernetesUnauthorized { action, token } => write!(
                f,
                "Kubernetes API: cannot {action}: the API server refused the service account token \
                 {} (401 Unauthorized). The token is expired or not from this cluster: run supakeys \
                 in a pod with the supakeys ServiceAccount and automountServiceAccountToken left on.",
                token.display()
            ),
            Error::KubernetesForbidden {
                verb,
                name,
                namespace,
            } => match name {
                Some(name) => write!(
                    f,
                    "Kubernetes API: RBAC forbids {verb} on secrets \"{name}\" in namespace \
                     {namespace} (403 Forbidden). Nothing was written. Add to the Role bound to \
                     supakeys' ServiceAccount the rule {{apiGroups: [\"\"], resources: [\"secrets\"], \
                     verbs: [\"{verb}\"], resourceNames: [\"{name}\"]}} (deploy/kubernetes/rbac.yaml has it)."
                ),
                None => write!(
                    f,
                    "Kubernetes API: RBAC forbids {verb} on secrets in namespace {namespace} \
                     (403 Forbidden). Nothing was written. Add to the Role bound to supakeys' \
                     ServiceAccount the rule {{apiGroups: [\"\"], resources: [\"secrets\"], verbs: \
                     [\"{verb}\"]}} without resourceNames: RBAC cannot limit {verb} by name \
                     (deploy/kubernetes/rbac.yaml has it)."
                ),
            },
            Error::KubernetesConflicts { attempts, location } => write!(
                f,
                "{location} changed under supakeys at each of {attempts} attempts (409 Conflict): \
                 another writer keeps changing them. Stop the other writer (another supakeys Job?) \
                 and run supakeys again."
            ),
            Error::KubernetesSecretTooLarge { name, bytes, limit } => write!(
                f,
                "the Secret {name} would hold {} KiB, more than the {} KiB supakeys writes into one \
                 Secret (the API allows 1 MiB of data, and its answer must stay readable). Nothing \
                 was written. Revoke previous keys (`supakeys keys revoke KID`).",
                bytes.div_ceil(1024),
                limit / 1024
            ),
            Error::KubernetesSecretUnusable { name, problem } => {
                write!(f, "the Secret {name} {problem}. Nothing was written.")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Names the whitespace a value starts or ends with, or holds, if any: copy-paste leaves
/// newlines and carriage returns that are invisible in a message.
pub fn stray_whitespace(value: &str) -> Option<String> {
    let name = |c: char| match c {
        '\n' => "a newline".to_owned(),
        '\r' => "a carriage return".to_owned(),
        '\t' => "a tab".to_owned(),
        ' ' => "a space".to_owned(),
        c => format!("the whitespace character U+{:04X}", c as u32),
    };
    if let Some(c) = value.chars().last().filter(|c| c.is_whitespace()) {
        Some(format!("ends with {}", name(c)))
    } else if let Some(c) = value.chars().next().filter(|c| c.is_whitespace()) {
        Some(format!("starts with {}", name(c)))
    } else {
        value
            .chars()
            .find(|c| c.is_whitespace())
            .map(|c| format!("contains {}", name(c)))
    }
}
