//! The commands: `init`, `check`, `print-env`. Each loads the configuration, does its work
//! and returns an error that `main` turns into an exit code.

use crate::cli::{Cli, Command};
use crate::config::{Inputs, LogFormat};
use crate::error::{Error, Result, exit};
use crate::state::{self, Change, State};
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
    let result = match cli.command.unwrap_or(Command::Init) {
        Command::Init => init(&inputs),
        Command::Check => check(&inputs),
        Command::PrintEnv { init: also_init } => print_env(&inputs, also_init),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            tracing::error!("{e}");
            e.code()
        }
    }
}

fn init_logging(format: LogFormat, level: tracing::Level) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `supakeys init`: validate everything, then lock, reconcile the state and write.
pub fn init(inputs: &Inputs) -> Result<()> {
    let config = inputs.config(now())?;
    let dir = Dir::open(&config.dir)?;
    let lock = dir.lock(config.lock_timeout)?;
    dir.remove_stale_temp_files(&lock)?;
    let state_path = config.dir.join(state::FILE);
    let previous = dir
        .read(state::FILE)?
        .map(|bytes| State::parse(&bytes, &state_path))
        .transpose()?;
    let (state, changes) = state::reconcile(previous, &config)?;
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
        }
    }
    let plan = crate::render::plan(&config, &state)?;
    let applied = dir.apply(&lock, &plan)?;
    let key = state.current();
    tracing::info!(
        kid = %key.kid(),
        alg = key.algorithm().as_str(),
        dir = %config.dir.display(),
        written = %applied.written.join(","),
        mode_fixed = %applied.mode_fixed.join(","),
        unchanged = applied.unchanged.len(),
        "keys directory is ready"
    );
    Ok(())
}

/// `supakeys check`.
fn check(inputs: &Inputs) -> Result<()> {
    let config = if inputs.has_jwt_secret() {
        Some(inputs.config(now())?)
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
    let bytes = dir.read("supabase.env")?.ok_or(Error::NoState {
        path: dir_path.join("supabase.env"),
    })?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("write to", "standard output", e))
}
