#!/usr/bin/env python3
"""Checks what one stand-in consumer recorded against the keys volume's files.

usage: verify.py SNAPSHOT_DIR RESULTS_DIR SERVICE
Prints one line; exits 1 when the consumer did not read what supakeys wrote.
JWT_SECRET comes from the environment (the raw secret the services must keep).
"""
import json
import os
import sys

snap, results, svc = sys.argv[1:4]
secret = os.environ["JWT_SECRET"]
problems = []


def env_file(name):
    """Parses supakeys' NAME='value' lines."""
    out = {}
    with open(os.path.join(snap, name), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            key, _, val = line.partition("=")
            if len(val) >= 2 and val[0] == val[-1] == "'":
                val = val[1:-1]
            out[key] = val
    return out


def seen(name):
    path = os.path.join(results, svc, name)
    if not os.path.exists(path):
        problems.append(f"{name} not recorded (unset or consumer did not run)")
        return None
    with open(path, encoding="utf-8") as f:
        return f.read()


def expect_equal(name, want, got=None):
    got = seen(name) if got is None else got
    if got is not None and got != want:
        problems.append(f"{name} differs from the file supakeys wrote")


def expect_uid(uid):
    got = (seen("uid") or "").strip()
    if got != str(uid):
        problems.append(f"ran as uid {got!r}, want {uid}")


def jwks_object(name, text, public_only=False):
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        problems.append(f"{name} is not JSON")
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list) or not doc["keys"]:
        problems.append(f"{name} is not a non-empty JWKS object")
        return
    for key in doc["keys"]:
        if public_only and (key.get("kty") == "oct" or "d" in key):
            problems.append(f"{name} holds private or symmetric material")
        if key.get("kty") in ("EC", "RSA") and not key.get("kid"):
            problems.append(f"{name} has an asymmetric key without kid")


files_at_start = set((seen("keys-at-start") or "").split())
for must in ("state.json", "auth.env", "jwt_jwks.json", "kong.yml"):
    if must not in files_at_start:
        problems.append(f"/keys lacked {must} when the consumer started")

if svc == "auth":
    env = env_file("auth.env")
    expect_uid(1000)
    expect_equal("GOTRUE_JWT_KEYS", env["GOTRUE_JWT_KEYS"])
    keys = json.loads(env["GOTRUE_JWT_KEYS"])
    signers = [k for k in keys if "sign" in (k.get("key_ops") or [])]
    if not isinstance(keys, list) or len(signers) != 1:
        problems.append("GOTRUE_JWT_KEYS is not an array with exactly one signing key")
    expect_equal("GOTRUE_JWT_VALID_METHODS", env["GOTRUE_JWT_VALID_METHODS"])
    expect_equal("GOTRUE_JWT_VALIDMETHODS", env["GOTRUE_JWT_VALIDMETHODS"])
    expect_equal("GOTRUE_JWT_SECRET", secret)
elif svc == "rest":
    expect_uid(1001)
    expect_equal("PGRST_JWT_SECRET", "@/keys/jwt_jwks.json")
    with open(os.path.join(snap, "jwt_jwks.json"), encoding="utf-8") as f:
        want = f.read()
    got = seen("jwt_secret_file")
    expect_equal("jwt_secret_file", want, got)
    if got is not None:
        # PostgREST strips one trailing newline, then parses the JWKS.
        jwks_object("jwt_jwks.json", got[:-1] if got.endswith("\n") else got)
    expect_equal("PGRST_APP_SETTINGS_JWT_SECRET", secret)
elif svc == "realtime":
    env = env_file("realtime.env")
    expect_uid(1002)
    expect_equal("API_JWT_JWKS", env["API_JWT_JWKS"])
    jwks_object("API_JWT_JWKS", env["API_JWT_JWKS"])
    expect_equal("API_JWT_SECRET", secret)
    expect_equal("run-sh-argv", "/app/bin/server\n")
elif svc == "storage":
    env = env_file("storage.env")
    expect_uid(1003)
    for name in ("JWT_JWKS", "ANON_KEY", "SERVICE_KEY"):
        expect_equal(name, env[name])
    jwks_object("JWT_JWKS", env["JWT_JWKS"])
    expect_equal("AUTH_JWT_SECRET", secret)
    expect_equal("node-argv", "dist/start/server.js\n")
elif svc == "functions":
    env = env_file("functions.env")
    expect_uid(1004)
    for name in ("SUPABASE_JWKS", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY"):
        expect_equal(name, env[name])
    jwks_object("SUPABASE_JWKS", env["SUPABASE_JWKS"], public_only=True)
    expect_equal("JWT_SECRET", secret)
    expect_equal("argv", "start\n--main-service\n/home/deno/functions/main\n")
elif svc == "studio":
    env = env_file("studio.env")
    expect_uid(1005)
    for name in ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY"):
        expect_equal(name, env[name])
    expect_equal("AUTH_JWT_SECRET", secret)
    expect_equal("node-argv", "apps/studio/server.js\n")
elif svc == "kong":
    expect_uid(1006)
    with open(os.path.join(snap, "kong.yml"), encoding="utf-8") as f:
        expect_equal("kong.yml", f.read())
    expect_equal("KONG_DECLARATIVE_CONFIG", "/keys/kong.yml")
else:
    problems.append(f"unknown service {svc}")

if problems:
    print(f"{svc}: " + "; ".join(problems))
    sys.exit(1)
print(f"{svc}: read its files from the volume")
