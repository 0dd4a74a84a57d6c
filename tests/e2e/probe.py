#!/usr/bin/env python3
"""Sends requests through the running gateway and checks who accepted what.

usage: probe.py GATEWAY_URL SNAPSHOT_DIR RESULTS_DIR KIND HS256 LEGACY_ANON LEGACY_SERVICE
  KIND: envoy, kong, or kong-era (Kong with a template from before the admin-only OpenAPI
  route), or coolify (Coolify's kong.yml as it is: also no translation of the opaque keys on
  /storage/v1/); HS256: accept or reject. SNAPSHOT_DIR is a copy of the keys volume. RESULTS_DIR is
  where the stand-ins record the requests they answered, "-" when they record nothing.
  With E2E_DECISIONS=FILE, one JSON line per case (name, status, as expected) goes to FILE.

Each case names the decision the real gateway makes (Envoy's Lua filters and RBAC, run by
Envoy itself, or Kong's key-auth, acl and request-transformer, as restated in tests/standins)
and the answer of the service behind it: PostgREST's PGRST205 for an accepted token on a
missing table, Storage's HTTP 400 with "statusCode":"403" for a refused one, Realtime's 422
for an accepted empty broadcast and 401 {"message":"Unauthorized"} for a refused one, the
Edge Functions router's 401 JSON. Prints one line per failed case and exits 1 when any failed.
"""
import base64
import json
import os
import sys
import urllib.error
import uuid
import urllib.request

import jwt
import keysdir

url, snap, results, kind, hs256, legacy_anon, legacy_service = sys.argv[1:8]
accept = hs256 == "accept"


def env_file(name):
    return keysdir.env_file(snap, name)


s = env_file("supabase.env")
pub, sec = s["SUPABASE_PUBLISHABLE_KEY"], s["SUPABASE_SECRET_KEY"]
anon_asym, service_asym = s["ANON_KEY_ASYMMETRIC"], s["SERVICE_ROLE_KEY_ASYMMETRIC"]
jwks = json.load(open(f"{snap}/jwks.json", encoding="utf-8"))
state = json.load(open(f"{snap}/state.json", encoding="utf-8"))
current = [k for k in state["keys"] if k["status"] == "current"][0]
# The dashboard credentials, "user:password" (the e2e test's by default).
dashboard = os.environ.get("E2E_DASHBOARD", "supabase:e2e p'ss: #word x")


# Every request carries an id of its own (X-Supakeys-Probe), which the stand-ins record.
run_id = uuid.uuid4().hex[:12]
sent = 0


def request(method, path, headers=None, body=None):
    """(status, body, headers, probe id) of one request through the gateway."""
    global sent
    sent += 1
    probe_id = f"{run_id}-{sent}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    req.add_header("X-Supakeys-Probe", probe_id)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8", "replace"), dict(r.headers), probe_id
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), dict(e.headers), probe_id


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def like_supabase_js(key):
    """What supabase-js sends with a key: `apikey` and `Authorization: Bearer` the same key."""
    return {"apikey": key, **bearer(key)}


def forwarded(service, answer):
    """The Authorization header `service` received with the request of `answer`, from the
    stand-in's record (RESULTS_DIR/<service>/requests.jsonl). A stand-in writes a request's
    line before it sends the answer, so once the answer is here the line is too: no waiting.
    None when nothing is recorded (RESULTS_DIR "-")."""
    if results == "-":
        return None
    try:
        with open(f"{results}/{service}/requests.jsonl", encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
    except OSError as e:
        return f"(no record of {service}'s requests: {e.__class__.__name__})"
    mine = [e for e in lines if e.get("headers", {}).get("x-supakeys-probe") == answer[3]]
    if len(mine) != 1:
        return f"({len(mine)} records of the request in {service}'s log)"
    return mine[0]["headers"].get("authorization")


received = {}  # probe id -> the Authorization a service received instead of the expected one


def as_token(service, token, answer):
    """True when the request reached `service` with `Authorization: Bearer token` (or nothing
    is recorded). When not, the case's line says what the service received."""
    got = forwarded(service, answer)
    if got is None or got == f"Bearer {token}":
        return True
    received[answer[3]] = got
    return False


def postgrest_accepted(status, body):
    """PostgREST answers PGRST205 (404) for a missing table once the JWT is accepted."""
    return status == 404 and '"PGRST205"' in body


def gateway_refused(status, body):
    """Envoy answers 401 text/plain "Unauthorized"; Kong's key-auth 401 {"message": ...}."""
    return status == 401 and "PGRST" not in body


problems = []
decisions = []


def case(name, ok, got):
    decisions.append({"case": name, "status": got[0], "expected": bool(ok)})
    if not ok:
        note = f"; {received[got[3]]!r} reached the service" if got[3] in received else ""
        problems.append(f"{name}: got {got[0]} {got[1][:160]!r}{note}")


# The public JWKS, without an apikey: exactly the published keys.
r = request("GET", "/auth/v1/.well-known/jwks.json")
kids = sorted(k.get("kid") for k in json.loads(r[1]).get("keys", [])) if r[0] == 200 else None
case("JWKS served without apikey, equal to jwks.json", kids == sorted(k["kid"] for k in jwks["keys"]), r)

# PostgREST behind the gateway, one apikey at a time.
r = request("GET", "/rest/v1/probe_table", {"apikey": pub})
case("publishable key -> anon JWT -> PostgREST accepts",
     postgrest_accepted(r[0], r[1]) and as_token("rest", anon_asym, r), r)
r = request("GET", "/rest/v1/probe_table", {"apikey": sec})
case("secret key -> service_role JWT -> PostgREST accepts",
     postgrest_accepted(r[0], r[1]) and as_token("rest", service_asym, r), r)
r = request("GET", "/rest/v1/probe_table", like_supabase_js(pub))
case("publishable key as supabase-js sends it -> anon JWT",
     postgrest_accepted(r[0], r[1]) and as_token("rest", anon_asym, r), r)
for name, key in (("ANON_KEY", legacy_anon), ("SERVICE_ROLE_KEY", legacy_service)):
    r = request("GET", "/rest/v1/probe_table", like_supabase_js(key))
    if accept:
        case(f"legacy {name} accepted (HS256 accepted)", postgrest_accepted(r[0], r[1]) and as_token("rest", key, r), r)
    else:
        case(f"legacy {name} refused by the gateway (HS256 rejected)", gateway_refused(r[0], r[1]), r)
r = request("GET", "/rest/v1/probe_table", like_supabase_js(anon_asym))
if accept:
    # Neither gateway takes the internal asymmetric token as a client apikey then.
    case("asymmetric anon token as apikey refused (HS256 accepted)", gateway_refused(r[0], r[1]), r)
else:
    case("asymmetric anon token as apikey accepted (it is the anon key now)",
         postgrest_accepted(r[0], r[1]) and as_token("rest", anon_asym, r), r)
r = request("GET", "/rest/v1/probe_table")
case("no apikey refused", gateway_refused(r[0], r[1]), r)
r = request("GET", "/rest/v1/probe_table", {"apikey": "sb_publishable_notTheKeyAtAllxxxxxx_12345678"})
case("unknown opaque key refused", gateway_refused(r[0], r[1]), r)
r = request("GET", "/rest/v1/probe_table", {"apikey": pub, **bearer(service_asym)})
case("a user's bearer token passes through with the publishable key",
     postgrest_accepted(r[0], r[1]) and as_token("rest", service_asym, r), r)

# The OpenAPI document is for service_role only (upstream's templates since the Envoy move).
r = request("GET", "/rest/v1/", {"apikey": sec})
case("OpenAPI root with the secret key", r[0] == 200, r)
if kind not in ("kong-era", "coolify"):
    r = request("GET", "/rest/v1/", {"apikey": pub})
    case("OpenAPI root refused with the publishable key", r[0] in (401, 403), r)

# Storage verifies the forwarded token itself; a kid-less HS256 token uses AUTH_JWT_SECRET.
r = request("GET", "/storage/v1/bucket", {"apikey": pub})
if kind == "coolify":
    case("storage gets no token for the publishable key alone (Coolify's storage route translates nothing)",
         r[0] == 400 and "Invalid Compact JWS" in r[1], r)
else:
    case("storage accepts the anon JWT behind the publishable key", r[0] == 200 and as_token("storage", anon_asym, r), r)
r = request("GET", "/storage/v1/bucket", {"apikey": pub, **bearer(legacy_anon)})
if accept:
    case("storage accepts a legacy HS256 token (HS256 accepted)", r[0] == 200, r)
else:
    case("storage refuses a legacy HS256 token (HS256 rejected)", r[0] == 400 and '"403"' in r[1], r)

# Realtime's REST broadcast checks Authorization first, then apikey; an empty message list
# is 422 once the token is accepted (nothing is sent).
r = request("POST", "/realtime/v1/api/broadcast", {"apikey": pub, **bearer(anon_asym)}, {"messages": []})
case("realtime accepts the asymmetric anon token", r[0] in (202, 422), r)
r = request("POST", "/realtime/v1/api/broadcast", {"apikey": pub, **bearer(legacy_anon)}, {"messages": []})
if accept:
    case("realtime accepts a legacy HS256 token (HS256 accepted)", r[0] in (202, 422), r)
else:
    case("realtime refuses a legacy HS256 token (HS256 rejected)", r[0] == 401 and "Unauthorized" in r[1], r)

# Edge Functions (VERIFY_JWT=true): the router verifies Authorization itself.
r = request("POST", "/functions/v1/hello", bearer(anon_asym), {})
case("functions accept the asymmetric anon token", r[0] == 200, r)
r = request("POST", "/functions/v1/hello", bearer(legacy_anon), {})
if accept:
    case("functions accept a legacy HS256 token (HS256 accepted)", r[0] == 200, r)
else:
    case("functions refuse a legacy HS256 token (HS256 rejected)", r[0] == 401, r)

# Auth signs new sessions with the current key.
r = request("POST", "/auth/v1/signup", {"apikey": pub}, {})
if r[0] == 200:
    token = json.loads(r[1]).get("access_token", "")
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWK([k for k in jwks["keys"] if k["kid"] == header.get("kid")][0])
    ok = header.get("kid") == current["kid"] and header.get("alg") == current["alg"]
    try:
        jwt.decode(token, key.key, algorithms=[current["alg"]], audience="authenticated")
    except jwt.InvalidTokenError:
        ok = False
    case("anonymous sign-in: a token signed by the current key, verified with the JWKS", ok, r)
else:
    case("anonymous sign-in through the gateway", False, r)

# Studio is behind the dashboard credentials.
r = request("GET", "/")
case("Studio refused without the dashboard credentials", r[0] == 401, r)
basic = base64.b64encode(dashboard.encode()).decode()
r = request("GET", "/", {"Authorization": f"Basic {basic}"})
case("Studio with the dashboard credentials", r[0] == 200, r)

if os.environ.get("E2E_DECISIONS"):
    with open(os.environ["E2E_DECISIONS"], "w", encoding="utf-8") as f:
        f.writelines(json.dumps(d, sort_keys=True) + "\n" for d in decisions)
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"{kind}/{hs256}: every decision as expected")
