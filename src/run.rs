//! The commands: `init`, `check`, `print-env`, `keys …`, `doctor`. Each loads the configuration, does its work
//! and returns an error that `main` turns into an exit code.

use crate::cli::{Cli, Command, KeysCommand};
use crate::config::{Home, Inputs, LogFormat};
use crate::error::{Error, Result, exit};
use crate::kubernetes::KubeStore;
use crate::state::{self, Change, Refused, Transition};
use crate::store::{DirStore, Store};
use std::io::Write;

/// Runs the command line and returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    let inputs = match Inputs::load(cli.settings) {
        Ok(inputs) => inputs,
        Err(e) => {
            init_logging(LogFormat::Text, tracing::Level::INFO);
            tracing::error!("{e}");
            return e.code();
        }
    };
    let logging = inputs
        .log_format()
        .and_then(|f| Ok((f, inputs.log_level()?)));
    let (format, level) = match logging {
        Ok(settings) => settings,
        Err(e) => {
            init_logging(LogFormat::Text, tracing::Level::INFO);
            tracing::error!("{e}");
            return e.code();
        }
    };
    init_logging(format, level);
    for note in inputs.notes() {
        tracing::warn!("{note}");
    }
    let result = match cli.command.unwrap_or(Command::Init) {
        Command::Init => init(&inputs),
        Command::Check => check(&inputs),
        Command::PrintEnv { init: also_init } => print_env(&inputs, also_init),
        Command::Keys(KeysCommand::List { format }) => list_format(format)
            .and_then(|json| crate::keys::list(read_only(&inputs)?.as_ref(), json)),
        Command::Keys(KeysCommand::Standby) => update(&inputs, Op::Standby),
        Command::Keys(KeysCommand::Rotate { now }) => update(&inputs, Op::Rotate { now }),
        Command::Keys(KeysCommand::Revoke { kid }) => {
            revoke_kid(kid).and_then(|kid| update(&inputs, Op::Revoke(kid)))
        }
        Command::Doctor(args) => {
            read_only(&inputs).and_then(|store| crate::doctor::run(&inputs, store.as_ref(), args))
        }
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            tracing::error!("{e}");
            e.code()
        }
    }
}

/// Standard error for the log, ignoring write errors: a log reader that went away (a
/// closed pipe, `2>&1 | head -1`) must never stop or abort a run. Rust ignores SIGPIPE, so
/// such a write fails with EPIPE; tracing-subscriber would report that with `eprintln!`,
/// which panics on the same closed stderr, so its internal error log is off as well.
///
/// Each event arrives in one write, ending with its newline. In the text format any other
/// control character in it (a file name, a value from a file or a service) is escaped, so
/// no log line can clear a terminal or forge another line. JSON escapes C0 controls itself;
/// DEL, C1 and bidirectional controls, which it leaves, become `\uXXXX` escapes (they only
/// occur inside JSON strings, where that escape means the same character).
struct LossyStderr {
    text: bool,
}

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        let body = line.strip_suffix('\n').unwrap_or(&line);
        let escaped = if self.text {
            crate::escape::text(body).into_owned()
        } else {
            body.chars()
                .map(|c| match c {
                    c if crate::escape::is_unsafe(c) => format!("\\u{:04x}", u32::from(c)),
                    c => c.to_string(),
                })
                .collect()
        };
        let _ = std::io::stderr().write_all(format!("{escaped}\n").as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn init_logging(format: LogFormat, level: tracing::Level) {
    let text = format == LogFormat::Text;
    let builder = tracing_subscriber::fmt()
        .with_writer(move || LossyStderr { text })
        .log_internal_errors(false)
        .with_max_level(level)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// What a run does to the state besides reconciling it with the inputs.
enum Op {
    Init,
    Standby,
    Rotate { now: bool },
    Revoke(String),
}

/// `keys list --format`: `Ok(true)` for json.
fn list_format(format: Option<std::ffi::OsString>) -> Result<bool> {
    match format.as_ref().map(|f| f.to_str()) {
        None | Some(Some("table")) => Ok(false),
        Some(Some("json")) => Ok(true),
        Some(other) => Err(Error::invalid(
            "--format",
            if other.is_none() {
                "is not valid UTF-8"
            } else {
                "must be table or json"
            },
            "Leave it out for a table.",
        )),
    }
}

/// The KID argument of `keys revoke`: UTF-8 and a well-formed key id (it is echoed in
/// messages), reported under its own name rather than `--kid`/`SUPAKEYS_KID`.
fn revoke_kid(kid: std::ffi::OsString) -> Result<String> {
    const NAME: &str = "KID (the argument of keys revoke)";
    let fix = "Give the kid of a previous or standby key, as `supakeys keys list` shows it.";
    let text = kid
        .into_string()
        .map_err(|_| Error::invalid(NAME, "is not valid UTF-8", fix))?;
    match crate::jwk::Kid::parse(&text) {
        Some(kid) => Ok(kid.to_string()),
        None => Err(Error::invalid(
            NAME,
            match crate::error::stray_whitespace(&text) {
                Some(ws) => format!("{ws}; a kid is 1-128 characters of A-Z a-z 0-9 . _ -"),
                None => "is not a key id (1-128 characters of A-Z a-z 0-9 . _ -)".to_owned(),
            },
            fix,
        )),
    }
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Init => "init",
            Op::Standby => "standby",
            Op::Rotate { .. } => "rotate",
            Op::Revoke(_) => "revoke",
        }
    }
}

/// `supakeys init`: validate everything, then lock, reconcile the state and write.
pub fn init(inputs: &Inputs) -> Result<()> {
    update(inputs, Op::Init)
}

/// Init, or a lifecycle transition: one read-modify-write through the store (the locked
/// directory, or the Secrets with resourceVersion preconditions), with `state.json` written
/// first so that a crash leaves either the old or the new state.
fn update(inputs: &Inputs, op: Op) -> Result<()> {
    let base = inputs.config(crate::clock::now())?;
    let home = inputs.home()?;
    let mut store = open_store(&home, base.lock_timeout)?;
    let kong_path = store.path_of(crate::render::KONG_FILE);
    let state_path = store.path_of(state::FILE);
    // What the last plan decided, logged once the store applied it (a Kubernetes store
    // that meets a concurrent change plans again, on what it reads then).
    let mut outcome: Option<Outcome> = None;
    let applied = store.update(&mut |loaded| {
        let adopted;
        let config = if loaded.adoptable.is_empty() {
            &base
        } else {
            adopted = inputs.adopting(&loaded.adoptable).config(base.now)?;
            &adopted
        };
        if loaded.committed {
            // The transition is in the stored state already: only reconcile, and keep what
            // the attempt that made it reported.
            let (files, _) = plan(config, &Op::Init, loaded, &kong_path, &state_path)?;
            return Ok(files);
        }
        let (files, planned) = plan(config, &op, loaded, &kong_path, &state_path)?;
        outcome = Some(planned);
        Ok(files)
    })?;
    let outcome = outcome.expect("the store planned");
    for note in &outcome.notes {
        tracing::warn!("{note}");
    }
    log_changes(&outcome.changes);
    match &outcome.transition {
        Some(Transition::Done(what)) => tracing::info!("{what}"),
        Some(Transition::Unchanged(why)) => tracing::info!("nothing to do: {why}"),
        None => {}
    }
    if let Some(made) = &outcome.promoted {
        tracing::warn!(
            "{made}; promoting it at once: verifiers that cached the JWKS reject its tokens until their cache expires (10 minutes for supabase-js)"
        );
    }
    if outcome.transition.is_some() {
        print_after_change(&store.after_change(&applied));
    }
    let ready = match home {
        Home::Dir(_) => "keys directory is ready",
        Home::Kubernetes(_) => "Secrets are ready",
    };
    tracing::info!(
        kid = %outcome.kid,
        alg = outcome.alg,
        dir = %store.location(),
        written = %applied.written.join(","),
        mode_fixed = %applied.mode_fixed.join(","),
        owner_fixed = %applied.owner_fixed.join(","),
        unchanged = applied.unchanged.len(),
        "{ready}"
    );
    Ok(())
}

/// Opens the store the settings name: the keys directory, or the Kubernetes Secrets.
fn open_store(home: &Home, lock_timeout: std::time::Duration) -> Result<Box<dyn Store>> {
    Ok(match home {
        Home::Dir(path) => Box::new(DirStore::open(path, lock_timeout)?),
        Home::Kubernetes(settings) => Box::new(KubeStore::connect(settings)?),
    })
}

/// The store for a command that only reads (and so never waits for the directory lock).
fn read_only(inputs: &Inputs) -> Result<Box<dyn Store>> {
    open_store(&inputs.home()?, std::time::Duration::ZERO)
}

/// What one plan decided, for the log.
struct Outcome {
    notes: Vec<String>,
    changes: Vec<Change>,
    transition: Option<Transition>,
    /// `keys rotate --now`: the standby key it made and promoted.
    promoted: Option<String>,
    kid: String,
    alg: &'static str,
}

/// The pure part of a run: from the configuration and what the store loaded, every file.
fn plan(
    config: &crate::config::Config,
    op: &Op,
    loaded: crate::store::Loaded,
    kong_path: &std::path::Path,
    state_path: &std::path::Path,
) -> Result<(Vec<crate::render::PlannedFile>, Outcome)> {
    if config.kong.is_none() && loaded.has_kong_file {
        return Err(Error::KongTemplateMissing {
            path: kong_path.to_owned(),
        });
    }
    let previous = loaded.state;
    state::warn_about_clock(config.now, previous.as_ref());
    if previous.is_none() && !matches!(op, Op::Init) {
        return Err(Error::NoState {
            path: state_path.to_owned(),
        });
    }
    let notes = if matches!(op, Op::Init) {
        state::unused_settings(previous.as_ref(), config)
    } else {
        Vec::new()
    };
    let (mut state, changes) = state::reconcile(previous, config).map_err(|e| match e {
        // The state may live elsewhere than `config.dir`: name where it is.
        Error::JwtKeysMismatch {
            given_kid,
            state_kids,
            ..
        } => Error::JwtKeysMismatch {
            state_path: state_path.to_owned(),
            given_kid,
            state_kids,
        },
        e => e,
    })?;
    let refused = |Refused(reason)| Error::Refused {
        command: op.name(),
        reason,
    };
    let mut promoted = None;
    let transition = match op {
        Op::Init => None,
        Op::Standby => Some(
            state
                .add_standby(config.key_spec, config.kid.clone(), config.now)?
                .map_err(refused)?,
        ),
        Op::Rotate { now: false } => Some(state.rotate(config.now).map_err(refused)?),
        Op::Rotate { now: true } => {
            if let Transition::Done(made) = state
                .add_standby(config.key_spec, config.kid.clone(), config.now)?
                .map_err(refused)?
            {
                promoted = Some(made);
            }
            Some(state.rotate(config.now).map_err(refused)?)
        }
        Op::Revoke(kid) => Some(state.revoke(kid, config.now).map_err(refused)?),
    };
    let files = crate::render::plan(config, &state)?;
    if let Some(file) = files.iter().find(|f| f.name == state::FILE)
        && file.bytes.len() as u64 > state::MAX_BYTES
    {
        return Err(Error::Refused {
            command: op.name(),
            reason: format!(
                "the state would grow beyond {} KiB; revoke previous keys first (`supakeys keys revoke KID`)",
                state::MAX_BYTES >> 10
            ),
        });
    }
    let key = state.current();
    let outcome = Outcome {
        notes,
        changes,
        transition,
        promoted,
        kid: key.kid().to_string(),
        alg: key.algorithm().as_str(),
    };
    Ok((files, outcome))
}

fn log_changes(changes: &[Change]) {
    for change in changes {
        match change {
            Change::Generated { kid, alg } => {
                tracing::info!(%kid, alg = alg.as_str(), "generated a new signing key");
            }
            Change::Adopted { kid } => {
                tracing::info!(%kid, "adopted the signing key from JWT_KEYS")
            }
            Change::OpaqueGenerated(kind) => {
                tracing::info!(variable = kind.variable(), "generated an opaque API key");
            }
            Change::OpaqueAdopted(kind) => {
                tracing::info!(
                    variable = kind.variable(),
                    "took the opaque API key from the environment"
                );
            }
            Change::JwtSecretChanged => tracing::warn!(
                "JWT_SECRET changed since the last run: the HS256 key follows, the signing key stays"
            ),
            Change::LegacyKeysChanged => tracing::warn!(
                "ANON_KEY/SERVICE_ROLE_KEY changed since the last run: the API tokens follow, the signing key stays"
            ),
            Change::TokensRenewed {
                why: state::Renewal::IssuedInFuture,
                old,
                new,
            } => tracing::warn!(
                old_iat = %crate::clock::date(old.iat),
                new_exp = %crate::clock::date(new.exp),
                "re-minted the API tokens: they were issued at {}, ahead of this clock (a run had its clock ahead), and PostgREST refuses them (\"JWT issued at future\") until then. Services get the new ones from the files; give clients the new ANON_KEY (supakeys print-env): the old one does not work before that date",
                crate::clock::date(old.iat)
            ),
            Change::TokensRenewed { why, old, new } => {
                let why = match why {
                    state::Renewal::Expired => "they expired",
                    state::Renewal::Due => "less than a fifth of their lifetime was left",
                    state::Renewal::TtlChanged => "SUPAKEYS_TOKEN_TTL differs from their lifetime",
                    state::Renewal::IssuedInFuture => unreachable!("logged above"),
                };
                tracing::warn!(
                    old_exp = %crate::clock::date(old.exp),
                    new_exp = %crate::clock::date(new.exp),
                    "renewed the minted API tokens ({why}): services get the new ones from the files; clients holding the old ANON_KEY keep working until it expires, give them the new one (supakeys print-env)"
                );
            }
            Change::Hs256Rejected { origin } => tracing::warn!(
                "{origin}=reject: legacy HS256 is retired, and state.json records it (later runs keep it until SUPAKEYS_LEGACY_HS256=accept). Services now use the asymmetric API tokens; clients still on the legacy ANON_KEY/SERVICE_ROLE_KEY are refused (give them the opaque sb_publishable_/sb_secret_ keys), and Studio's HS256 role-impersonation tokens stop working"
            ),
            Change::Hs256Accepted {
                origin,
                rejected_since,
            } => tracing::warn!(
                "{origin}=accept: legacy HS256 is accepted again (it was retired {}): JWT_SECRET verifies tokens at every verifier once more and HS256 is back in Auth's valid methods. If that is not what you meant, set SUPAKEYS_LEGACY_HS256=reject and run again",
                crate::state::since(*rejected_since)
            ),
        }
    }
}

/// Tells the operator which services must reload or restart to see the new files. The
/// files are written by then: a closed standard output only costs the hint (logged too).
fn print_after_change(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!(
            "cannot write to standard output ({e}); the files are written. {}",
            text.trim_end().replace('\n', ";")
        );
    }
}

/// `supakeys check`.
fn check(inputs: &Inputs) -> Result<()> {
    let config = if inputs.has_jwt_secret() {
        Some(inputs.config(crate::clock::now())?)
    } else {
        None
    };
    let store = read_only(inputs)?;
    let problems = crate::check::check(store.as_ref(), config.as_ref())?;
    for problem in &problems {
        tracing::error!("{problem}");
    }
    if problems.is_empty() {
        tracing::info!(store = %store.location(), "check passed");
        Ok(())
    } else {
        Err(Error::CheckFailed {
            problems: problems.len(),
        })
    }
}

/// `supakeys print-env`: supabase.env to stdout, for pasting into a panel by hand.
fn print_env(inputs: &Inputs, also_init: bool) -> Result<()> {
    if also_init {
        init(inputs)?;
    }
    let store = read_only(inputs)?;
    let bytes = store.read_to_show("supabase.env")?.ok_or(Error::NoState {
        path: store.path_of("supabase.env"),
    })?;
    let bytes = zeroize::Zeroizing::new(bytes);
    // The file as supakeys wrote it has no control character but its newlines; one that
    // another writer of the directory edited may, and they are not passed to a terminal.
    let shown = zeroize::Zeroizing::new(
        crate::escape::lines(&String::from_utf8_lossy(&bytes)).into_owned(),
    );
    let mut out = std::io::stdout().lock();
    out.write_all(shown.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| Error::Output { source })
}
