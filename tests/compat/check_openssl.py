#!/usr/bin/env python3
"""The keys and signatures checked by the OpenSSL command line.

Usage: check_openssl.py KEYS_DIR.
- Each private JWK (state.json, GOTRUE_JWT_KEYS, JWT_KEYS) converted to PKCS#8 PEM with
  `cryptography` passes `openssl pkey -check`, and its public half (`openssl pkey -pubout`)
  equals the PEM made from the key published in jwks.json.
- Each asymmetric token's signature verifies with `openssl dgst -sha256 -verify` against the
  published public key: ES256 after converting raw r||s to DER, RS256 as is.
PEM files live in a private temporary directory and are never printed.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from compat_lib import KeysDir, Reporter, b64u_decode, expect

PEM = serialization.Encoding.PEM


def num(jwk: dict, member: str) -> int:
    return int.from_bytes(b64u_decode(jwk[member], member), "big")


def public_key(jwk: dict):
    if jwk["kty"] == "EC":
        expect(jwk["crv"] == "P-256", "only P-256 is expected")
        return ec.EllipticCurvePublicNumbers(num(jwk, "x"), num(jwk, "y"), ec.SECP256R1()).public_key()
    return rsa.RSAPublicNumbers(num(jwk, "e"), num(jwk, "n")).public_key()


def private_key(jwk: dict):
    if jwk["kty"] == "EC":
        pub = ec.EllipticCurvePublicNumbers(num(jwk, "x"), num(jwk, "y"), ec.SECP256R1())
        return ec.EllipticCurvePrivateNumbers(num(jwk, "d"), pub).private_key()
    pub = rsa.RSAPublicNumbers(num(jwk, "e"), num(jwk, "n"))
    return rsa.RSAPrivateNumbers(
        num(jwk, "p"), num(jwk, "q"), num(jwk, "d"), num(jwk, "dp"), num(jwk, "dq"), num(jwk, "qi"), pub
    ).private_key()


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    p = subprocess.run(["openssl", *args], input=stdin, capture_output=True)
    if p.returncode != 0:
        lines = p.stderr.decode(errors="replace").strip().splitlines() or ["(no message)"]
        expect(False, f"openssl {' '.join(a for a in args if not a.startswith('/'))} failed: {lines[-1][:160]}")
    return p.stdout


def published(d: KeysDir) -> dict[str, dict]:
    return {k["kid"]: k for k in d.json["jwks.json"]["keys"]}


def private_jwks(d: KeysDir) -> dict[str, dict]:
    out = {f"state.json:keys[{i}]": k["jwk"] for i, k in enumerate(d.state()["keys"]) if k.get("status") != "revoked"}
    for file, var in (("auth.env", "GOTRUE_JWT_KEYS"), ("supabase.env", "JWT_KEYS")):
        for i, k in enumerate(d.json_var(file, var)):
            if k.get("kty") != "oct":
                out[f"{file}:{var}[{i}]"] = k
    return out


def check_private_keys(d: KeysDir, tmp: Path) -> None:
    pubs = published(d)
    for n, (where, jwk) in enumerate(private_jwks(d).items()):
        pem = private_key(jwk).private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        path = tmp / f"key{n}.pem"
        path.touch(mode=0o600)
        path.write_bytes(pem)
        openssl("pkey", "-in", str(path), "-check", "-noout")
        derived = openssl("pkey", "-in", str(path), "-pubout")
        expect(jwk["kid"] in pubs, f"{where}: kid not in jwks.json")
        want = public_key(pubs[jwk["kid"]]).public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        expect(derived == want, f"{where}: openssl's public half differs from jwks.json's key")
        pub_path = tmp / f"pub{n}.pem"
        pub_path.write_bytes(want)
        openssl("pkey", "-pubin", "-in", str(pub_path), "-pubcheck", "-noout")


def check_signatures(d: KeysDir, tmp: Path) -> None:
    pubs = published(d)
    toks = d.asymmetric_tokens()
    expect(toks, "no asymmetric token in the env files")
    for n, (where, t) in enumerate(toks.items()):
        jwk = pubs.get(t.header.get("kid"))
        expect(jwk is not None, f"{where}: kid not in jwks.json")
        pub = tmp / f"tok{n}.pub.pem"
        pub.write_bytes(public_key(jwk).public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        data = tmp / f"tok{n}.data"
        data.write_bytes(t.signing_input)
        sig = tmp / f"tok{n}.sig"
        if t.alg == "ES256":
            expect(len(t.signature) == 64, f"{where}: ES256 signature is not 64 bytes")
            r = int.from_bytes(t.signature[:32], "big")
            s = int.from_bytes(t.signature[32:], "big")
            sig.write_bytes(encode_dss_signature(r, s))
        else:
            expect(t.alg == "RS256", f"{where}: unexpected alg {t.alg}")
            sig.write_bytes(t.signature)
        out = openssl("dgst", "-sha256", "-verify", str(pub), "-signature", str(sig), str(data))
        expect(b"Verified OK" in out, f"{where}: openssl dgst did not verify")
        # Control: a flipped payload byte must not verify.
        data.write_bytes(t.signing_input[:-1] + bytes([t.signing_input[-1] ^ 1]))
        p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature", str(sig), str(data)], capture_output=True)
        expect(p.returncode != 0, f"{where}: control: tampered data verified")


def main() -> None:
    d = KeysDir.load(sys.argv[1])
    r = Reporter("openssl")
    with tempfile.TemporaryDirectory(prefix="supakeys-compat-openssl-") as tmp:
        r.check("pkey_check", check_private_keys, d, Path(tmp))
        r.check("dgst_verify", check_signatures, d, Path(tmp))
    r.exit()


if __name__ == "__main__":
    main()
