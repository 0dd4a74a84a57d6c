//! `supakeys doctor`: proves, through the API gateway, that the running services use the
//! keys of the keys directory, service by service.
//!
//! It reads `state.json` (private keys: it can mint tokens), `gateway.env` (the API keys
//! clients send) and `jwt_jwks.json` (whether legacy HS256 is accepted), sends one plain
//! HTTP request per check, all at once, and reports one line per service and check. The
//! requests change nothing: reads, a Realtime broadcast of an empty message list (refused
//! by validation before anything is sent; Realtime's own test "returns changeset error
//! when messages array is empty" pins that nothing is broadcast), and Auth's admin lookup of
//! a random user id. The one exception is `--sign-in-anonymously`, which creates an
//! anonymous user when asked to.
//!
//! Tokens doctor mints are `authenticated`, live 60 seconds and have a random `sub`. No
//! token, key or secret reaches the report: it names services, kids, algorithms, statuses
//! and what the services said (with anything token-like redacted).

mod analyse;
mod report;

use crate::cli::DoctorArgs;
use crate::config::{Inputs, LegacyHs256};
use crate::envfile::DotEnv;
use crate::error::{Error, Result};
use crate::http::{Client, HttpError, Method, Request, Response, Roots, Scheme, Target};
use crate::jwk::{Kid, SigningKey, b64};
use crate::secret::Secret;
use crate::state::{self, State, Status};
use crate::store::Store;
use analyse::{ApiKey, Context, Evidence, Gateway, KeyFact, Service};
pub use analyse::{LAYER_FIX, WITHOUT_LAYER};
use serde_json::{Value, json};
use std::io::{BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The gateway as seen from inside the compose network (upstream also names it `kong`
/// and `envoy`).
pub const DEFAULT_URL: &str = "http://api-gw:8000";
const DEFAULT_TIMEOUT_SECS: i64 = 5;
/// A table name nobody has: PostgREST answers `PGRST205` once the JWT is accepted,
/// without a database round trip.
const REST_PROBE_PATH: &str = "/rest/v1/supakeys_doctor_probe";
/// Lifetime of the tokens doctor mints (issued 10 s in the past for clock skew).
const TOKEN_SECS: i64 = 60;
/// A whole run ends within this many `--timeout`s: the name lookup takes at most one,
/// each request at most one, and requests still unanswered at this bound fail.
const RUN_TIMEOUTS: u32 = 4;
/// `--access-token -` reads at most this much of standard input (Auth's access tokens are
/// a few hundred bytes to a few KiB).
const MAX_STDIN_TOKEN: u64 = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

/// Where the token for "Auth signs with the current key" comes from.
enum TokenSource {
    None,
    Given(Secret),
    SignIn,
}

struct Options {
    target: Target,
    timeout: Duration,
    format: Format,
    token: TokenSource,
    /// `--allow-plain-http`: send the credentials over plain HTTP to any address.
    allow_plain_http: bool,
}

impl Options {
    fn parse(args: DoctorArgs) -> Result<Options> {
        const URL: &str = "--url (SUPAKEYS_DOCTOR_URL)";
        const TIMEOUT: &str = "--timeout (SUPAKEYS_DOCTOR_TIMEOUT)";
        let url = text(args.url, URL)?.unwrap_or_else(|| DEFAULT_URL.into());
        let target = Target::parse(&url).map_err(|problem| {
            Error::invalid(
                URL,
                problem,
                "Give the gateway's base URL, e.g. http://api-gw:8000 inside the compose network or https://api.example.com from outside.",
            )
        })?;
        let timeout = match text(args.timeout, TIMEOUT)? {
            None => DEFAULT_TIMEOUT_SECS,
            Some(text) => crate::config::parse_duration(&text)
                .filter(|s| *s <= 300)
                .ok_or_else(|| {
                    Error::invalid(
                        TIMEOUT,
                        "must be 1 to 300 seconds, e.g. 5 or 30s",
                        "Unset it for 5 seconds.",
                    )
                })?,
        };
        let format = match text(args.format, "--format")?.as_deref() {
            None | Some("text") => Format::Text,
            Some("json") => Format::Json,
            Some(_) => {
                return Err(Error::invalid(
                    "--format",
                    "must be text or json",
                    "Leave it out for text.",
                ));
            }
        };
        let given = match args.access_token {
            Some(t) if t.expose() == "-" => Some(read_token_from_stdin()?),
            Some(t) if !t.expose().is_empty() => Some(t),
            _ => None,
        };
        let token = match (given, args.sign_in_anonymously) {
            (Some(_), true) => {
                return Err(Error::invalid(
                    "--sign-in-anonymously",
                    "cannot be used with an access token (--access-token or SUPAKEYS_ACCESS_TOKEN)",
                    "Give one of the two: the token of a real session, or the flag.",
                ));
            }
            (Some(t), false) => {
                if let Err(p) = crate::jwt::parse(t.expose()) {
                    return Err(Error::invalid(
                        "--access-token (SUPAKEYS_ACCESS_TOKEN)",
                        p.describe(),
                        "Give the access_token of a session Auth issued (a user's JWT), or use --sign-in-anonymously.",
                    ));
                }
                TokenSource::Given(t)
            }
            (None, true) => TokenSource::SignIn,
            (None, false) => TokenSource::None,
        };
        Ok(Options {
            target,
            timeout: Duration::from_secs(timeout.unsigned_abs()),
            format,
            token,
            allow_plain_http: args.allow_plain_http,
        })
    }

    /// Refuses to send the secret key and service-role tokens in cleartext beyond the
    /// local network (see [`private_network`]), unless `--allow-plain-http` says so.
    fn check_cleartext(&self, addrs: &[SocketAddr]) -> Result<()> {
        if self.target.scheme == Scheme::Https
            || self.allow_plain_http
            || private_network(&self.target.host, addrs)
        {
            return Ok(());
        }
        let mut place = self.target.host.clone();
        if self.target.host.parse::<IpAddr>().is_err() {
            let public: Vec<String> = addrs
                .iter()
                .filter(|a| !local_address(a.ip()))
                .map(|a| a.ip().to_string())
                .collect();
            place = format!("{place} ({})", public.join(", "));
        }
        Err(Error::invalid(
            "--url (SUPAKEYS_DOCTOR_URL)",
            format!(
                "is a plain http:// URL to {place}, outside the local network: doctor sends the secret key and service-role tokens, which would cross it in cleartext"
            ),
            "Use the gateway's https:// URL, or run doctor inside the compose network (http://api-gw:8000); to send them in cleartext anyway, pass --allow-plain-http (SUPAKEYS_DOCTOR_ALLOW_PLAIN_HTTP=true).",
        ))
    }
}

/// Where plain HTTP may carry doctor's credentials: a compose service name (one label that
/// starts with a letter, so not a number the resolver would read as an address), or a host
/// whose every address is loopback, private (RFC 1918, ULA fc00::/7) or link-local.
fn private_network(host: &str, addrs: &[SocketAddr]) -> bool {
    let service_name =
        !host.contains(['.', ':']) && host.starts_with(|c: char| c.is_ascii_alphabetic());
    service_name || (!addrs.is_empty() && addrs.iter().all(|a| local_address(a.ip())))
}

fn local_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => local_address(IpAddr::V4(v4)),
            None => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
        },
    }
}

/// A flag's value as text; `None` when absent or empty (an empty variable counts as unset).
fn text(value: Option<std::ffi::OsString>, name: &'static str) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) => {
            let v = v.into_string().map_err(|_| {
                Error::invalid(name, "is not valid UTF-8", "Give it as UTF-8 text.")
            })?;
            Ok(Some(v).filter(|v| !v.is_empty()))
        }
    }
}

/// The first line of standard input, at most [`MAX_STDIN_TOKEN`] bytes.
fn read_token_from_stdin() -> Result<Secret> {
    const NAME: &str = "--access-token - (standard input)";
    let mut line = zeroize::Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(MAX_STDIN_TOKEN + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| Error::io("read", "standard input", e))?;
    if line.len() as u64 > MAX_STDIN_TOKEN {
        return Err(Error::invalid(
            NAME,
            format!(
                "holds a line longer than {} KiB, longer than any access token",
                MAX_STDIN_TOKEN / 1024
            ),
            "Pipe in the access token alone, on one line.",
        ));
    }
    let text = std::str::from_utf8(&line).map_err(|_| {
        Error::invalid(
            NAME,
            "is not valid UTF-8",
            "Pipe in the access token alone, on one line.",
        )
    })?;
    Ok(Secret::new(text.trim()))
}

/// What doctor knows from the keys directory and the environment.
struct Material {
    state: State,
    facts: Vec<KeyFact>,
    mode: LegacyHs256,
    /// The anon API key clients send (`ANON_KEY` of `gateway.env`), which every gateway
    /// configuration accepts: doctor sends it as `apikey` to reach the verifiers, so that a
    /// gateway problem with the opaque keys does not hide what the services say.
    anon_key: Secret,
    service_key: Option<Secret>,
    jwt_secret: Option<Secret>,
    /// The legacy API keys of the environment, once HS256 is rejected (the gateway must
    /// refuse them); `None` when there are none (or doctor lacks them, see `had_legacy`).
    legacy_anon: Option<Secret>,
    legacy_service: Option<Secret>,
    /// `state.json` says legacy API keys were given to init.
    had_legacy: bool,
}

impl Material {
    fn load(inputs: &Inputs, store: &dyn Store) -> Result<Material> {
        let state = store.state()?.ok_or(Error::NoState {
            path: store.path_of(state::FILE),
        })?;
        let read = |name: &str| -> Result<Vec<u8>> {
            store.read(name)?.ok_or(Error::NoState {
                path: store.path_of(name),
            })
        };
        let jwt_jwks: Value = serde_json::from_slice(&read("jwt_jwks.json")?)
            .map_err(|_| Error::state(store.path_of("jwt_jwks.json"), "not valid JSON"))?;
        let oct = crate::render::legacy_hs256_secret(&jwt_jwks);
        if oct.as_ref().is_some_and(|k| k.expose().is_empty()) {
            return Err(Error::state(
                store.path_of("jwt_jwks.json"),
                "its oct key (the legacy JWT secret) is empty",
            ));
        }
        // The mode the state records (the files follow it after `init`).
        let mode = state.legacy_hs256.mode;
        let gateway_path = store.path_of("gateway.env");
        let gateway =
            DotEnv::parse(&String::from_utf8_lossy(&read("gateway.env")?)).map_err(|r| {
                Error::EnvFileSyntax {
                    path: gateway_path.clone(),
                    line: r.line,
                    problem: r.problem,
                }
            })?;
        // Both are JWTs that doctor sends in headers: a value another writer of the
        // directory changed is refused here, naming it, before anything is sent.
        let api_key = |name: &'static str| -> Result<Option<Secret>> {
            let Some(value) = gateway.get(name).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            let problem = if value.chars().any(|c| c.is_control()) {
                Some("holds a control character")
            } else {
                crate::jwt::parse(value).err().map(|p| p.describe())
            };
            match problem {
                None => Ok(Some(Secret::new(value))),
                Some(problem) => Err(Error::invalid(
                    format!("{name} (in {})", crate::escape::path(&gateway_path)),
                    problem,
                    "gateway.env is written by `supakeys init`, which holds its keys in state.json: run it to rewrite the file",
                )),
            }
        };
        let anon_key =
            api_key("ANON_KEY")?.ok_or_else(|| Error::state(&gateway_path, "has no ANON_KEY"))?;
        let service_key = api_key("SERVICE_ROLE_KEY")?;
        // While HS256 is accepted the legacy keys are gateway.env's own (checked as such).
        let legacy = |name: &'static str| match mode {
            LegacyHs256::Accept => None,
            LegacyHs256::Reject => inputs.token(name).filter(|s| is_hs256(s.expose())),
        };
        let facts = state
            .keys
            .iter()
            .map(|k| KeyFact {
                kid: k.kid.to_string(),
                alg: k.alg.as_str(),
                status: k.status,
                changed_at: k.changed_at,
                public: k.key.as_ref().map(SigningKey::public_jwk),
            })
            .collect();
        Ok(Material {
            facts,
            mode,
            anon_key,
            service_key,
            jwt_secret: inputs.secret("JWT_SECRET").or(oct),
            legacy_anon: legacy("ANON_KEY"),
            legacy_service: legacy("SERVICE_ROLE_KEY"),
            had_legacy: state.inputs.anon_key.is_some(),
            state,
        })
    }

    /// The keys every verifier must accept, with their index in `facts`.
    fn verifiers(&self) -> Vec<(usize, &SigningKey)> {
        self.state
            .keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.status != Status::Revoked)
            .filter_map(|(i, k)| k.key.as_ref().map(|key| (i, key)))
            .collect()
    }
}

fn is_hs256(token: &str) -> bool {
    crate::jwt::parse(token)
        .is_ok_and(|p| p.header.get("alg").and_then(Value::as_str) == Some("HS256"))
}

/// What one request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    Jwks,
    SignIn,
    /// A token signed by the key at this index of `facts`.
    Verify(Service, usize),
    Hs256(Service),
    ApiKey(ApiKey),
}

const VERIFIERS: [Service; 3] = [Service::Rest, Service::Storage, Service::Realtime];

/// The request that asks `service` to verify `token`, through the gateway. The anon API
/// key goes in `apikey` (the gateway requires one); the token in `Authorization`, which
/// both gateways pass through untouched when it is a JWT.
fn verify_request(service: Service, anon_key: &Secret, token: &str) -> Request {
    let request = match service {
        Service::Storage => Request::get("/storage/v1/health"),
        Service::Realtime => {
            Request::new(Method::Post, "/realtime/v1/api/broadcast").json(br#"{"messages":[]}"#)
        }
        _ => Request::get(REST_PROBE_PATH),
    };
    request
        .header("apikey", anon_key.expose())
        .header("Authorization", &format!("Bearer {token}"))
}

/// An anonymous sign-in, with an API key sent as supabase-js sends it.
fn sign_in_request(api_key: &Secret) -> Request {
    with_api_key(
        Request::new(Method::Post, "/auth/v1/signup").json(b"{}"),
        api_key,
    )
}

/// `apikey: K` and `Authorization: Bearer K`, as supabase-js sends a key: both gateways
/// expect the pair (Kong's translation keeps an `Authorization` unless it is `Bearer sb_…`,
/// and passes a bare JWT apikey on as is).
fn with_api_key(request: Request, api_key: &Secret) -> Request {
    request
        .header("apikey", api_key.expose())
        .header("Authorization", &format!("Bearer {}", api_key.expose()))
}

/// A kid-less HS256 token; `None` when jsonwebtoken refuses the secret (an empty one,
/// which [`Material::load`] already refuses).
fn hs256_token(secret: &Secret, payload_b64: &str) -> Option<Secret> {
    let header = b64(json!({"alg": "HS256", "typ": "JWT"}).to_string().as_bytes());
    let message = format!("{header}.{payload_b64}");
    let key = jsonwebtoken::EncodingKey::from_secret(secret.expose().as_bytes()).ok()?;
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .ok()?;
    Some(Secret::new(format!("{message}.{signature}")))
}

/// The API keys the gateway is checked with, and whether each is a legacy HS256 JWT.
fn api_keys(material: &Material) -> Vec<(ApiKey, Option<&Secret>, bool)> {
    let state = &material.state;
    let hs256 = |s: Option<&Secret>| s.is_some_and(|s| is_hs256(s.expose()));
    let mut keys = vec![
        (ApiKey::Publishable, Some(&state.publishable_key), false),
        (ApiKey::Secret, Some(&state.secret_key), false),
        (
            ApiKey::Anon,
            Some(&material.anon_key),
            hs256(Some(&material.anon_key)),
        ),
        (
            ApiKey::ServiceRole,
            material.service_key.as_ref(),
            hs256(material.service_key.as_ref()),
        ),
    ];
    if material.mode == LegacyHs256::Reject && material.had_legacy {
        keys.push((ApiKey::LegacyAnon, material.legacy_anon.as_ref(), true));
        keys.push((
            ApiKey::LegacyServiceRole,
            material.legacy_service.as_ref(),
            true,
        ));
    }
    keys
}

/// Every request of this run, and the token each verifier probe carries (for a retry).
type Plan = (Vec<(Probe, Request)>, Vec<(Probe, Secret)>);

fn plan(material: &Material, options: &Options, now: i64) -> Result<Plan> {
    let mut probes = vec![(Probe::Jwks, Request::get("/auth/v1/.well-known/jwks.json"))];
    if let TokenSource::SignIn = options.token {
        probes.push((Probe::SignIn, sign_in_request(&material.anon_key)));
    }
    let claims = json!({
        "sub": Kid::random()?.as_str(),
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now - 10,
        "exp": now - 10 + TOKEN_SECS,
    });
    let payload = b64(claims.to_string().as_bytes());
    let mut tokens = Vec::new();
    for (index, key) in material.verifiers() {
        let token = Secret::new(crate::jwt::sign(key, &payload));
        for service in VERIFIERS {
            tokens.push((Probe::Verify(service, index), token.clone()));
        }
    }
    if let Some(token) = material
        .jwt_secret
        .as_ref()
        .and_then(|secret| hs256_token(secret, &payload))
    {
        for service in VERIFIERS {
            tokens.push((Probe::Hs256(service), token.clone()));
        }
    }
    for (probe, token) in &tokens {
        probes.push((
            *probe,
            verify_request(probe.service(), &material.anon_key, token.expose()),
        ));
    }
    for (which, value, _) in api_keys(material) {
        if let Some(value) = value {
            // A random user id: an admin token gets 404 user_not_found, nothing is read.
            let path = format!("/auth/v1/admin/users/{}", Kid::random()?.as_str());
            probes.push((
                Probe::ApiKey(which),
                with_api_key(Request::get(path), value),
            ));
        }
    }
    // Round robin over the services: no service gets all the requests of one moment.
    let mut seen: Vec<(Service, usize)> = Vec::new();
    let mut ranked: Vec<(usize, (Probe, Request))> = probes
        .into_iter()
        .map(|(probe, request)| {
            let service = probe.upstream();
            let rank = match seen.iter_mut().find(|(s, _)| *s == service) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    seen.push((service, 0));
                    0
                }
            };
            (rank, (probe, request))
        })
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    Ok((ranked.into_iter().map(|(_, p)| p).collect(), tokens))
}

impl Probe {
    /// The service behind the gateway that answers this probe.
    fn upstream(self) -> Service {
        match self {
            Probe::ApiKey(_) => Service::Auth,
            other => other.service(),
        }
    }

    fn service(self) -> Service {
        match self {
            Probe::Verify(service, _) | Probe::Hs256(service) => service,
            Probe::Jwks | Probe::SignIn => Service::Auth,
            Probe::ApiKey(_) => Service::Gateway,
        }
    }
}

type Answers = Vec<(Probe, std::result::Result<Response, HttpError>)>;

/// Verifier probes and the sign-in the gateway refused with the anon API key go again with
/// the publishable key: what the gateway does with each key is the api-gw lines' business,
/// and must not hide what the services say.
fn retry_refused(
    client: &Connected,
    material: &Material,
    tokens: &[(Probe, Secret)],
    answers: &mut Answers,
) {
    let key = &material.state.publishable_key;
    let retries: Vec<(Probe, Request)> = answers
        .iter()
        .filter(|(_, result)| analyse::gateway_refused(result))
        .filter_map(|(probe, _)| match probe {
            Probe::SignIn => Some((*probe, sign_in_request(key))),
            _ => tokens
                .iter()
                .find(|(p, _)| p == probe)
                .map(|(p, token)| (*p, verify_request(p.service(), key, token.expose()))),
        })
        .collect();
    if retries.is_empty() {
        return;
    }
    for (probe, result) in execute(client, retries) {
        if analyse::gateway_refused(&result) {
            continue;
        }
        if let Some(slot) = answers.iter_mut().find(|(p, _)| *p == probe) {
            slot.1 = result;
        }
    }
}

/// How many requests are in flight at once: enough to finish a run in a few round trips,
/// few enough to stay within a small server's listen backlog behind the gateway (a dropped
/// SYN costs a one-second retransmission). The plan interleaves the services for the same
/// reason.
const PARALLEL: usize = 4;

/// The client for the run, or why there is none (the gateway's name did not resolve): then
/// every request fails with that reason.
type Connected = std::result::Result<Client, HttpError>;

/// Sends the requests, `PARALLEL` at a time, and returns the answers in plan order.
fn execute(client: &Connected, probes: Vec<(Probe, Request)>) -> Answers {
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            return probes
                .into_iter()
                .map(|(probe, _)| (probe, Err(e.clone())))
                .collect();
        }
    };
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<std::result::Result<Response, HttpError>>>> =
        Mutex::new(probes.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL.min(probes.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, request)) = probes.get(i) else {
                        break;
                    };
                    let result = client.send(request);
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(result);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    probes
        .into_iter()
        .zip(results)
        .map(|((probe, _), result)| {
            let result = result.unwrap_or_else(|| {
                Err(HttpError::Io {
                    detail: "no answer was recorded".into(),
                })
            });
            (probe, result)
        })
        .collect()
}

/// The report lines from the answers: auth, the gateway, then each verifier.
fn lines(
    cx: &Context<'_>,
    material: &Material,
    options: &Options,
    answers: &[(Probe, std::result::Result<Response, HttpError>)],
) -> Vec<report::Line> {
    let find = |probe: Probe| answers.iter().find(|(p, _)| *p == probe).map(|(_, r)| r);
    let mut out = Vec::new();
    let missing = Err(HttpError::Io {
        detail: "no request was sent".into(),
    });
    let (jwks, auth_has_current) = analyse::jwks(cx, find(Probe::Jwks).unwrap_or(&missing));
    out.push(jwks);
    let evidence = match &options.token {
        TokenSource::None => Evidence::None,
        TokenSource::Given(t) => Evidence::Given(t.expose()),
        TokenSource::SignIn => Evidence::SignIn(find(Probe::SignIn).unwrap_or(&missing)),
    };
    out.push(analyse::signing_key(cx, evidence));
    for (key, _, hs256) in api_keys(material) {
        out.push(analyse::api_key(
            cx,
            key,
            hs256,
            find(Probe::ApiKey(key)),
            auth_has_current,
        ));
    }
    for service in VERIFIERS {
        for (index, _) in material.verifiers() {
            let result = find(Probe::Verify(service, index)).unwrap_or(&missing);
            if let Some(fact) = material.facts.get(index) {
                out.push(analyse::verifier(cx, service, fact, result));
            }
        }
        out.push(analyse::legacy_hs256(
            cx,
            service,
            find(Probe::Hs256(service)),
        ));
    }
    out
}

/// `supakeys doctor`.
pub fn run(inputs: &Inputs, store: &dyn Store, args: DoctorArgs) -> Result<()> {
    let options = Options::parse(args)?;
    let started = Instant::now();
    // The name is looked up once, within one --timeout; every request then ends within its
    // own --timeout and the whole run within RUN_TIMEOUTS of them.
    let client = Client::new(&options.target, Roots::mozilla(), options.timeout)
        .map(|c| c.until(started + options.timeout * RUN_TIMEOUTS));
    if let Ok(client) = &client {
        options.check_cleartext(client.addresses())?;
    }
    let material = Material::load(inputs, store)?;
    let now = crate::clock::now();
    // doctor's tokens are issued at this clock: one the services' clocks see in the future
    // is refused (PostgREST: "JWT issued at future"), so a clock that is obviously wrong is said.
    state::warn_about_clock(now, Some(&material.state));
    let location = store.location();
    let (probes, tokens) = plan(&material, &options, now)?;
    let mut answers = execute(&client, probes);
    retry_refused(&client, &material, &tokens, &mut answers);
    let gateway = answers
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(Gateway::of)
        .find(|g| *g != Gateway::Unknown)
        .unwrap_or(Gateway::Unknown);
    let url = options.target.to_string();
    let dir_text = location.clone();
    let cx = Context {
        dir: &dir_text,
        url: &url,
        keys: &material.facts,
        mode: material.mode,
        gateway,
    };
    let mut lines = lines(&cx, &material, &options, &answers);
    for line in &mut lines {
        match &mut line.outcome {
            report::Outcome::Fail { cause, fix, .. } => {
                *cause = store.translate(cause);
                *fix = store.translate(fix);
            }
            report::Outcome::Skip { reason } => *reason = store.translate(reason),
            report::Outcome::Pass { .. } => {}
        }
    }
    let keys: Vec<(String, &'static str, &'static str)> = material
        .facts
        .iter()
        .map(|k| (k.kid.clone(), k.alg, k.status.as_str()))
        .collect();
    let header = report::Header {
        url: &url,
        gateway: gateway.name(),
        dir: &dir_text,
        keys: &keys,
        legacy_hs256: match material.mode {
            LegacyHs256::Accept => "accepted",
            LegacyHs256::Reject => "rejected",
        },
        elapsed_ms: started.elapsed().as_millis(),
    };
    let text = match options.format {
        Format::Text => report::text(&header, &lines),
        Format::Json => format!("{:#}\n", report::json(&header, &lines)),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("write to", "standard output", e))?;
    let failed = lines.iter().filter(|l| l.failed()).count();
    if failed > 0 {
        return Err(Error::DoctorFailed {
            failed,
            dir: location.into(),
        });
    }
    Ok(())
}
