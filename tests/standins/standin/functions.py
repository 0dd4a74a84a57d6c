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

Coolify's Supabase template (coollabsio/coolify templates/compose/supabase.yaml, 2026-04,
volumes/functions/main/index.ts) mounts another main function, told apart by its use of
jose's createRemoteJWKSet: ES256/RS256 tokens are verified against
new URL('/auth/v1/.well-known/jwks.json', SUPABASE_URL) (fetched on first use, kept 10
minutes, fetched again for an unknown kid at most every 30 s: jose's defaults), HS256 with
JWT_SECRET, any other alg refused; `Authorization` split at spaces must start with
`Bearer`. Refusals are 401 {"msg": "Invalid JWT"}, or {"msg": "Error: <reason>"} for a
missing or malformed header; SUPABASE_JWKS is not read.
"""

import json
import os
import sys
import time
import urllib.parse
import urllib.request

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


class RemoteJwks:
    """jose's createRemoteJWKSet: a JWKS fetched over HTTP, cached 10 minutes (cacheMaxAge),
    fetched again early for a token no key matches, at most every 30 s (cooldownDuration)."""

    def __init__(self, url):
        self.url = url
        self.jwks = None
        self.fetched = 0.0

    def get(self, unmatched=False):
        age = time.time() - self.fetched
        if self.jwks is None or age > 600 or (unmatched and age > 30):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    self.jwks = parse_jwks(r.read().decode("utf-8"))
                self.fetched = time.time()
            except (OSError, ValueError) as e:
                log(SERVICE, f"JWKS fetch from {self.url} failed: {e}")
        return self.jwks


class FunctionsHandler(Handler):
    verify_jwt = False
    secret = None
    jwks = None
    remote = None  # Coolify's main function: a RemoteJwks

    def failure(self, code, message):
        self.extra["refused"] = code
        self.reply(401, {"code": code, "message": message, "msg": message},
                   headers=[("sb-error-code", code)], content_type="application/json")

    def coolify_check(self, headers):
        """Coolify's main function; True when the request may go on."""
        auth = headers.get("authorization")
        parts = (auth or "").split(" ")
        if not auth or parts[0] != "Bearer":
            reason = "Missing authorization header" if not auth else "Auth header is not 'Bearer {token}'"
            self.extra["refused"] = reason
            self.reply(401, {"msg": f"Error: {reason}"}, content_type="application/json")
            return False
        token = parts[1] if len(parts) > 1 else ""
        try:
            claims = verify(token, self.secret, self.remote.get())
        except Failure as f:
            if f.code != ASYMMETRIC[0]:
                claims = None
            else:
                try:
                    claims = verify(token, self.secret, self.remote.get(unmatched=True))
                except Failure:
                    claims = None
        if claims is None:
            self.extra["refused"] = "Invalid JWT"
            self.reply(401, {"msg": "Invalid JWT"}, content_type="application/json")
            return False
        self.extra["role"] = claims.get("role")
        return True

    def route(self, method, path, query):
        headers = self.lower_headers()
        if method != "OPTIONS" and self.verify_jwt and self.remote is not None:
            if not self.coolify_check(headers):
                return
        elif method != "OPTIONS" and self.verify_jwt:
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
    try:
        with open(os.path.join(main_service, "index.ts"), encoding="utf-8", errors="replace") as f:
            router = f.read()
    except OSError:
        router = ""
    if "createRemoteJWKSet" in router:
        url = urllib.parse.urljoin(env.get("SUPABASE_URL") or "", "/auth/v1/.well-known/jwks.json")
        FunctionsHandler.remote = RemoteJwks(url)
        rec.note("router", "coolify: remote JWKS " + url)
    log(SERVICE, f"main function started (VERIFY_JWT={FunctionsHandler.verify_jwt}, "
                 f"JWKS keys: {len(FunctionsHandler.jwks['keys']) if FunctionsHandler.jwks else 'none'}"
                 f"{', remote JWKS' if FunctionsHandler.remote else ''})")
    common.serve(SERVICE, port, FunctionsHandler, rec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
