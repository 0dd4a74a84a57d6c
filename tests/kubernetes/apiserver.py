#!/usr/bin/env python3
"""A stand-in Kubernetes API server for supakeys' Kubernetes store: Secrets of one
namespace over HTTPS, with bearer tokens, RBAC by resource name, optimistic concurrency
and the API's Status errors. Python's standard library only.

Each behaviour restates the API server's, as its documentation and source describe it
(paths are kubernetes/kubernetes; the messages are built as apimachinery builds them):

- Status bodies: `staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go`
  (NewNotFound: `secrets "x" not found`, 404 NotFound; NewAlreadyExists: `secrets "x"
  already exists`, 409 AlreadyExists; NewConflict: `Operation cannot be fulfilled on secrets
  "x": <err>`, 409 Conflict; NewForbidden: `secrets "x" is forbidden: <reason>`, or
  `secrets is forbidden: <reason>` without a name, 403 Forbidden; NewUnauthorized: 401
  Unauthorized; NewInvalid: `Secret "x" is invalid: <field errors>`, 422 Invalid;
  NewBadRequest: 400 BadRequest).
- Updates: `staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go` (Update):
  a resourceVersion that differs from the stored one is NewConflict with
  OptimisticLockErrorMsg ("the object has been modified; please apply your changes to the
  latest version and try again"); an empty one is an unconditional update for Secrets
  (their strategy allows it, `pkg/registry/core/secret/strategy.go`); a Secret is never
  created by an update (AllowCreateOnUpdate false: 404). An update that changes nothing
  keeps the resourceVersion (etcd3 GuaranteedUpdate skips identical bytes).
- Secret fields: `pkg/apis/core/v1/conversion.go` (Convert_v1_Secret_To_core_Secret:
  stringData overwrites data, and is never returned); `data` values are base64 (`[]byte` in
  JSON), a value that is not base64 fails decoding with 400; `pkg/apis/core/validation/
  validation.go` (ValidateSecret: keys as IsConfigMapKey, the data total at most
  MaxSecretSize = 1 MiB, else `data: Too long: must have at most 1048576 bytes`;
  ValidateSecretUpdate: `immutable` Secrets keep their data, `field is immutable when
  `immutable` is set`, and the type never changes).
- RBAC: `pkg/apis/rbac/v1/evaluation_helpers.go` (ResourceNameMatches: a rule with
  resourceNames matches only requests naming one of them) and kubernetes.io "Using RBAC
  Authorization" (Referring to resources): a create carries no name at authorization time,
  so a rule with resourceNames never allows create. Dry-run requests are authorized like
  real ones (kubernetes.io "API Concepts", Dry-run). The reason text is the RBAC
  authorizer's: `User "<user>" cannot <verb> resource "secrets" in API group "" in the
  namespace "<ns>"`.
- Authentication: `Authorization: Bearer <token>`; a token the server does not know (or
  none, anonymous access being off) is 401 before anything else.
- Dry run (`?dryRun=All`): authorized, validated and answered like the real request,
  never stored (kubernetes.io "API Concepts", Dry-run).

The world (Secrets, RBAC rules, tokens, faults, request log) is a JSON file that the
tests read and edit between runs of supakeys; the server reads it at each request and
writes it back, under one lock. Faults a test can arm:

- `touch_after_get`: {"name": N, "times": K} — after answering K GETs of Secret N (-1:
  every one), another writer updates N (an annotation), so the next write of N that
  carries the resourceVersion read is stale.
- `touch_after_write`: {"after": A, "name": N} — once, after a write of Secret A is stored,
  another writer updates N.
- `barrier`: {"name": N, "count": C} — the first C GETs of N wait for each other (at most
  20 s), so C concurrent clients all read it before any of them writes.
- `rotate_token_after`: K — after K authenticated requests the kubelet rotates the
  projected token: a new token is written to the token file and the old one has expired.

Usage: apiserver.py WORLD CERT KEY; prints the port it listens on (127.0.0.1) and serves
until killed. `apiserver.py --selftest` checks these rules request by request.
"""

import base64
import binascii
import http.server
import json
import os
import re
import ssl
import sys
import threading
import time
import uuid

LOCK = threading.Lock()
BARRIERS = {}  # name -> [arrived, threading.Condition]
MAX_SECRET_SIZE = 1024 * 1024
OPTIMISTIC_LOCK = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
KEY_RE = re.compile(r"\A[-._a-zA-Z0-9]+\Z")
NAME_RE = re.compile(r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


def status(code, reason, message, name=None, causes=None):
    details = None
    if name is not None or causes:
        details = {"kind": "secrets"}
        if name is not None:
            details["name"] = name
        if causes:
            details["kind"] = "Secret"
            details["causes"] = causes
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return code, body


def forbidden(world, verb, name):
    reason = (
        f'User "{world["user"]}" cannot {verb} resource "secrets" in API group "" '
        f'in the namespace "{world["namespace"]}"'
    )
    if name:
        return status(403, "Forbidden", f'secrets "{name}" is forbidden: {reason}', name)
    return status(403, "Forbidden", f"secrets is forbidden: {reason}", "")


def invalid(name, field, error_type, detail):
    message = f'Secret "{name}" is invalid: {field}: {error_type}: {detail}'
    causes = [{"reason": "Field" + error_type.replace(" ", ""), "message": f"{error_type}: {detail}", "field": field}]
    return status(422, "Invalid", message, name, causes)


def allowed(world, verb, name):
    """RBAC: some rule names the verb and, if it lists resourceNames, this name."""
    for rule in world["rbac"]:
        if verb not in rule["verbs"] and "*" not in rule["verbs"]:
            continue
        names = rule.get("resourceNames") or []
        if not names or (name and name in names):
            return True
    return False


def decode_data(obj):
    """The Secret's data as bytes, stringData merged over it; None and an error on bad input."""
    data = {}
    for key, value in (obj.get("data") or {}).items():
        if not isinstance(value, str):
            return None, status(400, "BadRequest", f"json: cannot unmarshal into data[{key}]")
        try:
            data[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None, status(400, "BadRequest", f"illegal base64 data in data[{key}]")
    for key, value in (obj.get("stringData") or {}).items():
        data[key] = value.encode()
    return data, None


def validate(name, data):
    for key in data:
        if not KEY_RE.match(key) or len(key) > 253 or key in (".", "..") or key.startswith(".."):
            return invalid(name, f"data[{key}]", "Invalid value", "a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
    if sum(len(v) for v in data.values()) > MAX_SECRET_SIZE:
        return invalid(name, "data", "Too long", f"must have at most {MAX_SECRET_SIZE} bytes")
    return None


def stored(obj, data):
    out = dict(obj)
    out.pop("stringData", None)
    out["data"] = {k: base64.b64encode(v).decode() for k, v in sorted(data.items())}
    return out


def next_rv(world):
    world["rv"] += 1
    return str(world["rv"])


def handle(world, method, path, query, headers, body):
    """Returns (status code, JSON body) and changes `world` as the API server would."""
    auth = headers.get("Authorization", "")
    token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
    if token is None or token != world["token"]["current"]:
        return status(401, "Unauthorized", "Unauthorized")
    world["token"]["requests"] = world["token"].get("requests", 0) + 1
    ns = world["namespace"]
    m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?", path)
    if not m:
        return status(404, "NotFound", "the server could not find the requested resource")
    if m.group(1) != ns:
        return status(404, "NotFound", f'namespaces "{m.group(1)}" not found')
    name = m.group(2)
    dry_run = query.get("dryRun")
    if dry_run not in (None, "All"):
        return status(400, "BadRequest", f"Invalid dryRun value: {dry_run}")
    secrets = world["secrets"]
    if method == "GET" and name:
        if not allowed(world, "get", name):
            return forbidden(world, "get", name)
        if name not in secrets:
            return status(404, "NotFound", f'secrets "{name}" not found', name)
        return 200, secrets[name]
    if method == "POST" and not name:
        if not allowed(world, "create", None):
            return forbidden(world, "create", None)
        try:
            obj = json.loads(body)
        except ValueError:
            return status(400, "BadRequest", "the body is not JSON")
        meta = obj.get("metadata") or {}
        new_name = meta.get("name", "")
        if obj.get("kind") != "Secret" or not NAME_RE.match(new_name) or len(new_name) > 253:
            return status(400, "BadRequest", "not a Secret with a valid metadata.name")
        if meta.get("namespace", ns) != ns:
            return status(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        if meta.get("resourceVersion"):
            return status(500, "InternalError", "Internal error occurred: resourceVersion should not be set on objects to be created")
        data, error = decode_data(obj)
        if error:
            return error
        error = validate(new_name, data)
        if error:
            return error
        if new_name in secrets:
            return status(409, "AlreadyExists", f'secrets "{new_name}" already exists', new_name)
        out = stored(obj, data)
        out.setdefault("type", "Opaque")
        out["metadata"] = dict(meta, namespace=ns, uid=str(uuid.uuid4()),
                               creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if dry_run:
            return 201, out
        out["metadata"]["resourceVersion"] = next_rv(world)
        secrets[new_name] = out
        return 201, out
    if method == "PUT" and name:
        if not allowed(world, "update", name):
            return forbidden(world, "update", name)
        try:
            obj = json.loads(body)
        except ValueError:
            return status(400, "BadRequest", "the body is not JSON")
        meta = obj.get("metadata") or {}
        if meta.get("name") != name:
            return status(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
        if name not in secrets:
            return status(404, "NotFound", f'secrets "{name}" not found', name)
        old = secrets[name]
        rv = meta.get("resourceVersion", "")
        if rv and rv != old["metadata"]["resourceVersion"]:
            return status(409, "Conflict", f'Operation cannot be fulfilled on secrets "{name}": {OPTIMISTIC_LOCK}', name)
        data, error = decode_data(obj)
        if error:
            return error
        error = validate(name, data)
        if error:
            return error
        old_data = {k: base64.b64decode(v) for k, v in (old.get("data") or {}).items()}
        if old.get("immutable") and data != old_data:
            return invalid(name, "data", "Forbidden", "field is immutable when `immutable` is set")
        if obj.get("type", "Opaque") != old.get("type", "Opaque"):
            return invalid(name, "type", "Invalid value", "field is immutable")
        out = stored(obj, data)
        out.setdefault("type", "Opaque")
        out["metadata"] = dict(meta, namespace=ns, uid=old["metadata"]["uid"],
                               creationTimestamp=old["metadata"]["creationTimestamp"],
                               resourceVersion=old["metadata"]["resourceVersion"])
        if dry_run:
            return 200, out
        if out != old:
            out["metadata"]["resourceVersion"] = next_rv(world)
        secrets[name] = out
        return 200, out
    return status(405, "MethodNotAllowed", f"{method} is not supported here")


def touch(world, name):
    """Another writer changes Secret `name` (an annotation): its resourceVersion moves on."""
    secret = world["secrets"][name]
    secret["metadata"].setdefault("annotations", {})["touched-by"] = "another-writer"
    secret["metadata"]["resourceVersion"] = next_rv(world)


def after(world, method, name, code, dry_run):
    """The faults armed in `world` that follow a request; `name` is the Secret it concerned."""
    fault = world.get("touch_after_get")
    if fault and method == "GET" and code == 200 and name == fault["name"] and fault["times"] != 0:
        touch(world, name)
        if fault["times"] > 0:
            fault["times"] -= 1
    fault = world.get("touch_after_write")
    if fault and method in ("POST", "PUT") and code in (200, 201) and not dry_run and name == fault["after"]:
        touch(world, fault["name"])
        del world["touch_after_write"]
    rotate = world["token"].get("rotate_after")
    if rotate and world["token"].get("requests", 0) >= rotate:
        # The kubelet writes the new token atomically (a symlink swap); a rename is the same
        # for a reader that opens the file anew.
        new = "token-" + uuid.uuid4().hex
        path = world["token"]["file"]
        with open(path + ".new", "w") as f:
            f.write(new)
        os.replace(path + ".new", path)
        world["token"]["current"] = new
        world["token"]["requests"] = 0
        world["token"]["rotations"] = world["token"].get("rotations", 0) + 1


def created_name(body):
    """The name in a create's body, for the log."""
    try:
        return json.loads(body)["metadata"]["name"]
    except (ValueError, KeyError, TypeError):
        return None


def wait_at_barrier(world_path, name):
    with LOCK:
        with open(world_path) as f:
            barrier = json.load(f).get("barrier")
        if not barrier or barrier["name"] != name:
            return
        entry = BARRIERS.setdefault(name, [0, threading.Condition(LOCK)])
        if entry[0] >= barrier["count"]:
            return
        entry[0] += 1
        entry[1].notify_all()
        entry[1].wait_for(lambda: entry[0] >= barrier["count"], timeout=20)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def serve(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, raw_query = self.path.partition("?")
        query = dict(p.split("=", 1) for p in raw_query.split("&") if "=" in p)
        m = re.fullmatch(r"/api/v1/namespaces/[^/]+/secrets/([^/]+)", path)
        name = m.group(1) if m else None
        if method == "GET" and name:
            wait_at_barrier(self.server.world_path, name)
        with LOCK:
            with open(self.server.world_path) as f:
                world = json.load(f)
            code, reply = handle(world, method, path, query, self.headers, body)
            # The answer as it was when answered, before any fault changes the world.
            data = json.dumps(reply).encode()
            subject = name or created_name(body)
            world["log"].append({
                "method": method, "name": subject, "dryRun": query.get("dryRun"), "code": code,
                "reason": reply.get("reason") if reply.get("kind") == "Status" else None,
            })
            after(world, method, subject, code, query.get("dryRun"))
            tmp = self.server.world_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(world, f, indent=1)
            os.replace(tmp, self.server.world_path)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_GET(self):
        self.serve("GET")

    def do_POST(self):
        self.serve("POST")

    def do_PUT(self):
        self.serve("PUT")


def selftest():
    """The stand-in's own rules, request by request (run by tests/kubernetes/run)."""
    world = {
        "namespace": "ns", "user": "system:serviceaccount:ns:supakeys",
        "token": {"current": "t"}, "secrets": {}, "rv": 1, "log": [],
        "rbac": [{"verbs": ["get", "update"], "resourceNames": ["a"]}, {"verbs": ["create"]}],
    }
    auth = {"Authorization": "Bearer t"}
    base = "/api/v1/namespaces/ns/secrets"

    def call(method, path, body=None, query=None, headers=auth):
        data = json.dumps(body).encode() if body is not None else b""
        return handle(world, method, path, query or {}, headers, data)

    def secret(name, data=None, string_data=None, rv=None, **extra):
        meta = {"name": name}
        if rv:
            meta["resourceVersion"] = rv
        obj = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, **extra}
        if data is not None:
            obj["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}
        if string_data is not None:
            obj["stringData"] = string_data
        return obj

    results = []

    def expect(name, got, code, reason=None):
        ok = got[0] == code and (reason is None or got[1].get("reason") == reason)
        results.append(ok)
        print(("ok - " if ok else "not ok - ") + f"stand-in: {name} ({got[0]} {got[1].get('reason', '')})")

    expect("no token is 401", call("GET", f"{base}/a", headers={}), 401, "Unauthorized")
    expect("a missing Secret is 404", call("GET", f"{base}/a"), 404, "NotFound")
    code, obj = call("POST", base, secret("a", {"x": b"1"}, {"y": "2"}))
    expect("create", (code, obj), 201)
    merged = base64.b64decode(obj["data"]["y"]) == b"2" and "stringData" not in obj
    results.append(merged)
    print(("ok - " if merged else "not ok - ") + "stand-in: stringData is merged into data and not returned")
    expect("a second create is AlreadyExists", call("POST", base, secret("a", {})), 409, "AlreadyExists")
    rv = obj["metadata"]["resourceVersion"]
    expect("an update at the read version", call("PUT", f"{base}/a", secret("a", {"x": b"3"}, rv=rv)), 200)
    expect("an update at a stale version is Conflict", call("PUT", f"{base}/a", secret("a", {"x": b"4"}, rv=rv)), 409, "Conflict")
    expect("a dry run changes nothing", call("PUT", f"{base}/a", secret("a", {"x": b"5"}), {"dryRun": "All"}), 200)
    kept = base64.b64decode(world["secrets"]["a"]["data"]["x"]) == b"3"
    results.append(kept)
    print(("ok - " if kept else "not ok - ") + "stand-in: the dry run stored nothing")
    code, body = call("PUT", f"{base}/a", secret("a", {"x": b"z" * (MAX_SECRET_SIZE + 1)}))
    expect("data over 1 MiB is Invalid", (code, body), 422, "Invalid")
    said = "data: Too long: must have at most 1048576 bytes" in body["message"]
    results.append(said)
    print(("ok - " if said else "not ok - ") + "stand-in: the message names the field and the limit")
    world["secrets"]["a"]["immutable"] = True
    code, body = call("PUT", f"{base}/a", secret("a", {"x": b"6"}, immutable=True))
    expect("an immutable Secret keeps its data", (code, body), 422, "Invalid")
    expect("RBAC: get of a name the Role does not list", call("GET", f"{base}/b"), 403, "Forbidden")
    world["rbac"] = [{"verbs": ["create"], "resourceNames": ["c"]}]
    expect("RBAC: create is never allowed by a rule with resourceNames", call("POST", base, secret("c", {})), 403, "Forbidden")
    print(f"stand-in: {sum(results)} passed, {len(results) - sum(results)} failed")
    return all(results)


def main():
    if sys.argv[1:] == ["--selftest"]:
        sys.exit(0 if selftest() else 1)
    world_path, cert, key = sys.argv[1:4]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.world_path = world_path
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
