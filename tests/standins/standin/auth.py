"""Stand-in for GoTrue (supabase/auth v2.196, image supabase/gotrue, binary `auth`).

Restated from supabase/auth (HEAD bc32168e, read in this project's research):
- cmd/root_cmd.go + internal/conf/confload/loader.go: `--config FILE` (`-c`) loads a dotenv
  file whose values override the environment; `--config-dir DIR` (`-d`) loads its *.env
  files in sorted order, also overriding. A failure is fatal: "Failed to load configuration".
- internal/conf/jwk.go (JwtKeysDecoder.Decode/Validate, FindPublicKeyByKid) and
  internal/conf/configuration.go (ApplyDefaults, Validate): GOTRUE_JWT_KEYS is a JSON
  array of JWKs (an empty value is a JSON error), indexed by kid; an empty array means the
  secret is the only (HS256) key; otherwise exactly one key has "sign" in key_ops ("no
  signing key found" / "multiple signing keys detected…"); P-256 members are 32 bytes;
  the valid methods default to the algorithms of the keys.
- internal/api/jwks.go: GET /.well-known/jwks.json lists the public part of every non-oct key.
- internal/api/api.go + anonymous.go: POST /signup with no email/phone is an anonymous
  sign-in (422 anonymous_provider_disabled unless enabled; then 422 signup_disabled when
  signups are disabled).
- internal/api/auth.go parseJWTClaims: a token with a known kid uses that key, else an
  HS256 token uses GOTRUE_JWT_SECRET, else "unrecognized JWT kid"; the parser only accepts
  the valid methods; any failure is 403 bad_jwt.
Not restated: the database (users live in memory), email/phone/OAuth flows, refresh tokens.
"""

import json
import os
import sys
import time
import uuid

from . import common
from .common import Handler, Recorder, log

SERVICE = "auth"
ENV_USED = (
    "GOTRUE_JWT_KEYS", "GOTRUE_JWT_VALID_METHODS", "GOTRUE_JWT_VALIDMETHODS", "GOTRUE_JWT_SECRET",
    "GOTRUE_JWT_KEY_ID", "GOTRUE_JWT_EXP", "GOTRUE_JWT_ISSUER", "GOTRUE_JWT_AUD",
    "GOTRUE_JWT_ADMIN_ROLES", "GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "GOTRUE_DISABLE_SIGNUP",
    "API_EXTERNAL_URL",
)
# P-256 coordinates and private scalar are 32 bytes (jwx refuses other lengths).
EC_SIZES = {"P-256": 32, "P-384": 48, "P-521": 66}
RSA_PRIVATE = ("n", "e", "d", "p", "q", "dp", "dq", "qi")


class ConfigError(Exception):
    pass


def env_bool(value):
    # envconfig uses strconv.ParseBool.
    return (value or "").strip().lower() in ("1", "t", "true")


def decode_keys(text):
    """Restates JwtKeysDecoder.Decode + Validate: returns {kid: jwk} and the signing JWK."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"unexpected end of JSON input ({e})" if not text.strip() else f"invalid JSON: {e}")
    if not isinstance(data, list):
        raise ConfigError(f"json: cannot unmarshal {type(data).__name__} into Go value of type []json.RawMessage")
    keys = {}
    for jwk in data:
        if not isinstance(jwk, dict):
            raise ConfigError("failed to parse key: not a JSON object")
        kty = jwk.get("kty")
        if kty == "EC":
            size = EC_SIZES.get(jwk.get("crv"))
            if size is None:
                raise ConfigError(f"failed to parse key: unsupported curve {jwk.get('crv')!r}")
            for member in ("x", "y", "d"):
                if member == "d" and member not in jwk:
                    continue
                try:
                    raw = common.b64url_decode(jwk.get(member, ""))
                except ValueError:
                    raise ConfigError(f"failed to parse key: invalid {member}") from None
                if len(raw) != size:
                    raise ConfigError(
                        f"failed to validate key: invalid {member} length for {jwk.get('crv')} "
                        f"(got {len(raw)} bytes, want {size})")
        elif kty == "RSA":
            if "d" in jwk:
                missing = [m for m in RSA_PRIVATE if not jwk.get(m)]
                if missing:
                    raise ConfigError(f"failed to validate key: RSA private key lacks {', '.join(missing)}")
        elif kty == "oct":
            if not jwk.get("k"):
                raise ConfigError("failed to parse key: oct key without k")
        elif kty == "OKP":
            if jwk.get("crv") not in ("Ed25519", "X25519") or not jwk.get("x"):
                raise ConfigError("failed to parse key: invalid OKP key")
        else:
            raise ConfigError(f"failed to parse key: invalid key type {kty!r}")
        # Keys are indexed by kid and nothing requires one: a second key with the same (or
        # no) kid silently replaces the first, and a signing key without a kid signs tokens
        # GoTrue itself then refuses ("unrecognized JWT kid <nil>").
        keys[jwk.get("kid", "")] = jwk
    signing = [k for k in keys.values() if "sign" in (k.get("key_ops") or [])]
    # ApplyDefaults: no keys at all means the secret alone (legacy HS256); keys without a
    # signing key fail there (GetSigningJwk); then Validate allows only one.
    if keys and not signing:
        raise ConfigError("no signing key found")
    if len(signing) > 1:
        raise ConfigError("multiple signing keys detected, only 1 signing key is supported")
    return keys, (signing[0] if signing else None)


class Config:
    def __init__(self, env):
        self.secret = env.get("GOTRUE_JWT_SECRET")
        if self.secret is None:
            raise ConfigError("required key GOTRUE_JWT_SECRET missing value")
        self.key_id = env.get("GOTRUE_JWT_KEY_ID", "")
        self.keys = {}
        self.signing = None
        raw_keys = env.get("GOTRUE_JWT_KEYS")
        if raw_keys is not None:
            try:
                self.keys, self.signing = decode_keys(raw_keys)
            except ConfigError as e:
                if str(e).startswith(("no signing", "multiple signing")):
                    raise
                # envconfig quotes the whole value here; it holds private keys, so not us.
                raise ConfigError(
                    "envconfig.Process: assigning GOTRUE_JWT_KEYS to Keys: converting '<redacted>' "
                    f"to type conf.JwtKeysDecoder. details: {e}") from None
        methods = env.get("GOTRUE_JWT_VALID_METHODS")
        if methods is not None:
            self.valid_methods = [m.strip() for m in methods.split(",") if m.strip()]
        elif self.keys:
            # HEAD: key.PublicKey.Algorithm().String() for every key ("" when alg is absent).
            self.valid_methods = [k.get("alg", "") for k in self.keys.values()]
        else:
            self.valid_methods = ["HS256"]
        self.exp = int(env.get("GOTRUE_JWT_EXP") or 3600)
        self.issuer = env.get("GOTRUE_JWT_ISSUER") or env.get("API_EXTERNAL_URL") or ""
        self.aud = env.get("GOTRUE_JWT_AUD") or "authenticated"
        self.admin_roles = [r.strip() for r in (env.get("GOTRUE_JWT_ADMIN_ROLES") or "service_role,supabase_admin").split(",")]
        self.anonymous = env_bool(env.get("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED"))
        self.disable_signup = env_bool(env.get("GOTRUE_DISABLE_SIGNUP"))

    def public_jwks(self):
        """jwks.go: every key but oct ones, public part, use sig, key_ops [verify]."""
        out = []
        for jwk in self.keys.values():
            if jwk.get("kty") == "oct":
                continue
            pub = {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "key_ops", "use")}
            pub["use"] = "sig"
            pub["key_ops"] = ["verify"]
            out.append(pub)
        return {"keys": out}

    def sign(self, claims):
        if self.signing is None:
            headers = {"kid": self.key_id} if self.key_id else None
            return common.sign(claims, "HS256", self.secret.encode(), headers)
        jwk = self.signing
        alg = jwk.get("alg") or "HS256"
        headers = {"kid": jwk["kid"]} if jwk.get("kid") else None
        if jwk.get("kty") == "oct":
            return common.sign(claims, alg, common.b64url_decode(jwk["k"]), headers)
        return common.sign(claims, alg, common.private_key_from_jwk(jwk), headers)

    def verify(self, token):
        """parseJWTClaims: returns the claims or raises ValueError with golang-jwt's text."""
        try:
            header, payload, signing_input, signature = common.split_token(token)
        except common.TokenFormatError:
            raise ValueError("token is malformed: token contains an invalid number of segments"
                             if token.count(".") != 2 else "token is malformed: could not base64 decode")
        alg = header.get("alg")
        # golang-jwt checks the method against WithValidMethods before calling the key func.
        if alg not in self.valid_methods:
            raise ValueError(f"token signature is invalid: signing method {alg} is invalid")
        key = None
        kid = header.get("kid")
        if isinstance(kid, str):
            if kid in self.keys:
                jwk = self.keys[kid]
                key = common.b64url_decode(jwk["k"]) if jwk.get("kty") == "oct" else common.key_from_jwk(jwk, alg)
            elif kid == self.key_id:
                key = self.secret.encode()
        if key is None:
            if alg == "HS256":
                key = self.secret.encode()
            else:
                raise ValueError(
                    "token is unverifiable: error while executing keyfunc: "
                    f"unrecognized JWT kid {kid if kid is not None else '<nil>'} for algorithm {alg}")
        if not common.verify_signature(alg, key, signing_input, signature):
            reason = "crypto/ecdsa: verification error" if alg.startswith("ES") else (
                "crypto/rsa: verification error" if alg.startswith("RS") else "signature is invalid")
            raise ValueError(f"token signature is invalid: {reason}")
        now = time.time()
        exp = payload.get("exp")
        if isinstance(exp, (int, float)) and now > exp:
            raise ValueError("token has invalid claims: token is expired")
        nbf = payload.get("nbf")
        if isinstance(nbf, (int, float)) and now < nbf:
            raise ValueError("token has invalid claims: token is not valid yet")
        return payload


USERS = {}


def gotrue_error(handler, status, code, msg):
    handler.reply(status, {"code": status, "error_code": code, "msg": msg})


class AuthHandler(Handler):
    config = None

    def route(self, method, path, query):
        cfg = self.config
        if method == "GET" and path == "/health":
            return self.reply(200, {"version": "v2.196.0-standin", "name": "GoTrue",
                                    "description": "GoTrue is a user registration and authentication API"})
        if method == "GET" and path == "/.well-known/jwks.json":
            return self.reply(200, cfg.public_jwks(), headers=[("Cache-Control", "public, max-age=600")])
        if method == "GET" and path == "/settings":
            return self.reply(200, {"external": {"anonymous_users": cfg.anonymous, "email": True},
                                    "disable_signup": cfg.disable_signup})
        if method == "POST" and path == "/signup":
            return self.signup()
        if method == "GET" and path == "/user":
            claims = self.authenticate()
            if claims is None:
                return
            user = self.load_user(claims)
            if user is not None:
                self.reply(200, user)
            return
        if method == "GET" and path == "/admin/users":
            claims = self.authenticate()
            if claims is None:
                return
            if claims.get("role") not in cfg.admin_roles:
                return gotrue_error(self, 403, "not_admin", "User not allowed")
            return self.reply(200, {"users": list(USERS.values()), "aud": cfg.aud})
        gotrue_error(self, 404, "not_found", "Not Found")

    def authenticate(self):
        token = common.bearer(self.lower_headers())
        if not token:
            gotrue_error(self, 401, "no_authorization", "This endpoint requires a valid Bearer token")
            return None
        try:
            claims = self.config.verify(token)
        except ValueError as e:
            self.extra["refused"] = str(e)
            gotrue_error(self, 403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {e}")
            return None
        self.extra["role"] = claims.get("role")
        return claims

    def load_user(self, claims):
        sub = claims.get("sub")
        if not sub:
            gotrue_error(self, 403, "bad_jwt", "invalid claim: missing sub claim")
            return None
        try:
            uuid.UUID(str(sub))
        except ValueError:
            gotrue_error(self, 400, "bad_jwt", "invalid claim: sub claim must be a UUID")
            return None
        user = USERS.get(sub)
        if user is None:
            gotrue_error(self, 403, "user_not_found", "User from sub claim in JWT does not exist")
        return user

    def signup(self):
        cfg = self.config
        try:
            params = self.json_body()
        except ValueError:
            return gotrue_error(self, 400, "bad_json",
                                "Could not parse request body as JSON: unexpected end of JSON input")
        if not isinstance(params, dict):
            params = {}
        if params.get("email") or params.get("phone"):
            return gotrue_error(self, 500, "unexpected_failure",
                                "stand-in: only anonymous sign-ins are implemented")
        if not cfg.anonymous:
            return gotrue_error(self, 422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled")
        if cfg.disable_signup:
            return gotrue_error(self, 422, "signup_disabled", "Signups not allowed for this instance")
        now = int(time.time())
        user_id = str(uuid.uuid4())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        user = {"id": user_id, "aud": cfg.aud, "role": "authenticated", "email": "", "phone": "",
                "last_sign_in_at": stamp, "app_metadata": {}, "user_metadata": params.get("data") or {},
                "identities": [], "created_at": stamp, "updated_at": stamp, "is_anonymous": True}
        USERS[user_id] = user
        # internal/tokens/service.go AccessTokenClaims.
        claims = {"iss": cfg.issuer, "sub": user_id, "aud": cfg.aud, "exp": now + cfg.exp, "iat": now,
                  "email": "", "phone": "", "app_metadata": {}, "user_metadata": user["user_metadata"],
                  "role": "authenticated", "aal": "aal1",
                  "amr": [{"method": "anonymous", "timestamp": now}],
                  "session_id": str(uuid.uuid4()), "is_anonymous": True}
        token = cfg.sign(claims)
        self.extra["role"] = "authenticated"
        self.reply(200, {"access_token": token, "token_type": "bearer", "expires_in": cfg.exp,
                         "expires_at": now + cfg.exp, "refresh_token": uuid.uuid4().hex[:12], "user": user})


def load_environment(argv):
    """Restates cobra flags + confload: returns (subcommand, environment)."""
    env = dict(os.environ)
    config_file = config_dir = None
    sub = "serve"
    args = list(argv[1:])
    read = []
    while args:
        a = args.pop(0)
        if a in ("--config", "-c"):
            config_file = args.pop(0) if args else ""
        elif a.startswith("--config="):
            config_file = a.split("=", 1)[1]
        elif a in ("--config-dir", "-d"):
            config_dir = args.pop(0) if args else ""
        elif a.startswith("--config-dir="):
            config_dir = a.split("=", 1)[1]
        elif not a.startswith("-"):
            sub = a
    if config_file:
        with open(config_file, "rb") as f:  # must exist and be readable by this uid
            data = f.read()
        read.append((config_file, data))
        env.update(common.parse_dotenv(data.decode("utf-8")))
    if config_dir:
        for name in sorted(os.listdir(config_dir)):
            if name.endswith(".env"):
                path = os.path.join(config_dir, name)
                with open(path, "rb") as f:
                    data = f.read()
                read.append((path, data))
                env.update(common.parse_dotenv(data.decode("utf-8")))
    return sub, env, read


def main(argv):
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ())
    try:
        sub, env, read = load_environment(argv)
    except (OSError, ValueError) as e:
        log(SERVICE, f'level=fatal msg="Failed to load configuration: confload.Startup: {e}"')
        sys.exit(1)
    for path, data in read:
        rec.file(path, data)
    rec.env(ENV_USED, env)
    if sub in ("migrate", "version"):
        return 0
    try:
        config = Config(env)
    except ConfigError as e:
        log(SERVICE, f'level=fatal msg="Failed to load configuration: {e}"')
        sys.exit(1)
    rec.note("valid_methods", config.valid_methods)
    AuthHandler.config = config
    port = int(env.get("GOTRUE_API_PORT") or env.get("PORT") or 9999)
    common.serve(SERVICE, port, AuthHandler, rec, host=env.get("GOTRUE_API_HOST") or "0.0.0.0")
    return 0
