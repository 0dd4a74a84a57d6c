#!/usr/bin/env python3
"""Checks what one stand-in service loaded against the keys volume's files.

usage: verify.py SNAPSHOT_DIR RESULTS_DIR SERVICE GATEWAY_KIND HS256
  SNAPSHOT_DIR: a copy of the keys volume; RESULTS_DIR: the stand-ins' /results;
  SERVICE: auth rest realtime storage functions studio api-gw kong;
  GATEWAY_KIND: envoy, kong or kong-era; HS256: accept or reject.
JWT_SECRET comes from the environment as E2E_JWT_SECRET. Prints one line; exits 1 when the service did not
load what supakeys wrote. The stand-ins record into RESULTS_DIR/<service>/ (see
tests/standins/standin/common.py): loaded.json with argv, uid, the variables each uses and
the sha256 of each file it read itself; for the real Envoy, tests/e2e/run writes
RESULTS_DIR/envoy/loaded.json from its process (program, argv, environment).
"""
import hashlib
import json
import os
import sys

import keysdir

snap, results, svc, kind, hs256 = sys.argv[1:6]
kind = "kong" if kind.startswith("kong") else kind  # kong-era: Kong, an older template
problems = []


def env_file(name):
    return keysdir.env_file(snap, name)


def sha(name):
    with open(os.path.join(snap, name), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


folder = {"api-gw": kind}.get(svc, svc)
try:
    with open(os.path.join(results, folder, "loaded.json"), encoding="utf-8") as f:
        loaded = json.load(f)
except (OSError, ValueError) as e:
    print(f"{svc}: nothing recorded in {folder}/loaded.json ({e.__class__.__name__}): it did not start")
    sys.exit(1)
env = loaded.get("env") or {}
files = loaded.get("files") or {}
state = json.load(open(os.path.join(snap, "state.json"), encoding="utf-8"))
secret = os.environ["E2E_JWT_SECRET"]
# The raw secret a service verifies kid-less HS256 tokens with: JWT_SECRET while HS256 is
# accepted (upstream's environment), the internal secret of state.json once it is rejected.
raw = secret if hs256 == "accept" else state["internal_jwt_secret"]


def equal(name, want, what="the file supakeys wrote"):
    got = env.get(name)
    if got is None:
        problems.append(f"{name} is unset")
    elif want is not None and got != want:
        problems.append(f"{name} differs from {what}")


def uid(want):
    if loaded.get("uid") != want:
        problems.append(f"ran as uid {loaded.get('uid')}, want {want}")


def read_file(path, name):
    if files.get(path) != sha(name):
        problems.append(f"did not read {path} as it is in the volume")


if svc == "auth":
    uid(1000)
    e = env_file("auth.env")
    for name in ("GOTRUE_JWT_KEYS", "GOTRUE_JWT_VALID_METHODS", "GOTRUE_JWT_VALIDMETHODS"):
        equal(name, e[name])
    equal("GOTRUE_JWT_SECRET", secret, "JWT_SECRET (GoTrue requires it)")
    if loaded.get("argv") != ["--config", "/keys/auth.env"]:
        problems.append(f"argv {loaded.get('argv')} is not --config /keys/auth.env")
elif svc == "rest":
    equal("PGRST_JWT_SECRET", "@/keys/jwt_jwks.json", "@/keys/jwt_jwks.json")
    read_file("/keys/jwt_jwks.json", "jwt_jwks.json")
elif svc == "realtime":
    e = env_file("realtime.env")
    equal("API_JWT_JWKS", e["API_JWT_JWKS"])
    equal("API_JWT_SECRET", raw, "the secret of the HS256 mode")
    # tini -s -g -- /app/run.sh /app/bin/server: run.sh records the command it runs (the
    # image's CMD, or the compose file's command given as E2E_REALTIME_COMMAND, one argument
    # a line).
    want = os.environ.get("E2E_REALTIME_COMMAND", "/app/bin/server\n")
    try:
        run_sh = open(os.path.join(results, folder, "run-sh-argv"), encoding="utf-8").read()
    except OSError:
        run_sh = None
    if run_sh != want:
        problems.append(f"run.sh got {run_sh!r}, not the command {want!r}")
elif svc == "storage":
    e = env_file("storage.env")
    for name in ("JWT_JWKS", "ANON_KEY", "SERVICE_KEY"):
        equal(name, e[name])
    equal("AUTH_JWT_SECRET", raw, "the secret of the HS256 mode")
elif svc == "functions":
    e = env_file("functions.env")
    for name in ("SUPABASE_JWKS", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY",
                 "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY"):
        equal(name, e[name])
    equal("JWT_SECRET", raw, "the secret of the HS256 mode")
    # Upstream's command, unchanged (the Kong-era one has no idle timeout flag).
    argv = loaded.get("argv") or []
    if argv[:1] != ["start"] or argv[-2:] != ["--main-service", "/home/deno/functions/main"]:
        problems.append(f"argv {argv} is not upstream's command")
elif svc == "studio":
    e = env_file("studio.env")
    for name in ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY"):
        equal(name, e[name])
    equal("AUTH_JWT_SECRET", secret, "JWT_SECRET (Studio signs its own tokens)")
elif svc in ("api-gw", "kong") and kind == "envoy":
    # The real Envoy (tests/e2e/run records its process 1): upstream's entrypoint exec'd
    # Envoy on upstream's bootstrap, with gateway.env's values in its environment.
    if [loaded.get("program"), *loaded.get("argv", [])] != ["envoy", "-c", "/etc/envoy/envoy.yaml"]:
        problems.append(f"process 1 is {loaded.get('program')} {loaded.get('argv')}, not envoy -c /etc/envoy/envoy.yaml")
    g = env_file("gateway.env")
    for name, value in g.items():
        equal(name, value)
    # Never the private key: the gateway's environment holds none of supabase.env's arrays.
    for name in ("JWT_KEYS", "GOTRUE_JWT_KEYS"):
        if env.get(name):
            problems.append(f"the gateway has {name}")
elif svc in ("api-gw", "kong") and kind == "kong":
    equal("KONG_DECLARATIVE_CONFIG", "/keys/kong.yml", "/keys/kong.yml")
    read_file("/keys/kong.yml", "kong.yml")
else:
    problems.append(f"unknown service {svc}")

# Every service started after supakeys wrote its files.
at_start = loaded.get("keys_at_start") or loaded.get("keys-at-start")
if at_start is not None and "state.json" not in at_start:
    problems.append("/keys had no state.json when it started")
for v in env.values():
    if isinstance(v, str) and '"d":' in v and svc not in ("auth",):
        problems.append("a private JWK reached this service")
        break

if problems:
    print(f"{svc}: " + "; ".join(problems))
    sys.exit(1)
print(f"{svc}: loaded its files from the volume")
