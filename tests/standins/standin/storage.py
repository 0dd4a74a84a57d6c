"""Stand-in for Storage (image supabase/storage-api, `node dist/start/server.js`).

Restated from supabase/storage (v1.70.6, same decisions in v1.44.2):
- src/config.ts: jwtSecret = AUTH_JWT_SECRET, else PGRST_JWT_SECRET (required in single
  tenant mode); jwtAlgorithm = AUTH_JWT_ALGORITHM (default HS256); JWT_JWKS must parse as
  JSON ("Unable to parse JWT_JWKS value to JSON"), and a value without a `keys` list is as
  good as no JWKS (a top-level array is ignored).
- src/internal/auth/jwt.ts (getJWTAlgorithms, findJWKFromHeader, verifyJWT): a kid-less
  token whose alg is jwtAlgorithm uses the secret; an HS token with a kid uses the first oct
  key with that kid (or none), else the secret; an asymmetric token uses the first key with
  the same kid (or both absent), the kty of its alg and a compatible alg, else the secret's
  bytes, which jose refuses with "Key for the <alg> algorithm must be one of type
  CryptoKey, KeyObject, or JSON Web Key. Received an instance of Uint8Array"; the allowed
  algs are jwtAlgorithm plus the families of the JWKS keys; exp/nbf checked when present.
- src/http/plugins/jwt.ts + src/internal/errors (AccessDenied) + error-handler.ts: every
  refusal is HTTP 400 {"statusCode":"403","code":"AccessDenied","error":"Unauthorized",
  "message":<jose message>}; a missing token is "Invalid Compact JWS".
- src/app.ts: GET /status answers 200 with an empty body and no auth; GET /version too.
Not restated: the database and objects. GET /health answers {"healthy":true} and GET
/bucket answers [] for any accepted token (the role is not checked: no RLS here).
"""

import json
import os
import sys
import time

from . import common
from .common import Handler, Recorder, log

SERVICE = "storage"
ENV_USED = ("JWT_JWKS", "ANON_KEY", "SERVICE_KEY", "AUTH_JWT_SECRET", "PGRST_JWT_SECRET",
            "AUTH_JWT_ALGORITHM")
FAMILIES = {"RSA": ("RS256", "RS384", "RS512"), "EC": ("ES256", "ES384", "ES512"),
            "OKP": ("EdDSA",), "oct": ("HS256", "HS384", "HS512")}


class AccessDenied(Exception):
    pass


class StorageConfig:
    def __init__(self, env):
        self.secret = env.get("AUTH_JWT_SECRET") or env.get("PGRST_JWT_SECRET")
        if not self.secret:
            raise ValueError("AUTH_JWT_SECRET is undefined")
        self.alg = env.get("AUTH_JWT_ALGORITHM") or env.get("PGRST_JWT_ALGORITHM") or "HS256"
        raw = env.get("JWT_JWKS")
        jwks = None
        if raw:
            try:
                jwks = json.loads(raw)
            except ValueError:
                raise ValueError("Unable to parse JWT_JWKS value to JSON") from None
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        self.keys = keys if isinstance(keys, list) else None

    def allowed_algs(self):
        algs = [self.alg]
        for key in self.keys or []:
            kty = key.get("kty")
            if kty == "oct" and not key.get("k"):
                continue
            if kty == "OKP" and key.get("crv") not in ("Ed25519", "Ed448"):
                continue
            algs.extend(FAMILIES.get(kty, ()))
        return algs

    def verify(self, token):
        try:
            header, payload, signing_input, signature = common.split_token(token)
        except common.TokenFormatError:
            raise AccessDenied("Invalid Compact JWS") from None
        alg = header.get("alg")
        if alg not in self.allowed_algs():
            raise AccessDenied('"alg" (Algorithm) Header Parameter value not allowed')
        kid = header.get("kid")
        key = None
        if self.keys is None:
            key = self.secret.encode()
        elif alg.startswith("HS"):
            if kid is None and alg == self.alg:
                key = self.secret.encode()
            else:
                for jwk in self.keys:
                    if jwk.get("kty") == "oct" and jwk.get("k") and jwk.get("kid") in (None, kid):
                        if jwk.get("alg") and jwk.get("alg") != alg:
                            raise AccessDenied(f'JWT algorithm "{alg}" does not match JWK algorithm "{jwk["alg"]}"')
                        key = common.b64url_decode(jwk["k"])
                        break
                if key is None:
                    key = self.secret.encode()
        else:
            kty = common.jwk_kty_for_alg(alg)
            for jwk in self.keys:
                if jwk.get("kid") == kid and jwk.get("kty") == kty and jwk.get("alg") in (None, alg):
                    key = common.key_from_jwk(jwk, alg)
                    break
        if key is None or (isinstance(key, bytes) and not alg.startswith("HS")):
            raise AccessDenied(f"Key for the {alg} algorithm must be one of type CryptoKey, KeyObject, "
                               "or JSON Web Key. Received an instance of Uint8Array")
        if not common.verify_signature(alg, key, signing_input, signature):
            raise AccessDenied("signature verification failed")
        now = time.time()
        if isinstance(payload.get("exp"), (int, float)) and now >= payload["exp"]:
            raise AccessDenied('"exp" claim timestamp check failed')
        if isinstance(payload.get("nbf"), (int, float)) and now < payload["nbf"]:
            raise AccessDenied('"nbf" claim timestamp check failed')
        return payload


class StorageHandler(Handler):
    config = None

    def denied(self, message):
        self.extra["refused"] = message
        self.reply(400, {"statusCode": "403", "code": "AccessDenied", "error": "Unauthorized",
                         "message": message}, content_type="application/json; charset=utf-8")

    def route(self, method, path, query):
        if path == "/status":
            return self.reply(200, b"")
        if path == "/version":
            return self.reply(200, "1.74.0-standin")
        value = self.lower_headers().get("authorization") or ""
        token = value[7:].strip() if value[:7].lower() == "bearer " else ""
        try:
            claims = self.config.verify(token)
        except AccessDenied as e:
            return self.denied(str(e))
        self.extra["role"] = claims.get("role")
        if path in ("/health", "/health/") and method == "GET":
            return self.reply(200, {"healthy": True}, content_type="application/json; charset=utf-8")
        if path in ("/bucket", "/bucket/") and method == "GET":
            return self.reply(200, [], content_type="application/json; charset=utf-8")
        # Fastify's default not-found answer.
        self.reply(404, {"message": f"Route {method}:{path} not found", "error": "Not Found", "statusCode": 404},
                   content_type="application/json; charset=utf-8")


def main(argv):
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ENV_USED, argv_file="node-argv")
    try:
        config = StorageConfig(os.environ)
    except ValueError as e:
        log(SERVICE, f"Error: {e}")
        return 1
    rec.note("jwks_kids", [k.get("kid") for k in config.keys or []])
    StorageHandler.config = config
    common.serve(SERVICE, common.env_int("SERVER_PORT", 5000), StorageHandler, rec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
