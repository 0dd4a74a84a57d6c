#!/usr/bin/env python3
"""Checks the compose wiring of compose-example/ as compose itself merged it.

usage: check_config.py layer MERGED BASE SETTINGS [kong]
           MERGED: `docker compose config` of upstream's file (+ the Kong layer) + the
           supakeys layer; BASE: upstream's file alone (merged the same way); SETTINGS: a
           file with one variable name per line that supakeys reads (from `supakeys --help`)
       check_config.py kong-era MERGED BASE SETTINGS
       check_config.py dokploy COMPOSE_FILE SETTINGS
       check_config.py template TEMPLATE_TOML COMPOSE_FILE
Prints one line per problem and exits 1 when there is any.
"""
import re
import sys
import tomllib

import yaml

# Settings the layer sets itself rather than passing from .env: the directory is the volume,
# the env file is compose's business, the kong template is upstream's mounted file (whose
# placeholders are all supakeys' own: no SUPAKEYS_KONG_ENV).
# SUPAKEYS_DOCTOR_ALLOW_PLAIN_HTTP is not passed on purpose: inside the compose network
# doctor's URL is a service name, and sending the admin keys in clear to another host is a
# choice made per run (`-e SUPAKEYS_DOCTOR_ALLOW_PLAIN_HTTP=true`), never from .env.
FIXED = {"SUPAKEYS_DIR", "SUPAKEYS_ENV_FILE", "SUPAKEYS_KONG_TEMPLATE", "SUPAKEYS_KONG_ENV",
         "SUPAKEYS_DOCTOR_ALLOW_PLAIN_HTTP"}
# Service -> (env file it loads, the image entrypoint it then runs, the image's CMD when
# setting `entrypoint` drops it, or None when upstream's compose gives the command).
LOADED = {
    "realtime": ("realtime.env", "/usr/bin/tini -s -g -- /app/run.sh", ["/app/bin/server"]),
    "storage": ("storage.env", "docker-entrypoint.sh", ["node", "dist/start/server.js"]),
    "functions": ("functions.env", "edge-runtime", None),
    "studio": ("studio.env", "docker-entrypoint.sh", ["node", "apps/studio/server.js"]),
}
CONSUMERS = ("auth", "rest", "realtime", "storage", "functions", "studio")

problems = []


def problem(text):
    problems.append(text)


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def env(s):
    e = s.get("environment") or {}
    if isinstance(e, list):
        e = dict(item.split("=", 1) for item in e)
    return e


def keys_mount(s):
    """(is the supakeys volume, read-only) of the mount at /keys, or None."""
    for v in s.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) >= 2 and parts[1] == "/keys":
                return parts[0].endswith("supakeys"), len(parts) > 2 and "ro" in parts[2].split(",")
        elif v.get("target") == "/keys":
            return str(v.get("source", "")).endswith("supakeys"), bool(v.get("read_only"))
    return None


def waits_for_supakeys(name, s, restart=True):
    dep = (s.get("depends_on") or {}).get("supakeys") or {}
    if dep.get("condition") != "service_completed_successfully":
        problem(f"{name} does not wait for supakeys to complete successfully")
    if restart and dep.get("restart") is not True:
        problem(f"{name} is not restarted when up recreates supakeys (depends_on restart: true)")


def check_job(services, settings, issuer_from, relabel=True):
    """The job's wiring; `relabel`: the template mount must carry SELinux's `z` (the layers)."""
    sk = services.get("supakeys")
    if sk is None:
        problem("no supakeys service")
        return
    if str(sk.get("restart", "no")) not in ("no", "False", "false"):
        problem(f"supakeys restart is {sk.get('restart')!r}, want \"no\"")
    if keys_mount(sk) != (True, False):
        problem("supakeys does not mount the supakeys volume read-write at /keys")
    e = env(sk)
    for name in sorted(settings - FIXED):
        if name not in e:
            problem(f"supakeys gets no {name} from .env")
    for name in ("JWT_SECRET", "ANON_KEY", "SERVICE_ROLE_KEY", "SUPABASE_PUBLISHABLE_KEY",
                 "SUPABASE_SECRET_KEY", "JWT_KEYS", "DASHBOARD_PASSWORD"):
        if name not in e:
            problem(f"supakeys gets no {name}")
    if issuer_from is not None and e.get("JWT_ISSUER") != issuer_from:
        problem(f"supakeys' JWT_ISSUER is {e.get('JWT_ISSUER')!r}, not API_EXTERNAL_URL ({issuer_from!r})")
    template = e.get("SUPAKEYS_KONG_TEMPLATE")
    mounted = [v for v in sk.get("volumes") or [] if isinstance(v, dict) and v.get("target") == template]
    if not template or not mounted or not mounted[0].get("read_only") \
            or not str(mounted[0].get("source", "")).endswith("volumes/api/kong.yml"):
        problem("supakeys does not render kong.yml from upstream's volumes/api/kong.yml, mounted read-only")
    elif relabel:
        # SELinux hosts need the relabel, and Compose v2 sends it only through the bind API
        # (create_host_path), not the Mount API (docker/compose pkg/compose/create.go).
        bind = mounted[0].get("bind") or {}
        if bind.get("selinux") != "z" or not bind.get("create_host_path"):
            problem(f"the kong template mount is not relabelled for SELinux through the bind API: bind {bind}")
    elif (mounted[0].get("bind") or {}).get("create_host_path"):
        problem("the kong template mount would create a directory when the file is missing")


def check_consumers(services, base):
    for name in CONSUMERS:
        s = services.get(name)
        if s is None:
            problem(f"no {name} service")
            continue
        if not s.get("image"):
            problem(f"{name} has no image")
        waits_for_supakeys(name, s)
        if keys_mount(s) != (True, True):
            problem(f"{name} does not mount the supakeys volume read-only at /keys")
        if name in LOADED:
            file, target, command = LOADED[name]
            ep = s.get("entrypoint") or []
            script = (ep[2] if len(ep) >= 3 else "").replace("$$", "$")
            if ep[:2] != ["/bin/sh", "-c"] or f". /keys/{file}" not in script \
                    or f'exec {target} "$@"' not in script or "set -a" not in script:
                problem(f"{name} entrypoint does not load /keys/{file} then exec {target}: {ep!r}")
            want = command if command is not None else base[name].get("command")
            if s.get("command") != want:
                problem(f"{name} command is {s.get('command')!r}, want {want!r} (upstream's)")
    auth = services.get("auth", {})
    if auth.get("command") != ["auth", "--config", "/keys/auth.env"]:
        problem(f"auth command is {auth.get('command')!r}, want auth --config /keys/auth.env")
    if env(services.get("rest", {})).get("PGRST_JWT_SECRET") != "@/keys/jwt_jwks.json":
        problem("rest PGRST_JWT_SECRET is not @/keys/jwt_jwks.json")
    for name in ("rest",):
        if services.get(name, {}).get("healthcheck") != base[name].get("healthcheck"):
            problem(f"{name} healthcheck differs from upstream's")
    test = (services.get("realtime", {}).get("healthcheck") or {}).get("test")
    text = " ".join(test) if isinstance(test, list) else str(test)
    if "/api/ping" not in text or "Host: realtime-dev" not in text or "Bearer" in text:
        problem(f"realtime healthcheck is not the token-free /api/ping form: {text}")
    # Every service of the merged project has an image: the layer adds none without one.
    for name, s in services.items():
        if not s.get("image") and not s.get("build"):
            problem(f"service {name} has neither an image nor a build context")


def check_gateway(services, kong):
    gw = services.get("api-gw")
    if gw is None:
        problem("no api-gw service")
        return
    waits_for_supakeys("api-gw", gw)
    if keys_mount(gw) != (True, True):
        problem("api-gw does not mount the supakeys volume read-only at /keys")
    ep = gw.get("entrypoint") or []
    script = (ep[2] if len(ep) >= 3 else "").replace("$$", "$")
    if ep[:2] != ["/bin/sh", "-c"] or ". /keys/gateway.env" not in script \
            or 'exec /bin/sh /docker-entrypoint.sh "$@"' not in script:
        problem(f"api-gw does not load /keys/gateway.env before upstream's Envoy entrypoint: {ep!r}")
    if "KONG_DECLARATIVE_CONFIG=/keys/kong.yml" not in script or "kong docker-start" not in script:
        problem("api-gw does not start Kong on /keys/kong.yml when the image is Kong")
    if kong and "kong" not in str(gw.get("image")):
        problem(f"api-gw image is {gw.get('image')!r} although the Kong layer is loaded")
    targets = [v.get("target") if isinstance(v, dict) else v.split(":")[1] for v in gw.get("volumes") or []]
    if not kong and "/docker-entrypoint.sh" not in targets:
        problem("api-gw lost upstream's Envoy entrypoint mount")


class ComposeLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads compose's merge tags (`!override`, `!reset`) as
    the plain value they carry."""


for _tag in ("!override", "!reset"):
    ComposeLoader.add_constructor(
        _tag,
        lambda loader, node: loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
        else loader.construct_scalar(node))


def check_raw_layer(path):
    """Facts about the layer file itself, which `config` does not show."""
    text = open(path, encoding="utf-8").read()
    if not re.search(r"image: \$\{SUPAKEYS_IMAGE:-ghcr\.io/supakeys/supakeys:[0-9]", text):
        problem("the supakeys image does not default to ghcr.io/supakeys/supakeys (SUPAKEYS_IMAGE overrides)")
    doc = yaml.load(text, Loader=ComposeLoader)
    for name, s in (doc.get("services") or {}).items():
        if name != "supakeys" and "image" in s:
            problem(f"the layer sets an image for upstream's {name}")


def settings_of(path):
    """The settings a compose layer must pass: every one `--help` lists but the Kubernetes
    mode's (SUPAKEYS_STORE, SUPAKEYS_KUBERNETES_*): a compose project keeps its keys in the
    volume, the directory store."""
    with open(path, encoding="utf-8") as f:
        names = {line.strip() for line in f if line.strip()}
    return {n for n in names if n != "SUPAKEYS_STORE" and not n.startswith("SUPAKEYS_KUBERNETES_")}


mode = sys.argv[1]
if mode in ("layer", "kong-era"):
    merged, base = load(sys.argv[2])["services"], load(sys.argv[3])["services"]
    settings = settings_of(sys.argv[4])
    if mode == "layer":
        kong = len(sys.argv) > 5 and sys.argv[5] == "kong"
        issuer = env(base.get("auth", {})).get("API_EXTERNAL_URL")
        check_job(merged, settings, issuer)
        check_consumers(merged, base)
        check_gateway(merged, kong)
    else:
        check_job(merged, settings, None)
        check_consumers(merged, base)
        k = merged.get("kong", {})
        waits_for_supakeys("kong", k)
        if keys_mount(k) != (True, True):
            problem("kong does not mount the supakeys volume read-only at /keys")
        script = " ".join(k.get("entrypoint") or []).replace("$$", "$")
        if "KONG_DECLARATIVE_CONFIG=/keys/kong.yml" not in script or "kong docker-start" not in script:
            problem("kong does not start on /keys/kong.yml with the stock entrypoint")
elif mode == "dokploy":
    doc = load(sys.argv[2])
    services = doc.get("services") or {}
    check_job(services, settings_of(sys.argv[3]), None, relabel=False)
    # Dokploy's template rules: no container_name, no explicit networks, no host ports.
    if "networks" in doc:
        problem("top-level networks")
    for name, s in services.items():
        for key in ("container_name", "networks", "ports"):
            if key in s:
                problem(f"{name} has {key}")
        for v in s.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else str(v.get("source", ""))
            if src.startswith("/") or (src.startswith(".") and not src.startswith("../files/")):
                problem(f"{name} mounts {src}: Dokploy files live in ../files/")
    for name in CONSUMERS:
        if name in services:
            waits_for_supakeys(name, services[name], restart=False)
            if keys_mount(services[name]) != (True, True):
                problem(f"{name} does not mount the supakeys volume read-only at /keys")
elif mode == "template":
    # Every ${VAR} the Dokploy compose file uses without a default is set by the template's env.
    with open(sys.argv[2], "rb") as f:
        toml = tomllib.load(f)
    names = {line.split("=", 1)[0] for line in toml["config"]["env"] if "=" in line and not line.startswith("#")}
    with open(sys.argv[3], encoding="utf-8") as f:
        text = f.read().replace("$$", "")
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
    missing = sorted(used - names)
    if missing:
        problem(f"not set by template.toml: {missing}")
    if not toml.get("config", {}).get("domains"):
        problem("template.toml has no [[config.domains]]")
elif mode == "raw":
    check_raw_layer(sys.argv[2])
else:
    sys.exit(f"unknown mode {mode}")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"{mode}: wiring ok")
