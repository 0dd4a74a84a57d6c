//! Regressions of issue 16: doctor against answers no service should send, and against
//! files and input it cannot use. Every byte from the network or from a file is input:
//! whatever arrives, doctor ends in its report (exit 7, a ✗ line saying what was wrong) or
//! in a bad-input error (exit 2) naming the file and the variable, never in a crash, never
//! in a wait without end, and nothing a stranger wrote reaches the terminal as a control
//! character (ESC and BEL make screen-clearing and OSC 52 clipboard-writing sequences).
//!
//! Runs are watched: each must end within a minute. That is no timing measurement (doctor
//! ends in a few seconds here): every wait doctor makes has a bound derived from `--timeout`,
//! so a run still going after a minute has a wait without one.

use super::{Test, serve, setup};
use crate::support::Output;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIVENESS: Duration = Duration::from_secs(60);

/// Runs the command, feeding `stdin`, and kills it (failing the test) if it is still running
/// after [`LIVENESS`]. A death by signal (a panic under `panic = "abort"` is SIGABRT) is
/// reported as 128 + the signal, as a shell does.
fn run_watched(mut cmd: std::process::Command, stdin: Option<Vec<u8>>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // doctor may stop reading early: the rest of the write fails, which is fine.
        std::thread::spawn(move || pipe.write_all(&bytes));
    }
    let collect = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIVENESS {
            let _ = child.kill();
            panic!("doctor still runs after {LIVENESS:?}: one of its waits has no bound");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status
            .code()
            .or(status.signal().map(|s| 128 + s))
            .unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Control characters (C0, DEL, C1) and the bidirectional controls that reorder what a
/// terminal shows; a newline is the report's own.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[track_caller]
fn printable(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| unsafe_char(*c)) {
        panic!("{what} holds the control character {c:?}:\n{text}");
    }
}

/// The run ended in the text report with exit 7, and printed nothing unsafe.
#[track_caller]
fn ends_in_a_report(out: &Output) {
    assert_eq!(
        out.code, 7,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.starts_with("supakeys doctor: ") && out.stdout.contains(" failed, "),
        "no report:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    printable("standard output", &out.stdout);
    printable("standard error", &out.stderr);
}

/// doctor's text report on a stack whose gateway answers as `hostile` does.
fn doctor_against(
    hostile: impl Fn(&str, &mut TcpStream) -> bool + Send + Sync + 'static,
    extra: &[&str],
) -> Output {
    let (mut test, mut stack) = setup();
    stack.hostile = Some(Arc::new(hostile));
    let url = serve(stack);
    let mut args = vec!["doctor", "--url", &url];
    args.extend_from_slice(extra);
    test.args(&args);
    run_watched(test.command(), None)
}

/// Writes `bytes` then closes the connection; a client that stopped reading is fine.
fn answer_with(bytes: &[u8]) -> impl Fn(&str, &mut TcpStream) -> bool + Send + Sync + 'static {
    let bytes = bytes.to_vec();
    move |_, conn| {
        let _ = conn.write_all(&bytes);
        true
    }
}

fn chunked_body_of(size: usize) -> Vec<u8> {
    let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..size / 4096 {
        bytes.extend_from_slice(b"1000\r\n");
        bytes.extend(std::iter::repeat_n(b'a', 4096));
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    bytes
}

/// Answers that break HTTP/1.1 (RFC 9112) in each way a parser can be hurt: lengths that
/// overflow, bytes a header may not hold, sizes beyond doctor's bounds.
#[test]
fn malformed_answers_end_in_a_report_saying_the_answer_is_not_http() {
    let big_head = {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..2000 {
            head.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(40)).as_bytes());
        }
        head.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        head
    };
    let big_body = {
        let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'{', 2 << 20));
        bytes
    };
    let unframed_big_body = {
        let mut bytes = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'{', 2 << 20));
        bytes
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "the largest 64-bit chunk size (it overflowed the body's length)",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nffffffffffffffff\r\nab\r\n".to_vec(),
        ),
        (
            "a chunk size of 17 hex digits",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nab\r\n".to_vec(),
        ),
        (
            "a chunk size that is not hexadecimal",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nab\r\n".to_vec(),
        ),
        (
            "a chunk without its CRLF",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n".to_vec(),
        ),
        (
            "a Content-Length beyond 64 bits",
            b"HTTP/1.1 200 OK\r\nContent-Length: 184467440737095516160\r\n\r\n{}".to_vec(),
        ),
        (
            "two different Content-Lengths",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x".to_vec(),
        ),
        (
            "a NUL in a header value",
            b"HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
        ),
        (
            "an ESC sequence in a header value",
            b"HTTP/1.1 200 OK\r\nServer: \x1b[2J\x1b]52;c;SGk=\x07\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
        ),
        (
            "a space inside a header name",
            b"HTTP/1.1 200 OK\r\nContent Length: 2\r\n\r\n{}".to_vec(),
        ),
        (
            "a status line that is not HTTP",
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
        ),
        (
            "a status code of four digits",
            b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        ("headers beyond 64 KiB", big_head),
        ("a body beyond 1 MiB", big_body),
        ("a chunked body beyond 1 MiB", chunked_body_of(2 << 20)),
        ("a body beyond 1 MiB without a length", unframed_big_body),
    ];
    let mut wrong = Vec::new();
    for (case, bytes) in cases {
        let out = doctor_against(answer_with(&bytes), &["--timeout", "5"]);
        let failed = out.stdout.matches("\n✗ ").count();
        let invalid = out.stdout.matches("answer is not valid HTTP").count();
        if out.code != 7 || failed == 0 || invalid != failed {
            wrong.push(format!(
                "{case}: exit {}, {failed} ✗ lines, {invalid} saying the answer is not valid HTTP\n{}{}",
                out.code, out.stdout, out.stderr
            ));
            continue;
        }
        ends_in_a_report(&out);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A gateway that answers `100 Continue` for ever: doctor stops reading after a few and
/// says so, instead of buffering until the deadline.
#[test]
fn endless_informational_answers_end_in_a_report() {
    let out = doctor_against(
        |_, conn| {
            while conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_ok() {}
            true
        },
        &["--timeout", "5"],
    );
    ends_in_a_report(&out);
    assert!(
        out.stdout.contains("answer is not valid HTTP")
            && out.stdout.contains("informational (1xx) answers"),
        "{}",
        out.stdout
    );
}

/// A gateway that accepts the connection and never answers, and one that trickles a byte
/// at a time: each request ends at its deadline, and so does the run.
#[test]
fn silent_and_trickling_gateways_end_at_the_deadline() {
    let silent = doctor_against(
        |_, conn| {
            // Holds the connection until doctor closes it.
            let _ = conn.read_to_end(&mut Vec::new());
            true
        },
        &["--timeout", "1"],
    );
    ends_in_a_report(&silent);
    assert!(
        silent.stdout.contains("no complete answer within 1 s"),
        "{}",
        silent.stdout
    );
    let trickle = doctor_against(
        |_, conn| {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ");
            while conn.write_all(b"a").is_ok() {
                std::thread::sleep(Duration::from_millis(50));
            }
            true
        },
        &["--timeout", "1"],
    );
    ends_in_a_report(&trickle);
    assert!(
        trickle.stdout.contains("no complete answer within 1 s"),
        "{}",
        trickle.stdout
    );
}

/// ESC, BEL, OSC 52 (clipboard write), C1 CSI and a bidi override, as a malicious or broken
/// service could put them in what it says.
const HOSTILE_TEXT: &str = "\u{1b}[2J\u{1b}]52;c;SGVsbG8=\u{7}\u{9b}31m\u{202e}evil\r\n";

/// A field of a token a gateway returns (the anonymous sign-in's `alg`) and the messages
/// of the services are printed with their control characters escaped.
#[test]
fn control_characters_from_a_service_are_escaped_in_the_report() {
    let (mut test, mut stack) = setup();
    let header = serde_json::json!({"alg": HOSTILE_TEXT, "typ": "JWT"});
    stack.sign_in_token = format!(
        "{}.{}.c2ln",
        supakeys::jwk::b64(header.to_string().as_bytes()),
        supakeys::jwk::b64(br#"{"sub":"x"}"#)
    );
    stack.hostile = Some(Arc::new(|path: &str, conn: &mut TcpStream| {
        if path != "/storage/v1/health" {
            return false;
        }
        let body = serde_json::json!({"statusCode": "403", "error": "Unauthorized", "message": HOSTILE_TEXT})
            .to_string();
        let _ = write!(
            conn,
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-envoy-upstream-service-time: 1\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        true
    }));
    let url = serve(stack);
    test.args(&["doctor", "--url", &url, "--sign-in-anonymously"]);
    let out = run_watched(test.command(), None);
    ends_in_a_report(&out);
    // The evidence stays readable, escaped.
    assert!(
        out.stdout.contains(r"\u{1b}]52;c;SGVsbG8=\u{7}"),
        "{}",
        out.stdout
    );
    test.args(&[
        "doctor",
        "--url",
        &url,
        "--sign-in-anonymously",
        "--format",
        "json",
    ]);
    let out = run_watched(test.command(), None);
    assert_eq!(out.code, 7, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    printable("the JSON report's values", &report.to_string());
    for check in report["checks"].as_array().unwrap() {
        for field in ["problem", "detail", "reason"] {
            if let Some(text) = check[field].as_str() {
                printable(field, text);
            }
        }
    }
}

/// Bytes that are not UTF-8 in the status line, a header and the body.
#[test]
fn answers_that_are_not_utf8_end_in_a_report() {
    let out = doctor_against(
        answer_with(
            b"HTTP/1.1 401 \xff\xfe\r\nContent-Type: text/plain\r\nX-Bin: \xfe\xff\r\nContent-Length: 6\r\n\r\n\xff\xfe\x1b]2\x07\x9b",
        ),
        &["--timeout", "5"],
    );
    ends_in_a_report(&out);
}

/// A `gateway.env` value with a control character (here a CR inside the quotes, which made
/// an HTTP header assertion abort the run): exit 2, naming the file and the variable.
#[test]
fn a_control_character_in_a_gateway_env_value_is_bad_input_naming_file_and_variable() {
    for variable in ["ANON_KEY", "SERVICE_ROLE_KEY"] {
        for bad in ["\r", "\u{1b}"] {
            let (mut test, stack) = setup();
            let path = test.dir.join("gateway.env");
            let text = std::fs::read_to_string(&path).unwrap();
            let value = test.var("gateway.env", variable);
            let text = text.replace(&value, &format!("{}{bad}x", &value[..20]));
            std::fs::write(&path, text).unwrap();
            let url = serve(stack);
            test.args(&["doctor", "--url", &url]);
            let out = run_watched(test.command(), None);
            out.fails_with(2, "gateway.env");
            assert!(out.stderr.contains(variable), "{}", out.stderr);
            printable("standard error", &out.stderr);
        }
    }
}

/// `--access-token -` reads standard input up to a bound, not until memory runs out.
#[test]
fn an_access_token_from_stdin_is_bounded() {
    let (mut test, stack) = setup();
    let url = serve(stack.clone());
    test.args(&["doctor", "--url", &url, "--access-token", "-"]);
    let out = run_watched(test.command(), Some(vec![b'a'; 8 << 20]));
    out.fails_with(2, "--access-token");
    assert!(out.stderr.contains("16 KiB"), "{}", out.stderr);
    // A token on one line, as `echo "$TOKEN" |` gives it, is read.
    let token = format!("{}\n", stack.sign_in_token);
    let out = run_watched(test.command(), Some(token.into_bytes()));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("✓ auth        signs new tokens"),
        "{}",
        out.stdout
    );
}

/// The service-role token and the secret key travel in headers: doctor refuses to send them
/// in cleartext to a public address unless told to.
#[test]
fn plain_http_to_a_public_address_is_refused_unless_allowed() {
    let (mut test, _) = setup();
    for url in [
        "http://203.0.113.7:8000",
        "http://8.8.8.8",
        "http://[2001:db8::1]:8000",
        "http://[::ffff:203.0.113.7]:8000",
    ] {
        test.args(&["doctor", "--url", url]);
        let out = run_watched(test.command(), None);
        out.fails_with(2, "--url (SUPAKEYS_DOCTOR_URL)");
        assert!(
            out.stderr.contains("cleartext") && out.stderr.contains("--allow-plain-http"),
            "{}",
            out.stderr
        );
    }
    // Opted in (flag or variable): the requests go out, here to an address nothing answers.
    test.args(&[
        "doctor",
        "--url",
        "http://203.0.113.7:9",
        "--allow-plain-http",
        "--timeout",
        "1",
    ]);
    let out = run_watched(test.command(), None);
    ends_in_a_report(&out);
    test.env("SUPAKEYS_DOCTOR_ALLOW_PLAIN_HTTP", "true");
    test.args(&["doctor", "--url", "http://203.0.113.7:9", "--timeout", "1"]);
    let out = run_watched(test.command(), None);
    ends_in_a_report(&out);
}

/// A name server that receives the query and never answers (glibc then waits `timeout:`
/// seconds per lookup, and the old client looked the name up again for every request): the
/// lookup ends at `--timeout`, once per run. Runs doctor in its own mount namespace, where
/// /etc/resolv.conf names a UDP socket of this test.
#[test]
fn an_unanswering_name_server_ends_at_the_timeout() {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if !root {
        eprintln!("skipped: needs root (unshare --mount)");
        return;
    }
    let (test, _) = setup();
    // Bound, read by nobody: queries stay unanswered.
    let server = UdpSocket::bind("127.0.0.116:53").unwrap();
    let resolv = test.scratch().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.116\noptions timeout:30 attempts:1\n",
    )
    .unwrap();
    let inner = test.command();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#)
        .arg(&resolv)
        .arg(inner.get_program())
        .args(["doctor", "--url", "http://api-gw:8000", "--timeout", "1"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let out = run_watched(cmd, None);
    drop(server);
    ends_in_a_report(&out);
    assert!(
        out.stdout
            .contains("cannot resolve api-gw: no answer from the name server within 1 s"),
        "{}",
        out.stdout
    );
}

/// Stale temporary files are named by whoever can write to the keys directory: the names
/// are escaped in the log and in errors.
#[test]
fn file_names_in_the_keys_directory_are_escaped_in_logs_and_errors() {
    let test = Test::with_legacy_keys();
    let name = format!(".supakeys-tmp-{HOSTILE_TEXT}");
    std::fs::write(test.dir.join(&name), "x").unwrap();
    let mut logged = test;
    logged.env("SUPAKEYS_LOG_LEVEL", "debug");
    let out = run_watched(logged.command(), None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains(".supakeys-tmp-"), "{}", out.stderr);
    printable("the log", &out.stderr);
    // In JSON logs too, and the JSON still holds the name as it is.
    std::fs::write(logged.dir.join(&name), "x").unwrap();
    logged.env("SUPAKEYS_LOG_FORMAT", "json");
    let out = run_watched(logged.command(), None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    printable("the JSON log", &out.stderr);
    let removed = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|event| event["fields"]["file"].as_str().is_some());
    assert_eq!(removed.unwrap()["fields"]["file"], name.as_str());
    logged.unset("SUPAKEYS_LOG_FORMAT");
    // A directory under such a name cannot be unlinked: the error names it, escaped.
    std::fs::create_dir(logged.dir.join(&name)).unwrap();
    std::fs::write(logged.dir.join(&name).join("f"), "x").unwrap();
    let out = run_watched(logged.command(), None);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains(".supakeys-tmp-"), "{}", out.stderr);
    printable("the error", &out.stderr);
}

/// An empty oct key in jwt_jwks.json (the legacy JWT secret, which doctor signs its HS256
/// probes with when JWT_SECRET is not set) made jsonwebtoken refuse the key and doctor abort
/// on an `expect`: the file is named instead (exit 3, as for any jwt_jwks.json it cannot use).
#[test]
fn an_empty_legacy_secret_in_jwt_jwks_json_is_named_not_a_crash() {
    let (mut test, stack) = setup();
    let path = test.dir.join("jwt_jwks.json");
    let mut jwks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for key in jwks["keys"].as_array_mut().unwrap() {
        if key["kty"] == "oct" {
            key["k"] = "".into();
        }
    }
    std::fs::write(&path, jwks.to_string()).unwrap();
    let url = serve(stack);
    test.unset("JWT_SECRET").args(&["doctor", "--url", &url]);
    let out = run_watched(test.command(), None);
    out.fails_with(3, "jwt_jwks.json");
    assert!(out.stderr.contains("oct key"), "{}", out.stderr);
}
