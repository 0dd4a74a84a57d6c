#!/usr/bin/env python3
"""The case matrix of the compatibility suite and the inputs each case feeds to `supakeys init`.

`matrix.py list` prints one case name per line; `matrix.py env CASE` prints that case's
environment as `NAME=value` lines (values never contain a newline), which `run` hands to
`env -i` for supakeys and for every checker, so a checker knows what the inputs were.
`matrix.py pre-env CASE` prints the inputs of an earlier run (only for `pre_secret` cases).

Everything here is deterministic: the secrets are fixed test strings derived from the case
name, the legacy tokens are HS256 JWTs made with PyJWT, and the adopted keys are upstream-format
`JWT_KEYS` arrays made with `cryptography` from seeds, including P-256 keys whose x, y or d
starts with a zero byte (found by searching seeds in order).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# Dashboard credentials go into kong.yml only; the password holds characters that break
# YAML or shell quoting when a renderer substitutes text instead of values.
DASHBOARD_USERNAME = "supabase"
DASHBOARD_PASSWORD = "p'ss: w#rd \"x\" $5 {a: b} - [c]"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_int(value: int, length: int | None = None) -> str:
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return b64u(value.to_bytes(length, "big"))


def test_secret(case: str) -> str:
    """A fixed, obviously fake JWT_SECRET of 40+ characters for a case."""
    return ("compat-test-secret-" + hashlib.sha256(case.encode()).hexdigest())[:48]


def legacy_token(secret: str, role: str) -> str:
    """A legacy API key in the shape every self-hosted install has (contract section 1)."""
    iat = int(time.time()) - 3600
    payload = {"role": role, "iss": "supabase", "iat": iat, "exp": iat + 10 * 365 * 86400}
    return jwt.encode(payload, secret, algorithm="HS256", headers={"typ": "JWT"})


def oct_jwk(secret: str) -> dict:
    return {"kty": "oct", "k": b64u(secret.encode()), "alg": "HS256"}


def seeded_kid(seed: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(("kid|" + seed).encode()).digest()[:16], version=4))


def p256_from_seed(seed: str, counter: int) -> ec.EllipticCurvePrivateKey:
    digest = hashlib.sha256(f"{seed}|{counter}".encode()).digest()
    d = int.from_bytes(digest, "big") % (P256_ORDER - 1) + 1
    return ec.derive_private_key(d, ec.SECP256R1())


def p256_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict:
    """Upstream's EC private JWK field set (contract section 2), members padded to 32 bytes."""
    numbers = key.private_numbers()
    return {
        "kty": "EC",
        "kid": kid,
        "use": "sig",
        "key_ops": ["sign", "verify"],
        "alg": "ES256",
        "ext": True,
        "crv": "P-256",
        "x": b64u_int(numbers.public_numbers.x, 32),
        "y": b64u_int(numbers.public_numbers.y, 32),
        "d": b64u_int(numbers.private_value, 32),
    }


def p256_with_leading_zero(seed: str, member: str) -> ec.EllipticCurvePrivateKey:
    """The first seeded P-256 key whose `member` (x, y or d) starts with a zero byte."""
    for counter in range(200_000):
        key = p256_from_seed(seed, counter)
        numbers = key.private_numbers()
        value = {
            "x": numbers.public_numbers.x,
            "y": numbers.public_numbers.y,
            "d": numbers.private_value,
        }[member]
        if value < 1 << 248:
            return key
    raise RuntimeError(f"no P-256 key with a leading zero in {member}")


def rsa_jwk(bits: int, kid: str) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    n = key.private_numbers()
    # RSA members are Base64urlUInt: minimal length (RFC 7518 section 2), unlike EC members.
    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "key_ops": ["sign", "verify"],
        "alg": "RS256",
        "ext": True,
        "n": b64u_int(n.public_numbers.n),
        "e": b64u_int(n.public_numbers.e),
        "d": b64u_int(n.d),
        "p": b64u_int(n.p),
        "q": b64u_int(n.q),
        "dp": b64u_int(n.dmp1),
        "dq": b64u_int(n.dmq1),
        "qi": b64u_int(n.iqmp),
    }


def opaque_key(prefix: str, seed: str) -> str:
    """An opaque key in the self-hosted format (contract section 2), from a seed."""
    body = b64u(hashlib.sha256(f"opaque|{prefix}|{seed}".encode()).digest()[:17])[:22]
    check = b64u(hashlib.sha256(f"supabase-self-hosted|{prefix}{body}".encode()).digest())[:8]
    return f"{prefix}{body}_{check}"


# name -> settings. alg/bits/mode go to SUPAKEYS_*; legacy adds ANON_KEY/SERVICE_ROLE_KEY;
# adopt makes a JWT_KEYS array; extra adds fixed inputs (issuer, kid, opaque keys).
CASES: dict[str, dict] = {
    "es256-keep-legacy": {"alg": "ES256", "mode": "keep", "legacy": True, "issuer": True},
    "es256-keep-nolegacy": {"alg": "ES256", "mode": "keep", "legacy": False},
    # A JWT_SECRET with quotes, a backslash, '$', spaces and non-ASCII: only its base64url form
    # (the oct key) may reach the files.
    "tricky-secret-resign-legacy": {"alg": "ES256", "mode": "resign", "legacy": True, "tricky_secret": True},
    "es256-resign-legacy": {"alg": "ES256", "mode": "resign", "legacy": True, "opaque": True},
    "es256-resign-nolegacy": {"alg": "ES256", "mode": "resign", "legacy": False, "kid": True},
    "rs2048-keep-legacy": {"alg": "RS256", "bits": 2048, "mode": "keep", "legacy": True},
    "rs2048-resign-nolegacy": {"alg": "RS256", "bits": 2048, "mode": "resign", "legacy": False, "ttl_days": 400},
    "rs3072-resign-legacy": {"alg": "RS256", "bits": 3072, "mode": "resign", "legacy": True, "log_json": True},
    "rs4096-keep-nolegacy": {"alg": "RS256", "bits": 4096, "mode": "keep", "legacy": False},
    "adopt-es256-keep-legacy": {"adopt": "ES256", "mode": "keep", "legacy": True},
    "adopt-es256-resign-nolegacy": {"adopt": "ES256", "mode": "resign", "legacy": False},
    "adopt-rs2048-resign-legacy": {"adopt": "RS256", "mode": "resign", "legacy": True},
    "leadzero-x-resign-legacy": {"adopt": "ES256", "zero": "x", "mode": "resign", "legacy": True},
    "leadzero-y-keep-legacy": {"adopt": "ES256", "zero": "y", "mode": "keep", "legacy": True},
    "leadzero-d-resign-nolegacy": {"adopt": "ES256", "zero": "d", "mode": "resign", "legacy": False},
    # A key whose x lost its leading zero byte (31 bytes), as careless tools write it: supakeys
    # must reject it (exit 2, no file written) or emit it padded to 32 bytes.
    "adopt-unpadded-x-keep-legacy": {"adopt": "ES256", "zero": "x", "unpadded": True, "mode": "keep", "legacy": True},
    # A first init with another JWT_SECRET and legacy keys, then this case's inputs: the keypair
    # stays, the derived files (oct key, re-signed tokens) follow (issue 2, behaviour 5).
    "rotated-secret-resign-legacy": {"alg": "ES256", "mode": "resign", "legacy": True, "pre_secret": True},
    # An older-style kong template (kong-old-template.yml): supakeys adds the open JWKS route
    # and keeps the legacy keys as second credentials.
    "oldtemplate-resign-legacy": {"alg": "ES256", "mode": "resign", "legacy": True, "old_template": True},
    # Three inits started at once on one empty directory (compose may start the job twice):
    # all succeed and leave one consistent set of files.
    "concurrent-es256-keep-legacy": {"alg": "ES256", "mode": "keep", "legacy": True, "concurrent": 3},
    # Dashboard credentials that are plain strings in YAML 1.2 but numbers in YAML 1.1, which
    # Kong's loader (lyaml) and PyYAML implement: kong.yml must quote them.
    "yaml11-credentials-keep-nolegacy": {"alg": "ES256", "mode": "keep", "legacy": False, "dashboard": ("0b1010", "1_000")},
    # Key lifecycle (lifecycle.py runs `supakeys keys ...` after init): a standby key, a
    # rotation (old tokens keep verifying), a revocation (they stop), a move from ES256 to
    # RS256 (a mixed EC/RSA key set), an emergency rotation; and HS256 retired altogether.
    "life-standby-keep-legacy": {"alg": "ES256", "mode": "keep", "legacy": True, "steps": [["keys", "standby"]]},
    "life-rotate-resign-legacy": {"alg": "ES256", "mode": "resign", "legacy": True,
                                  "steps": [["keys", "standby"], ["keys", "rotate"]], "old_valid": True},
    "life-revoke-resign-nolegacy": {"alg": "ES256", "mode": "resign", "legacy": False, "old_valid": False,
                                    "steps": [["keys", "standby"], ["keys", "rotate"], ["keys", "revoke", "@previous"]]},
    "life-es256-to-rs256-keep-legacy": {"alg": "ES256", "mode": "keep", "legacy": True, "expect_alg": "RS256",
                                        "steps": [["keys", "standby", "--alg", "RS256"], ["keys", "rotate"]], "old_valid": True},
    "life-rotate-now-rs2048-resign-nolegacy": {"alg": "RS256", "bits": 2048, "mode": "resign", "legacy": False,
                                               "steps": [["keys", "rotate", "--now"]], "old_valid": True},
    "hs256-reject-keep-legacy": {"alg": "ES256", "mode": "keep", "legacy": True, "hs256": "reject"},
    # supakeys generates keys until one has a leading zero byte (sweep.py), then the full check.
    "sweep-leadzero-resign-legacy": {"alg": "ES256", "mode": "resign", "legacy": True, "sweep": True},
}


def case_env(name: str) -> dict[str, str]:
    spec = CASES[name]
    secret = test_secret(name)
    if spec.get("tricky_secret"):
        secret = "it's a \"test\" \\ $HOME ümlaut #" + secret
    env = {
        "JWT_SECRET": secret,
        "DASHBOARD_USERNAME": DASHBOARD_USERNAME,
        "DASHBOARD_PASSWORD": DASHBOARD_PASSWORD,
        "SUPAKEYS_LEGACY_API_KEYS": spec["mode"],
        "SUPAKEYS_LOG_FORMAT": "json" if spec.get("log_json") else "text",
        "COMPAT_CASE": name,
    }
    if "alg" in spec:
        env["SUPAKEYS_ALG"] = spec["alg"]
    if "bits" in spec:
        env["SUPAKEYS_RSA_BITS"] = str(spec["bits"])
    if spec["legacy"]:
        env["ANON_KEY"] = legacy_token(secret, "anon")
        env["SERVICE_ROLE_KEY"] = legacy_token(secret, "service_role")
    if spec.get("issuer"):
        env["JWT_ISSUER"] = "http://localhost:8000/auth/v1"
    if spec.get("ttl_days"):
        env["SUPAKEYS_TOKEN_TTL"] = f"{spec['ttl_days']}d"
    if spec.get("kid"):
        env["SUPAKEYS_KID"] = "compat-test-kid-1"
    if spec.get("opaque"):
        env["SUPABASE_PUBLISHABLE_KEY"] = opaque_key("sb_publishable_", name)
        env["SUPABASE_SECRET_KEY"] = opaque_key("sb_secret_", name)
    if spec.get("dashboard"):
        env["DASHBOARD_USERNAME"], env["DASHBOARD_PASSWORD"] = spec["dashboard"]
    if spec.get("old_template"):
        env["SUPAKEYS_KONG_TEMPLATE"] = str(Path(__file__).resolve().parent / "kong-old-template.yml")
        env["COMPAT_OLD_TEMPLATE"] = "1"
    else:
        # supakeys has no built-in template: render the test template shaped like upstream's.
        env["SUPAKEYS_KONG_TEMPLATE"] = str(Path(__file__).resolve().parents[1] / "fixtures" / "kong.template.yml")
    if spec.get("concurrent"):
        env["COMPAT_CONCURRENT"] = str(spec["concurrent"])
    if spec.get("steps"):
        env["COMPAT_STEPS"] = json.dumps(spec["steps"])
    if "old_valid" in spec:
        env["COMPAT_OLD_TOKENS_VALID"] = "1" if spec["old_valid"] else "0"
    if spec.get("expect_alg"):
        env["COMPAT_EXPECT_ALG"] = spec["expect_alg"]
    if spec.get("hs256"):
        env["SUPAKEYS_LEGACY_HS256"] = spec["hs256"]
    if spec.get("sweep"):
        env["COMPAT_SWEEP"] = "1"
    if "adopt" in spec:
        kid = seeded_kid(name)
        if spec["adopt"] == "RS256":
            private = rsa_jwk(2048, kid)
        elif "zero" in spec:
            private = p256_jwk(p256_with_leading_zero(name, spec["zero"]), kid)
            if spec.get("unpadded"):
                member = spec["zero"]
                raw = base64.urlsafe_b64decode(private[member] + "=" * (-len(private[member]) % 4))
                private[member] = b64u(raw.lstrip(b"\0"))
                env["COMPAT_UNPADDED"] = member
        else:
            private = p256_jwk(p256_from_seed(name, 0), kid)
        env["JWT_KEYS"] = json.dumps([private, oct_jwk(secret)], separators=(",", ":"))
        env["COMPAT_ADOPTED"] = "1"
    return env


def pre_env(name: str) -> dict[str, str]:
    """The inputs of the earlier run of a `pre_secret` case: same settings, older secret."""
    env = case_env(name)
    secret = test_secret(name + "|before")
    env["JWT_SECRET"] = secret
    if "ANON_KEY" in env:
        env["ANON_KEY"] = legacy_token(secret, "anon")
        env["SERVICE_ROLE_KEY"] = legacy_token(secret, "service_role")
    return env


def main(argv: list[str]) -> int:
    if argv[1:] == ["list"]:
        print("\n".join(CASES))
        return 0
    if len(argv) == 3 and argv[1] in ("env", "pre-env") and argv[2] in CASES:
        if argv[1] == "pre-env" and not CASES[argv[2]].get("pre_secret"):
            return 0
        env = case_env(argv[2]) if argv[1] == "env" else pre_env(argv[2])
        for key, value in env.items():
            assert "\n" not in value
            print(f"{key}={value}")
        return 0
    print("usage: matrix.py list | matrix.py env CASE | matrix.py pre-env CASE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
