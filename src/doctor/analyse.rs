//! What the answers mean. Pure: from the keys directory's facts and the HTTP answers (or
//! network errors) of each probe to report lines with, for every mismatch, the likely cause
//! and the fix.
//!
//! Each service is read by its own way of saying "accepted" or "refused" (see the README's
//! doctor section for the sources):
//! - PostgREST refuses a JWT with a `PGRST30x` code (`PGRST301` undecodable or no matching
//!   key, `PGRST303` claims); any other answer from it, `PGRST205` for the probe's unknown
//!   table included, comes after the JWT was accepted (its auth middleware runs first).
//! - Storage answers every refusal with HTTP 400 and `"statusCode":"403"`, told apart by
//!   jose's message; its `/health` answers 200 once the JWT verified.
//! - Realtime's broadcast endpoint answers a refused token with 401 `{"message":"Unauthorized"}`
//!   (JSON), and an accepted one with an empty message list with 422.
//! - GoTrue's admin endpoint answers 403 `not_admin` to a valid non-admin token and, for an
//!   admin token, looks the (random) user up: 404 `user_not_found`.
//! - The gateway's own refusals carry no upstream marker: Envoy's local replies lack
//!   `x-envoy-upstream-service-time`, Kong's carry `x-kong-response-latency`, and both
//!   answer 401/403 in plain text or a `{"message"}` JSON that no service uses.

use super::report::{Line, Outcome};
use crate::config::LegacyHs256;
use crate::http::{HttpError, Response};
use crate::state::Status;
use serde_json::Value;

/// The end of the cause of a service that never read its file, and the start of its fix
/// (other stores translate both: [`crate::store::Store::translate`]).
pub const WITHOUT_LAYER: &str = "its container was made without the supakeys compose layer";
pub const LAYER_FIX: &str = "name the layer in every compose command";

/// What the keys directory says about one key.
#[derive(Clone, Debug)]
pub struct KeyFact {
    pub kid: String,
    pub alg: &'static str,
    pub status: Status,
    /// When the key entered its status (unix seconds).
    pub changed_at: i64,
    /// The public JWK; `None` for a revoked key.
    pub public: Option<Value>,
}

impl KeyFact {
    fn label(&self) -> String {
        format!("{} key {} ({})", self.status.as_str(), self.kid, self.alg)
    }
}

/// Which gateway answered, from its headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gateway {
    Envoy,
    Kong,
    Unknown,
}

impl Gateway {
    pub fn name(self) -> Option<&'static str> {
        match self {
            Gateway::Envoy => Some("envoy"),
            Gateway::Kong => Some("kong"),
            Gateway::Unknown => None,
        }
    }

    /// Recognises the gateway from one response's headers.
    pub fn of(response: &Response) -> Gateway {
        let server = response.header("server").unwrap_or_default();
        if server.eq_ignore_ascii_case("envoy")
            || response.header("x-envoy-upstream-service-time").is_some()
        {
            Gateway::Envoy
        } else if server.to_ascii_lowercase().starts_with("kong")
            || response
                .headers
                .iter()
                .any(|(n, _)| n.starts_with("x-kong-"))
            || response
                .header("via")
                .is_some_and(|v| v.to_ascii_lowercase().contains("kong"))
        {
            Gateway::Kong
        } else {
            Gateway::Unknown
        }
    }
}

/// Everything the analysis needs besides the answers.
pub struct Context<'a> {
    /// The keys directory as shown in messages (`/keys`).
    pub dir: &'a str,
    pub url: &'a str,
    pub keys: &'a [KeyFact],
    pub mode: LegacyHs256,
    pub gateway: Gateway,
}

impl Context<'_> {
    fn current(&self) -> Option<&KeyFact> {
        self.keys.iter().find(|k| k.status == Status::Current)
    }

    fn path(&self, file: &str) -> String {
        format!("{}/{file}", self.dir.trim_end_matches('/'))
    }

    /// The cause for a service that never read its file of the keys directory: `what` says
    /// how that shows (a variable it runs without). With the layer, every start reads the
    /// file (the layer's entrypoint, `--config` or `@file`), and every version of the file
    /// sets that variable: only a container made from a project without the layer lacks it.
    fn without_layer(&self, service: Service, what: &str) -> String {
        format!(
            "{} {what}, so it never loaded {}: {WITHOUT_LAYER}",
            service.name(),
            self.path(service.file())
        )
    }

    /// How to make the containers with the layer. podman-compose reads COMPOSE_FILE from
    /// its process environment only, never from `.env` (podman_compose.py
    /// `_parse_compose_file`, 1.6.0): upstream's way of naming the files in `.env` then
    /// leaves the layer out without a word.
    fn layer_fix(&self) -> String {
        let files = match self.gateway {
            Gateway::Kong => {
                "docker-compose.yml:docker-compose.kong.yml:docker-compose.supakeys.yml"
            }
            _ => "docker-compose.yml:docker-compose.supakeys.yml",
        };
        format!(
            "{LAYER_FIX}, then `up -d`: Docker Compose reads COMPOSE_FILE={files} from .env; podman-compose does not (`export COMPOSE_FILE={files}`, or one -f per file)"
        )
    }

    /// The file the gateway reads its keys from.
    fn gateway_file(&self) -> String {
        match self.gateway {
            Gateway::Envoy => self.path("gateway.env"),
            Gateway::Kong => self.path("kong.yml"),
            Gateway::Unknown => format!(
                "{} (Envoy) or {} (Kong)",
                self.path("gateway.env"),
                self.path("kong.yml")
            ),
        }
    }
}

/// The services doctor checks, by their compose names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Auth,
    Gateway,
    Rest,
    Storage,
    Realtime,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Auth => "auth",
            Service::Gateway => "api-gw",
            Service::Rest => "rest",
            Service::Storage => "storage",
            Service::Realtime => "realtime",
        }
    }

    /// The file of the keys directory the service's keys come from.
    fn file(self) -> &'static str {
        match self {
            Service::Auth => "auth.env",
            Service::Gateway => "gateway.env",
            Service::Rest => "jwt_jwks.json",
            Service::Storage => "storage.env",
            Service::Realtime => "realtime.env",
        }
    }

    /// How the service picks up a changed file (the list `keys` commands print).
    fn reload(self) -> String {
        crate::render::READERS
            .iter()
            .find(|(file, _, _)| *file == self.file())
            .map(|(_, _, how)| (*how).to_owned())
            .unwrap_or_else(|| format!("docker compose restart {}", self.name()))
    }
}

/// Text a service sent, safe to print: one line (line breaks and tabs become spaces), at
/// most 160 characters, anything that looks like a JWT or an opaque API key replaced by
/// `[redacted]`. Other control characters are kept here and escaped by the report, which
/// escapes every field it prints.
pub fn redact(text: &str) -> String {
    let mut out = String::new();
    for word in text.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        let bare = word.trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
        let tail = &word[bare.len()..];
        let jwt_like = bare.contains("eyJ") && bare.matches('.').count() >= 2;
        if jwt_like || bare.contains("sb_secret_") || bare.contains("sb_publishable_") {
            out.push_str("[redacted]");
            out.push_str(tail);
        } else {
            out.push_str(word);
        }
    }
    let one_line: String = out
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.chars().count() > 160 {
        let cut: String = trimmed.chars().take(157).collect();
        format!("{cut}...")
    } else {
        trimmed.to_owned()
    }
}

/// Who answered a probe.
enum Answer<'a> {
    /// The service behind the gateway.
    Service(&'a Response),
    /// The gateway itself refused the request (401/403).
    GatewayRefused {
        status: u16,
        said: String,
    },
    /// The gateway could not reach the service (502/503/504).
    Upstream {
        status: u16,
        said: String,
    },
    /// The gateway has no such route.
    NoRoute {
        status: u16,
        said: String,
    },
    /// Another answer of the gateway itself.
    GatewayOther {
        status: u16,
        said: String,
    },
    Network(&'a HttpError),
}

/// The text of an answer worth quoting: a JSON `message`/`msg` when there is one, else the
/// body's first line.
fn said(response: &Response) -> String {
    if let Some(json) = response.json() {
        for field in ["message", "msg", "error"] {
            if let Some(text) = json.get(field).and_then(Value::as_str) {
                return redact(text);
            }
        }
    }
    let body = String::from_utf8_lossy(&response.body);
    redact(body.lines().next().unwrap_or_default())
}

/// True when the gateway produced the answer itself instead of relaying the service's.
///
/// Kong marks its own answers (`X-Kong-Response-Latency`, or its `Server` without
/// `X-Kong-Upstream-Latency`). Envoy's local replies (Lua `respond`, RBAC, no route, no
/// upstream) are plain text or empty, and lack the `x-envoy-upstream-service-time` the router
/// adds to relayed answers; a JSON body is always the service's (a deployment may suppress
/// Envoy's headers, never the services' JSON).
fn from_gateway(r: &Response) -> bool {
    let server = r.header("server").unwrap_or_default().to_ascii_lowercase();
    let json = r.json().is_some();
    let plain = r
        .header("content-type")
        .is_none_or(|c| c.to_ascii_lowercase().starts_with("text/plain"));
    let kong = r.header("x-kong-response-latency").is_some()
        || (server.starts_with("kong/") && r.header("x-kong-upstream-latency").is_none());
    let envoy = server == "envoy" && r.header("x-envoy-upstream-service-time").is_none();
    kong || (!json && (envoy || (plain && matches!(r.status, 401 | 403))))
}

fn answer(result: &Result<Response, HttpError>) -> Answer<'_> {
    let r = match result {
        Ok(r) => r,
        Err(e) => return Answer::Network(e),
    };
    // A 502/503/504 is the gateway's unless the service signed it (PostgREST's PGRST00x
    // while its database is away, Storage's statusCode).
    let signed = r.json().is_some_and(|j| {
        j.get("code")
            .and_then(Value::as_str)
            .is_some_and(|c| c.starts_with("PGRST"))
            || j.get("statusCode").is_some()
            || j.get("error_code").is_some()
    });
    if from_gateway(r) || (matches!(r.status, 502..=504) && !signed) {
        let (status, said) = (r.status, said(r));
        return match status {
            401 | 403 => Answer::GatewayRefused { status, said },
            502..=504 => Answer::Upstream { status, said },
            404 => Answer::NoRoute { status, said },
            _ => Answer::GatewayOther { status, said },
        };
    }
    Answer::Service(r)
}

/// True when the gateway itself refused the request (401/403 of its own).
pub fn gateway_refused(result: &Result<Response, HttpError>) -> bool {
    matches!(answer(result), Answer::GatewayRefused { .. })
}

fn fail(problem: impl Into<String>, cause: impl Into<String>, fix: impl Into<String>) -> Outcome {
    Outcome::Fail {
        problem: problem.into(),
        cause: cause.into(),
        fix: fix.into(),
    }
}

fn pass(detail: impl Into<String>) -> Outcome {
    Outcome::Pass {
        detail: detail.into(),
    }
}

/// The outcome for an answer that is not the service's own (gateway, network), where
/// `service` is the one the probe was meant for.
fn not_the_service(cx: &Context<'_>, service: Service, a: &Answer<'_>) -> Outcome {
    let svc = service.name();
    match a {
        Answer::Service(r) => fail(
            format!("{svc} answered HTTP {}: {}", r.status, said(r)),
            format!("doctor does not expect this answer from {svc}"),
            format!("read `docker compose logs {svc}`"),
        ),
        Answer::GatewayRefused { status, said } => fail(
            format!("api-gw refused the request before it reached {svc}: HTTP {status} {said}"),
            format!(
                "api-gw does not accept the anon API key of {}: it runs with other API keys (it did not load {} since they changed)",
                cx.path("gateway.env"),
                cx.gateway_file()
            ),
            "docker compose restart api-gw",
        ),
        // The route's timeout (Envoy's "upstream request timeout", Kong's "The upstream
        // server is timing out"): the service is there but did not answer in time.
        Answer::Upstream { status: 504, said } => fail(
            format!("api-gw got no answer from {svc} in time: HTTP 504 {said}"),
            format!(
                "{svc} hangs or is overloaded: it did not answer within api-gw's route timeout"
            ),
            format!("read `docker compose logs {svc}`; `docker compose restart {svc}` if it hangs"),
        ),
        Answer::Upstream { status, said } => fail(
            format!("api-gw could not reach {svc}: HTTP {status} {said}"),
            format!("{svc} is not running, or not on the compose network"),
            format!("`docker compose ps {svc}` and `docker compose logs {svc}`"),
        ),
        Answer::NoRoute { status, said } => fail(
            format!("the gateway has no route for this request: HTTP {status} {said}"),
            format!("{} is not the Supabase API gateway", cx.url),
            "pass --url with the gateway's URL (http://api-gw:8000 inside the compose network)",
        ),
        Answer::GatewayOther { status, said } => fail(
            format!("the gateway answered HTTP {status}: {said}"),
            "doctor does not expect this answer from the gateway",
            "read `docker compose logs api-gw`",
        ),
        Answer::Network(e) => network(cx, e),
    }
}

fn network(cx: &Context<'_>, e: &HttpError) -> Outcome {
    let outside = "run doctor inside the compose network (`docker compose run --rm supakeys doctor`), or pass --url with the gateway's public URL";
    match e {
        HttpError::UnknownHost { .. } | HttpError::Resolve { .. } => fail(
            e.to_string(),
            "doctor runs outside the compose network, or the gateway is not running",
            outside,
        ),
        HttpError::ResolveTimeout { .. } => fail(
            e.to_string(),
            "the name server does not answer: doctor runs outside the compose network, or the network's DNS is down",
            outside,
        ),
        HttpError::Refused { .. }
        | HttpError::ConnectTimeout { .. }
        | HttpError::Connect { .. } => fail(
            e.to_string(),
            "the gateway is not running, or listens elsewhere",
            format!("`docker compose ps api-gw`; or {outside}"),
        ),
        HttpError::Timeout { .. } | HttpError::Deadline => fail(
            match e {
                HttpError::Deadline => format!(
                    "no complete answer before the end of the run ({} × --timeout)",
                    super::RUN_TIMEOUTS
                ),
                _ => e.to_string(),
            },
            "the gateway or the service behind it hangs",
            "read `docker compose logs`; raise --timeout for a slow link",
        ),
        HttpError::Tls { .. } => fail(
            e.to_string(),
            format!(
                "{} does not complete a TLS handshake supakeys trusts (a certificate for another name or from an unknown issuer, or no TLS on that port)",
                cx.url
            ),
            "check the URL and the gateway's certificate; inside the compose network use http://api-gw:8000",
        ),
        HttpError::Io { .. } | HttpError::Malformed(_) => fail(
            e.to_string(),
            format!("{} does not speak HTTP/1.1 like the gateway", cx.url),
            "pass --url with the gateway's HTTP address (http://api-gw:8000 inside the compose network)",
        ),
        HttpError::InvalidRequest { .. } => fail(
            e.to_string(),
            "a key of the keys directory holds a character HTTP does not allow in a header",
            "run `supakeys init` to rewrite the keys directory, then doctor again",
        ),
    }
}

/// How a verifier judged a token.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused {
        reason: Reason,
        said: String,
    },
    /// An answer of the service that says neither.
    Other {
        said: String,
    },
}

#[derive(Debug, PartialEq, Eq)]
enum Reason {
    /// No key with the token's kid (or of its type).
    UnknownKey,
    /// A key with that kid, but the signature does not verify.
    Signature,
    /// The algorithm is not accepted at all (Storage without `JWT_JWKS`).
    AlgNotAllowed,
    /// `exp`/`iat`/`nbf`: the clocks differ.
    Time,
    /// The service saw no token.
    NoToken,
    Unspecified,
}

/// PostgREST: `PGRST30x` is a refused JWT, anything else came after it was accepted.
fn postgrest(r: &Response) -> Verdict {
    let json = r.json().unwrap_or(Value::Null);
    let code = json.get("code").and_then(Value::as_str).unwrap_or_default();
    let message = json
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let details = json
        .get("details")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let quote = || {
        let text = if details.is_empty() {
            format!("{code} {message}")
        } else {
            format!("{code} {message} ({details})")
        };
        redact(&text)
    };
    match code {
        "PGRST301" => {
            let reason = if details.contains("No suitable key was found") {
                Reason::UnknownKey
            } else if details.contains("None of the keys") || message.contains("cryptographic") {
                Reason::Signature
            } else {
                Reason::Unspecified
            };
            Verdict::Refused {
                reason,
                said: quote(),
            }
        }
        "PGRST303" => Verdict::Refused {
            reason: if ["expired", "future", "not yet valid"]
                .iter()
                .any(|w| message.contains(w))
            {
                Reason::Time
            } else {
                Reason::Unspecified
            },
            said: quote(),
        },
        "PGRST300" => Verdict::Refused {
            reason: Reason::Unspecified,
            said: quote(),
        },
        "PGRST302" => Verdict::Refused {
            reason: Reason::NoToken,
            said: quote(),
        },
        c if c.starts_with("PGRST") => Verdict::Accepted,
        _ if (200..300).contains(&r.status) => Verdict::Accepted,
        _ => Verdict::Other {
            said: format!("HTTP {} {}", r.status, said(r)),
        },
    }
}

/// Storage: 200 from `/health` once the JWT verified; every refusal is HTTP 400 with
/// `"statusCode":"403"` and jose's message.
fn storage(r: &Response) -> Verdict {
    let json = r.json().unwrap_or(Value::Null);
    let status_code = json.get("statusCode").and_then(Value::as_str);
    let message = json
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if (200..300).contains(&r.status) {
        return Verdict::Accepted;
    }
    if matches!(r.status, 400 | 403) && status_code == Some("403") {
        let reason = if message.contains("not allowed") {
            Reason::AlgNotAllowed
        } else if message.contains("Uint8Array") {
            Reason::UnknownKey
        } else if message.contains("signature verification failed") {
            Reason::Signature
        } else if message.contains("claim timestamp check failed") {
            Reason::Time
        } else if message.contains("Invalid Compact JWS") {
            Reason::NoToken
        } else {
            Reason::Unspecified
        };
        return Verdict::Refused {
            reason,
            said: redact(message),
        };
    }
    Verdict::Other {
        said: format!("HTTP {} {}", r.status, said(r)),
    }
}

/// Realtime's REST broadcast: 401 `{"message":"Unauthorized"}` for a refused token; an
/// accepted one with an empty message list gets 422 (or 202).
fn realtime(r: &Response) -> Verdict {
    let message = r
        .json()
        .and_then(|j| j.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    match r.status {
        202 | 422 => Verdict::Accepted,
        401 if message == "Unauthorized" => Verdict::Refused {
            reason: Reason::Unspecified,
            said: "HTTP 401 Unauthorized".into(),
        },
        status => Verdict::Other {
            said: format!("HTTP {status} {}", said(r)),
        },
    }
}

fn verdict(service: Service, r: &Response) -> Verdict {
    match service {
        Service::Rest => postgrest(r),
        Service::Storage => storage(r),
        Service::Realtime => realtime(r),
        Service::Auth | Service::Gateway => Verdict::Other { said: said(r) },
    }
}

/// Extra words for an answer of the service that doctor cannot read as a verdict.
fn other_cause(service: Service, said: &str) -> (String, String) {
    let svc = service.name();
    if service == Service::Realtime && said.contains("Tenant not found") {
        return (
            "realtime knows no tenant by the Host name the gateway sends: the gateway must rewrite Host to the tenant's name (realtime-dev.supabase-realtime)".into(),
            "use upstream's gateway configuration for /realtime/v1/, and restart api-gw".into(),
        );
    }
    (
        format!("doctor does not expect this answer from {svc}"),
        format!("read `docker compose logs {svc}`"),
    )
}

/// "Does `service` accept a fresh token signed by `key`?"
pub fn verifier(
    cx: &Context<'_>,
    service: Service,
    key: &KeyFact,
    result: &Result<Response, HttpError>,
) -> Line {
    let svc = service.name();
    let path = cx.path(service.file());
    let outcome = match answer(result) {
        Answer::Service(r) => match verdict(service, r) {
            Verdict::Accepted => pass(""),
            Verdict::Refused { reason, said } => {
                let problem = format!("{svc} refused it: {said}");
                let fix = service.reload();
                match reason {
                    Reason::AlgNotAllowed => fail(
                        problem,
                        cx.without_layer(
                            service,
                            &format!(
                                "accepts no {} token at all: it runs without JWT_JWKS",
                                key.alg
                            ),
                        ),
                        cx.layer_fix(),
                    ),
                    Reason::Signature => fail(
                        problem,
                        format!(
                            "{svc} holds another key under the kid {}: it loads a key set that is not {path}",
                            key.kid
                        ),
                        fix,
                    ),
                    Reason::Time => fail(
                        problem,
                        format!(
                            "the clocks of this machine and of {svc} differ by more than the tolerance"
                        ),
                        "synchronise the clocks (NTP), then run doctor again",
                    ),
                    Reason::NoToken => fail(
                        problem,
                        format!(
                            "{svc} received no token: something between doctor and {svc} drops the Authorization header"
                        ),
                        "use upstream's gateway configuration for this route, and restart api-gw",
                    ),
                    Reason::UnknownKey | Reason::Unspecified => {
                        let runs = if service == Service::Realtime {
                            "its tenant was seeded at start from an older API_JWT_JWKS"
                        } else {
                            "it runs with an older key set"
                        };
                        fail(
                            problem,
                            format!(
                                "{svc} does not have the {} key {}: {runs}, so it did not load {path} since the key was added",
                                key.status.as_str(),
                                key.kid
                            ),
                            fix,
                        )
                    }
                }
            }
            Verdict::Other { said } => {
                let (cause, fix) = other_cause(service, &said);
                fail(format!("{svc} answered {said}"), cause, fix)
            }
        },
        other => not_the_service(cx, service, &other),
    };
    Line {
        service: svc,
        check: "accepts-key",
        key: Some((key.kid.clone(), key.status.as_str())),
        title: format!("accepts a token signed by the {}", key.label()),
        outcome,
    }
}

/// "Does `service` accept (accept mode) or refuse (reject mode) an HS256 token signed with
/// `JWT_SECRET`?" `None`: doctor has no `JWT_SECRET` to sign one with.
pub fn legacy_hs256(
    cx: &Context<'_>,
    service: Service,
    result: Option<&Result<Response, HttpError>>,
) -> Line {
    let svc = service.name();
    let path = cx.path(service.file());
    let (title, want_accept) = match cx.mode {
        LegacyHs256::Accept => (
            "accepts a legacy HS256 token signed with JWT_SECRET (SUPAKEYS_LEGACY_HS256=accept)",
            true,
        ),
        LegacyHs256::Reject => (
            "refuses a legacy HS256 token signed with JWT_SECRET (SUPAKEYS_LEGACY_HS256=reject)",
            false,
        ),
    };
    let outcome = match result {
        None => Outcome::Skip {
            reason: "JWT_SECRET is not set here; give doctor the environment of init (`docker compose run --rm supakeys doctor`)".into(),
        },
        Some(result) => match answer(result) {
            Answer::Service(r) => match (verdict(service, r), want_accept) {
                (Verdict::Accepted, true) => pass(""),
                (Verdict::Refused { said, .. }, false) => pass(format!("{svc} refused it: {said}")),
                (Verdict::Accepted, false) => fail(
                    format!("{svc} accepted it"),
                    format!(
                        "{svc} still verifies HS256 tokens with JWT_SECRET: it did not load {path} since SUPAKEYS_LEGACY_HS256=reject"
                    ),
                    service.reload(),
                ),
                (Verdict::Refused { reason: Reason::Time, said }, true) => fail(
                    format!("{svc} refused it: {said}"),
                    format!("the clocks of this machine and of {svc} differ by more than the tolerance"),
                    "synchronise the clocks (NTP), then run doctor again",
                ),
                (Verdict::Refused { said, .. }, true) => fail(
                    format!("{svc} refused it: {said}"),
                    format!(
                        "{svc} verifies HS256 tokens with another secret: its JWT secret is not the JWT_SECRET given to supakeys, or it still runs with the settings of SUPAKEYS_LEGACY_HS256=reject (it did not load {path} since)"
                    ),
                    service.reload(),
                ),
                (Verdict::Other { said }, _) => {
                    let (cause, fix) = other_cause(service, &said);
                    fail(format!("{svc} answered {said}"), cause, fix)
                }
            },
            other => not_the_service(cx, service, &other),
        },
    };
    Line {
        service: svc,
        check: "legacy-hs256",
        key: None,
        title: title.into(),
        outcome,
    }
}

/// The API keys clients send as `apikey`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKey {
    Publishable,
    Secret,
    /// `ANON_KEY` of `gateway.env`: the key clients hold (the legacy key while HS256 is
    /// accepted, else the ES256 API token).
    Anon,
    /// `SERVICE_ROLE_KEY` of `gateway.env`.
    ServiceRole,
    /// The legacy keys of the environment once HS256 is rejected: the gateway must refuse
    /// them.
    LegacyAnon,
    LegacyServiceRole,
}

impl ApiKey {
    fn name(self, hs256: bool) -> &'static str {
        match (self, hs256) {
            (ApiKey::Publishable, _) => "the publishable key",
            (ApiKey::Secret, _) => "the secret key",
            (ApiKey::Anon, true) | (ApiKey::LegacyAnon, _) => "the legacy ANON_KEY",
            (ApiKey::ServiceRole, true) | (ApiKey::LegacyServiceRole, _) => {
                "the legacy SERVICE_ROLE_KEY"
            }
            (ApiKey::Anon, false) => "the anon API token (ANON_KEY of gateway.env)",
            (ApiKey::ServiceRole, false) => {
                "the service-role API token (SERVICE_ROLE_KEY of gateway.env)"
            }
        }
    }

    fn check(self) -> &'static str {
        match self {
            ApiKey::Publishable => "publishable-key",
            ApiKey::Secret => "secret-key",
            ApiKey::Anon => "anon-key",
            ApiKey::ServiceRole => "service-role-key",
            ApiKey::LegacyAnon => "legacy-anon-key",
            ApiKey::LegacyServiceRole => "legacy-service-role-key",
        }
    }

    fn admin(self) -> bool {
        matches!(
            self,
            ApiKey::Secret | ApiKey::ServiceRole | ApiKey::LegacyServiceRole
        )
    }

    fn opaque(self) -> bool {
        matches!(self, ApiKey::Publishable | ApiKey::Secret)
    }

    /// Only the legacy keys of reject mode must be refused.
    fn must_be_refused(self) -> bool {
        matches!(self, ApiKey::LegacyAnon | ApiKey::LegacyServiceRole)
    }

    fn role(self) -> &'static str {
        if self.admin() { "service_role" } else { "anon" }
    }

    fn variable(self) -> &'static str {
        if self.admin() {
            "SERVICE_ROLE_KEY"
        } else {
            "ANON_KEY"
        }
    }
}

/// What GoTrue's admin endpoint said about the token the gateway made of the key.
enum AdminVerdict {
    /// 404 `user_not_found`: an admin token.
    Admin,
    /// 403 `not_admin`: a valid token of another role.
    NotAdmin,
    /// The token was refused (`bad_jwt`) or missing (`no_authorization`).
    Refused {
        code: String,
        said: String,
    },
    Other {
        said: String,
    },
}

fn gotrue_admin(r: &Response) -> AdminVerdict {
    let json = r.json().unwrap_or(Value::Null);
    let code = json
        .get("error_code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match (r.status, code.as_str()) {
        (404, "user_not_found") => AdminVerdict::Admin,
        (403, "not_admin") => AdminVerdict::NotAdmin,
        (401 | 403, "bad_jwt" | "no_authorization") => AdminVerdict::Refused {
            said: format!("HTTP {} {code}: {}", r.status, said(r)),
            code,
        },
        (status, _) => AdminVerdict::Other {
            said: format!("HTTP {status} {}", said(r)),
        },
    }
}

/// "Does the gateway accept `key` and turn it into a token of the right role?" (or, for
/// the legacy keys once HS256 is rejected, "does it refuse them?"), judged by GoTrue's
/// admin endpoint behind it. `hs256`: the key is a legacy HS256 JWT. `None`: doctor does
/// not have this key. `auth_has_current`: whether Auth's JWKS published the current key
/// (tells a stale Auth from a stale gateway when Auth refuses the token it was given).
pub fn api_key(
    cx: &Context<'_>,
    key: ApiKey,
    hs256: bool,
    result: Option<&Result<Response, HttpError>>,
    auth_has_current: bool,
) -> Line {
    let want_accept = !key.must_be_refused();
    let name = key.name(hs256);
    let role = key.role();
    let title = if want_accept {
        format!("accepts {name} as {role}")
    } else {
        format!("refuses {name} (SUPAKEYS_LEGACY_HS256=reject)")
    };
    let gateway_file = cx.gateway_file();
    let restart_gw = "docker compose restart api-gw";
    let auth_env = cx.path("auth.env");
    let outcome = match result {
        None if want_accept => Outcome::Skip {
            reason: format!("{} has no {}", cx.path("gateway.env"), key.variable()),
        },
        None => Outcome::Skip {
            reason: format!(
                "{} is not set here; give doctor the environment of init (`docker compose run --rm supakeys doctor`)",
                key.variable()
            ),
        },
        Some(result) => match (answer(result), want_accept) {
            (Answer::Service(r), true) => match gotrue_admin(r) {
                AdminVerdict::Admin if key.admin() => pass("auth sees a service_role token"),
                AdminVerdict::NotAdmin if !key.admin() => pass("auth sees a non-admin token"),
                AdminVerdict::Admin => fail(
                    format!(
                        "{name} acts as service_role: auth took the token it became for an admin's"
                    ),
                    format!("api-gw maps {name} to the service-role token: its keys are swapped"),
                    format!("check {gateway_file}, then {restart_gw}"),
                ),
                AdminVerdict::NotAdmin => fail(
                    format!("{name} does not act as service_role: auth answered not_admin"),
                    format!(
                        "api-gw turns {name} into a non-admin token: it runs with other keys (it did not load {gateway_file} since they changed)"
                    ),
                    restart_gw,
                ),
                AdminVerdict::Refused { code, said } => {
                    let problem = format!(
                        "api-gw accepted {name}, but auth refused the token it passed on: {said}"
                    );
                    if code == "no_authorization" {
                        fail(
                            problem,
                            "api-gw does not pass the key on as a Bearer token: its configuration lacks the API key translation",
                            format!(
                                "use upstream's current gateway configuration ({gateway_file}), and {restart_gw}"
                            ),
                        )
                    } else if hs256 {
                        fail(
                            problem,
                            format!(
                                "auth does not accept HS256 tokens: it still runs with the settings of SUPAKEYS_LEGACY_HS256=reject (it did not load {auth_env} since)"
                            ),
                            Service::Auth.reload(),
                        )
                    } else if !auth_has_current {
                        fail(
                            problem,
                            format!(
                                "auth does not have the current key (see its JWKS line): it did not load {auth_env}"
                            ),
                            Service::Auth.reload(),
                        )
                    } else {
                        fail(
                            problem,
                            format!(
                                "api-gw passes on an API token signed by a key auth no longer has: it did not load {gateway_file} since `keys rotate`"
                            ),
                            restart_gw,
                        )
                    }
                }
                AdminVerdict::Other { said } => fail(
                    format!("auth answered {said}"),
                    "doctor does not expect this answer from auth's admin endpoint",
                    "read `docker compose logs auth`",
                ),
            },
            (Answer::GatewayRefused { status, said }, true) => {
                let cause = match (key.opaque(), cx.gateway) {
                    (true, Gateway::Kong) => format!(
                        "Kong's consumers do not list {name}: it did not load {gateway_file}"
                    ),
                    (true, _) => format!(
                        "api-gw runs in legacy API key mode or with other opaque keys: one of SUPABASE_PUBLISHABLE_KEY, SUPABASE_SECRET_KEY, ANON_KEY_ASYMMETRIC, SERVICE_ROLE_KEY_ASYMMETRIC is empty or different in its environment (it did not load {gateway_file})"
                    ),
                    (false, _) => format!(
                        "api-gw runs with other API keys: it did not load {gateway_file} since they changed (SUPAKEYS_LEGACY_HS256, `keys rotate`)"
                    ),
                };
                fail(
                    format!("api-gw refused {name}: HTTP {status} {said}"),
                    cause,
                    restart_gw,
                )
            }
            (Answer::GatewayRefused { status, .. }, false) => {
                pass(format!("api-gw refused it (HTTP {status})"))
            }
            (Answer::Service(r), false) => match gotrue_admin(r) {
                AdminVerdict::Admin | AdminVerdict::NotAdmin => fail(
                    format!("api-gw and auth still accept {name}"),
                    format!(
                        "api-gw and auth still run with the settings from before SUPAKEYS_LEGACY_HS256=reject: they did not load {gateway_file} and {auth_env}"
                    ),
                    "docker compose restart api-gw auth",
                ),
                AdminVerdict::Refused { said, .. } => fail(
                    format!("api-gw still accepts {name} (auth then refused it: {said})"),
                    format!(
                        "api-gw still runs with the legacy keys: it did not load {gateway_file} since SUPAKEYS_LEGACY_HS256=reject"
                    ),
                    restart_gw,
                ),
                AdminVerdict::Other { said } => fail(
                    format!("auth answered {said}"),
                    "doctor does not expect this answer from auth's admin endpoint",
                    "read `docker compose logs auth`",
                ),
            },
            (other, _) => not_the_service(cx, Service::Auth, &other),
        },
    };
    Line {
        service: Service::Gateway.name(),
        check: key.check(),
        key: None,
        title,
        outcome,
    }
}

/// Members that only private or symmetric JWKs have.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// True when two JWKs are the same public key (members compared, not bytes).
fn same_public_key(served: &Value, ours: &Value) -> bool {
    let members: &[&str] = match ours.get("kty").and_then(Value::as_str) {
        Some("EC") => &["kty", "crv", "x", "y"],
        Some("RSA") => &["kty", "n", "e"],
        _ => return false,
    };
    members.iter().all(|m| served.get(m) == ours.get(m))
        && served
            .get("alg")
            .is_none_or(|alg| Some(alg) == ours.get("alg"))
}

/// "Does Auth serve, without an apikey, exactly the verifier keys of `state.json`?"
/// Returns the line and whether the current key was among the keys served.
pub fn jwks(cx: &Context<'_>, result: &Result<Response, HttpError>) -> (Line, bool) {
    let mut has_current = false;
    let auth_env = cx.path("auth.env");
    let outcome = match answer(result) {
        Answer::Service(r) => match r.json().filter(|_| r.status == 200) {
            None => fail(
                format!("auth answered HTTP {} {}", r.status, said(r)),
                "this is not auth's /.well-known/jwks.json",
                "check the gateway's route for /auth/v1/.well-known/jwks.json",
            ),
            Some(json) => match json.get("keys").and_then(Value::as_array) {
                None => fail(
                    "the answer has no \"keys\" array",
                    "this is not auth's /.well-known/jwks.json",
                    "check the gateway's route for /auth/v1/.well-known/jwks.json",
                ),
                Some(served) => {
                    let (problems, current) = compare_jwks(cx, served);
                    has_current = current;
                    if problems.is_empty() {
                        let live: Vec<String> = cx
                            .keys
                            .iter()
                            .filter(|k| k.public.is_some())
                            .map(|k| format!("{} ({})", k.kid, k.status.as_str()))
                            .collect();
                        pass(live.join(", "))
                    } else {
                        let leak = problems.iter().any(|p| {
                            p.starts_with("publishes private")
                                || p.starts_with("publishes a symmetric")
                        });
                        let (cause, fix) = if leak {
                            (
                                "GoTrue never publishes private or symmetric keys: something else answers this route".to_owned(),
                                "check the gateway's route for /auth/v1/.well-known/jwks.json; treat the published keys as leaked (`supakeys keys rotate --now`, then `keys revoke`)".to_owned(),
                            )
                        } else if served.is_empty() {
                            // Every auth.env holds the current key: none at all means none was read.
                            (
                                cx.without_layer(
                                    Service::Auth,
                                    "publishes no key: it runs without GOTRUE_JWT_KEYS",
                                ),
                                cx.layer_fix(),
                            )
                        } else {
                            (
                                format!(
                                    "auth serves the key set it read at start: it did not load {auth_env} since `keys standby`, `rotate` or `revoke` changed it (or it reads GOTRUE_JWT_KEYS from elsewhere)"
                                ),
                                Service::Auth.reload(),
                            )
                        };
                        fail(format!("auth {}", problems.join("; ")), cause, fix)
                    }
                }
            },
        },
        Answer::GatewayRefused { status, said } => fail(
            format!(
                "api-gw asks for an apikey on /auth/v1/.well-known/jwks.json: HTTP {status} {said}"
            ),
            "the gateway's configuration has no open route for the JWKS (older kong.yml templates lack it), so clients cannot verify tokens locally",
            "use upstream's current gateway configuration (supakeys adds the route to kong templates that lack it), and restart api-gw",
        ),
        other => not_the_service(cx, Service::Auth, &other),
    };
    let line = Line {
        service: Service::Auth.name(),
        check: "jwks",
        key: None,
        title: "serves the keys of state.json as its JWKS, without an apikey".into(),
        outcome,
    };
    (line, has_current)
}

/// The differences between the served JWKS and the verifier keys, and whether the current
/// key is served as it should be.
fn compare_jwks(cx: &Context<'_>, served: &[Value]) -> (Vec<String>, bool) {
    let mut problems = Vec::new();
    let mut has_current = false;
    let mut seen = Vec::new();
    for jwk in served {
        let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or_default();
        let shown = if kid.is_empty() {
            "(no kid)".to_owned()
        } else {
            redact(kid)
        };
        if PRIVATE_MEMBERS.iter().any(|m| jwk.get(m).is_some()) {
            if jwk.get("kty").and_then(Value::as_str) == Some("oct") {
                problems.push(format!("publishes a symmetric (oct) key {shown}"));
            } else {
                problems.push(format!("publishes private key material for {shown}"));
            }
            continue;
        }
        match cx.keys.iter().find(|k| k.kid == kid) {
            None => problems.push(format!(
                "publishes the key {shown}, which state.json does not have"
            )),
            Some(k) => match &k.public {
                None => problems.push(format!("still publishes the revoked key {}", k.kid)),
                Some(ours) if !same_public_key(jwk, ours) => problems.push(format!(
                    "publishes another key under the kid of the {} key {}",
                    k.status.as_str(),
                    k.kid
                )),
                Some(_) => {
                    seen.push(k.kid.as_str());
                    if k.status == Status::Current {
                        has_current = true;
                    }
                }
            },
        }
    }
    for k in cx.keys.iter().filter(|k| k.public.is_some()) {
        if !seen.contains(&k.kid.as_str()) {
            problems.push(format!(
                "does not publish the {} key {}",
                k.status.as_str(),
                k.kid
            ));
        }
    }
    (problems, has_current)
}

/// Where the access token for the signing check comes from.
pub enum Evidence<'a> {
    /// Neither `--access-token` nor `--sign-in-anonymously`.
    None,
    /// A token the user gave.
    Given(&'a str),
    /// The answer to the anonymous sign-in.
    SignIn(&'a Result<Response, HttpError>),
}

/// "Does Auth sign new tokens with the current key?"
pub fn signing_key(cx: &Context<'_>, evidence: Evidence<'_>) -> Line {
    let current = cx.current();
    let title = match current {
        Some(k) => format!(
            "signs new tokens with the current key {} ({})",
            k.kid, k.alg
        ),
        None => "signs new tokens with the current key".into(),
    };
    let outcome = match evidence {
        Evidence::None => Outcome::Skip {
            reason: "doctor needs a token auth issued: pass --access-token TOKEN (or set SUPAKEYS_ACCESS_TOKEN) with a signed-in user's access token, or --sign-in-anonymously to create an anonymous user".into(),
        },
        Evidence::Given(token) => judge_token(cx, token, "the given access token"),
        Evidence::SignIn(result) => match answer(result) {
            Answer::Service(r) => {
                let json = r.json().unwrap_or(Value::Null);
                let code = json.get("error_code").and_then(Value::as_str).unwrap_or_default();
                match json.get("access_token").and_then(Value::as_str) {
                    Some(token) if r.status == 200 => judge_token(cx, token, "the anonymous sign-in's token"),
                    _ if code == "anonymous_provider_disabled" || code == "signup_disabled" => Outcome::Skip {
                        reason: format!("auth refused the anonymous sign-in ({code}): enable anonymous sign-ins (GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED=true) or pass --access-token"),
                    },
                    _ if r.status == 429 => Outcome::Skip {
                        reason: "auth rate-limits anonymous sign-ins (GOTRUE_RATE_LIMIT_ANONYMOUS_USERS): wait, or pass --access-token".into(),
                    },
                    _ => fail(
                        format!("the anonymous sign-in got HTTP {} {}", r.status, said(r)),
                        "doctor does not expect this answer from auth's /signup",
                        "read `docker compose logs auth`, or pass --access-token",
                    ),
                }
            }
            other => not_the_service(cx, Service::Auth, &other),
        },
    };
    Line {
        service: Service::Auth.name(),
        check: "signing-key",
        key: current.map(|k| (k.kid.clone(), k.status.as_str())),
        title,
        outcome,
    }
}

fn judge_token(cx: &Context<'_>, token: &str, source: &str) -> Outcome {
    let auth_env = cx.path("auth.env");
    let restart = Service::Auth.reload();
    let Some(current) = cx.current() else {
        return Outcome::Skip {
            reason: "state.json has no current key".into(),
        };
    };
    let parsed = match crate::jwt::parse(token) {
        Ok(p) => p,
        Err(p) => {
            return fail(
                format!("{source} {}", p.describe()),
                "auth did not issue it",
                "pass the access_token of a session auth issued",
            );
        }
    };
    let alg = parsed
        .header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kid = parsed.header.get("kid").and_then(Value::as_str);
    let iat = parsed.payload.get("iat").and_then(Value::as_i64);
    if alg.starts_with("HS") {
        return fail(
            format!(
                "auth signed {source} with {alg} (the legacy JWT_SECRET), not with the current key"
            ),
            cx.without_layer(Service::Auth, "runs without GOTRUE_JWT_KEYS"),
            cx.layer_fix(),
        );
    }
    let Some(kid) = kid else {
        return fail(
            format!("{source} has no kid ({alg})"),
            format!("auth signs with a key that is not from {auth_env}"),
            restart,
        );
    };
    match cx.keys.iter().find(|k| k.kid == kid) {
        Some(k) if k.status == Status::Current => {
            let verified = k
                .public
                .as_ref()
                .is_some_and(|jwk| verifies(token, jwk, alg));
            if verified && alg == k.alg {
                pass(format!("{source} has kid {kid} and verifies with it"))
            } else {
                fail(
                    format!(
                        "{source} has the current kid {kid} but does not verify with the current key of state.json"
                    ),
                    format!(
                        "auth holds another private key under this kid: it loads keys that are not {auth_env}"
                    ),
                    restart,
                )
            }
        }
        Some(k) => {
            if iat.is_some_and(|iat| iat < current.changed_at) {
                Outcome::Skip {
                    reason: format!(
                        "{source} was issued before the key {} became current ({}); pass a newer one",
                        current.kid,
                        crate::clock::date(current.changed_at)
                    ),
                }
            } else {
                fail(
                    format!(
                        "auth signed {source} with the {} key {}, not the current key {}",
                        k.status.as_str(),
                        k.kid,
                        current.kid
                    ),
                    format!(
                        "auth still runs with the key set from before `keys rotate`: it did not load {auth_env}"
                    ),
                    restart,
                )
            }
        }
        None => fail(
            format!(
                "auth signed {source} with the key {}, which state.json does not have",
                redact(kid)
            ),
            format!(
                "auth runs with a key set that is not {auth_env} (GOTRUE_JWT_KEYS set elsewhere, or another keys volume)"
            ),
            format!("make auth read {auth_env}, then {restart}"),
        ),
    }
}

/// True when the JWS signature of `token` verifies with the public JWK `jwk` under `alg`.
fn verifies(token: &str, jwk: &Value, alg: &str) -> bool {
    let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(jwk.clone()) else {
        return false;
    };
    let Ok(key) = jsonwebtoken::DecodingKey::from_jwk(&jwk) else {
        return false;
    };
    let algorithm = match alg {
        "ES256" => jsonwebtoken::Algorithm::ES256,
        "RS256" => jsonwebtoken::Algorithm::RS256,
        _ => return false,
    };
    let Some((message, signature)) = token.rsplit_once('.') else {
        return false;
    };
    jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, algorithm).unwrap_or(false)
}

#[cfg(test)]
mod tests;
