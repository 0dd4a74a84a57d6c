"""Shared helpers of the stand-ins: recording what a service loaded, a small HTTP server,
dotenv parsing and JWT signature checks.

Every stand-in records into /results/<service>/ when /results is a directory (the e2e test
bind-mounts it): `uid`, `argv` (one argument a line), `keys-at-start` (the names in /keys),
one file per environment variable it uses (`NAME`, or `NAME.unset`), `files/<name>` for every
file it read itself, `loaded.json` (all of that in one document, files as sha256), all
before it listens, and `requests.jsonl` (one line per request, written before the answer is
sent: method, path, the auth-related headers and its answer). Nothing here is upstream
code: every behaviour is restated in our own words, with the upstream file named in a
comment where it is decided.
"""

import base64
import hashlib
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESULTS = os.environ.get("STANDIN_RESULTS", "/results")
KEYS_DIR = "/keys"

# Headers a request log keeps (values are the test's own throwaway keys); x-supakeys-probe
# is the id tests/e2e/probe.py gives each request, to find its line.
LOGGED_HEADERS = ("authorization", "apikey", "x-api-key", "sb-api-key", "host", "x-consumer-username",
                  "x-supakeys-probe")


def log(service, message):
    print(f"[{service}] {message}", file=sys.stderr, flush=True)


class Recorder:
    """Writes what a stand-in loaded into /results/<service>/ (nothing when /results is absent)."""

    def __init__(self, service):
        # SVC (the previous e2e stand-ins' convention) may rename the results folder.
        self.service = os.environ.get("SVC") or service
        self.dir = os.path.join(RESULTS, self.service) if os.path.isdir(RESULTS) else None
        self.lock = threading.Lock()
        self.loaded = {"service": self.service, "uid": os.getuid(), "argv": [], "env": {}, "files": {}}

    def _write(self, name, data):
        if self.dir is None:
            return
        path = os.path.join(self.dir, name)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape"))
        except OSError as e:
            log(self.service, f"cannot record {path}: {e}")

    def start(self, argv, env_names, argv_file="argv"):
        """Records uid, argv, the names in /keys and the variables the service uses."""
        self.loaded["argv"] = list(argv)
        self._write("uid", f"{os.getuid()}\n")
        self._write(argv_file, "".join(a + "\n" for a in argv))
        if argv_file != "argv":
            self._write("argv", "".join(a + "\n" for a in argv))
        try:
            names = sorted(os.listdir(KEYS_DIR))
        except OSError:
            names = []
        self._write("keys-at-start", "".join(n + "\n" for n in names))
        self.env(env_names)

    def env(self, env_names, environ=None):
        environ = os.environ if environ is None else environ
        for name in env_names:
            value = environ.get(name)
            self.loaded["env"][name] = value
            if value is None:
                self._write(name + ".unset", b"")
            else:
                self._write(name, value)
        self._flush()

    def file(self, path, data, also=None):
        """Records a file the service read itself (its bytes, and their hash in loaded.json)."""
        self.loaded["files"][path] = hashlib.sha256(data).hexdigest()
        self._write(os.path.join("files", os.path.basename(path)), data)
        if also:
            self._write(also, data)
        self._flush()

    def note(self, key, value):
        self.loaded[key] = value
        self._flush()

    def _flush(self):
        self._write("loaded.json", json.dumps(self.loaded, indent=1, sort_keys=True) + "\n")

    def request(self, entry):
        if self.dir is None:
            return
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock:
            try:
                with open(os.path.join(self.dir, "requests.jsonl"), "a", encoding="utf-8") as f:
                    f.write(line)
            except OSError:
                pass


def http_ok(url, what):
    """A healthcheck command's answer: 0 when `url` answers 200, else 1 with `what` said."""
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return 0 if r.status == 200 else 1
    except Exception as e:
        print(f"{what}: {e}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------- dotenv


def parse_dotenv(text):
    """Parses a dotenv file the way godotenv does for what supakeys writes: NAME=value,
    `export ` prefixes, '…' (literal) and "…" (\\n, \\", \\\\ escapes) values, # comments."""
    out = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"unexpected line without '=': {name[:40]!r}")
        name = name.strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        else:
            # An unquoted value ends at an inline comment (" #").
            value = value.split(" #", 1)[0].rstrip()
        out[name] = value
    return out


# ---------------------------------------------------------------- JWT


class TokenFormatError(Exception):
    pass


def b64url_decode(segment):
    if not isinstance(segment, str) or any(c in segment for c in "+/= \t\r\n"):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def split_token(token):
    """Returns (header, payload, signing_input, signature) or raises TokenFormatError."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenFormatError(f"token has {len(parts)} parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as e:
        raise TokenFormatError(f"undecodable token: {e}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise TokenFormatError("header or payload is not a JSON object")
    return header, payload, (parts[0] + "." + parts[1]).encode("ascii"), signature


def _algorithms():
    # PyJWT's algorithm objects (Debian python3-jwt) do the cryptography.
    from jwt.algorithms import get_default_algorithms

    return get_default_algorithms()


def key_from_jwk(jwk, alg):
    """A verification key for `alg` from a JWK (private JWKs give their public part)."""
    algo = _algorithms()[alg]
    key = algo.from_jwk(json.dumps(jwk))
    if hasattr(key, "public_key") and not isinstance(key, bytes):
        key = key.public_key()
    return key


def verify_signature(alg, key, signing_input, signature):
    """True when `signature` is valid for `signing_input` under `key` (bytes for HS*)."""
    algos = _algorithms()
    if alg not in algos or alg == "none":
        return False
    algo = algos[alg]
    try:
        if isinstance(key, (bytes, str)):
            if not alg.startswith("HS"):
                return False
            key = key.encode() if isinstance(key, str) else key
        return bool(algo.verify(signing_input, key, signature))
    except Exception:  # a key of the wrong type for the algorithm is a failed check
        return False


def jwk_kty_for_alg(alg):
    if alg.startswith("HS"):
        return "oct"
    if alg.startswith("ES"):
        return "EC"
    if alg == "EdDSA":
        return "OKP"
    return "RSA"


def sign(claims, alg, key, headers=None):
    import jwt

    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def private_key_from_jwk(jwk):
    algo = _algorithms()[jwk.get("alg") or ("ES256" if jwk.get("kty") == "EC" else "RS256")]
    return algo.from_jwk(json.dumps(jwk))


def now():
    return int(time.time())


# ---------------------------------------------------------------- HTTP


def bearer(headers):
    """The token of an `Authorization: Bearer <t>` header (None when absent or not Bearer)."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


class Handler(BaseHTTPRequestHandler):
    """Base request handler: HTTP/1.1 keep-alive, JSON/text helpers, one request log line.

    Subclasses set `service` and implement `route(method, path, query)` and answer with
    `self.reply(...)`. `self.extra` collects what the request log should also say (for
    example the role a token was accepted with)."""

    protocol_version = "HTTP/1.1"
    service = "standin"
    recorder = None

    def log_message(self, fmt, *args):
        if os.environ.get("STANDIN_VERBOSE"):
            log(self.service, fmt % args)

    def _dispatch(self):
        self.extra = {}
        self._body = None
        path, _, query = self.path.partition("?")
        self.req_path = path
        self.req_query = query
        # HEAD is GET without the body (what `wget --spider` healthchecks send).
        method = "GET" if self.command == "HEAD" else self.command
        try:
            self.route(method, path, query)
        except BrokenPipeError:
            pass
        except Exception as e:  # a stand-in bug must show, not hang the client
            log(self.service, f"error answering {self.command} {self.path}: {e!r}")
            self.reply(500, {"standin_error": repr(e)})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def body(self):
        if self._body is None:
            length = int(self.headers.get("content-length") or 0)
            self._body = self.rfile.read(length) if length > 0 else b""
        return self._body

    def json_body(self):
        return json.loads(self.body().decode("utf-8"))

    def lower_headers(self):
        return {k.lower(): v for k, v in self.headers.items()}

    def reply(self, status, body=b"", headers=(), content_type=None):
        if isinstance(body, (dict, list)) or (body is None and content_type is None):
            data = json.dumps(body, separators=(",", ":")).encode()
            content_type = content_type or "application/json"
        elif isinstance(body, str):
            data = body.encode()
            content_type = content_type or "text/plain; charset=utf-8"
        else:
            data = body
        self.body()  # drain the request body so keep-alive stays in sync
        self.send_response(status)
        if content_type and data:
            self.send_header("Content-Type", content_type)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("X-Standin-Service", self.service)
        if "role" in self.extra:
            self.send_header("X-Standin-Role", str(self.extra["role"]))
        self.finish_reply(status, data)

    def finish_reply(self, status, data):
        """Records the request, then ends the headers and sends the body (none for HEAD).

        The record is on disk before the first byte of the answer leaves (the headers are
        buffered until end_headers), so a client that has the answer finds its line."""
        if self.recorder is not None:
            hdrs = self.lower_headers()
            entry = {"method": self.command, "path": self.path, "status": status}
            entry["headers"] = {h: hdrs[h] for h in LOGGED_HEADERS if h in hdrs}
            entry.update(self.extra)
            self.recorder.request(entry)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def serve(service, port, handler_cls, recorder=None, host="0.0.0.0", ready=None):
    """Serves forever; SIGTERM/SIGINT end the process with 0 (PID 1 ignores them otherwise)."""
    handler_cls.service = service
    handler_cls.recorder = recorder

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    httpd = ThreadingHTTPServer((host, port), handler_cls)
    log(service, f"listening on {host}:{port} as uid {os.getuid()}")
    if ready:
        ready()
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()


def serve_in_thread(service, port, handler_cls, recorder=None, host="0.0.0.0"):
    handler_cls.service = service
    handler_cls.recorder = recorder
    ThreadingHTTPServer.allow_reuse_address = True
    httpd = ThreadingHTTPServer((host, port), handler_cls)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def fatal(service, message, code=1):
    log(service, message)
    sys.exit(code)


def env_int(name, default):
    try:
        return int(os.environ.get(name) or default)
    except ValueError:
        return default
