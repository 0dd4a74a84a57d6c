//! The `supakeys` binary: parse the command line, run, exit with the documented code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = supakeys::cli::parse();
    let code = supakeys::run::main(cli);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
