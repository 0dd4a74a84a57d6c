#!/usr/bin/env python3
"""The outputs fed to the Python libraries that stand for the consumers.

Usage: check_pylibs.py KEYS_DIR, with the case's inputs in the environment (see matrix.py).
- PyJWT + cryptography: every asymmetric token verifies against jwks.json and jwt_jwks.json
  (PyJWKSet, key chosen by kid); HS256 tokens verify against the oct key of jwt_jwks.json and
  against nothing in jwks.json.
- jwcrypto: every JWK (private from GOTRUE_JWT_KEYS, JWT_KEYS and state.json; public from every
  JWKS) imports, each private key matches its published public key, sign/verify round trips.
- supabase-auth (supabase-py) `get_claims()`, pointed at a local HTTP server that serves only
  jwks.json: claims of both asymmetric tokens come back with no request but the JWKS fetch.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
from jwcrypto import jwk as jwc_jwk
from jwcrypto import jws as jwc_jws
from jwcrypto import jwt as jwc_jwt

from compat_lib import Inputs, KeysDir, Reporter, decode_jwt, expect

ASYM_ALGS = ["ES256", "RS256"]


def verify_with_jwks(d: KeysDir, file: str, jwks_obj: dict) -> None:
    toks = d.asymmetric_tokens()
    expect(toks, "no asymmetric token in the env files")
    jwk_set = pyjwt.PyJWKSet.from_dict(jwks_obj)
    for where, t in toks.items():
        key = jwk_set[t.header["kid"]]  # KeyError when no key has the kid
        claims = pyjwt.decode(t.raw, key, algorithms=[t.alg], options={"require": ["exp", "iat"], "verify_aud": False})
        expect(claims == t.payload, f"{where}: decoded claims differ ({file})")
        expect(claims.get("iss") == "supabase", f"{where}: iss")


def check_pyjwt_asym(d: KeysDir) -> None:
    verify_with_jwks(d, "jwks.json", d.json["jwks.json"])
    verify_with_jwks(d, "jwt_jwks.json", d.json["jwt_jwks.json"])


def hs_tokens(d: KeysDir, inputs: Inputs) -> dict[str, str]:
    """HS256 tokens to try: those in the env files, the legacy inputs, and a Studio-style one."""
    toks = {w: t.raw for w, t in d.hs_tokens().items()}
    if inputs.legacy:
        toks["input:ANON_KEY"] = inputs.anon
        toks["input:SERVICE_ROLE_KEY"] = inputs.service
    now = int(time.time())
    toks["studio-style"] = pyjwt.encode({"role": "postgres", "iat": now, "exp": now + 300}, inputs.secret, algorithm="HS256")
    return toks


def check_pyjwt_hs(d: KeysDir, inputs: Inputs) -> None:
    octs = [k for k in d.json["jwt_jwks.json"]["keys"] if k.get("kty") == "oct"]
    if inputs.hs256:
        expect(len(octs) == 1, "jwt_jwks.json: no single oct key")
        oct_key = pyjwt.PyJWK(octs[0])
        public = [pyjwt.PyJWK(k) for k in d.json["jwks.json"]["keys"]]
    else:  # HS256 retired: nothing may verify an HS256 token
        expect(not octs, "jwt_jwks.json: oct key present with SUPAKEYS_LEGACY_HS256=reject")
        oct_key = None
        public = [pyjwt.PyJWK(k) for k in d.json["jwks.json"]["keys"] + d.json["jwt_jwks.json"]["keys"]]
    for where, tok in hs_tokens(d, inputs).items():
        if oct_key is not None:
            pyjwt.decode(tok, oct_key, algorithms=["HS256"], options={"verify_aud": False})
        for k in public:
            try:
                pyjwt.decode(tok, k, algorithms=["HS256"], options={"verify_aud": False})
            except pyjwt.PyJWTError:
                continue
            expect(False, f"{where}: HS256 token verified against a key of jwks.json")


def check_old_tokens(d: KeysDir, inputs: Inputs) -> None:
    """Tokens signed before a rotation verify while their key is `previous`, not once revoked."""
    expect(inputs.old_tokens, "no saved tokens")
    for file in ("jwks.json", "jwt_jwks.json"):
        jwk_set = pyjwt.PyJWKSet.from_dict(d.json[file])
        for i, tok in enumerate(inputs.old_tokens):
            t = decode_jwt(tok, f"old token {i}")
            try:
                pyjwt.decode(tok, jwk_set[t.header["kid"]], algorithms=[t.alg], options={"verify_aud": False})
                ok = True
            except (KeyError, pyjwt.PyJWTError):
                ok = False
            want = "verify" if inputs.old_tokens_valid else "be rejected"
            expect(ok == inputs.old_tokens_valid, f"old token {i} (signed before the rotation) should {want} with {file}")


def private_jwks(d: KeysDir) -> dict[str, dict]:
    out = {}
    for i, k in enumerate(d.json_var("auth.env", "GOTRUE_JWT_KEYS")):
        if k.get("kty") != "oct":
            out[f"auth.env:GOTRUE_JWT_KEYS[{i}]"] = k
    for i, k in enumerate(d.json_var("supabase.env", "JWT_KEYS")):
        if k.get("kty") != "oct":
            out[f"supabase.env:JWT_KEYS[{i}]"] = k
    for i, k in enumerate(d.state()["keys"]):
        if k.get("status") != "revoked":
            out[f"state.json:keys[{i}].jwk"] = k["jwk"]
    return out


def public_jwks(d: KeysDir) -> dict[str, dict]:
    out = {}
    sources = {
        "jwks.json": d.json["jwks.json"],
        "jwt_jwks.json": d.json["jwt_jwks.json"],
        "realtime.env:API_JWT_JWKS": d.json_var("realtime.env", "API_JWT_JWKS"),
        "storage.env:JWT_JWKS": d.json_var("storage.env", "JWT_JWKS"),
        "functions.env:SUPABASE_JWKS": d.json_var("functions.env", "SUPABASE_JWKS"),
        "supabase.env:JWT_JWKS": d.json_var("supabase.env", "JWT_JWKS"),
    }
    for name, obj in sources.items():
        for i, k in enumerate(obj["keys"]):
            if k.get("kty") != "oct":
                out[f"{name}.keys[{i}]"] = k
    return out


def check_jwcrypto(d: KeysDir) -> None:
    published = {k["kid"]: jwc_jwk.JWK(**k) for k in d.json["jwks.json"]["keys"]}
    for where, k in public_jwks(d).items():
        key = jwc_jwk.JWK(**k)
        expect(key.has_public and not key.has_private, f"{where}: not a public-only key for jwcrypto")
        expect(k["kid"] in published, f"{where}: kid not in jwks.json")
        expect(key.thumbprint() == published[k["kid"]].thumbprint(), f"{where}: differs from jwks.json's key")
    for where, k in private_jwks(d).items():
        key = jwc_jwk.JWK(**k)
        expect(key.has_private, f"{where}: jwcrypto sees no private key")
        pub = published.get(k["kid"])
        expect(pub is not None, f"{where}: kid not published in jwks.json")
        expect(key.thumbprint() == pub.thumbprint(), f"{where}: private key does not match its public key")
        mine = json.loads(key.export_public())
        theirs = json.loads(pub.export_public())
        expect(all(mine[m] == theirs[m] for m in ("kty", "crv", "x", "y", "n", "e") if m in mine), f"{where}: public members differ")
        # Sign with the private key, verify with the published public key. A standby or
        # previous key is marked verify-only, which jwcrypto enforces: sign with a copy.
        signer = key if "sign" in k.get("key_ops", ["sign"]) else jwc_jwk.JWK(**{m: v for m, v in k.items() if m != "key_ops"})
        s = jwc_jws.JWS(b"supakeys compat round trip")
        s.add_signature(signer, alg=k["alg"], protected=json.dumps({"alg": k["alg"], "kid": k["kid"]}))
        v = jwc_jws.JWS()
        v.deserialize(s.serialize(compact=True))
        v.verify(pub, alg=k["alg"])
        expect(v.payload == b"supakeys compat round trip", f"{where}: round trip payload")
    keyset = jwc_jwk.JWKSet.from_json(json.dumps(d.json["jwks.json"]))
    for where, t in d.asymmetric_tokens().items():
        tok = jwc_jwt.JWT(jwt=t.raw, key=keyset, algs=ASYM_ALGS, check_claims={"exp": None})
        expect(json.loads(tok.claims) == t.payload, f"{where}: jwcrypto claims differ")


class JwksOnly(BaseHTTPRequestHandler):
    """Serves jwks.json at the GoTrue path; every other request is recorded and fails."""

    body = b""
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).requests.append(f"GET {self.path}")
        if self.path == "/auth/v1/.well-known/jwks.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=600")
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)
        else:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        type(self).requests.append(f"POST {self.path}")
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def check_supabase_auth(d: KeysDir, inputs: Inputs) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        os.environ.pop(var, None)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    from supabase_auth import SyncGoTrueClient
    from supabase_auth.errors import AuthError

    JwksOnly.body = (d.path / "jwks.json").read_bytes()
    JwksOnly.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), JwksOnly)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/auth/v1"
        pub = d.var("supabase.env", "SUPABASE_PUBLISHABLE_KEY")
        client = SyncGoTrueClient(url=url, headers={"apikey": pub}, auto_refresh_token=False, persist_session=False)
        for name in ("ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC"):
            token = d.var("supabase.env", name)
            res = client.get_claims(jwt=token)
            expect(res is not None, f"{name}: get_claims returned nothing")
            expect(dict(res["claims"]) == decode_jwt(token, name).payload, f"{name}: get_claims claims differ")
        others = [r for r in JwksOnly.requests if r != "GET /auth/v1/.well-known/jwks.json"]
        expect(not others, f"get_claims made a server round trip: {others}")
        expect(JwksOnly.requests, "get_claims never fetched the JWKS")
        # Control: an HS256 token must take the round trip, proving the server would notice one.
        hs = pyjwt.encode({"role": "anon", "iss": "supabase", "exp": int(time.time()) + 300}, inputs.secret, algorithm="HS256")
        try:
            client.get_claims(jwt=hs)
        except AuthError:
            pass
        expect(any("/auth/v1/user" in r for r in JwksOnly.requests), "control: HS256 get_claims did not reach /user")
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    d = KeysDir.load(sys.argv[1])
    inputs = Inputs(dict(os.environ))
    r = Reporter("python")
    r.check("pyjwt.asymmetric_tokens", check_pyjwt_asym, d)
    r.check("pyjwt.hs256_oct_only", check_pyjwt_hs, d, inputs)
    if inputs.old_tokens:
        r.check("pyjwt.tokens_before_rotation", check_old_tokens, d, inputs)
    r.check("jwcrypto.keys", check_jwcrypto, d)
    r.check("supabase_auth.get_claims", check_supabase_auth, d, inputs)
    r.exit()


if __name__ == "__main__":
    main()
