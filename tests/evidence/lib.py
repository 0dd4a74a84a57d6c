"""Shared helpers of the evidence harness: running supakeys, snapshots of a keys directory,
validation of every managed file, and the secret-hygiene scan."""

import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import time

import yaml

BIN = os.environ["SUPAKEYS_BIN"]
SECRET = "evidence-jwt-secret-0123456789-abcdefghijklmnop"
SECRET_B = "evidence-jwt-secret-changed-9876543210-zyxwvuts"
OTHER_SECRET = "a-completely-different-secret-of-32-characters-or-more"
PASSWORD = "evidence-dashboard-pw-Qx7#z'k: 9"

# name -> mode, in the order supakeys writes them.
MANAGED = {
    "state.json": 0o600,
    "auth.env": 0o600,
    "jwks.json": 0o644,
    "jwt_jwks.json": 0o644,
    "realtime.env": 0o644,
    "storage.env": 0o644,
    "functions.env": 0o644,
    "studio.env": 0o644,
    "supabase.env": 0o600,
    "gateway.env": 0o644,
    "kong.yml": 0o644,
}
TEMP_PREFIX = ".supakeys-tmp-"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(payload: dict, secret: str, header=None) -> str:
    header = header or {"alg": "HS256", "typ": "JWT"}
    msg = b64(json.dumps(header, separators=(",", ":")).encode()) + "." + b64(
        json.dumps(payload, separators=(",", ":")).encode()
    )
    sig = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).digest()
    return msg + "." + b64(sig)


def legacy_key(role: str, secret: str = SECRET, exp_in: int = 10 * 365 * 86400) -> str:
    now = int(time.time())
    return hs256({"role": role, "iss": "supabase", "iat": now - 100, "exp": now + exp_in}, secret)


# supakeys has no built-in kong template; the tests render the one shaped like upstream's.
KONG_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "kong.template.yml")


def base_env(d: str) -> dict:
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SUPAKEYS_DIR": d,
        "JWT_SECRET": SECRET,
        "DASHBOARD_USERNAME": "supabase",
        "DASHBOARD_PASSWORD": PASSWORD,
        "SUPAKEYS_LOG_LEVEL": "trace",
        "SUPAKEYS_LOCK_TIMEOUT": "20",
        "SUPAKEYS_KONG_TEMPLATE": KONG_TEMPLATE,
    }
    return env


class Result:
    def __init__(self, code, stdout, stderr):
        self.code, self.stdout, self.stderr = code, stdout, stderr

    @property
    def output(self):
        return self.stdout + "\n" + self.stderr


def run(env, args=(), prefix=(), timeout=120):
    p = subprocess.run(
        list(prefix) + [BIN, *args],
        env=env,
        capture_output=True,
        timeout=timeout,
    )
    return Result(
        p.returncode,
        p.stdout.decode("utf-8", "replace"),
        p.stderr.decode("utf-8", "replace"),
    )


def snapshot(d: str):
    """Names, types, modes, owners and sha256 of everything in `d` (and `d` itself)."""
    if not os.path.lexists(d):
        return None
    snap = {}
    st = os.lstat(d)
    snap["."] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    if not stat.S_ISDIR(st.st_mode):
        return snap
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        st = os.lstat(p)
        entry = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns]
        if stat.S_ISREG(st.st_mode):
            try:
                with open(p, "rb") as f:
                    entry.append(hashlib.sha256(f.read()).hexdigest())
            except PermissionError:
                entry.append("unreadable")
        elif stat.S_ISLNK(st.st_mode):
            entry.append(os.readlink(p))
        snap[name] = tuple(entry)
    return snap


def file_hashes(d: str) -> dict:
    out = {}
    for name in MANAGED:
        p = os.path.join(d, name)
        if os.path.isfile(p) and not os.path.islink(p):
            with open(p, "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def parse_env_file(text: str) -> dict:
    """The NAME='value' form supakeys writes (strict: anything else is a problem)."""
    out = {}
    lines = text.split("\n")
    if lines[-1] != "":
        raise ValueError("no trailing newline")
    for line in lines[:-1]:
        if line.startswith("#"):
            continue
        name, sep, rest = line.partition("=")
        if not sep or not name.replace("_", "a").isalnum():
            raise ValueError(f"bad line {line[:20]!r}")
        if not (rest.startswith("'") and rest.endswith("'") and len(rest) >= 2 and "'" not in rest[1:-1]):
            raise ValueError(f"bad quoting on {name}")
        out[name] = rest[1:-1]
    return out


def validate_dir(d: str) -> list:
    """Every managed file that exists is complete: parses, has its mode. Returns problems."""
    problems = []
    for name, mode in MANAGED.items():
        p = os.path.join(d, name)
        if not os.path.lexists(p):
            continue
        st = os.lstat(p)
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"{name} is not a regular file")
            continue
        if stat.S_IMODE(st.st_mode) != mode:
            problems.append(f"{name} has mode {oct(stat.S_IMODE(st.st_mode))}")
        data = open(p, "rb").read()
        try:
            text = data.decode()
            if name.endswith(".json"):
                v = json.loads(text)
                if name == "state.json":
                    assert v["version"] >= 1 and len(v["keys"]) >= 1
                else:
                    assert isinstance(v["keys"], list) and v["keys"]
            elif name.endswith(".env"):
                vars_ = parse_env_file(text)
                assert vars_, "no variables"
                for k, val in vars_.items():
                    if val.startswith("{") or val.startswith("["):
                        json.loads(val)
            else:
                doc = yaml.safe_load(text)
                assert isinstance(doc, dict) and "_format_version" in doc
        except Exception as e:  # noqa: BLE001 - any failure means a partial file
            problems.append(f"{name} does not parse ({type(e).__name__}: {e})")
    return problems


def temp_files(d: str) -> list:
    try:
        return [n for n in os.listdir(d) if n.startswith(TEMP_PREFIX)]
    except OSError:
        return []


def keypair(d: str):
    """The kids and public JWK members of every key of the committed state, or None
    (a revoked key contributes its kid and no members)."""
    p = os.path.join(d, "state.json")
    try:
        v = json.load(open(p))
    except (OSError, ValueError):
        return None
    out = []
    for key in v["keys"]:
        jwk = key.get("jwk") or {}  # a revoked key keeps no JWK (kid only)
        public = {k: jwk[k] for k in ("kty", "kid", "crv", "x", "y", "n", "e") if k in jwk}
        out.append((key["kid"], json.dumps(public, sort_keys=True)))
    return sorted(out)


def secrets_in(d: str, env: dict) -> set:
    """Every secret a run could leak: inputs, private JWK members, secret tokens."""
    s = set()
    for name in ("JWT_SECRET", "DASHBOARD_PASSWORD", "SERVICE_ROLE_KEY", "SUPABASE_SECRET_KEY", "JWT_KEYS"):
        v = env.get(name)
        if v:
            s.add(v)
    if env.get("JWT_SECRET"):
        # surrogateescape: the hostile table also passes values that are not UTF-8.
        s.add(b64(env["JWT_SECRET"].encode("utf-8", "surrogateescape")))
    if env.get("JWT_KEYS"):
        try:
            for k in json.loads(env["JWT_KEYS"]):
                for m in ("d", "p", "q", "dp", "dq", "qi", "k"):
                    if isinstance(k, dict) and isinstance(k.get(m), str):
                        s.add(k[m])
        except (ValueError, TypeError, AttributeError):
            pass
    def regular(name):
        # A FIFO in place of a managed file (a hostile case) would block open().
        p = os.path.join(d, name)
        return os.path.isfile(p) and not os.path.islink(p)

    if d and os.path.isdir(d):
        try:
            if not regular("state.json"):
                raise OSError("not a regular file")
            v = json.load(open(os.path.join(d, "state.json")))
            for key in v.get("keys", []):
                for m in ("d", "p", "q", "dp", "dq", "qi"):
                    if isinstance(key.get("jwk", {}).get(m), str):
                        s.add(key["jwk"][m])
            if isinstance(v.get("secret_key"), str):
                s.add(v["secret_key"])
        except (OSError, ValueError, AttributeError, TypeError):
            pass
        try:
            if not regular("supabase.env"):
                raise OSError("not a regular file")
            envs = parse_env_file(open(os.path.join(d, "supabase.env")).read())
            for name in ("SERVICE_ROLE_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY", "SUPABASE_SECRET_KEY"):
                if envs.get(name):
                    s.add(envs[name])
        except (OSError, ValueError):
            pass
    # Very short values would match by accident; every real secret here is long.
    return {x for x in s if len(x) >= 12}


def leaks(text: str, secrets: set) -> list:
    return sorted(
        (f"a secret of {len(x)} chars starting {x[:4]}..." for x in secrets if x in text)
    )


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, ok: bool, what: str, detail: str = ""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(what)
            print(f"FAIL {what}" + (f"\n     {detail[:1500]}" if detail else ""), flush=True)
        return ok
