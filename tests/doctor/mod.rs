//! `supakeys doctor` end to end without Docker: the real binary against an in-process
//! stand-in of the gateway and the services behind it, answering as they do (the Docker
//! suite in tests/doctor/run uses the full stand-ins). Checks the probe plan, the retry past
//! a gateway that refuses one key, the exit codes and that no secret reaches the output.
//! `hostile` answers with what no service should send.

mod hostile;

use crate::support::{Output, Test};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// How the stand-in stack behaves.
#[derive(Clone, Default)]
pub struct Stack {
    pub jwks: String,
    pub publishable: String,
    pub secret: String,
    pub anon: String,
    pub service: String,
    pub anon_asymmetric: String,
    pub service_asymmetric: String,
    /// The gateway refuses `ANON_KEY` of gateway.env (a gateway on older keys).
    pub refuse_anon: bool,
    /// Storage does not know these kids (an older JWT_JWKS).
    pub storage_unknown_kids: Vec<String>,
    /// The token the anonymous sign-in hands out.
    pub sign_in_token: String,
    /// Answers instead of the stack when it returns true (given the request's path and the
    /// connection): hostile or broken answers.
    pub hostile: Option<Arc<Hostile>>,
}

type Hostile = dyn Fn(&str, &mut TcpStream) -> bool + Send + Sync;

struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    /// Relayed from a service (Envoy adds x-envoy-upstream-service-time).
    relayed: bool,
}

fn service(status: u16, body: Value) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body: body.to_string(),
        relayed: true,
    }
}

fn header_kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let json: Value = serde_json::from_slice(&supakeys::jwk::unb64(header)?).ok()?;
    json.get("kid")?.as_str().map(str::to_owned)
}

fn payload_role(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let json: Value = serde_json::from_slice(&supakeys::jwk::unb64(payload)?).ok()?;
    json.get("role")?.as_str().map(str::to_owned)
}

impl Stack {
    fn answer(&self, method: &str, path: &str, headers: &[(String, String)]) -> Reply {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let apikey = get("apikey").unwrap_or_default();
        let protected = !path.starts_with("/auth/v1/.well-known/")
            && !path.starts_with("/storage/v1/")
            && ["/auth/v1/", "/rest/v1/", "/realtime/v1/"]
                .iter()
                .any(|p| path.starts_with(p));
        let anon_ok = !self.refuse_anon && apikey == self.anon;
        let valid = anon_ok
            || [&self.service, &self.publishable, &self.secret].contains(&&apikey.to_owned());
        if protected && !valid {
            return Reply {
                status: 401,
                content_type: "text/plain",
                body: "Unauthorized".into(),
                relayed: false,
            };
        }
        // Upstream's translation: an opaque key becomes its asymmetric token; a real JWT
        // in Authorization is kept.
        let translated = if apikey == self.publishable {
            self.anon_asymmetric.clone()
        } else if apikey == self.secret {
            self.service_asymmetric.clone()
        } else {
            apikey.to_owned()
        };
        let bearer = match get("authorization").and_then(|a| a.strip_prefix("Bearer ")) {
            Some(t) if !t.starts_with("sb_") => t.to_owned(),
            _ => translated,
        };
        match (method, path) {
            ("GET", "/auth/v1/.well-known/jwks.json") => {
                service(200, serde_json::from_str(&self.jwks).unwrap())
            }
            ("POST", "/auth/v1/signup") => service(
                200,
                json!({"access_token": self.sign_in_token, "token_type": "bearer", "refresh_token": "r"}),
            ),
            ("GET", p) if p.starts_with("/auth/v1/admin/users/") => {
                if payload_role(&bearer).as_deref() == Some("service_role") {
                    service(
                        404,
                        json!({"code":404,"error_code":"user_not_found","msg":"User not found"}),
                    )
                } else {
                    service(
                        403,
                        json!({"code":403,"error_code":"not_admin","msg":"User not allowed"}),
                    )
                }
            }
            ("GET", p) if p.starts_with("/rest/v1/") => service(
                404,
                json!({"code":"PGRST205","details":null,"hint":null,"message":"Could not find the table"}),
            ),
            ("GET", "/storage/v1/health") => match header_kid(&bearer) {
                Some(kid) if self.storage_unknown_kids.contains(&kid) => service(
                    400,
                    json!({"statusCode":"403","code":"AccessDenied","error":"Unauthorized",
                           "message":"Key for the ES256 algorithm must be one of type CryptoKey, KeyObject, or JSON Web Key. Received an instance of Uint8Array"}),
                ),
                _ => service(200, json!({"healthy": true})),
            },
            ("POST", "/realtime/v1/api/broadcast") => {
                service(422, json!({"errors":{"messages":["can't be blank"]}}))
            }
            _ => Reply {
                status: 404,
                content_type: "text/plain",
                body: String::new(),
                relayed: false,
            },
        }
    }
}

fn handle(mut conn: TcpStream, stack: &Stack) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + 4 + length {
        let n = conn.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if let Some(hostile) = &stack.hostile
        && hostile(path, &mut conn)
    {
        return;
    }
    let reply = stack.answer(method, path, &headers);
    let upstream = if reply.relayed {
        "x-envoy-upstream-service-time: 1\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {} X\r\ncontent-type: {}\r\nserver: envoy\r\n{upstream}content-length: {}\r\nconnection: close\r\n\r\n{}",
        reply.status,
        reply.content_type,
        reply.body.len(),
        reply.body
    );
    let _ = conn.write_all(response.as_bytes());
}

/// Serves `stack` on a local port until the test ends; returns the base URL.
pub fn serve(stack: Stack) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stack = Arc::new(stack);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let stack = Arc::clone(&stack);
            std::thread::spawn(move || handle(conn, &stack));
        }
    });
    url
}

/// An initialised keys directory with legacy keys, and a healthy stack for it.
fn setup() -> (Test, Stack) {
    let test = Test::with_legacy_keys();
    test.run().success();
    let state = test.read("state.json");
    let state =
        supakeys::state::State::parse(state.as_bytes(), &test.dir.join("state.json"), &|| None)
            .unwrap();
    let now = crate::support::now();
    let claims = json!({"sub":"5c5f3f4e-1d2b-4c57-9a8e-0d1e2f3a4b5c","role":"authenticated","iat":now,"exp":now+3600});
    let sign_in_token = supakeys::jwt::sign(
        state.current(),
        &supakeys::jwk::b64(claims.to_string().as_bytes()),
    );
    let stack = Stack {
        jwks: test.read("jwks.json"),
        publishable: test.var("gateway.env", "SUPABASE_PUBLISHABLE_KEY"),
        secret: test.var("gateway.env", "SUPABASE_SECRET_KEY"),
        anon: test.var("gateway.env", "ANON_KEY"),
        service: test.var("gateway.env", "SERVICE_ROLE_KEY"),
        anon_asymmetric: test.var("gateway.env", "ANON_KEY_ASYMMETRIC"),
        service_asymmetric: test.var("gateway.env", "SERVICE_ROLE_KEY_ASYMMETRIC"),
        sign_in_token,
        ..Stack::default()
    };
    (test, stack)
}

fn doctor(test: &mut Test, url: &str, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["doctor", "--url", url, "--format", "json"];
    args.extend_from_slice(extra);
    test.args(&args);
    let out = test.run();
    let report = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{}\n{}", out.stdout, out.stderr));
    (out, report)
}

/// `service/check[/key_status]` of every line with this result.
pub fn lines(report: &Value, result: &str) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result"] == result)
        .map(|c| {
            let mut id = format!(
                "{}/{}",
                c["service"].as_str().unwrap(),
                c["check"].as_str().unwrap()
            );
            if let Some(status) = c["key_status"].as_str() {
                id.push('/');
                id.push_str(status);
            }
            id
        })
        .collect()
}

#[test]
fn doctor_passes_every_line_on_a_healthy_stack() {
    let (mut test, stack) = setup();
    let url = serve(stack);
    let (out, report) = doctor(&mut test, &url, &["--sign-in-anonymously"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(lines(&report, "fail"), Vec::<String>::new());
    assert_eq!(lines(&report, "skip"), Vec::<String>::new());
    assert_eq!(
        lines(&report, "pass"),
        [
            "auth/jwks",
            "auth/signing-key/current",
            "api-gw/publishable-key",
            "api-gw/secret-key",
            "api-gw/anon-key",
            "api-gw/service-role-key",
            "rest/accepts-key/current",
            "rest/legacy-hs256",
            "storage/accepts-key/current",
            "storage/legacy-hs256",
            "realtime/accepts-key/current",
            "realtime/legacy-hs256",
        ]
    );
    assert_eq!(report["gateway"], "envoy");
    assert_eq!(report["legacy_hs256"], "accepted");
}

#[test]
fn storage_on_an_older_key_set_fails_its_line_only() {
    let (mut test, mut stack) = setup();
    stack.storage_unknown_kids = vec![test.kid()];
    let url = serve(stack);
    let (out, report) = doctor(&mut test, &url, &[]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(lines(&report, "fail"), ["storage/accepts-key/current"]);
    assert_eq!(lines(&report, "skip"), ["auth/signing-key/current"]);
    let line = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["result"] == "fail")
        .unwrap();
    assert!(
        line["cause"].as_str().unwrap().contains("storage.env"),
        "{line}"
    );
    assert_eq!(line["fix"], "docker compose restart storage");
    assert!(
        out.stderr.contains("doctor: 1 check(s) failed"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_gateway_refusing_the_anon_key_fails_its_own_lines_only() {
    // The verifiers and the sign-in are reached again with the publishable key.
    let (mut test, mut stack) = setup();
    stack.refuse_anon = true;
    let url = serve(stack);
    let (out, report) = doctor(&mut test, &url, &["--sign-in-anonymously"]);
    assert_eq!(out.code, 7);
    assert_eq!(lines(&report, "fail"), ["api-gw/anon-key"]);
}

#[test]
fn the_text_report_marks_each_line_and_holds_no_secret() {
    let (mut test, mut stack) = setup();
    stack.storage_unknown_kids = vec![test.kid()];
    let url = serve(stack);
    test.args(&["doctor", "--url", &url, "--sign-in-anonymously"]);
    let out = test.run();
    assert_eq!(out.code, 7);
    let marks: String = out
        .stdout
        .lines()
        .filter_map(|l| l.chars().next().filter(|c| matches!(c, '✓' | '✗' | '–')))
        .collect();
    assert_eq!(marks, "✓✓✓✓✓✓✓✓✗✓✓✓");
    assert!(out.stdout.contains("fix: docker compose restart storage"));
    let secrets = [
        crate::support::SECRET.to_owned(),
        test.var("supabase.env", "ANON_KEY"),
        test.var("supabase.env", "SERVICE_ROLE_KEY"),
        test.var("supabase.env", "ANON_KEY_ASYMMETRIC"),
        test.var("supabase.env", "SERVICE_ROLE_KEY_ASYMMETRIC"),
        test.var("supabase.env", "SUPABASE_PUBLISHABLE_KEY"),
        test.var("supabase.env", "SUPABASE_SECRET_KEY"),
        test.json("state.json")["keys"][0]["jwk"]["d"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    for secret in &secrets {
        assert!(!out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()));
    }
}

#[test]
fn an_unreachable_gateway_fails_every_line_with_its_cause() {
    let (mut test, _) = setup();
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (out, report) = doctor(&mut test, &format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(out.code, 7);
    assert_eq!(report["passed"], 0);
    for check in report["checks"].as_array().unwrap() {
        if check["result"] == "fail" {
            assert!(
                check["problem"]
                    .as_str()
                    .unwrap()
                    .starts_with("nothing listens on"),
                "{check}"
            );
        }
    }
}

#[test]
fn bad_doctor_flags_are_bad_input() {
    let (mut test, _) = setup();
    test.args(&["doctor", "--url", "api-gw:8000"]);
    test.run().fails_with(
        2,
        "--url (SUPAKEYS_DOCTOR_URL): must start with http:// or https://",
    );
    test.args(&["doctor", "--access-token", "not-a-token"]);
    test.run().fails_with(2, "is not a JWT");
    test.args(&["doctor", "--timeout", "0"]);
    test.run().fails_with(2, "--timeout");
    test.args(&["doctor", "--sign-in-anonymously", "--access-token", "a.b.c"]);
    test.run().fails_with(
        2,
        "--sign-in-anonymously: cannot be used with an access token",
    );
    let empty = Test::new();
    let mut empty = empty;
    empty.args(&["doctor"]);
    empty.run().fails_with(3, "state.json does not exist");
}

/// The compose layers pass `SUPAKEYS_ACCESS_TOKEN: ${SUPAKEYS_ACCESS_TOKEN:-}`: an empty
/// variable counts as unset, so `doctor --sign-in-anonymously` must not see a conflict.
#[test]
fn an_empty_access_token_variable_is_no_token() {
    let (mut test, stack) = setup();
    let url = serve(stack);
    test.env("SUPAKEYS_ACCESS_TOKEN", "");
    let (out, report) = doctor(&mut test, &url, &["--sign-in-anonymously"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(lines(&report, "fail"), Vec::<String>::new());
}
