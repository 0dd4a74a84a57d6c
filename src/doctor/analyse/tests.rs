//! Each service's answers, as the services send them, and the line doctor makes of them.

use super::*;
use crate::jwk::{KeySpec, Kid, SigningKey};
use serde_json::json;

/// An answer relayed by Envoy from a service.
fn from_service(status: u16, body: Value) -> Result<Response, HttpError> {
    Ok(Response {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("server".into(), "envoy".into()),
            ("x-envoy-upstream-service-time".into(), "3".into()),
        ],
        body: body.to_string().into_bytes(),
    })
}

/// A local reply of Envoy (Lua `respond`, RBAC, no upstream).
fn from_envoy(status: u16, text: &str) -> Result<Response, HttpError> {
    Ok(Response {
        status,
        headers: vec![
            ("content-type".into(), "text/plain".into()),
            ("server".into(), "envoy".into()),
        ],
        body: text.as_bytes().to_vec(),
    })
}

/// A reply Kong produced itself.
fn from_kong(status: u16, body: Value) -> Result<Response, HttpError> {
    Ok(Response {
        status,
        headers: vec![
            (
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            ),
            ("server".into(), "kong/3.9.3".into()),
            ("x-kong-response-latency".into(), "1".into()),
        ],
        body: body.to_string().into_bytes(),
    })
}

struct Keys {
    current: SigningKey,
    previous: SigningKey,
    standby: SigningKey,
    facts: Vec<KeyFact>,
}

fn key(kid: &str) -> SigningKey {
    SigningKey::generate(KeySpec::Es256, Kid::parse(kid).unwrap()).unwrap()
}

fn fact(key: &SigningKey, status: Status, changed_at: i64) -> KeyFact {
    KeyFact {
        kid: key.kid().to_string(),
        alg: key.algorithm().as_str(),
        status,
        changed_at,
        public: (status != Status::Revoked).then(|| key.public_jwk()),
    }
}

fn keys() -> Keys {
    let (current, previous, standby, revoked) =
        (key("k-cur"), key("k-prev"), key("k-stby"), key("k-rev"));
    let facts = vec![
        fact(&current, Status::Current, 1_000),
        fact(&previous, Status::Previous, 1_000),
        fact(&standby, Status::Standby, 1_500),
        fact(&revoked, Status::Revoked, 900),
    ];
    Keys {
        current,
        previous,
        standby,
        facts,
    }
}

fn cx(facts: &[KeyFact], mode: LegacyHs256) -> Context<'_> {
    Context {
        dir: "/keys",
        url: "http://api-gw:8000",
        keys: facts,
        mode,
        gateway: Gateway::Envoy,
    }
}

fn failure(line: &Line) -> (String, String, String) {
    match &line.outcome {
        Outcome::Fail {
            problem,
            cause,
            fix,
        } => (problem.clone(), cause.clone(), fix.clone()),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn passed(line: &Line) -> bool {
    matches!(line.outcome, Outcome::Pass { .. })
}

#[test]
fn postgrest_answers() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let current = &k.facts[0];
    // The probe's unknown table: the JWT was accepted.
    let ok = from_service(
        404,
        json!({"code":"PGRST205","details":null,"hint":null,"message":"Could not find the table 'public.supakeys_doctor_probe' in the schema cache"}),
    );
    assert!(passed(&verifier(&cx, Service::Rest, current, &ok)));
    let unknown = from_service(
        401,
        json!({"code":"PGRST301","details":"No suitable key was found to decode the JWT","hint":null,"message":"No suitable key or wrong key type"}),
    );
    let line = verifier(&cx, Service::Rest, current, &unknown);
    let (problem, cause, fix) = failure(&line);
    assert_eq!(
        problem,
        "rest refused it: PGRST301 No suitable key or wrong key type (No suitable key was found to decode the JWT)"
    );
    assert_eq!(
        cause,
        "rest does not have the current key k-cur: it runs with an older key set, so it did not load /keys/jwt_jwks.json since the key was added"
    );
    assert!(fix.contains("NOTIFY pgrst, 'reload config'"), "{fix}");
    assert_eq!(line.key, Some(("k-cur".into(), "current")));
    let clock = from_service(
        401,
        json!({"code":"PGRST303","details":null,"hint":null,"message":"JWT issued at future"}),
    );
    let (_, cause, _) = failure(&verifier(&cx, Service::Rest, current, &clock));
    assert!(cause.contains("clocks"), "{cause}");
}

#[test]
fn storage_answers() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let standby = &k.facts[2];
    assert!(passed(&verifier(
        &cx,
        Service::Storage,
        standby,
        &from_service(200, json!({"healthy": true}))
    )));
    // Started without JWT_JWKS: only HS256 is allowed.
    let no_jwks = from_service(
        400,
        json!({"statusCode":"403","code":"AccessDenied","error":"Unauthorized","message":"\"alg\" (Algorithm) Header Parameter value not allowed"}),
    );
    let (_, cause, _) = failure(&verifier(&cx, Service::Storage, standby, &no_jwks));
    assert!(
        cause.starts_with("storage accepts no ES256 token at all: it runs without JWT_JWKS"),
        "{cause}"
    );
    // An older JWT_JWKS: the kid is unknown, jose gets the secret's bytes.
    let old = from_service(
        400,
        json!({"statusCode":"403","code":"AccessDenied","error":"Unauthorized","message":"Key for the ES256 algorithm must be one of type CryptoKey, KeyObject, or JSON Web Key. Received an instance of Uint8Array"}),
    );
    let line = verifier(&cx, Service::Storage, standby, &old);
    let (problem, cause, _) = failure(&line);
    assert!(
        problem.starts_with("storage refused it: Key for the ES256"),
        "{problem}"
    );
    assert!(
        cause.starts_with("storage does not have the standby key k-stby"),
        "{cause}"
    );
    assert_eq!(
        line.title,
        "accepts a token signed by the standby key k-stby (ES256)"
    );
}

#[test]
fn realtime_answers() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let previous = &k.facts[1];
    let accepted = from_service(422, json!({"errors":{"messages":["can't be blank"]}}));
    assert!(passed(&verifier(
        &cx,
        Service::Realtime,
        previous,
        &accepted
    )));
    let refused = from_service(401, json!({"message":"Unauthorized"}));
    let (_, cause, fix) = failure(&verifier(&cx, Service::Realtime, previous, &refused));
    assert!(
        cause.contains("its tenant was seeded at start from an older API_JWT_JWKS"),
        "{cause}"
    );
    assert!(cause.contains("/keys/realtime.env"), "{cause}");
    assert_eq!(fix, "docker compose restart realtime");
    // The same status from the gateway is the gateway's refusal, not Realtime's.
    let (problem, cause, fix) = failure(&verifier(
        &cx,
        Service::Realtime,
        previous,
        &from_envoy(401, "Unauthorized"),
    ));
    assert!(
        problem.starts_with("api-gw refused the request before it reached realtime"),
        "{problem}"
    );
    assert!(
        cause.contains("anon API key of /keys/gateway.env"),
        "{cause}"
    );
    assert_eq!(fix, "docker compose restart api-gw");
    let tenant = from_service(401, json!({"message":"Tenant not found in database"}));
    let (_, cause, _) = failure(&verifier(&cx, Service::Realtime, previous, &tenant));
    assert!(cause.contains("rewrite Host"), "{cause}");
}

#[test]
fn gateway_and_network_failures() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let current = &k.facts[0];
    let down = from_envoy(503, "no healthy upstream");
    let (problem, cause, fix) = failure(&verifier(&cx, Service::Storage, current, &down));
    assert_eq!(
        problem,
        "api-gw could not reach storage: HTTP 503 no healthy upstream"
    );
    assert_eq!(
        cause,
        "storage is not running, or not on the compose network"
    );
    assert!(fix.contains("docker compose ps storage"));
    let kong = from_kong(401, json!({"message":"Invalid authentication credentials"}));
    let (problem, _, _) = failure(&verifier(&cx, Service::Rest, current, &kong));
    assert!(
        problem.starts_with("api-gw refused the request before it reached rest"),
        "{problem}"
    );
    let dns = Err(HttpError::UnknownHost {
        host: "api-gw".into(),
    });
    let (problem, _, fix) = failure(&verifier(&cx, Service::Rest, current, &dns));
    assert_eq!(problem, "the host name api-gw is unknown here");
    assert!(fix.contains("docker compose run --rm supakeys doctor"));
    assert!(fix.contains("--url"));
    let refused = Err(HttpError::Refused {
        addr: "172.18.0.5:8000".into(),
    });
    let (_, cause, _) = failure(&verifier(&cx, Service::Rest, current, &refused));
    assert_eq!(cause, "the gateway is not running, or listens elsewhere");
}

fn jwks_of(keys: &[&SigningKey]) -> Result<Response, HttpError> {
    from_service(
        200,
        json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()}),
    )
}

#[test]
fn jwks_matches_or_names_the_difference() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let (line, has_current) = jwks(&cx, &jwks_of(&[&k.standby, &k.current, &k.previous]));
    assert!(has_current);
    assert_eq!(
        line.outcome,
        Outcome::Pass {
            detail: "k-cur (current), k-prev (previous), k-stby (standby)".into()
        }
    );
    // Auth not restarted after `keys standby`: a stale JWKS.
    let (line, has_current) = jwks(&cx, &jwks_of(&[&k.current, &k.previous]));
    assert!(has_current);
    let (problem, cause, fix) = failure(&line);
    assert_eq!(problem, "auth does not publish the standby key k-stby");
    assert!(
        cause.starts_with(
            "auth serves the key set it read at start: it did not load /keys/auth.env"
        ),
        "{cause}"
    );
    assert_eq!(fix, "docker compose restart auth");
    // Auth not restarted after `keys revoke`.
    let revoked = key("k-rev");
    let (line, _) = jwks(
        &cx,
        &jwks_of(&[&k.current, &k.previous, &k.standby, &revoked]),
    );
    assert_eq!(
        failure(&line).0,
        "auth still publishes the revoked key k-rev"
    );
    // A key set from elsewhere.
    let (line, has_current) = jwks(&cx, &jwks_of(&[&key("other")]));
    assert!(!has_current);
    let (problem, _, _) = failure(&line);
    assert!(problem.starts_with("auth publishes the key other, which state.json does not have; does not publish the current key k-cur"), "{problem}");
    // Another key under our kid.
    let (line, _) = jwks(&cx, &jwks_of(&[&key("k-cur"), &k.previous, &k.standby]));
    assert_eq!(
        failure(&line).0,
        "auth publishes another key under the kid of the current key k-cur; does not publish the current key k-cur"
    );
    // Private material is a leak, whoever serves it.
    let leak = from_service(
        200,
        json!({"keys": [k.current.private_jwk(), {"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}),
    );
    let (line, _) = jwks(&cx, &leak);
    let (problem, cause, fix) = failure(&line);
    assert!(
        problem.contains(
            "publishes private key material for k-cur; publishes a symmetric (oct) key (no kid)"
        ),
        "{problem}"
    );
    assert!(cause.contains("GoTrue never publishes"), "{cause}");
    assert!(fix.contains("keys rotate --now"), "{fix}");
    // The gateway wants an apikey for the JWKS.
    let (line, _) = jwks(&cx, &from_envoy(401, "Unauthorized"));
    assert!(failure(&line).1.contains("no open route for the JWKS"));
}

// Regression: podman-compose reads COMPOSE_FILE from the shell only, never from .env, so a
// project set up as for Docker Compose made every container without the layer, and doctor
// told the operator to restart services that no restart could fix. A service that runs
// without the variable every version of its file sets never read the file: the cause names
// the missing layer, the fix says how each tool is given it.
#[test]
fn services_made_without_the_layer() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let podman = "podman-compose does not (`export COMPOSE_FILE=docker-compose.yml:docker-compose.supakeys.yml`, or one -f per file)";
    let made_without = "its container was made without the supakeys compose layer";
    // GoTrue without GOTRUE_JWT_KEYS publishes no key and signs with JWT_SECRET.
    let (line, _) = jwks(&cx, &from_service(200, json!({"keys": []})));
    let (_, cause, fix) = failure(&line);
    assert_eq!(
        cause,
        format!(
            "auth publishes no key: it runs without GOTRUE_JWT_KEYS, so it never loaded /keys/auth.env: {made_without}"
        )
    );
    assert!(fix.ends_with(podman), "{fix}");
    let hs =
        crate::doctor::hs256_token(&crate::secret::Secret::new("x".repeat(32)), "e30").unwrap();
    let (_, cause, fix) = failure(&signing_key(&cx, Evidence::Given(hs.expose())));
    assert_eq!(
        cause,
        format!(
            "auth runs without GOTRUE_JWT_KEYS, so it never loaded /keys/auth.env: {made_without}"
        )
    );
    assert!(fix.starts_with("name the layer in every compose command, then `up -d`: Docker Compose reads COMPOSE_FILE=docker-compose.yml:docker-compose.supakeys.yml from .env; "), "{fix}");
    // Storage without JWT_JWKS allows no ES256 token at all.
    let no_jwks = from_service(
        400,
        json!({"statusCode":"403","code":"AccessDenied","error":"Unauthorized","message":"\"alg\" (Algorithm) Header Parameter value not allowed"}),
    );
    let (_, cause, fix) = failure(&verifier(&cx, Service::Storage, &k.facts[0], &no_jwks));
    assert_eq!(
        cause,
        format!(
            "storage accepts no ES256 token at all: it runs without JWT_JWKS, so it never loaded /keys/storage.env: {made_without}"
        )
    );
    assert!(fix.ends_with(podman), "{fix}");
    // With Kong, the layer comes after upstream's Kong file.
    let kong = Context {
        gateway: Gateway::Kong,
        ..cx
    };
    let (_, _, fix) = failure(&signing_key(&kong, Evidence::Given(hs.expose())));
    assert!(
        fix.contains("`export COMPOSE_FILE=docker-compose.yml:docker-compose.kong.yml:docker-compose.supakeys.yml`"),
        "{fix}"
    );
    // A key set that is only older is still a restart away.
    let (line, _) = jwks(&cx, &jwks_of(&[&k.current, &k.previous]));
    assert_eq!(failure(&line).2, "docker compose restart auth");
}

fn token(key: &SigningKey, iat: i64) -> String {
    let payload = crate::jwk::b64(
        json!({"sub":"u","role":"authenticated","iat":iat,"exp":iat+3600})
            .to_string()
            .as_bytes(),
    );
    crate::jwt::sign(key, &payload)
}

#[test]
fn signing_key_from_a_given_token() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let line = signing_key(&cx, Evidence::Given(&token(&k.current, 2_000)));
    assert_eq!(
        line.title,
        "signs new tokens with the current key k-cur (ES256)"
    );
    assert!(passed(&line), "{line:?}");
    // Issued after the rotation with the old key: auth was not restarted.
    let t = token(&k.previous, 2_000);
    let (problem, cause, fix) = failure(&signing_key(&cx, Evidence::Given(&t)));
    assert_eq!(
        problem,
        "auth signed the given access token with the previous key k-prev, not the current key k-cur"
    );
    assert!(cause.contains("from before `keys rotate`"));
    assert_eq!(fix, "docker compose restart auth");
    // Issued before the rotation: it proves nothing about auth today.
    let t = token(&k.previous, 500);
    assert!(matches!(
        signing_key(&cx, Evidence::Given(&t)).outcome,
        Outcome::Skip { .. }
    ));
    // The right kid, another key.
    let t = token(&key("k-cur"), 2_000);
    assert!(
        failure(&signing_key(&cx, Evidence::Given(&t)))
            .0
            .contains("does not verify")
    );
    // Legacy HS256.
    let hs =
        crate::doctor::hs256_token(&crate::secret::Secret::new("x".repeat(32)), "e30").unwrap();
    let (problem, cause, _) = failure(&signing_key(&cx, Evidence::Given(hs.expose())));
    assert!(problem.contains("with HS256"), "{problem}");
    assert!(cause.contains("without GOTRUE_JWT_KEYS"), "{cause}");
    // Without a token: say exactly what is missing.
    match signing_key(&cx, Evidence::None).outcome {
        Outcome::Skip { reason } => {
            assert!(reason.contains("--access-token") && reason.contains("--sign-in-anonymously"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn signing_key_from_an_anonymous_sign_in() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let t = token(&k.current, 2_000);
    let ok = from_service(
        200,
        json!({"access_token": t, "token_type": "bearer", "refresh_token": "r"}),
    );
    let line = signing_key(&cx, Evidence::SignIn(&ok));
    assert!(passed(&line), "{line:?}");
    let disabled = from_service(
        422,
        json!({"code":422,"error_code":"anonymous_provider_disabled","msg":"Anonymous sign-ins are disabled"}),
    );
    match signing_key(&cx, Evidence::SignIn(&disabled)).outcome {
        Outcome::Skip { reason } => {
            assert!(reason.contains("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED"))
        }
        other => panic!("{other:?}"),
    }
    // No line ever carries the token.
    let line = signing_key(&cx, Evidence::SignIn(&ok));
    assert!(!format!("{line:?}").contains(&t));
}

#[test]
fn opaque_keys_at_the_gateway() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let not_admin = from_service(
        403,
        json!({"code":403,"error_code":"not_admin","msg":"User not allowed"}),
    );
    let admin = from_service(
        404,
        json!({"code":404,"error_code":"user_not_found","msg":"User not found"}),
    );
    assert!(passed(&api_key(
        &cx,
        ApiKey::Publishable,
        false,
        Some(&not_admin),
        true
    )));
    assert!(passed(&api_key(
        &cx,
        ApiKey::Secret,
        false,
        Some(&admin),
        true
    )));
    let line = api_key(&cx, ApiKey::Secret, false, Some(&not_admin), true);
    assert_eq!(line.title, "accepts the secret key as service_role");
    assert!(failure(&line).0.contains("does not act as service_role"));
    assert!(
        failure(&api_key(
            &cx,
            ApiKey::Publishable,
            false,
            Some(&admin),
            true
        ))
        .0
        .contains("acts as service_role")
    );
    // Legacy API key mode: Envoy's Lua refuses the opaque keys.
    let line = api_key(
        &cx,
        ApiKey::Publishable,
        false,
        Some(&from_envoy(401, "Unauthorized")),
        true,
    );
    let (problem, cause, fix) = failure(&line);
    assert_eq!(
        problem,
        "api-gw refused the publishable key: HTTP 401 Unauthorized"
    );
    assert!(cause.contains("legacy API key mode"), "{cause}");
    assert!(cause.contains("/keys/gateway.env"), "{cause}");
    assert_eq!(fix, "docker compose restart api-gw");
    // Auth refuses the token the gateway substituted: stale gateway or stale auth.
    let bad = from_service(
        403,
        json!({"code":403,"error_code":"bad_jwt","msg":"invalid JWT: unable to parse or verify signature, unrecognized JWT kid x for algorithm ES256"}),
    );
    assert!(
        failure(&api_key(&cx, ApiKey::Secret, false, Some(&bad), true))
            .1
            .starts_with("api-gw passes on an API token")
    );
    assert!(
        failure(&api_key(&cx, ApiKey::Secret, false, Some(&bad), false))
            .1
            .starts_with("auth does not have the current key")
    );
}

#[test]
fn legacy_keys_follow_the_mode() {
    let k = keys();
    let accept = cx(&k.facts, LegacyHs256::Accept);
    let reject = cx(&k.facts, LegacyHs256::Reject);
    let not_admin = from_service(
        403,
        json!({"code":403,"error_code":"not_admin","msg":"User not allowed"}),
    );
    let refused = from_envoy(401, "Unauthorized");
    let line = api_key(&accept, ApiKey::Anon, true, Some(&not_admin), true);
    assert_eq!(line.title, "accepts the legacy ANON_KEY as anon");
    assert!(passed(&line));
    let line = api_key(&reject, ApiKey::Anon, false, Some(&not_admin), true);
    assert_eq!(
        line.title,
        "accepts the anon API token (ANON_KEY of gateway.env) as anon"
    );
    assert!(passed(&line));
    let line = api_key(&reject, ApiKey::LegacyAnon, true, Some(&refused), true);
    assert_eq!(
        line.title,
        "refuses the legacy ANON_KEY (SUPAKEYS_LEGACY_HS256=reject)"
    );
    assert!(passed(&line));
    // Reject mode, but the gateway was not restarted.
    let (problem, cause, _) = failure(&api_key(
        &reject,
        ApiKey::LegacyAnon,
        true,
        Some(&not_admin),
        true,
    ));
    assert_eq!(problem, "api-gw and auth still accept the legacy ANON_KEY");
    assert!(cause.contains("before SUPAKEYS_LEGACY_HS256=reject"));
    let (_, cause, _) = failure(&api_key(
        &accept,
        ApiKey::ServiceRole,
        true,
        Some(&refused),
        true,
    ));
    assert!(
        cause.starts_with("api-gw runs with other API keys"),
        "{cause}"
    );
    assert!(matches!(
        api_key(&reject, ApiKey::LegacyServiceRole, true, None, true).outcome,
        Outcome::Skip { .. }
    ));
}

#[test]
fn legacy_hs256_at_the_verifiers() {
    let k = keys();
    let reject = cx(&k.facts, LegacyHs256::Reject);
    let accepted = from_service(200, json!({"healthy": true}));
    let refused = from_service(
        400,
        json!({"statusCode":"403","code":"AccessDenied","error":"Unauthorized","message":"signature verification failed"}),
    );
    let line = legacy_hs256(&reject, Service::Storage, Some(&accepted));
    let (problem, cause, fix) = failure(&line);
    assert_eq!(problem, "storage accepted it");
    assert!(cause.contains("since SUPAKEYS_LEGACY_HS256=reject"));
    assert!(cause.contains("/keys/storage.env"));
    assert_eq!(fix, "docker compose restart storage");
    assert!(passed(&legacy_hs256(
        &reject,
        Service::Storage,
        Some(&refused)
    )));
    let accept = cx(&k.facts, LegacyHs256::Accept);
    assert!(passed(&legacy_hs256(
        &accept,
        Service::Storage,
        Some(&accepted)
    )));
    assert!(
        failure(&legacy_hs256(&accept, Service::Storage, Some(&refused)))
            .1
            .contains("another secret")
    );
    assert!(matches!(
        legacy_hs256(&accept, Service::Rest, None).outcome,
        Outcome::Skip { .. }
    ));
}

#[test]
fn quoted_text_never_carries_tokens_or_keys() {
    let k = keys();
    let t = token(&k.current, 1);
    let text = format!("invalid JWT {t} and sb_secret_abcdefghijklmnopqrstuv_12345678, \"{t}\"");
    let r = redact(&text);
    assert!(!r.contains("eyJ") && !r.contains("sb_secret_"), "{r}");
    assert_eq!(r, "invalid JWT [redacted] and [redacted] \"[redacted]\"");
    assert_eq!(redact(&"x".repeat(400)).chars().count(), 160);
    assert_eq!(redact("two\nlines"), "two lines");
}

#[test]
fn gateways_are_recognised_by_their_headers() {
    assert_eq!(
        Gateway::of(from_envoy(401, "x").as_ref().unwrap()),
        Gateway::Envoy
    );
    assert_eq!(
        Gateway::of(from_kong(401, json!({})).as_ref().unwrap()),
        Gateway::Kong
    );
    let plain = Response {
        status: 200,
        headers: vec![],
        body: vec![],
    };
    assert_eq!(Gateway::of(&plain), Gateway::Unknown);
}

#[test]
fn a_json_answer_through_envoy_is_the_service_s_even_without_envoy_s_upstream_header() {
    // suppress_envoy_headers: true drops x-envoy-upstream-service-time from relayed answers.
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let relayed = Ok(Response {
        status: 401,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("server".into(), "envoy".into()),
        ],
        body: br#"{"message":"Unauthorized"}"#.to_vec(),
    });
    let (problem, _, _) = failure(&verifier(&cx, Service::Realtime, &k.facts[0], &relayed));
    assert_eq!(problem, "realtime refused it: HTTP 401 Unauthorized");
    // Envoy's RBAC denial is its own.
    let rbac = from_envoy(403, "RBAC: access denied");
    let (problem, _, _) = failure(&verifier(&cx, Service::Rest, &k.facts[0], &rbac));
    assert!(
        problem.starts_with("api-gw refused the request"),
        "{problem}"
    );
    // No route: Envoy answers 404 with an empty body.
    let no_route = Ok(Response {
        status: 404,
        headers: vec![("server".into(), "envoy".into())],
        body: vec![],
    });
    let (problem, _, _) = failure(&verifier(&cx, Service::Rest, &k.facts[0], &no_route));
    assert!(problem.starts_with("the gateway has no route"), "{problem}");
}

#[test]
fn kong_upstream_failures_are_the_gateway_s() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let down = Ok(Response {
        status: 502,
        headers: vec![(
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        )],
        body: br#"{"message":"An invalid response was received from the upstream server"}"#
            .to_vec(),
    });
    let (problem, cause, _) = failure(&verifier(&cx, Service::Storage, &k.facts[0], &down));
    assert!(
        problem.starts_with("api-gw could not reach storage: HTTP 502"),
        "{problem}"
    );
    assert_eq!(
        cause,
        "storage is not running, or not on the compose network"
    );
    // PostgREST's own 503 while its schema cache loads: the token was accepted.
    let loading = from_service(
        503,
        json!({"code":"PGRST002","details":null,"hint":null,"message":"Could not query the database for the schema cache. Retrying."}),
    );
    assert!(passed(&verifier(&cx, Service::Rest, &k.facts[0], &loading)));
}

/// An answer exactly as the real Envoy sent it (tests/doctor/envoy-replies captured these from
/// Envoy 1.39.1, upstream's pin; the Docker tests check 1.40.0 sends the same bytes).
fn real_envoy(kind: &str) -> Result<Response, HttpError> {
    let bytes: &[u8] = match kind {
        "relayed" => include_bytes!("envoy/relayed.http"),
        "lua-refusal" => include_bytes!("envoy/lua-refusal.http"),
        "rbac-denied" => include_bytes!("envoy/rbac-denied.http"),
        "basic-auth-missing" => include_bytes!("envoy/basic-auth-missing.http"),
        "basic-auth-wrong" => include_bytes!("envoy/basic-auth-wrong.http"),
        "connection-refused" => include_bytes!("envoy/connection-refused.http"),
        "no-healthy-upstream" => include_bytes!("envoy/no-healthy-upstream.http"),
        "timeout" => include_bytes!("envoy/timeout.http"),
        "no-route" => include_bytes!("envoy/no-route.http"),
        "underscore-header" => include_bytes!("envoy/underscore-header.http"),
        "escaped-slash" => include_bytes!("envoy/escaped-slash.http"),
        other => panic!("no capture named {other}"),
    };
    Ok(crate::http::read_response(bytes).expect("Envoy's answer parses and is complete"))
}

#[test]
fn envoy_s_own_answers_as_the_real_binary_sends_them() {
    let k = keys();
    let cx = cx(&k.facts, LegacyHs256::Accept);
    let current = &k.facts[0];
    let problem_of =
        |kind: &str| failure(&verifier(&cx, Service::Rest, current, &real_envoy(kind))).0;
    for kind in [
        "relayed",
        "lua-refusal",
        "rbac-denied",
        "timeout",
        "no-route",
    ] {
        assert_eq!(
            Gateway::of(real_envoy(kind).as_ref().unwrap()),
            Gateway::Envoy,
            "{kind}"
        );
    }
    // A service's answer relayed by Envoy is the service's (PostgREST's PGRST205 here).
    assert!(passed(&verifier(
        &cx,
        Service::Rest,
        current,
        &real_envoy("relayed")
    )));
    // The listener's Lua `respond`, RBAC's denial and basic auth are the gateway's refusals.
    for kind in [
        "lua-refusal",
        "rbac-denied",
        "basic-auth-missing",
        "basic-auth-wrong",
    ] {
        assert!(gateway_refused(&real_envoy(kind)), "{kind}");
        assert!(
            problem_of(kind)
                .starts_with("api-gw refused the request before it reached rest: HTTP 40"),
            "{kind}: {}",
            problem_of(kind)
        );
    }
    assert_eq!(
        problem_of("rbac-denied"),
        "api-gw refused the request before it reached rest: HTTP 403 RBAC: access denied"
    );
    // No address for the service, or nothing listening there: it is not running.
    for kind in ["no-healthy-upstream", "connection-refused"] {
        let (problem, cause, _) =
            failure(&verifier(&cx, Service::Rest, current, &real_envoy(kind)));
        assert!(
            problem.starts_with("api-gw could not reach rest: HTTP 503 "),
            "{problem}"
        );
        assert_eq!(cause, "rest is not running, or not on the compose network");
    }
    // The route's timeout: the service runs but did not answer in time.
    let (problem, cause, fix) = failure(&verifier(
        &cx,
        Service::Rest,
        current,
        &real_envoy("timeout"),
    ));
    assert_eq!(
        problem,
        "api-gw got no answer from rest in time: HTTP 504 upstream request timeout"
    );
    assert_eq!(
        cause,
        "rest hangs or is overloaded: it did not answer within api-gw's route timeout"
    );
    assert!(fix.contains("docker compose logs rest"), "{fix}");
    assert!(problem_of("no-route").starts_with("the gateway has no route"));
    // Requests Envoy's listener rejects (a header with `_`, an escaped slash) are its own.
    for kind in ["underscore-header", "escaped-slash"] {
        assert!(
            problem_of(kind).starts_with("the gateway answered HTTP 400"),
            "{kind}: {}",
            problem_of(kind)
        );
    }
}
