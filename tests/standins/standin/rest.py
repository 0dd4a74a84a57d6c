"""Stand-in for PostgREST v14 (image postgrest/postgrest, binary /bin/postgrest).

Restated from PostgREST/postgrest v14.5 (read in this project's research):
- src/PostgREST/Config.hs (parseSecret): PGRST_JWT_SECRET is a value, or `@PATH` to read
  it from a file (one trailing newline dropped); a JWKS object, else a single JWK, else the
  raw text as an HS256 secret, which must be at least 32 characters.
- src/PostgREST/Auth.hs + jose-jwt Jose/Jwk.hs (keyIdCompatible): since v13 a token's kid
  must equal a key's kid; a kid-less token tries every key; `use: "enc"` keys are left out.
- src/PostgREST/Error.hs: PGRST300 (500), PGRST301 and PGRST303 (401, WWW-Authenticate
  `Bearer error="invalid_token", error_description="…"`), PGRST302 (401, `Bearer`);
  every JWT error carries `Proxy-Status: PostgREST; error=PGRST30x`; claims checks allow
  30 s of clock skew; the role comes from the `role` claim, PGRST_DB_ANON_ROLE without a
  token; a role that does not exist is 401 with code 22023.
- CLI `--ready`: asks the admin server (PGRST_ADMIN_SERVER_HOST/PORT) for /ready.
Not restated: the database. `GET /` answers a small OpenAPI document for any accepted role,
`GET /<name>` answers PGRST205 (no table exists), `POST /rpc/graphql` answers an empty
GraphQL result.
"""

import json
import os
import sys
import time

from . import common
from .common import Handler, Recorder, log

SERVICE = "rest"
ENV_USED = ("PGRST_JWT_SECRET", "PGRST_APP_SETTINGS_JWT_SECRET", "PGRST_JWT_SECRET_IS_BASE64",
            "PGRST_DB_ANON_ROLE", "PGRST_JWT_AUD", "PGRST_JWT_ROLE_CLAIM_KEY")
# Roles a Supabase database has (a token naming another role gets 22023).
DB_ROLES = {"anon", "authenticated", "service_role", "postgres", "supabase_admin", "authenticator",
            "dashboard_user", "supabase_auth_admin", "supabase_storage_admin"}
SKEW = 30
KTY_FOR = {"HS": "oct", "RS": "RSA", "PS": "RSA", "ES": "EC"}


class SecretError(Exception):
    pass


def jwk_parses(jwk):
    """What jose-jwt's JWK parser needs for each key type (anything else fails the set)."""
    if not isinstance(jwk, dict):
        return False
    kty = jwk.get("kty")
    if kty == "oct":
        return isinstance(jwk.get("k"), str)
    if kty == "EC":
        return jwk.get("crv") in ("P-256", "P-384", "P-521") and all(isinstance(jwk.get(m), str) for m in ("x", "y"))
    if kty == "RSA":
        return all(isinstance(jwk.get(m), str) for m in ("n", "e"))
    return False


def parse_secret(text, is_base64=False):
    """Config.hs parseSecret: returns a list of JWKs."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("keys"), list) and all(jwk_parses(k) for k in doc["keys"]):
        return [k for k in doc["keys"] if k.get("use") != "enc"], "jwks"
    if isinstance(doc, dict) and jwk_parses(doc):
        return ([doc] if doc.get("use") != "enc" else []), "jwk"
    secret = text.encode()
    if is_base64:
        import base64
        secret = base64.b64decode(text)
    if len(secret) < 32:
        raise SecretError("The JWT secret must be at least 32 characters long.")
    return [{"kty": "oct", "k": common.b64url(secret)}], "secret"


def jwt_error(handler, code, message, details=None):
    if code == "PGRST300":
        status, www = 500, None
    elif code == "PGRST302":
        status, www = 401, "Bearer"
    else:
        status, www = 401, f'Bearer error="invalid_token", error_description="{message}"'
    headers = [("Proxy-Status", f"PostgREST; error={code}")]
    if www:
        headers.append(("WWW-Authenticate", www))
    handler.extra["refused"] = f"{code} {message}" + (f" ({details})" if details else "")
    handler.reply(status, {"code": code, "details": details, "hint": None, "message": message},
                  headers=headers, content_type="application/json; charset=utf-8")


class RestHandler(Handler):
    keys = None  # None: PGRST_JWT_SECRET unset
    anon_role = None
    aud = None

    def authenticate(self):
        """Returns the role, or None after answering the JWT error."""
        value = self.lower_headers().get("authorization")
        token = None
        if value is not None:
            scheme, _, rest = value.partition(" ")
            if scheme.lower() == "bearer":
                token = rest.strip()
                if token == "":
                    jwt_error(self, "PGRST301", "Empty JWT is sent in Authorization header")
                    return None
        if token is None:
            if self.anon_role:
                return self.anon_role
            jwt_error(self, "PGRST302", "Anonymous access is disabled")
            return None
        if self.keys is None:
            jwt_error(self, "PGRST300", "Server lacks JWT secret")
            return None
        parts = token.split(".")
        if len(parts) != 3:
            jwt_error(self, "PGRST301", f"Expected 3 parts in JWT; got {len(parts)}")
            return None
        try:
            header, payload, signing_input, signature = common.split_token(token)
        except common.TokenFormatError:
            jwt_error(self, "PGRST301", "JWT cryptographic operation failed")
            return None
        alg = header.get("alg")
        if alg == "none":
            jwt_error(self, "PGRST301", "Wrong or unsupported encoding algorithm",
                      "JWT is unsecured but expected 'alg' was not 'none'")
            return None
        kid = header.get("kid")
        kty = KTY_FOR.get(str(alg)[:2])
        candidates = [k for k in self.keys
                      if (kid is None or k.get("kid") == kid)
                      and k.get("kty") == kty and k.get("alg", alg) == alg]
        if not candidates:
            jwt_error(self, "PGRST301", "No suitable key or wrong key type",
                      "No suitable key was found to decode the JWT")
            return None
        for jwk in candidates:
            key = common.b64url_decode(jwk["k"]) if kty == "oct" else common.key_from_jwk(jwk, alg)
            if common.verify_signature(alg, key, signing_input, signature):
                break
        else:
            jwt_error(self, "PGRST301", "No suitable key or wrong key type",
                      "None of the keys was able to decode the JWT")
            return None
        now = time.time()
        for claim in ("exp", "nbf", "iat"):
            if claim in payload and not isinstance(payload[claim], (int, float)):
                jwt_error(self, "PGRST303", f"The JWT '{claim}' claim must be a number")
                return None
        if "exp" in payload and now > payload["exp"] + SKEW:
            jwt_error(self, "PGRST303", "JWT expired")
            return None
        if "nbf" in payload and now < payload["nbf"] - SKEW:
            jwt_error(self, "PGRST303", "JWT not yet valid")
            return None
        if "iat" in payload and now < payload["iat"] - SKEW:
            jwt_error(self, "PGRST303", "JWT issued at future")
            return None
        if self.aud:
            aud = payload.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if aud is not None and self.aud not in auds:
                jwt_error(self, "PGRST303", "JWT not in audience")
                return None
        role = payload.get("role")
        if role is None:
            if self.anon_role:
                return self.anon_role
            jwt_error(self, "PGRST302", "Anonymous access is disabled")
            return None
        if role not in DB_ROLES:
            self.extra["refused"] = f"role {role} does not exist"
            self.reply(401, {"code": "22023", "details": None, "hint": None,
                             "message": f'role "{role}" does not exist'},
                       content_type="application/json; charset=utf-8")
            return None
        return role

    def route(self, method, path, query):
        role = self.authenticate()
        if role is None:
            return
        self.extra["role"] = role
        if path == "/" and method in ("GET", "HEAD"):
            doc = {"swagger": "2.0", "info": {"title": "standard public schema", "description": "",
                                              "version": "14.17 (stand-in)"},
                   "host": self.headers.get("host", ""), "basePath": "/", "schemes": ["http"],
                   "consumes": ["application/json"], "produces": ["application/json"],
                   "paths": {"/": {"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)"}}},
                   "definitions": {}}
            return self.reply(200, json.dumps(doc).encode(), content_type="application/openapi+json; charset=utf-8")
        if path == "/rpc/graphql":
            return self.reply(200, {"data": {"__typename": "Query"}}, content_type="application/json; charset=utf-8")
        if path.startswith("/rpc/"):
            fn = path[len("/rpc/"):]
            return self.reply(404, {"code": "PGRST202", "details": None, "hint": None,
                                    "message": f"Could not find the function public.{fn} without parameters in the schema cache"},
                              content_type="application/json; charset=utf-8")
        name = path.strip("/")
        self.reply(404, {"code": "PGRST205", "details": None, "hint": None,
                         "message": f"Could not find the table 'public.{name}' in the schema cache"},
                   content_type="application/json; charset=utf-8")


class AdminHandler(Handler):
    def route(self, method, path, query):
        if path in ("/ready", "/live"):
            return self.reply(200, b"")
        self.reply(404, b"")


def ready(env):
    """`postgrest --ready`: 0 when the admin server answers /ready with 200."""
    port = env.get("PGRST_ADMIN_SERVER_PORT")
    if not port:
        print("postgrest: the admin server is not configured (PGRST_ADMIN_SERVER_PORT)", file=sys.stderr)
        return 1
    host = env.get("PGRST_ADMIN_SERVER_HOST") or "localhost"
    return common.http_ok(f"http://{host}:{port}/ready", "postgrest: not ready")


def main(argv):
    env = os.environ
    if "--ready" in argv[1:]:
        return ready(env)
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ENV_USED)
    value = env.get("PGRST_JWT_SECRET")
    keys = None
    if value is not None:
        if value.startswith("@"):
            path = value[1:]
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                log(SERVICE, f"Could not read {path}: {e}")
                return 1
            rec.file(path, data, also="jwt_secret_file")
            text = data.decode("utf-8")
            value = text[:-1] if text.endswith("\n") else text
        try:
            keys, kind = parse_secret(value, common_bool(env.get("PGRST_JWT_SECRET_IS_BASE64")))
        except SecretError as e:
            log(SERVICE, str(e))
            return 1
        rec.note("jwt_secret_kind", kind)
        rec.note("kids", [k.get("kid") for k in keys])
        log(SERVICE, f"JWT secret read as {kind} with {len(keys)} usable key(s)")
    RestHandler.keys = keys
    RestHandler.anon_role = env.get("PGRST_DB_ANON_ROLE") or None
    RestHandler.aud = env.get("PGRST_JWT_AUD") or None
    admin = env.get("PGRST_ADMIN_SERVER_PORT")
    if admin:
        host = env.get("PGRST_ADMIN_SERVER_HOST") or "localhost"
        common.serve_in_thread(SERVICE + "-admin", int(admin), AdminHandler,
                               host="127.0.0.1" if host == "localhost" else host)
    common.serve(SERVICE, common.env_int("PGRST_SERVER_PORT", 3000), RestHandler, rec)
    return 0


def common_bool(value):
    return (value or "").strip().lower() in ("true", "1", "yes", "on")
