#!/usr/bin/env python3
"""Checks the compose wiring of compose-example/ (scenario 5 of tests/e2e/run).

usage: check_config.py override MERGED_CONFIG   (output of `compose config` on base + override)
       check_config.py dokploy COMPOSE_FILE
       check_config.py template TEMPLATE_TOML COMPOSE_FILE
"""
import re
import sys
import tomllib

import yaml

mode, path = sys.argv[1:3]
if mode == "template":
    # Every ${VAR} the Dokploy compose file uses without a default is set by the template's env.
    with open(path, "rb") as f:
        toml = tomllib.load(f)
    names = {line.split("=", 1)[0] for line in toml["config"]["env"] if "=" in line and not line.startswith("#")}
    with open(sys.argv[3], encoding="utf-8") as f:
        text = f.read().replace("$$", "")
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
    missing = sorted(used - names)
    if missing or not toml.get("config", {}).get("domains"):
        print(f"not set by template.toml: {missing}")
        sys.exit(1)
    print(f"template: {len(used)} variables, all set")
    sys.exit(0)
with open(path, encoding="utf-8") as f:
    doc = yaml.safe_load(f)
services = doc.get("services") or {}
problems = []

LOADED = {"realtime": ("realtime.env", "/usr/bin/tini -s -g -- /app/run.sh"),
          "storage": ("storage.env", "docker-entrypoint.sh"),
          "functions": ("functions.env", "edge-runtime"),
          "studio": ("studio.env", "docker-entrypoint.sh")}
COMMANDS = {"realtime": ["/app/bin/server"],
            "storage": ["node", "dist/start/server.js"],
            "functions": ["start", "--main-service", "/home/deno/functions/main"],
            "studio": ["node", "apps/studio/server.js"],
            "auth": ["auth", "--config", "/keys/auth.env"],
            "kong": ["kong", "docker-start"]}


def env(svc):
    e = services[svc].get("environment") or {}
    if isinstance(e, list):
        e = dict(item.split("=", 1) for item in e)
    return e


def keys_mount(svc):
    """The mount of the supakeys volume at /keys: (read_only or None if absent)."""
    for v in services[svc].get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) >= 2 and parts[1] == "/keys":
                return parts[0].endswith("supakeys"), len(parts) > 2 and "ro" in parts[2].split(",")
        elif v.get("target") == "/keys":
            return str(v.get("source", "")).endswith("supakeys"), bool(v.get("read_only"))
    return None


if "supakeys" not in services:
    problems.append("no supakeys service")
else:
    sk = services["supakeys"]
    if str(sk.get("restart", "no")) not in ("no", "False", "false"):
        problems.append(f"supakeys restart is {sk.get('restart')!r}, want \"no\"")
    if keys_mount("supakeys") != (True, False):
        problems.append("supakeys does not mount the supakeys volume read-write at /keys")
    for name in ("JWT_SECRET", "ANON_KEY", "SERVICE_ROLE_KEY", "DASHBOARD_USERNAME", "DASHBOARD_PASSWORD"):
        if name not in env("supakeys"):
            problems.append(f"supakeys gets no {name}")

for svc in ("auth", "rest", "realtime", "storage", "functions", "studio", "kong"):
    if svc not in services:
        problems.append(f"no {svc} service")
        continue
    s = services[svc]
    dep = (s.get("depends_on") or {})
    if not isinstance(dep, dict) or (dep.get("supakeys") or {}).get("condition") != "service_completed_successfully":
        problems.append(f"{svc} does not wait for supakeys to complete successfully")
    if keys_mount(svc) != (True, True):
        problems.append(f"{svc} does not mount the supakeys volume read-only at /keys")
    if svc in COMMANDS and s.get("command") != COMMANDS[svc]:
        problems.append(f"{svc} command is {s.get('command')!r}, want {COMMANDS[svc]!r}")
    if svc in LOADED:
        file, target = LOADED[svc]
        ep = s.get("entrypoint") or []
        script = ep[2] if len(ep) >= 3 else ""
        script = script.replace("$$", "$")
        if ep[:2] != ["/bin/sh", "-c"] or f". /keys/{file}" not in script \
                or f'exec {target} "$@"' not in script or "set -a" not in script:
            problems.append(f"{svc} entrypoint does not load /keys/{file} then exec {target}: {ep!r}")

if "rest" in services and env("rest").get("PGRST_JWT_SECRET") != "@/keys/jwt_jwks.json":
    problems.append("rest PGRST_JWT_SECRET is not @/keys/jwt_jwks.json")
if "kong" in services:
    if services["kong"].get("entrypoint") != ["/docker-entrypoint.sh"]:
        problems.append("kong does not use the stock /docker-entrypoint.sh")
    if env("kong").get("KONG_DECLARATIVE_CONFIG") != "/keys/kong.yml":
        problems.append("kong does not load /keys/kong.yml")
if "realtime" in services:
    test = services["realtime"].get("healthcheck", {}).get("test")
    text = " ".join(test) if isinstance(test, list) else str(test)
    if "/api/ping" not in text or "Host: realtime-dev" not in text or "Bearer" in text:
        problems.append(f"realtime healthcheck is not the token-free /api/ping form: {text}")

if mode == "dokploy":
    # Dokploy's template rules: no container_name, no explicit networks, no host ports.
    if "networks" in doc:
        problems.append("top-level networks")
    for name, s in services.items():
        for key in ("container_name", "networks", "ports"):
            if key in s:
                problems.append(f"{name} has {key}")
        for v in s.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else str(v.get("source", ""))
            if src.startswith("/") or (src.startswith(".") and not src.startswith("../files/")):
                problems.append(f"{name} mounts {src}: Dokploy files live in ../files/")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"{mode}: wiring ok")
