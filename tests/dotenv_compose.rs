//! `--env-file` reads a `.env` exactly as Docker Compose v2 gives its values to the services,
//! or refuses the line. Each fixture goes through the real Compose binary the Docker tests
//! use (`tests/tools/compose-v2`, 2.40.3, built with compose-go v2.9.1) and through supakeys'
//! reader (`supakeys::envfile`, the code `--env-file` runs), with the same process
//! environment, and every variable must come out byte for byte the same: the environment
//! Compose interpolates with (`config --environment`, every name) and what a service gets
//! from `NAME: ${NAME}` (`config --format json`, every name a compose file can refer to).
//! The lines supakeys refuses are shown to be refused by the binary, with exit 2 and the
//! line number.
//!
//! The reader is checked through the library rather than the binary: the binary uses only
//! the variables it knows, and a command that printed the others would be a way to read
//! secrets out of an env file that supakeys has no other use for. The binary's own rules on
//! top (a variable of the environment wins, even empty) are checked at the end.

use crate::support::Test;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use supakeys::envfile::{DotEnv, Lookup};
use zeroize::Zeroizing;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dotenv");

/// The process environment both readers see (besides HOME, which Compose needs).
fn process_environment() -> BTreeMap<String, String> {
    [
        ("FROM_ENV", "env $value"),
        ("EMPTY_ENV", ""),
        ("BOTH", "environment"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn compose_binary() -> PathBuf {
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/compose-v2"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tests/tools/compose-v2 failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

struct Compose {
    binary: PathBuf,
    work: tempfile::TempDir,
}

/// What Compose made of an env file: the interpolation environment as it prints it, and a
/// service's environment with `NAME: ${NAME}` for each name asked.
struct Read {
    environment: String,
    service: BTreeMap<String, String>,
}

impl Compose {
    fn new() -> Compose {
        Compose {
            binary: compose_binary(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, env_file: &Path, args: &[&str]) -> std::process::Output {
        Command::new(&self.binary)
            .env_clear()
            .envs(process_environment())
            .env("HOME", self.work.path())
            .current_dir(self.work.path())
            .args(["-p", "dotenv", "--env-file"])
            .arg(env_file)
            .args(["-f", "compose.yml"])
            .args(args)
            .output()
            .unwrap()
    }

    /// `None` when Compose refuses the file.
    fn read(&self, env_file: &Path, names: &[&str]) -> Option<Read> {
        let mut yaml = String::from("services:\n  s:\n    image: scratch\n");
        if !names.is_empty() {
            yaml.push_str("    environment:\n");
        }
        for name in names {
            yaml.push_str(&format!("      {name}: ${{{name}}}\n"));
        }
        std::fs::write(self.work.path().join("compose.yml"), yaml).unwrap();
        let environment = self.command(env_file, &["config", "--environment"]);
        if !environment.status.success() {
            return None;
        }
        let json = self.command(env_file, &["config", "--format", "json"]);
        assert!(
            json.status.success(),
            "{}",
            String::from_utf8_lossy(&json.stderr)
        );
        let json: Value = serde_json::from_slice(&json.stdout).unwrap();
        let service = json["services"]["s"]["environment"]
            .as_object()
            .map(|env| {
                env.iter()
                    .map(|(k, v)| {
                        let v = v.as_str().unwrap();
                        // `config` writes every `$` of a value as `$$`, so that its output
                        // is a compose file again.
                        assert!(!v.replace("$$", "").contains('$'), "{k}: {v:?}");
                        (k.clone(), v.replace("$$", "$"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Read {
            environment: String::from_utf8_lossy(&environment.stdout).into_owned(),
            service,
        })
    }
}

/// supakeys' reading of an env file, with the same process environment.
fn supakeys_read(bytes: &[u8]) -> Result<DotEnv, supakeys::envfile::Refusal> {
    let env = process_environment();
    DotEnv::parse_bytes(bytes, &|name| match env.get(name) {
        Some(v) => Lookup::Set(Zeroizing::new(v.clone())),
        None => Lookup::Unset,
    })
}

/// The environment Compose interpolates with, as `config --environment` prints it: the
/// process environment, the file's variables it does not hide, and what Compose adds.
fn expected_environment(file: &DotEnv, compose: &Compose) -> String {
    let mut all: BTreeMap<String, String> = file
        .vars()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    all.extend(process_environment());
    all.insert("HOME".into(), compose.work.path().display().to_string());
    all.insert("PWD".into(), compose.work.path().display().to_string());
    all.insert("COMPOSE_PROJECT_NAME".into(), "dotenv".into());
    all.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Both readers on one fixture: every variable the same, byte for byte.
fn same_values(compose: &Compose, fixture: &str) -> usize {
    let path = Path::new(FIXTURES).join(fixture);
    let file = supakeys_read(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|r| panic!("supakeys refuses {fixture}:{}: {}", r.line, r.problem));
    let names: Vec<&str> = file
        .vars()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| is_identifier(k))
        .collect();
    let read = compose
        .read(&path, &names)
        .unwrap_or_else(|| panic!("Docker Compose refuses {fixture}"));
    assert_eq!(
        read.environment,
        expected_environment(&file, compose),
        "{fixture}: the environment Compose interpolates with (left) differs from supakeys' reading (right)"
    );
    let env = process_environment();
    for name in &names {
        let supakeys = env
            .get(*name)
            .map(String::as_str)
            .or_else(|| file.get(name))
            .unwrap();
        assert_eq!(
            read.service.get(*name).map(String::as_str),
            Some(supakeys),
            "{fixture}: {name} as the service gets it (left) and as supakeys reads it (right)"
        );
    }
    names.len()
}

/// Lines supakeys refuses, each in a file of its own: the line number supakeys gives, and
/// whether Docker Compose refuses the file too (true) or reads it in a way supakeys does
/// not reproduce (false).
const REFUSED: &[(&str, &[u8], usize, bool)] = &[
    ("unterminated quote", "A=1\nB='open\n".as_bytes(), 2, true),
    (
        "unterminated double quote",
        "A=1\n\nB=\"open\\\"\n".as_bytes(),
        3,
        true,
    ),
    ("space in a name", "A=1\nMY VAR=1\n".as_bytes(), 2, true),
    (
        "character compose refuses in a name",
        "A$B=1\n".as_bytes(),
        1,
        true,
    ),
    (
        "a line of words",
        "A=1\nthis is not a variable\n".as_bytes(),
        2,
        true,
    ),
    ("invalid ${", "A=${B\n".as_bytes(), 1, true),
    ("invalid ${NAME:x}", "A=${B:x}\n".as_bytes(), 1, true),
    ("empty ${}", "A=${}\n".as_bytes(), 1, true),
    (
        "default broken over lines",
        "A=\"${B:-x\n}\"\n".as_bytes(),
        1,
        true,
    ),
    (
        "required and unset",
        "A=1\nB=${NOT_SET?set it}\n".as_bytes(),
        2,
        true,
    ),
    (
        "required and empty",
        "E=\nB=${E:?set it}\n".as_bytes(),
        2,
        true,
    ),
    (
        "required inside an unused default",
        "B=${BOTH:-${NOT_SET?x}}\n".as_bytes(),
        1,
        true,
    ),
    (
        "text after a closing quote",
        "A='x' B=2\n".as_bytes(),
        1,
        false,
    ),
    (
        "a variable after a closing quote",
        "A=\"x\"B=2\n".as_bytes(),
        1,
        false,
    ),
    ("non-ASCII name", "\u{c9}T\u{c9}=1\n".as_bytes(), 1, false),
    (
        "long s in a $NAME",
        "S=1\nA=$\u{17f}\n".as_bytes(),
        2,
        false,
    ),
    (
        "Kelvin sign in a ${NAME}",
        "A=${\u{212a}EY:-x}\n".as_bytes(),
        1,
        false,
    ),
    ("${...} nested 33 deep", DEEP.as_bytes(), 1, false),
    (
        "NUL from an octal escape",
        "A=\"\\0000\"\n".as_bytes(),
        1,
        false,
    ),
    ("NUL in the file", "A=x\0y\n".as_bytes(), 1, false),
    ("not UTF-8", b"A=1\nB=\xff\n", 2, false),
];

/// Defaults nested 33 deep: Compose reads them; supakeys stops at 32 (its stack is bounded).
const DEEP: &str = concat!(
    "A=${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-",
    "${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-${X:-",
    "${X:-deep}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}\n"
);

#[test]
fn env_file_reads_every_value_as_docker_compose_gives_it_to_the_services() {
    let compose = Compose::new();
    let rules = same_values(&compose, "rules.env");
    let hostile = same_values(&compose, "hostile.env");
    assert!(
        rules >= 60 && hostile >= 25,
        "{rules} and {hostile} names compared"
    );

    for (what, text, line, compose_refuses) in REFUSED {
        let bytes = *text;
        let refusal = match supakeys_read(bytes) {
            Err(r) => r,
            Ok(_) => panic!("{what}: supakeys reads it"),
        };
        assert_eq!(refusal.line, *line, "{what}: {}", refusal.problem);
        let path = compose.work.path().join("refused.env");
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(
            compose.read(&path, &[]).is_none(),
            *compose_refuses,
            "{what}: does Docker Compose refuse it?"
        );

        // The binary: exit 2, the file and the line, and what to do.
        let mut t = Test::new();
        let env_file = t.scratch().join("refused.env");
        std::fs::write(&env_file, bytes).unwrap();
        t.env("SUPAKEYS_ENV_FILE", &env_file.display().to_string());
        t.run()
            .fails_with(2, &format!("refused.env:{line}: "))
            .fails_with(2, "as Docker Compose v2 reads");
    }
}

/// On top of the reader, the binary takes a variable from the environment over the file's,
/// as Compose does, even an empty one (which then counts as unset, with a warning); and
/// `${NAME}` in the file sees the environment first.
#[test]
fn env_file_values_give_way_to_the_environment_as_in_compose() {
    let mut t = Test::new();
    let file = t.scratch().join(".env");
    std::fs::write(
        &file,
        "KID_PREFIX=file\nSUPAKEYS_KID=${KID_PREFIX}-kid\nSUPAKEYS_ALG=RS256\nSUPAKEYS_RSA_BITS=2048\n",
    )
    .unwrap();
    t.env("SUPAKEYS_ENV_FILE", &file.display().to_string())
        .env("KID_PREFIX", "env")
        .env("SUPAKEYS_ALG", "");
    let out = t.run();
    out.success();
    assert_eq!(t.kid(), "env-kid");
    assert_eq!(t.json("state.json")["keys"][0]["alg"], "ES256");
    assert!(
        out.stderr
            .contains("SUPAKEYS_ALG is set but empty in the environment"),
        "{}",
        out.stderr
    );
}
