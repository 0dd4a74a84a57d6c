//! The commands: `init`, `check`, `print-env`, `keys …`, `doctor`. Each loads the configuration, does its work
//! and returns an error that `main` turns into an exit code.

use crate::cli::{Cli, Command, KeysCommand};
use crate::config::{Inputs, LogFormat};
use crate::error::{Error, Result, exit};
use crate::state::{self, Change, Refused, Transition};
use crate::store::Dir;
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
        Command::Keys(KeysCommand::List { format }) => {
            list_format(format).and_then(|json| crate::keys::list(&inputs, json))
        }
        Command::Keys(KeysCommand::Standby) => update(&inputs, Op::Standby),
        Command::Keys(KeysCommand::Rotate { now }) => update(&inputs, Op::Rotate { now }),
        Command::Keys(KeysCommand::Revoke { kid }) => {
            revoke_kid(kid).and_then(|kid| update(&inputs, Op::Revoke(kid)))
        }
        Command::Doctor(args) => crate::doctor::run(&inputs, args),
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
struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn init_logging(format: LogFormat, level: tracing::Level) {
    let builder = tracing_subscriber::fmt()
        .with_writer(|| LossyStderr)
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

/// Init, or a lifecycle transition: one locked read-modify-write of the directory, with
/// `state.json` written first so a crash leaves either the old or the new state.
fn update(inputs: &Inputs, op: Op) -> Result<()> {
    let config = inputs.config(crate::clock::now())?;
    let dir = Dir::open(&config.dir)?;
    warn_about_owner(&dir);
    let lock = dir.lock(config.lock_timeout)?;
    dir.remove_stale_temp_files(&lock)?;
    if config.kong.is_none() && dir.entry(crate::render::KONG_FILE)?.is_some() {
        return Err(Error::KongTemplateMissing {
            path: config.dir.join(crate::render::KONG_FILE),
        });
    }
    let previous = dir.read_state()?;
    state::warn_about_clock(config.now, previous.as_ref());
    if previous.is_none() && !matches!(op, Op::Init) {
        return Err(Error::NoState {
            path: config.dir.join(state::FILE),
        });
    }
    if matches!(op, Op::Init) {
        for note in state::unused_settings(previous.as_ref(), &config) {
            tracing::warn!("{note}");
        }
    }
    let (mut state, changes) = state::reconcile(previous, &config)?;
    for change in &changes {
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
    let refused = |Refused(reason)| Error::Refused {
        command: op.name(),
        reason,
    };
    let transition = match &op {
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
                tracing::warn!(
                    "{made}; promoting it at once: verifiers that cached the JWKS reject its tokens until their cache expires (10 minutes for supabase-js)"
                );
            }
            Some(state.rotate(config.now).map_err(refused)?)
        }
        Op::Revoke(kid) => Some(state.revoke(kid, config.now).map_err(refused)?),
    };
    match &transition {
        Some(Transition::Done(what)) => tracing::info!("{what}"),
        Some(Transition::Unchanged(why)) => tracing::info!("nothing to do: {why}"),
        None => {}
    }
    let plan = crate::render::plan(&config, &state)?;
    if let Some(file) = plan.iter().find(|f| f.name == state::FILE)
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
    let applied = dir.apply(&lock, &plan)?;
    if transition.is_some() {
        print_reloads(&applied.written);
    }
    let key = state.current();
    tracing::info!(
        kid = %key.kid(),
        alg = key.algorithm().as_str(),
        dir = %config.dir.display(),
        written = %applied.written.join(","),
        mode_fixed = %applied.mode_fixed.join(","),
        owner_fixed = %applied.owner_fixed.join(","),
        unchanged = applied.unchanged.len(),
        "keys directory is ready"
    );
    Ok(())
}

/// A run that cannot give its files to the directory's owner says so: services running as
/// that owner (GoTrue as uid 1000 in the image) cannot read the 0600 files it writes.
fn warn_about_owner(dir: &Dir) {
    if dir.foreign_run() {
        let owner = dir.owner().uid;
        tracing::warn!(
            dir = %dir.path().display(),
            "the directory belongs to uid {owner} but this run is uid {}: the files it writes belong to uid {}, and a service running as uid {owner} cannot read auth.env or supabase.env (0600). Run supakeys as uid {owner}, or as root (it then gives the files to uid {owner})",
            crate::store::effective_uid(),
            crate::store::effective_uid(),
        );
    }
}

/// Tells the operator which services must reload or restart to see the new files. The
/// files are written by then: a closed standard output only costs the hint (logged too).
fn print_reloads(written: &[&str]) {
    let mut lines = Vec::new();
    for (file, service, how) in crate::keys::READERS {
        let line = format!("  {service:<10} {how}");
        if written.contains(&file) && !lines.contains(&line) {
            lines.push(line);
        }
    }
    let text = if lines.is_empty() {
        "No file changed: nothing to restart.\n".to_owned()
    } else {
        format!(
            "Files changed. To apply them:\n{}\nthen run `supakeys doctor` (docker compose run --rm supakeys doctor) to check that every service uses them.\n",
            lines.join("\n")
        )
    };
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
    let dir = inputs.dir();
    let problems = crate::check::check(&dir, config.as_ref())?;
    for problem in &problems {
        tracing::error!("{problem}");
    }
    if problems.is_empty() {
        tracing::info!(dir = %dir.display(), "check passed");
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
    let dir_path = inputs.dir();
    let dir = Dir::open(&dir_path)?;
    let bytes = dir
        .read_to_show("supabase.env", crate::store::MAX_MANAGED_BYTES)?
        .ok_or(Error::NoState {
            path: dir_path.join("supabase.env"),
        })?;
    let bytes = zeroize::Zeroizing::new(bytes);
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .map_err(|source| Error::Output { source })
}
