"""Stand-in for Realtime (image supabase/realtime): the self-host seed run by /app/run.sh
and the server /app/bin/server.

Restated from supabase/realtime (HEAD 833cf36c, compared with v2.78.15):
- run.sh + priv/repo/seeds.exs (the seed runs when SEED_SELF_HOST=true, then run.sh execs
  its arguments; a failing seed stops the container: `set -e`): deletes and re-creates the
  tenant SELF_HOST_TENANT_NAME (default realtime-dev) on every start, with jwt_secret =
  API_JWT_SECRET and jwt_jwks = Jason.decode!(API_JWT_JWKS) when set (a tenant needs one
  of them). The stand-in keeps the tenant in a file instead of the database.
- lib/realtime_web/plugs/assign_tenant.ex: the tenant is the first label of the Host
  header; unknown → 401 {"message":"Tenant not found in database"}.
- lib/realtime_web/channels/auth/jwt_verification.ex: asymmetric tokens need a kid that
  names a key of the same kty in the tenant's JWKS; HS tokens with a kid use the oct key of
  that kid, else (and kid-less HS tokens) the tenant's jwt_secret; exp must be in the
  future and iat a number when present.
- lib/realtime_web/plugs/auth_tenant.ex + ChannelsAuthorization.authorize_conn: REST
  broadcast takes `Authorization: Bearer` or the `apikey` header, and requires the `role`
  and `exp` claims; refused → 401 {"message":"Unauthorized"}.
- broadcast_controller.ex: accepted → 202 with an empty body; an empty `messages` list →
  422 {"errors":{"messages":["can't be blank"]}}.
- router.ex check_auth: /api/tenants/<t>/health accepts only `Bearer <HS token>` signed
  with API_JWT_SECRET (no JWKS); anything else → 403 with an empty body.
- ping_controller.ex: GET /api/ping needs only the tenant → {"message":"Success"}.
- user_socket.ex: the websocket takes the token from `x-api-key` or the `apikey` query
  parameter; refused → 401 {"error": "..."}. The stand-in does not speak websocket: an
  accepted token without an upgrade gets 400 (what Phoenix answers a plain GET).
"""

import json
import os
import sys
import time
from urllib.parse import parse_qs

from . import common
from .common import Handler, Recorder, log

SERVICE = "realtime"
ENV_USED = ("API_JWT_JWKS", "API_JWT_SECRET", "SEED_SELF_HOST", "SELF_HOST_TENANT_NAME",
            "METRICS_JWT_SECRET", "DB_ENC_KEY")
TENANTS = os.environ.get("STANDIN_REALTIME_TENANTS", "/tmp/realtime-tenants.json")
DEFAULT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


def seed(argv):
    """run.sh's seed step: (re)creates the self-host tenant."""
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ENV_USED, argv_file="run-sh-argv")
    if os.environ.get("SEED_SELF_HOST") != "true":
        return 0
    return seed_tenant()


def release_eval(argv):
    """/app/bin/realtime eval 'Realtime.Release.seeds(Realtime.Repo)' (Coolify's template runs
    it itself): lib/realtime/release.ex seeds/1 evaluates priv/repo/seeds.exs, whatever
    SEED_SELF_HOST says; any other expression is not restated."""
    if argv[1:] != ["eval", "Realtime.Release.seeds(Realtime.Repo)"]:
        log(SERVICE, f"realtime stand-in: unsupported release command {argv[1:]!r}")
        return 1
    return seed_tenant()


def seed_tenant():
    """priv/repo/seeds.exs: (re)creates the self-host tenant."""
    env = os.environ
    name = env.get("SELF_HOST_TENANT_NAME", "realtime-dev")
    # System.get_env(name, default): the default only when the variable is unset.
    tenant = {"external_id": name, "jwt_secret": env.get("API_JWT_SECRET", DEFAULT_SECRET)}
    raw = env.get("API_JWT_JWKS")
    if raw is not None:  # `if v, do: Jason.decode!(v)`: an empty string is decoded too
        try:
            jwks = json.loads(raw)
        except ValueError as e:
            log(SERVICE, f"** (Jason.DecodeError) unexpected byte in API_JWT_JWKS: {e}")
            return 1
        if not isinstance(jwks, dict):
            # The tenant's jwt_jwks column is a map: an array fails the changeset.
            log(SERVICE, "** (Ecto.InvalidChangesetError) jwt_jwks is invalid (expected a map)")
            return 1
        tenant["jwt_jwks"] = jwks
    if not tenant["jwt_secret"] and not tenant.get("jwt_jwks"):
        log(SERVICE, "** (Ecto.InvalidChangesetError) jwt_secret or jwt_jwks is required")
        return 1
    with open(TENANTS, "w", encoding="utf-8") as f:
        json.dump({name: tenant}, f)
    log(SERVICE, f"seeded tenant {name} ({len((tenant.get('jwt_jwks') or {}).get('keys') or [])} JWKS key(s))")
    return 0


class JwtError(Exception):
    pass


def verify(token, secret, jwks, require_claims):
    """jwt_verification.ex + authorize_conn. Returns the claims or raises JwtError."""
    try:
        header, payload, signing_input, signature = common.split_token(token)
    except common.TokenFormatError:
        raise JwtError("Failed to validate JWT signature") from None
    alg = str(header.get("alg"))
    kid = header.get("kid")
    keys = (jwks or {}).get("keys") if isinstance(jwks, dict) else None
    if alg.startswith(("RS", "ES", "PS", "Ed")):
        kty = common.jwk_kty_for_alg(alg)
        if not isinstance(kid, str) or keys is None:
            raise JwtError("Failed to generate JWT signer")
        match = [k for k in keys if k.get("kid") == kid and k.get("kty") == kty]
        if not match:
            raise JwtError(f'Failed to generate JWT signer for key ID (kid) "{kid}", check your JWT secret or JWKS configuration')
        key = common.key_from_jwk(match[0], alg)
    elif alg.startswith("HS"):
        key = None
        if isinstance(kid, str) and keys is not None:
            for k in keys:
                if k.get("kty") == "oct" and k.get("kid") == kid:
                    key = common.b64url_decode(k["k"])
                    break
        if key is None:
            key = (secret or "").encode()
    else:
        raise JwtError("Failed to generate JWT signer")
    if not common.verify_signature(alg, key, signing_input, signature):
        raise JwtError("Failed to validate JWT signature")
    now = time.time()
    if "exp" in payload:
        if not isinstance(payload["exp"], (int, float)):
            raise JwtError("Invalid exp claim")
        if payload["exp"] <= now:
            raise JwtError(f"Token has expired {int(now - payload['exp'])} seconds ago")
    if "iat" in payload and not isinstance(payload["iat"], (int, float)):
        raise JwtError("Invalid iat claim")
    if require_claims and not ("role" in payload and "exp" in payload):
        raise JwtError("Fields `role` and `exp` are required in JWT")
    return payload


class RealtimeHandler(Handler):
    api_secret = None

    def tenant(self):
        host = (self.headers.get("host") or "").split(":")[0]
        name = host.split(".")[0]
        try:
            with open(TENANTS, encoding="utf-8") as f:
                tenants = json.load(f)
        except (OSError, ValueError):
            tenants = {}
        return name, tenants.get(name)

    def route(self, method, path, query):
        if path == "/healthcheck":
            return self.reply(200, "ok")
        if path.startswith("/api/tenants/") and path.endswith("/health"):
            return self.management_health(path)
        if path.startswith("/api/tenants") or path == "/metrics":
            return self.reply(403, b"")
        name, tenant = self.tenant()
        self.extra["tenant"] = name
        if path.startswith("/socket/"):
            return self.socket(tenant, query)
        if tenant is None:
            return self.reply(401, {"message": "Tenant not found in database"})
        if path == "/api/ping" and method == "GET":
            return self.reply(200, {"message": "Success"})
        if path == "/api/broadcast" and method == "POST":
            return self.broadcast(tenant)
        self.reply(404, {"errors": {"detail": "Not Found"}})

    def broadcast(self, tenant):
        headers = self.lower_headers()
        token = common.bearer(headers) or headers.get("apikey")
        if not token:
            return self.reply(401, {"message": "Unauthorized"})
        try:
            claims = verify(token, tenant.get("jwt_secret"), tenant.get("jwt_jwks"), True)
        except JwtError as e:
            self.extra["refused"] = str(e)
            log(SERVICE, f"JwtSignerError / unauthorized: {e}")
            return self.reply(401, {"message": "Unauthorized"})
        self.extra["role"] = claims.get("role")
        try:
            body = self.json_body()
        except ValueError:
            body = {}
        messages = body.get("messages") if isinstance(body, dict) else None
        if not messages:
            return self.reply(422, {"errors": {"messages": ["can't be blank"]}})
        self.reply(202, b"")

    def socket(self, tenant, query):
        if tenant is None:
            return self.reply(401, {"error": "Tenant not found in database"})
        params = parse_qs(query)
        token = self.lower_headers().get("x-api-key") or (params.get("apikey") or [None])[0]
        if not token:
            return self.reply(401, {"error": "You must provide a valid JWT"})
        try:
            claims = verify(token, tenant.get("jwt_secret"), tenant.get("jwt_jwks"), True)
        except JwtError as e:
            self.extra["refused"] = str(e)
            return self.reply(401, {"error": str(e)})
        self.extra["role"] = claims.get("role")
        self.reply(400, b"")

    def management_health(self, path):
        # router.ex check_auth: exactly "Bearer <token>", HS only, API_JWT_SECRET.
        value = self.headers.get("authorization") or ""
        if not value.startswith("Bearer "):
            return self.reply(403, b"")
        try:
            claims = verify(value[len("Bearer "):], self.api_secret, None, False)
        except JwtError as e:
            self.extra["refused"] = str(e)
            return self.reply(403, b"")
        self.extra["role"] = claims.get("role")
        name = path[len("/api/tenants/"):-len("/health")]
        try:
            with open(TENANTS, encoding="utf-8") as f:
                known = name in json.load(f)
        except (OSError, ValueError):
            known = False
        if not known:
            return self.reply(404, "not found")
        self.reply(200, {"data": {"healthy": True, "db_connected": True, "replication_connected": True,
                                  "connected_cluster": 1, "region": "us-east-1", "node": "realtime@127.0.0.1"}})


def main(argv):
    rec = Recorder(SERVICE)
    # run.sh recorded its own argv (run-sh-argv); this is the server's.
    rec.start(argv[1:], ENV_USED)
    if not os.path.exists(TENANTS):
        log(SERVICE, "no tenant seeded (SEED_SELF_HOST is not true): every tenant request gets 401")
    RealtimeHandler.api_secret = os.environ.get("API_JWT_SECRET") or ""
    common.serve(SERVICE, common.env_int("PORT", 4000), RealtimeHandler, rec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
