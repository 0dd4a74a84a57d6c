"""Stand-in for the Edge Runtime (image supabase/edge-runtime, ENTRYPOINT ["edge-runtime"])
running self-hosted Supabase's main router.

Restated from supabase/supabase docker/volumes/functions/main/index.ts (@025f3cad, the
hybrid verifier with jose 6; not proven to be the Sept 2026 version):
- JWT_SECRET, SUPABASE_JWKS (JSON with a `keys` list, else nothing), VERIFY_JWT ('true'
  turns the checks on; OPTIONS is never checked).
- `Authorization` must be `Bearer <token>` (exactly two space-separated parts): missing →
  UNAUTHORIZED_NO_AUTH_HEADER "Missing authorization header", else malformed →
  UNAUTHORIZED_INVALID_JWT_FORMAT "Invalid JWT format".
- alg HS256 → verified with the UTF-8 bytes of JWT_SECRET (kid ignored) →
  UNAUTHORIZED_LEGACY_JWT "Invalid JWT"; ES256/RS256 → the JWKS, key chosen by kid/alg
  → UNAUTHORIZED_ASYMMETRIC_JWT "Invalid JWT"; any other alg →
  UNAUTHORIZED_UNSUPPORTED_TOKEN_ALGORITHM "Unsupported JWT algorithm <alg>"; only exp/nbf.
- A refusal is 401, Content-Type application/json, `sb-error-code: <code>`, body
  {"code":…,"message":…,"msg":…}; an empty function name is 400
  {"msg":"missing function name in request"}.
- edge-runtime's CLI: `start --main-service DIR [--port N]` (default port 9000).
Not restated: Deno and the user workers. Any function answers 200 with the JSON string
"Hello from Edge Functions!" (what upstream's example `hello` function returns).
"""

import json
import os
import sys
import time

from . import common
from .common import Handler, Recorder, log

SERVICE = "functions"
ENV_USED = ("SUPABASE_JWKS", "JWT_SECRET", "VERIFY_JWT", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY",
            "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "SUPABASE_PUBLISHABLE_KEYS",
            "SUPABASE_SECRET_KEYS", "SUPABASE_URL")


def parse_jwks(raw):
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("keys"), list):
        return doc
    return None


class Failure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


MISSING = ("UNAUTHORIZED_NO_AUTH_HEADER", "Missing authorization header")
FORMAT = ("UNAUTHORIZED_INVALID_JWT_FORMAT", "Invalid JWT format")
LEGACY = ("UNAUTHORIZED_LEGACY_JWT", "Invalid JWT")
ASYMMETRIC = ("UNAUTHORIZED_ASYMMETRIC_JWT", "Invalid JWT")


def times_ok(payload):
    now = time.time()
    exp, nbf = payload.get("exp"), payload.get("nbf")
    if exp is not None and (not isinstance(exp, (int, float)) or now >= exp):
        return False
    if nbf is not None and (not isinstance(nbf, (int, float)) or now < nbf):
        return False
    return True


def verify(token, secret, jwks):
    try:
        header, payload, signing_input, signature = common.split_token(token)
    except common.TokenFormatError:
        raise Failure(*FORMAT) from None
    alg = header.get("alg")
    if alg == "HS256":
        if not secret or not common.verify_signature("HS256", secret.encode(), signing_input, signature) \
                or not times_ok(payload):
            raise Failure(*LEGACY)
        return payload
    if alg in ("ES256", "RS256"):
        if jwks is None:
            raise Failure(*ASYMMETRIC)
        kid = header.get("kid")
        kty = common.jwk_kty_for_alg(alg)
        # jose's createLocalJWKSet: candidates by kty, alg (when set) and kid (when given);
        # more than one candidate without a kid is refused as ambiguous.
        cands = [k for k in jwks["keys"] if k.get("kty") == kty and k.get("alg", alg) == alg
                 and (kid is None or k.get("kid") == kid) and k.get("use", "sig") == "sig"]
        if len(cands) != 1 or "d" in cands[0]:
            raise Failure(*ASYMMETRIC)
        try:
            key = common.key_from_jwk(cands[0], alg)
        except Exception:
            raise Failure(*ASYMMETRIC) from None
        if not common.verify_signature(alg, key, signing_input, signature) or not times_ok(payload):
            raise Failure(*ASYMMETRIC)
        return payload
    raise Failure("UNAUTHORIZED_UNSUPPORTED_TOKEN_ALGORITHM", f"Unsupported JWT algorithm {alg}")


class FunctionsHandler(Handler):
    verify_jwt = False
    secret = None
    jwks = None

    def failure(self, code, message):
        self.extra["refused"] = code
        self.reply(401, {"code": code, "message": message, "msg": message},
                   headers=[("sb-error-code", code)], content_type="application/json")

    def route(self, method, path, query):
        headers = self.lower_headers()
        if method != "OPTIONS" and self.verify_jwt:
            auth = headers.get("authorization")
            if not auth:
                return self.failure(*MISSING)
            parts = auth.split(" ")
            if len(parts) != 2 or parts[0] != "Bearer" or not parts[1]:
                return self.failure(*FORMAT)
            try:
                claims = verify(parts[1], self.secret, self.jwks)
            except Failure as f:
                return self.failure(f.code, str(f))
            self.extra["role"] = claims.get("role")
        name = path.split("/")[1] if path.startswith("/") else ""
        if not name:
            return self.reply(400, {"msg": "missing function name in request"}, content_type="application/json")
        self.extra["function"] = name
        # What a user worker would see: the translated key the gateway put in sb-api-key.
        sb = headers.get("sb-api-key")
        extra = [("X-Standin-Function", name), ("X-Standin-Sb-Api-Key", "present" if sb else "absent")]
        self.reply(200, json.dumps("Hello from Edge Functions!").encode(), headers=extra,
                   content_type="application/json")


def main(argv):
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ENV_USED)
    args = argv[1:]
    if not args or args[0] != "start":
        log(SERVICE, f"edge-runtime stand-in: expected `start`, got {args!r}")
        return 1
    main_service = None
    port = 9000
    i = 1
    while i < len(args):
        if args[i] in ("--main-service", "-m") and i + 1 < len(args):
            main_service = args[i + 1]
            i += 2
        elif args[i] in ("--port", "-p") and i + 1 < len(args):
            port = int(args[i + 1])
            i += 2
        elif args[i].startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            i += 2
        else:
            i += 1
    if not main_service:
        log(SERVICE, "error: the following required arguments were not provided: --main-service <PATH>")
        return 1
    env = os.environ
    FunctionsHandler.verify_jwt = env.get("VERIFY_JWT") == "true"
    FunctionsHandler.secret = env.get("JWT_SECRET")
    FunctionsHandler.jwks = parse_jwks(env.get("SUPABASE_JWKS"))
    log(SERVICE, f"main function started (VERIFY_JWT={FunctionsHandler.verify_jwt}, "
                 f"JWKS keys: {len(FunctionsHandler.jwks['keys']) if FunctionsHandler.jwks else 'none'})")
    common.serve(SERVICE, port, FunctionsHandler, rec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
