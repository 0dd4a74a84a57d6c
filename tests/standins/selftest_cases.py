#!/usr/bin/env python3
"""Requests of tests/standins/selftest, run from a container on the stand-ins' network.

usage: selftest_cases.py PHASE   (PHASE: accept or reject)
Reads the keys from /keys (the directory supakeys wrote) and asserts, through each gateway,
what the gateway decides and what the service behind it answers. Prints one line a check
and ends with "N passed, M failed"; exits 1 on any failure.
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

PHASE = sys.argv[1] if len(sys.argv) > 1 else "accept"
passed = failed = 0


def env_file(name):
    out = {}
    with open(os.path.join("/keys", name), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k] = v[1:-1] if len(v) >= 2 and v[0] == v[-1] == "'" else v
    return out


K = env_file("supabase.env")
PUB, SEC = K["SUPABASE_PUBLISHABLE_KEY"], K["SUPABASE_SECRET_KEY"]
ANON_ASYM, SERVICE_ASYM = K["ANON_KEY_ASYMMETRIC"], K["SERVICE_ROLE_KEY_ASYMMETRIC"]
LEGACY_ANON, LEGACY_SERVICE = os.environ["LEGACY_ANON_KEY"], os.environ["LEGACY_SERVICE_ROLE_KEY"]
KID = json.load(open("/keys/jwks.json"))["keys"][0]["kid"]
BASIC = base64.b64encode(f"{os.environ['DASHBOARD_USERNAME']}:{os.environ['DASHBOARD_PASSWORD']}".encode()).decode()


def request(base, method, path, headers=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def check(name, got, **want):
    """got = (status, headers, body); want: status, role, body_has, header name=value."""
    global passed, failed
    status, headers, body = got
    headers = {k.lower(): v for k, v in headers.items()}
    problems = []
    if "status" in want and status != want["status"]:
        problems.append(f"status {status}, want {want['status']}")
    if "role" in want and headers.get("x-standin-role") != want["role"]:
        problems.append(f"role {headers.get('x-standin-role')!r}, want {want['role']!r}")
    if "service" in want and headers.get("x-standin-service") != want["service"]:
        problems.append(f"answered by {headers.get('x-standin-service')!r}, want {want['service']!r}")
    for text in want.get("body_has", ()):
        if text not in body:
            problems.append(f"body lacks {text!r}")
    for k, v in (want.get("header") or {}).items():
        if headers.get(k) != v:
            problems.append(f"header {k}={headers.get(k)!r}, want {v!r}")
    if problems:
        failed += 1
        print(f"FAIL - {name}: {'; '.join(problems)}\n    body: {body[:200]}")
    else:
        passed += 1
        print(f"ok - {name}")


def wait(base, path, headers=None, want=200, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        try:
            if request(base, "GET", path, headers)[0] == want:
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def user_token(gw):
    status, _, body = request(gw, "POST", "/auth/v1/signup", {"apikey": PUB}, {})
    return json.loads(body)["access_token"] if status == 200 else None


def envoy_accept(gw):
    p = f"envoy [{PHASE}]"
    check(f"{p}: secret key reads the OpenAPI root as service_role", request(gw, "GET", "/rest/v1/", {"apikey": SEC}),
          status=200, role="service_role", service="rest")
    check(f"{p}: publishable key on the OpenAPI root: RBAC 403", request(gw, "GET", "/rest/v1/", {"apikey": PUB}),
          status=403, body_has=["RBAC: access denied"])
    check(f"{p}: publishable key reaches PostgREST as anon", request(gw, "GET", "/rest/v1/todos", {"apikey": PUB}),
          status=404, role="anon", body_has=["PGRST205"])
    check(f"{p}: ?apikey=<publishable> reaches PostgREST as anon", request(gw, "GET", f"/rest/v1/todos?apikey={PUB}"),
          status=404, role="anon")
    check(f"{p}: no apikey: 401", request(gw, "GET", "/rest/v1/todos"), status=401)
    if PHASE == "accept":
        check(f"{p}: asymmetric token sent as apikey: 401", request(gw, "GET", "/rest/v1/todos", {"apikey": ANON_ASYM}),
              status=401, body_has=["Unauthorized"])
        check(f"{p}: legacy HS256 anon key accepted by PostgREST", request(gw, "GET", "/rest/v1/todos", {"apikey": LEGACY_ANON}),
              status=404, role="anon")
        check(f"{p}: legacy HS256 service key on /pg/", request(gw, "GET", "/pg/tables", {"apikey": LEGACY_SERVICE}),
              status=200, service="meta")
    else:
        check(f"{p}: legacy HS256 anon key refused by the gateway", request(gw, "GET", "/rest/v1/todos", {"apikey": LEGACY_ANON}),
              status=401)
        check(f"{p}: gateway's anon key is the asymmetric token now", request(gw, "GET", "/rest/v1/todos", {"apikey": ANON_ASYM}),
              status=404, role="anon")
    check(f"{p}: JWKS open without a key", request(gw, "GET", "/auth/v1/.well-known/jwks.json"),
          status=200, body_has=[KID], header={"cache-control": "public, max-age=600"})
    token = user_token(gw)
    check(f"{p}: anonymous sign-in gives a user token", (200 if token else 500, {}, ""), status=200)
    if token:
        check(f"{p}: GoTrue verifies its ES256 user token", request(gw, "GET", "/auth/v1/user",
              {"apikey": PUB, "Authorization": f"Bearer {token}"}), status=200, role="authenticated")
        check(f"{p}: PostgREST accepts the user token", request(gw, "GET", "/rest/v1/todos",
              {"apikey": PUB, "Authorization": f"Bearer {token}"}), status=404, role="authenticated")
        check(f"{p}: functions verify the user token (VERIFY_JWT)", request(gw, "POST", "/functions/v1/hello",
              {"apikey": PUB, "Authorization": f"Bearer {token}"}, {}), status=200, role="authenticated",
              header={"x-standin-sb-api-key": "present"})
    check(f"{p}: storage with the secret key", request(gw, "GET", "/storage/v1/bucket", {"apikey": SEC}),
          status=200, role="service_role", service="storage")
    check(f"{p}: storage without a key: AccessDenied", request(gw, "GET", "/storage/v1/bucket"),
          status=400, body_has=['"code":"AccessDenied"', "Invalid Compact JWS"])
    check(f"{p}: functions with only an sb_ key: no Authorization for the runtime", request(gw, "POST", "/functions/v1/hello", {"apikey": SEC}, {}),
          status=401, header={"sb-error-code": "UNAUTHORIZED_NO_AUTH_HEADER"})
    check(f"{p}: functions with an unknown sb_ key: 401 at the gateway", request(gw, "POST", "/functions/v1/hello", {"apikey": "sb_secret_unknown"}, {}),
          status=401, body_has=["Invalid API key"])
    check(f"{p}: realtime broadcast with the publishable key", request(gw, "POST", "/realtime/v1/api/broadcast",
          {"apikey": PUB}, {"messages": []}), status=422, role="anon", service="realtime")
    check(f"{p}: realtime websocket with ?apikey=<publishable>", request(gw, "GET", f"/realtime/v1/websocket?apikey={PUB}&vsn=1.0.0"),
          status=400, role="anon")
    check(f"{p}: /pg/ with the publishable key: RBAC 403", request(gw, "GET", "/pg/tables", {"apikey": PUB}), status=403)
    check(f"{p}: studio needs basic auth", request(gw, "GET", "/project/default"), status=401,
          body_has=["Missing username and password"])
    check(f"{p}: studio with basic auth", request(gw, "GET", "/project/default", {"Authorization": f"Basic {BASIC}"}),
          status=200, service="studio")


def kong_accept(gw):
    p = f"kong [{PHASE}]"
    check(f"{p}: publishable key reaches PostgREST as anon", request(gw, "GET", "/rest/v1/todos", {"apikey": PUB}),
          status=404, role="anon", header={"via": "1.1 kong/3.9.3"})
    check(f"{p}: secret key reaches PostgREST as service_role", request(gw, "GET", "/rest/v1/todos", {"apikey": SEC}),
          status=404, role="service_role")
    check(f"{p}: no apikey: 401 No API key found", request(gw, "GET", "/rest/v1/todos"), status=401,
          body_has=["No API key found in request"], header={"www-authenticate": 'Key realm="kong"'})
    check(f"{p}: unknown key: 401 Invalid authentication credentials", request(gw, "GET", "/rest/v1/todos", {"apikey": "sb_publishable_x"}),
          status=401, body_has=["Invalid authentication credentials"])
    if PHASE == "accept":
        check(f"{p}: asymmetric token sent as apikey: 401", request(gw, "GET", "/rest/v1/todos", {"apikey": SERVICE_ASYM}),
              status=401, body_has=["Invalid authentication credentials"])
        check(f"{p}: legacy anon key (with its Bearer, as supabase-js sends) accepted", request(gw, "GET", "/rest/v1/todos",
              {"apikey": LEGACY_ANON, "Authorization": f"Bearer {LEGACY_ANON}"}), status=404, role="anon")
    else:
        check(f"{p}: legacy anon key refused by key-auth", request(gw, "GET", "/rest/v1/todos", {"apikey": LEGACY_ANON}),
              status=401, body_has=["Invalid authentication credentials"])
    check(f"{p}: ?apikey=<secret>: key-auth passes, PostgREST sees no bearer", request(gw, "GET", f"/rest/v1/todos?apikey={SEC}"),
          status=404, role="anon")
    check(f"{p}: /pg/ with the publishable key: 403 acl", request(gw, "GET", "/pg/tables", {"apikey": PUB}), status=403,
          body_has=["You cannot consume this service"])
    check(f"{p}: /pg/ with the secret key", request(gw, "GET", "/pg/tables", {"apikey": SEC}), status=200, service="meta")
    check(f"{p}: JWKS open without a key", request(gw, "GET", "/auth/v1/.well-known/jwks.json"), status=200, body_has=[KID])
    check(f"{p}: storage without a key: empty Authorization cleared", request(gw, "GET", "/storage/v1/bucket"),
          status=400, body_has=["Invalid Compact JWS"])
    check(f"{p}: storage with the publishable key", request(gw, "GET", "/storage/v1/bucket", {"apikey": PUB}),
          status=200, role="anon")
    token = user_token(gw)
    check(f"{p}: anonymous sign-in gives a user token", (200 if token else 500, {}, ""), status=200)
    if token:
        check(f"{p}: functions: secret key translated to sb-api-key, user token verified", request(gw, "POST", "/functions/v1/hello",
              {"apikey": SEC, "Authorization": f"Bearer {token}"}, {}), status=200, header={"x-standin-sb-api-key": "present"})
    check(f"{p}: realtime broadcast with the publishable key", request(gw, "POST", "/realtime/v1/api/broadcast",
          {"apikey": PUB}, {"messages": []}), status=422, role="anon")
    check(f"{p}: studio needs basic auth", request(gw, "GET", "/project/default"), status=401,
          header={"www-authenticate": 'Basic realm="kong"'})
    check(f"{p}: studio with basic auth", request(gw, "GET", "/project/default", {"Authorization": f"Basic {BASIC}"}),
          status=200, service="studio")


def direct():
    """Services answered directly, for what the gateways hide."""
    p = f"direct [{PHASE}]"
    legacy = {"Authorization": f"Bearer {LEGACY_ANON}"}
    if PHASE == "accept":
        check(f"{p}: PostgREST accepts the legacy HS256 key", request("http://rest:3000", "GET", "/todos", legacy), status=404, role="anon")
        check(f"{p}: storage accepts the legacy HS256 key", request("http://storage:5000", "GET", "/bucket", legacy), status=200)
    else:
        check(f"{p}: PostgREST refuses the legacy HS256 key", request("http://rest:3000", "GET", "/todos", legacy), status=401,
              body_has=["PGRST301"], header={"proxy-status": "PostgREST; error=PGRST301"})
        check(f"{p}: storage refuses the legacy HS256 key", request("http://storage:5000", "GET", "/bucket", legacy), status=400,
              body_has=["signature verification failed"])
        check(f"{p}: GoTrue refuses HS256 (not a valid method)", request("http://auth:9999", "GET", "/user", legacy), status=403,
              body_has=["bad_jwt", "signing method HS256 is invalid"])
        check(f"{p}: functions refuse the legacy HS256 key", request("http://functions:9000", "POST", "/hello", legacy, {}),
              status=401, header={"sb-error-code": "UNAUTHORIZED_LEGACY_JWT"})
        check(f"{p}: realtime refuses the legacy HS256 key", request("http://realtime-dev.supabase-realtime:4000", "POST", "/api/broadcast",
              legacy, {"messages": []}), status=401, body_has=['{"message":"Unauthorized"}'])
    unknown_kid = {"Authorization": "Bearer " + forged_kid(ANON_ASYM)}
    tampered = {"Authorization": "Bearer " + tamper(ANON_ASYM)}
    check(f"{p}: PostgREST refuses a token of an unknown kid", request("http://rest:3000", "GET", "/todos", unknown_kid),
          status=401, body_has=["No suitable key was found"])
    check(f"{p}: PostgREST refuses a bad signature", request("http://rest:3000", "GET", "/todos", tampered),
          status=401, body_has=["None of the keys was able to decode the JWT"])
    check(f"{p}: GoTrue refuses a bad signature", request("http://auth:9999", "GET", "/user", tampered),
          status=403, body_has=["bad_jwt", "token signature is invalid"])
    check(f"{p}: GoTrue accepts the service key on its admin API", request("http://auth:9999", "GET", "/admin/users",
          {"Authorization": f"Bearer {SERVICE_ASYM}"}), status=200, role="service_role")
    check(f"{p}: storage refuses an unknown kid (jose's key-type error)", request("http://storage:5000", "GET", "/bucket", unknown_kid),
          status=400, body_has=["Received an instance of Uint8Array"])
    check(f"{p}: functions refuse an unknown kid", request("http://functions:9000", "POST", "/hello", unknown_kid, {}),
          status=401, header={"sb-error-code": "UNAUTHORIZED_ASYMMETRIC_JWT"})
    check(f"{p}: realtime refuses an unknown kid", request("http://realtime-dev.supabase-realtime:4000", "POST",
          "/api/broadcast", unknown_kid, {"messages": []}), status=401)
    check(f"{p}: realtime management API takes no asymmetric token", request("http://realtime-dev.supabase-realtime:4000",
          "GET", "/api/tenants/realtime-dev/health", {"Authorization": f"Bearer {ANON_ASYM}"}), status=403)
    check(f"{p}: realtime ping names the tenant by Host", request("http://realtime-dev.supabase-realtime:4000", "GET", "/api/ping"),
          status=200, body_has=["Success"])
    check(f"{p}: GoTrue health", request("http://auth:9999", "GET", "/health"), status=200)


def tamper(token):
    h, p, sig = token.split(".")
    return f"{h}.{p}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"


def forged_kid(token):
    h, p, s = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    header["kid"] = "not-a-kid"
    nh = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{nh}.{p}.{s}"


def main():
    for url, path in (("http://envoy:8000", "/auth/v1/.well-known/jwks.json"),
                      ("http://kong:8000", "/auth/v1/.well-known/jwks.json")):
        if not wait(url, path):
            print(f"FAIL - {url} never answered {path}")
            print("0 passed, 1 failed")
            return 1
    envoy_accept("http://envoy:8000")
    kong_accept("http://kong:8000")
    direct()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
