"""Shared helpers of the Python checkers: reading a keys directory, decoding JWTs, reporting.

Nothing here judges the output; the checkers do. Reading is deliberately independent of
supakeys: env files are read by python-dotenv, JSON by the standard library.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

ENV_FILES = {
    "auth.env": ["GOTRUE_JWT_KEYS", "GOTRUE_JWT_VALID_METHODS", "GOTRUE_JWT_VALIDMETHODS"],
    "realtime.env": ["API_JWT_JWKS"],
    "storage.env": ["JWT_JWKS", "ANON_KEY", "SERVICE_KEY"],
    "functions.env": [
        "SUPABASE_JWKS",
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_SECRET_KEY",
    ],
    "studio.env": [
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_KEY",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_SECRET_KEY",
    ],
    "supabase.env": [
        "JWT_KEYS",
        "JWT_JWKS",
        "ANON_KEY_ASYMMETRIC",
        "SERVICE_ROLE_KEY_ASYMMETRIC",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_SECRET_KEY",
        "ANON_KEY",
        "SERVICE_ROLE_KEY",
    ],
    "gateway.env": [
        "ANON_KEY",
        "SERVICE_ROLE_KEY",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_SECRET_KEY",
        "ANON_KEY_ASYMMETRIC",
        "SERVICE_ROLE_KEY_ASYMMETRIC",
    ],
}
JSON_FILES = ["state.json", "jwks.json", "jwt_jwks.json"]
PRIVATE_FILES = {"state.json": 0o600, "auth.env": 0o600, "supabase.env": 0o600}
ALL_FILES = JSON_FILES + list(ENV_FILES) + ["kong.yml"]

EC_PRIVATE = {"d"}
RSA_PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "oth"}
JWT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
JWT_IN_TEXT_RE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
B64U_RE = re.compile(r"^[A-Za-z0-9_-]*$")


class CheckFailed(Exception):
    """A check found a mismatch; the message names the file/variable, never a secret."""


def fail(message: str) -> None:
    raise CheckFailed(message)


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def b64u_decode(text: str, what: str) -> bytes:
    """Strict base64url without padding (RFC 7515 section 2)."""
    expect(isinstance(text, str), f"{what}: not a string")
    expect(B64U_RE.match(text) is not None, f"{what}: not base64url without padding")
    expect(len(text) % 4 != 1, f"{what}: impossible base64url length")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Jwt:
    raw: str
    header: dict
    payload: dict
    signature: bytes
    signing_input: bytes
    header_b64: str = ""
    payload_b64: str = ""

    @property
    def alg(self) -> str:
        return self.header.get("alg", "")


def decode_jwt(token: str, what: str) -> Jwt:
    expect(JWT_RE.match(token) is not None, f"{what}: not a compact JWS")
    h, p, s = token.split(".")
    header = json.loads(b64u_decode(h, f"{what} header"))
    payload = json.loads(b64u_decode(p, f"{what} payload"))
    expect(isinstance(header, dict) and isinstance(payload, dict), f"{what}: header/payload not objects")
    return Jwt(token, header, payload, b64u_decode(s, f"{what} signature"), f"{h}.{p}".encode(), h, p)


def is_jwt(value: str) -> bool:
    if not isinstance(value, str) or JWT_RE.match(value) is None:
        return False
    try:
        decode_jwt(value, "probe")
        return True
    except Exception:
        return False


def private_members(jwk: dict) -> set[str]:
    kty = jwk.get("kty")
    if kty == "EC" or kty == "OKP":
        return set(jwk) & EC_PRIVATE
    if kty == "RSA":
        return set(jwk) & RSA_PRIVATE
    if kty == "oct":
        return set(jwk) & {"k"}
    return set()


def public_of(jwk: dict) -> dict:
    """The public JWK upstream publishes for a private one (contract section 2)."""
    pub = {k: v for k, v in jwk.items() if k not in private_members(jwk)}
    pub["key_ops"] = ["verify"]
    return pub


@dataclass
class KeysDir:
    path: Path
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    json: dict[str, object] = field(default_factory=dict)
    kong_text: str = ""
    missing: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str) -> "KeysDir":
        d = cls(Path(path))
        for name in ALL_FILES:
            if not (d.path / name).is_file():
                d.missing.append(name)
        for name in ENV_FILES:
            if (d.path / name).is_file():
                d.env[name] = {k: v for k, v in dotenv_values(d.path / name, interpolate=False).items()}
        for name in JSON_FILES:
            if (d.path / name).is_file():
                try:
                    d.json[name] = json.loads((d.path / name).read_text())
                except ValueError:
                    d.json[name] = None
        if (d.path / "kong.yml").is_file():
            d.kong_text = (d.path / "kong.yml").read_text()
        return d

    def var(self, file: str, name: str) -> str:
        values = self.env.get(file)
        expect(values is not None, f"{file}: missing")
        expect(name in values and values[name] is not None, f"{file}: {name} not set")
        return values[name]

    def text(self, file: str) -> str:
        return (self.path / file).read_text()

    def json_var(self, file: str, name: str) -> object:
        text = self.var(file, name)
        try:
            return json.loads(text)
        except ValueError:
            fail(f"{file}: {name} is not JSON")

    def state(self) -> dict:
        s = self.json.get("state.json")
        expect(isinstance(s, dict), "state.json: missing or not a JSON object")
        return s

    def current_key(self) -> dict:
        keys = [k for k in self.state().get("keys", []) if k.get("status") == "current"]
        expect(len(keys) == 1, f"state.json: {len(keys)} keys with status current, want 1")
        return keys[0]

    def published_keys(self) -> list[dict]:
        """State keys every JWKS must carry: standby, current and previous (not revoked)."""
        return [k for k in self.state().get("keys", []) if k.get("status") in ("standby", "current", "previous")]

    def all_tokens(self) -> dict[str, str]:
        """Every JWT-looking value in the env files, keyed by `file:NAME`."""
        out = {}
        for file, values in self.env.items():
            for name, value in values.items():
                if value and is_jwt(value):
                    out[f"{file}:{name}"] = value
        return out

    def asymmetric_tokens(self) -> dict[str, Jwt]:
        out = {}
        for where, token in self.all_tokens().items():
            t = decode_jwt(token, where)
            if t.alg != "HS256":
                out[where] = t
        return out

    def hs_tokens(self) -> dict[str, Jwt]:
        out = {}
        for where, token in self.all_tokens().items():
            t = decode_jwt(token, where)
            if t.alg == "HS256":
                out[where] = t
        return out


class Reporter:
    """Prints one `ok -`/`not ok -` line per check (TAP-like); `run` counts them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.failed = 0
        self.passed = 0

    def check(self, name: str, fn, *args) -> object:
        try:
            result = fn(*args)
        except CheckFailed as e:
            self.failed += 1
            print(f"not ok - {self.prefix}/{name}: {e}", flush=True)
            return None
        except Exception as e:  # a library refused something: report type and short text
            self.failed += 1
            text = str(e).replace("\n", " ")[:200]
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(
                f"not ok - {self.prefix}/{name}: {type(e).__name__}: {text} "
                f"(at {os.path.basename(where.filename)}:{where.lineno})",
                flush=True,
            )
            return None
        self.passed += 1
        print(f"ok - {self.prefix}/{name}", flush=True)
        return result

    def exit(self) -> None:
        sys.exit(1 if self.failed else 0)


class Inputs:
    """What the case fed to supakeys (the same environment is passed to the checkers)."""

    def __init__(self, environ: dict[str, str]) -> None:
        g = lambda k: environ.get(k) or None  # an empty variable counts as unset
        self.case = g("COMPAT_CASE") or "?"
        self.secret = g("JWT_SECRET")
        self.anon = g("ANON_KEY")
        self.service = g("SERVICE_ROLE_KEY")
        self.legacy = bool(self.anon and self.service)
        self.jwt_keys = json.loads(environ["JWT_KEYS"]) if g("JWT_KEYS") else None
        adopted_alg = None
        if self.jwt_keys:
            adopted_alg = next(k["alg"] for k in self.jwt_keys if k.get("kty") != "oct")
        # The current key's alg: after a rotation to another alg, the case says which.
        self.alg = g("COMPAT_EXPECT_ALG") or adopted_alg or g("SUPAKEYS_ALG") or "ES256"
        # SUPAKEYS_LEGACY_HS256=reject retires the oct key and HS256 everywhere.
        self.hs256 = (g("SUPAKEYS_LEGACY_HS256") or "accept") == "accept"
        self.old_tokens = []
        if g("COMPAT_OLD_TOKENS"):
            self.old_tokens = open(environ["COMPAT_OLD_TOKENS"]).read().split()
        self.old_tokens_valid = g("COMPAT_OLD_TOKENS_VALID") == "1"
        self.rsa_bits = int(g("SUPAKEYS_RSA_BITS") or 2048)
        self.kid = g("SUPAKEYS_KID")
        self.mode = g("SUPAKEYS_LEGACY_API_KEYS") or "keep"
        self.publishable = g("SUPABASE_PUBLISHABLE_KEY")
        self.secret_key = g("SUPABASE_SECRET_KEY")
        self.dash_user = g("DASHBOARD_USERNAME")
        self.dash_password = g("DASHBOARD_PASSWORD")
        self.issuer = g("JWT_ISSUER")
