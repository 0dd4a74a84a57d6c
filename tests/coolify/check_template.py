#!/usr/bin/env python3
"""Checks compose-example/coolify/supabase.yaml as a Coolify template, without Docker.

usage: check_template.py TEMPLATE ORIGINAL SETTINGS WORKDIR
  TEMPLATE: compose-example/coolify/supabase.yaml; ORIGINAL: Coolify's Supabase template (the
  stand-in tests/coolify/coolify-template.yaml, or Coolify's own file); SETTINGS: the
  variables supakeys reads, one a line (from `supakeys --help`); WORKDIR: a scratch folder.

Each check restates a rule of Coolify (coolify.py names the source) or of the template, and
prints `ok - ...` or `FAIL - ...` with the reason; the last line is "N passed, M failed".
"""
import json
import os
import re
import shutil
import sys

import jwt
import yaml

import coolify

TEMPLATE, ORIGINAL, SETTINGS, WORK = sys.argv[1:5]
passed = failed = 0


def check(name, problems):
    global passed, failed
    problems = [p for p in problems if p]
    if problems:
        failed += 1
        print(f"FAIL - {name}")
        for p in problems:
            print(f"    {p}")
    else:
        passed += 1
        print(f"ok - {name}")


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


ours = load(TEMPLATE)["services"]
orig = load(ORIGINAL)["services"]
settings = {line.strip() for line in open(SETTINGS, encoding="utf-8") if line.strip()}


def env(svc):
    return coolify.key_values(svc.get("environment"))


def targets(svc):
    out = {}
    for v in svc.get("volumes") or []:
        if isinstance(v, str):
            source, target, mode = coolify.volume_string(v)
            out[target] = {"source": source, "mode": mode, "long": False}
        else:
            out[v["target"]] = dict(v, long=True)
    return out


# Services that verify a JWT and the file each reads: (env file or None, the image's
# entrypoint it then runs, or None when the service needs no shell).
VERIFIERS = {
    "supabase-auth": (None, None),
    "supabase-rest": (None, None),
    "realtime-dev": ("realtime.env", "/usr/bin/tini -s -g -- /app/run.sh"),
    "supabase-storage": ("storage.env", "docker-entrypoint.sh"),
    "supabase-edge-functions": ("functions.env", "edge-runtime"),
    "supabase-studio": ("studio.env", "docker-entrypoint.sh"),
    "supabase-kong": (None, None),
}
# Setting `entrypoint` drops the image's CMD: where Coolify's template gives no command, the
# wrapped service repeats the image's (supabase/studio, supabase/storage-api).
IMAGE_CMD = {
    "supabase-studio": ["node", "apps/studio/server.js"],
    "supabase-storage": ["node", "dist/start/server.js"],
}
# What supakeys changes in Coolify's services, and nothing else: variables that moved to the
# volume's files (or to the job), and the ones whose value now names a file there.
REMOVED_ENV = {
    "supabase-kong": {"JWT_SECRET", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "SUPABASE_PUBLISHABLE_KEY",
                      "SUPABASE_SECRET_KEY", "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC",
                      "DASHBOARD_USERNAME", "DASHBOARD_PASSWORD", "KONG_STORAGE_CONNECT_TIMEOUT",
                      "KONG_STORAGE_WRITE_TIMEOUT", "KONG_STORAGE_READ_TIMEOUT",
                      "KONG_STORAGE_REQUEST_BUFFERING", "KONG_STORAGE_RESPONSE_BUFFERING"},
    "supabase-studio": {"SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "NEXT_PUBLIC_SUPABASE_ANON_KEY"},
    "supabase-storage": {"ANON_KEY", "SERVICE_KEY"},
    "supabase-edge-functions": {"SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY"},
}
CHANGED_ENV = {
    "supabase-kong": {"KONG_DECLARATIVE_CONFIG": "/keys/kong.yml"},
    "supabase-rest": {"PGRST_JWT_SECRET": "@/keys/jwt_jwks.json"},
}
# Settings the template fixes itself: the volume, no env file, the kong template and the
# Kong variables it names, the dashboard user (Coolify's magic variable); and the issuer,
# which no placeholder of Coolify's kong.yml uses. Doctor's plain-HTTP opt-in is asked for
# per run, never kept in the environment (as in the compose layers).
FIXED = {"SUPAKEYS_DIR", "SUPAKEYS_ENV_FILE", "SUPAKEYS_KONG_TEMPLATE", "SUPAKEYS_KONG_ENV",
         "DASHBOARD_USERNAME", "JWT_ISSUER", "SUPAKEYS_DOCTOR_ALLOW_PLAIN_HTTP"}
# The Kubernetes mode's settings: Coolify runs the directory store (the volume).
settings = {n for n in settings if n != "SUPAKEYS_STORE" and not n.startswith("SUPAKEYS_KUBERNETES_")}

# ---------------------------------------------------------------- the template's format

text = open(TEMPLATE, encoding="utf-8").read()
# app/Console/Commands/Generate/Services.php processFile: `# key: value` lines.
header = {}
for line in text.splitlines():
    m = re.match(r"^#(?P<key>.*?):(?P<value>.*)$", line)
    if m:
        header.setdefault(m.group("key").strip(), m.group("value").strip())
check("the header comments Coolify's template list reads (documentation, slogan, category, tags, "
      "minversion, logo, port 8000) are those of Coolify's template", [
          f"no '# {k}:'" for k in ("documentation", "slogan", "category", "tags", "minversion", "logo", "port")
          if not header.get(k)] + [f"port is {header.get('port')!r}" for _ in [0] if header.get("port") != "8000"])
check("every service of Coolify's template is kept, plus the supakeys job", [
    f"{name} is missing" for name in orig if name not in ours] + [
    f"unexpected service {name}" for name in ours if name not in orig and name != "supakeys"])

# ---------------------------------------------------------------- the job

sk = ours.get("supakeys") or {}
e = env(sk)
problems = []
if str(sk.get("restart")) != "no":
    problems.append(f"restart is {sk.get('restart')!r}")
if sk.get("exclude_from_hc") is not True:
    problems.append("exclude_from_hc is not true (Coolify would count the exited job in the service's health)")
if sk.get("depends_on"):
    problems.append("the job waits for something")
if not re.fullmatch(r"ghcr\.io/supakeys/supakeys:\d+\.\d+", str(sk.get("image"))):
    problems.append(f"image {sk.get('image')!r} is not ghcr.io/supakeys/supakeys:X.Y")
vols = targets(sk)
if (vols.get("/keys") or {}).get("source") != "supakeys" or (vols.get("/keys") or {}).get("mode"):
    problems.append("the supakeys volume is not mounted read-write at /keys")
template_dir = os.path.dirname(e.get("SUPAKEYS_KONG_TEMPLATE", ""))
api = vols.get(template_dir) or {}
if api.get("source") != "./volumes/api" or api.get("mode") != "ro":
    problems.append(f"the kong template's folder {template_dir} is not ./volumes/api mounted read-only")
check("supakeys: a one-shot job (restart \"no\", exclude_from_hc), first, on the keys volume", problems)

wanted = {"JWT_SECRET": "${SERVICE_PASSWORD_JWT}", "ANON_KEY": "${SERVICE_SUPABASEANON_KEY}",
          "SERVICE_ROLE_KEY": "${SERVICE_SUPABASESERVICE_KEY}", "DASHBOARD_USERNAME": "${SERVICE_USER_ADMIN}",
          "DASHBOARD_PASSWORD": "${SERVICE_PASSWORD_ADMIN}"}
kong_orig = env(orig["supabase-kong"])
check("supakeys gets the secret, the legacy keys and the dashboard credentials from Coolify's magic "
      "variables, the ones Coolify's Kong had", [
          f"{k}={e.get(k)!r}, want {v}" for k, v in wanted.items() if e.get(k) != v] + [
          f"Coolify's Kong had DASHBOARD_USERNAME={kong_orig.get('DASHBOARD_USERNAME')!r}"
          for _ in [0] if kong_orig.get("DASHBOARD_USERNAME") != wanted["DASHBOARD_USERNAME"]])
check("every SUPAKEYS_* setting (and the keys to adopt) can be set in Coolify's environment editor: "
      "${NAME:-default} lines", [
          f"{name} is not passed as ${{{name}:-...}}" for name in sorted(
              (settings - FIXED) | {"SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "JWT_KEYS"})
          if not re.fullmatch(r"\$\{" + name + r":-[^}]*\}", e.get(name, ""))])


# Magic variables are generated in the order services and their lines name them; the two
# Supabase tokens need SERVICE_PASSWORD_JWT to exist first (shared.php generateEnvValue).
def first_reference(services, name):
    for i, (svc_name, svc) in enumerate(services.items()):
        for j, value in enumerate(env(svc).values()):
            if f"${{{name}}}" in value:
                return (i, j)
    return None


jwt_at = first_reference(ours, "SERVICE_PASSWORD_JWT")
check("SERVICE_PASSWORD_JWT is named before either Supabase token, so Coolify can sign them", [
    f"{token} is named first" for token in ("SERVICE_SUPABASEANON_KEY", "SERVICE_SUPABASESERVICE_KEY")
    if jwt_at is None or (first_reference(ours, token) or (99, 99)) < jwt_at])

# The Kong variables the template takes from Kong's environment.
kong_text = ""
for target, v in targets(orig["supabase-kong"]).items():
    if target == "/home/kong/temp.yml":
        kong_text = v.get("content") or ""
placeholders = sorted(set(re.findall(r"\$(KONG_[A-Z0-9_]+)", kong_text)))
listed = sorted(e.get("SUPAKEYS_KONG_ENV", "").split(","))
check("SUPAKEYS_KONG_ENV names every $KONG_* placeholder of Coolify's kong.yml, each passed with "
      "the default Coolify's Kong had", [
          f"SUPAKEYS_KONG_ENV is {listed}, the kong.yml uses {placeholders}" for _ in [0] if listed != placeholders] + [
          f"{n}={e.get(n)!r}, Coolify's Kong had {kong_orig.get(n)!r}" for n in placeholders if e.get(n) != kong_orig.get(n)])

# ---------------------------------------------------------------- the services


def script(svc):
    ep = svc.get("entrypoint") or []
    return (ep[2] if len(ep) >= 3 and ep[:2] == ["/bin/sh", "-c"] else "").replace("$$", "$")


problems = []
for name, (file, image_entrypoint) in VERIFIERS.items():
    svc = ours[name]
    dep = (svc.get("depends_on") or {}).get("supakeys") or {}
    if dep.get("condition") != "service_completed_successfully" or dep.get("restart") is not True:
        problems.append(f"{name} does not wait for supakeys (completed successfully, restart: true)")
    keys = targets(svc).get("/keys") or {}
    if keys.get("source") != "supakeys" or keys.get("mode") != "ro":
        problems.append(f"{name} does not mount the supakeys volume read-only at /keys")
    if file:
        s = script(svc)
        if f". /keys/{file}" not in s or "set -a" not in s or f'exec {image_entrypoint} "$@"' not in s:
            problems.append(f"{name} does not load /keys/{file} then exec {image_entrypoint}: {svc.get('entrypoint')!r}")
if ours["supabase-auth"].get("command") != ["auth", "--config", "/keys/auth.env"]:
    problems.append(f"auth command {ours['supabase-auth'].get('command')!r}")
if "entrypoint" in ours["supabase-kong"]:
    problems.append("supabase-kong still replaces the image's entrypoint")
if 'NEXT_PUBLIC_SUPABASE_ANON_KEY="$SUPABASE_ANON_KEY"' not in script(ours["supabase-studio"]):
    problems.append("studio's browser anon key does not follow studio.env")
for name, svc in ours.items():
    for k in env(svc):
        if name != "supakeys" and k in ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "ANON_KEY", "SERVICE_KEY",
                                         "SUPABASE_SERVICE_ROLE_KEY", "NEXT_PUBLIC_SUPABASE_ANON_KEY"):
            problems.append(f"{name} still sets {k} itself (it comes from the volume)")
hc = (ours["realtime-dev"].get("healthcheck") or {}).get("test") or []
if "http://127.0.0.1:4000/api/ping" not in hc or "Host: realtime-dev" not in hc or any("Bearer" in t for t in hc):
    problems.append(f"realtime-dev's healthcheck is not the token-free /api/ping: {hc}")
check("every verifier (auth, rest, realtime, storage, functions, studio, Kong) waits for the job and "
      "reads its file from the volume; no key is left in a service's environment", problems)

problems = []
for name, o in orig.items():
    n = ours.get(name) or {}
    for key in ("image", "container_name", "restart", "exclude_from_hc"):
        if n.get(key) != o.get(key):
            problems.append(f"{name}: {key} {n.get(key)!r}, Coolify's {o.get(key)!r}")
    if name != "realtime-dev" and n.get("healthcheck") != o.get("healthcheck"):
        problems.append(f"{name}: the healthcheck differs from Coolify's")
    if name not in ("supabase-auth",) and n.get("command") != o.get("command", IMAGE_CMD.get(name)):
        problems.append(f"{name}: the command differs from Coolify's (or the image's)")
    if name not in VERIFIERS and n.get("entrypoint") != o.get("entrypoint"):
        problems.append(f"{name}: the entrypoint differs from Coolify's")
    deps = dict(n.get("depends_on") or {})
    deps.pop("supakeys", None) if name in VERIFIERS else None
    if deps != (o.get("depends_on") or {}):
        problems.append(f"{name}: depends_on {deps}, Coolify's {o.get('depends_on')}")
    oe, ne = env(o), env(n)
    gone = set(oe) - set(ne) - REMOVED_ENV.get(name, set())
    added = set(ne) - set(oe)
    changed = {k for k in set(oe) & set(ne) if oe[k] != ne[k]} - set(CHANGED_ENV.get(name, {}))
    for k in sorted(gone):
        problems.append(f"{name}: {k} was dropped")
    for k in sorted(added):
        problems.append(f"{name}: {k} was added")
    for k in sorted(changed):
        problems.append(f"{name}: {k}={ne[k]!r}, Coolify's {oe[k]!r}")
    for k, want in CHANGED_ENV.get(name, {}).items():
        if ne.get(k) != want:
            problems.append(f"{name}: {k}={ne.get(k)!r}, want {want!r}")
    ot, nt = targets(o), targets(n)
    for target, v in ot.items():
        if target == "/home/kong/kong-entrypoint.sh":
            if target in nt:
                problems.append("supabase-kong still mounts kong-entrypoint.sh")
            continue
        if target not in nt or nt[target].get("source") != v.get("source"):
            problems.append(f"{name}: {target} is not mounted from {v.get('source')}")
        elif nt[target].get("content"):
            problems.append(f"{name}: {target} repeats Coolify's content (Coolify keeps its own)")
        elif v.get("long") != nt[target].get("long") or v.get("read_only") != nt[target].get("read_only"):
            problems.append(f"{name}: {target} is not mounted in the same form")
    for target in set(nt) - set(ot) - {"/keys"}:
        problems.append(f"{name}: {target} is a new mount")
check("every other part of Coolify's services is as Coolify's template has it (images, healthchecks "
      "but realtime-dev's, commands but auth's, dependencies, variables, mounts)", problems)

# ---------------------------------------------------------------- what Coolify makes of it


def fresh(name):
    path = os.path.join(WORK, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


w = fresh("new")
svc = coolify.Service.create("u" * 24, "203.0.113.7", w + "/w", open(ORIGINAL, encoding="utf-8").read())
svc.parse()
before = {v["key"]: v["value"] for v in svc.data["vars"]}
svc.update_or_create("KONG_STORAGE_READ_TIMEOUT", "7200")
svc.data["compose_raw"] = open(TEMPLATE, encoding="utf-8").read()
svc.parse()
after = {v["key"]: v["value"] for v in svc.data["vars"]}
check("Edit Compose File on a service made from Coolify's template keeps every variable Coolify made "
      "(secrets and legacy keys included) and a changed KONG_STORAGE_* value", [
          f"{k} changed" for k, v in before.items() if k != "KONG_STORAGE_READ_TIMEOUT" and after.get(k) != v] + [
          "KONG_STORAGE_READ_TIMEOUT lost its value" for _ in [0] if after.get("KONG_STORAGE_READ_TIMEOUT") != "7200"])
check("the SUPAKEYS_* settings appear in the environment editor, empty (the default)", [
    f"{n} is {after.get(n, 'missing')!r}" for n in sorted(settings - FIXED)
    if n.startswith("SUPAKEYS_") and n != "SUPAKEYS_DOCTOR_URL" and after.get(n, "missing") != ""])

problems = []
for name, n in ours.items():
    for target, v in targets(n).items():
        if v.get("long") and v.get("type") == "bind":
            row = svc.storage(name, target)
            path = svc.host_path(row["fs_path"]) if row else ""
            if row is None or row["is_directory"] or not os.path.isfile(path):
                problems.append(f"{name}: {target} is not the file Coolify's template wrote")
template_path = os.path.join(w, "w/volumes/api/kong.yml")
if not os.path.isfile(template_path) or "$SUPABASE_ANON_KEY" not in open(template_path).read():
    problems.append("./volumes/api/kong.yml is not Coolify's kong.yml template")
check("every file mount without content gets the file Coolify's template wrote (the kong.yml template "
      "supakeys renders included), none becomes a directory", problems)

out = yaml.safe_load(svc.data["compose"])["services"]
problems = []
for name, o in out.items():
    if o.get("container_name") != f"{name}-{svc.uuid}":
        problems.append(f"{name}: container_name {o.get('container_name')}")
    if list(o.get("networks") or {}) != [svc.uuid]:
        problems.append(f"{name}: networks {o.get('networks')}")
    if o.get("env_file") != [".env"]:
        problems.append(f"{name}: env_file {o.get('env_file')}")
    if "exclude_from_hc" in o or any(isinstance(v, dict) and "content" in v for v in o.get("volumes") or []):
        problems.append(f"{name}: Coolify's own keys reach docker compose")
if out["supakeys"]["restart"] != "no" or out["supabase-auth"]["restart"] != "unless-stopped":
    problems.append("restart policies: the job keeps \"no\", the others get unless-stopped")
if f"{svc.uuid}_supakeys:/keys" not in out["supakeys"]["volumes"]:
    problems.append(f"the keys volume is not renamed {svc.uuid}_supakeys: {out['supakeys']['volumes']}")
excluded = sorted(k for k, a in svc.data["apps"].items() if a["exclude_from_status"])
if excluded != ["minio-createbucket", "supabase-rest", "supakeys"]:
    problems.append(f"left out of the service's health: {excluded}")
if "content:" in svc.data["compose_raw"]:
    problems.append("the stored compose file still holds inline contents")
check("the deployable compose file: container NAME-UUID, the UUID network, env_file .env, renamed "
      "volumes, restart policies; the job and the one-shot bucket job out of the health status", problems)

first = (svc.data["compose"], svc.env_text())
svc.parse()
check("parsing again (every deploy does) changes neither docker-compose.yml nor .env",
      ["docker-compose.yml changed" for _ in [0] if svc.data["compose"] != first[0]] +
      [".env changed" for _ in [0] if svc.env_text() != first[1]])

# ---------------------------------------------------------------- the magic variables

secret = after["SERVICE_PASSWORD_JWT"]
problems = []
if not re.fullmatch(r"[A-Za-z0-9]{32}", secret or ""):
    problems.append("SERVICE_PASSWORD_JWT is not 32 letters and digits (Str::password without symbols)")
for var, role in (("SERVICE_SUPABASEANON_KEY", "anon"), ("SERVICE_SUPABASESERVICE_KEY", "service_role")):
    token = after.get(var) or ""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.InvalidTokenError as ex:
        problems.append(f"{var}: {ex}")
        continue
    head = json.loads(coolify.base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    body = json.loads(coolify.base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    if list(head.items()) != [("typ", "JWT"), ("alg", "HS256")]:
        problems.append(f"{var}: header {head}")
    if list(body) != ["iss", "iat", "exp", "role"] or claims["iss"] != "supabase" or claims["role"] != role:
        problems.append(f"{var}: claims {body}")
    if claims["iat"] % 60 != 0 or not 100 * 365 * 86400 <= claims["exp"] - claims["iat"] <= 100 * 366 * 86400:
        problems.append(f"{var}: iat {claims['iat']} not cut to the minute or exp not 100 years later")
for var in ("SERVICE_USER_ADMIN", "SERVICE_USER_MINIO"):
    if not re.fullmatch(r"[A-Za-z0-9]{16}", after.get(var) or ""):
        problems.append(f"{var} is not 16 letters and digits (Str::random(16))")
host = f"supabasekong-{svc.uuid}.203.0.113.7.sslip.io"
for var, want in (("SERVICE_URL_SUPABASEKONG", f"http://{host}"), ("SERVICE_FQDN_SUPABASEKONG", host),
                  ("SERVICE_URL_SUPABASEKONG_8000", f"http://{host}:8000"),
                  ("SERVICE_FQDN_SUPABASEKONG_8000", f"{host}:8000")):
    if after.get(var) != want:
        problems.append(f"{var}={after.get(var)!r}, want {want!r}")
if svc.data["apps"]["supabase-kong"]["fqdn"] != f"http://{host}:8000":
    problems.append(f"supabase-kong's domain is {svc.data['apps']['supabase-kong']['fqdn']!r}")
for command, pattern in (("BASE64_64", r"[A-Za-z0-9]{64}"), ("REALBASE64", r"[A-Za-z0-9+/]{43}="),
                         ("HEX_32", r"[0-9a-f]{32}"), ("PASSWORD_64", r"[A-Za-z0-9]{64}")):
    if not re.fullmatch(pattern, coolify.generate_value(command, svc) or ""):
        problems.append(f"SERVICE_{command}_X does not look like {pattern}")
check("the magic variables: SERVICE_PASSWORD_* 32 letters and digits, SERVICE_USER_* 16, "
      "SERVICE_URL_/SERVICE_FQDN_SUPABASEKONG[_8000] on sslip.io, SERVICE_BASE64_*/HEX_*, and the two "
      "Supabase tokens HS256 with SERVICE_PASSWORD_JWT, {typ, alg}, {iss supabase, iat on the minute, "
      "exp +100 years, role}", problems)

# Pasted into an empty Docker Compose resource (no template before it), the same file makes
# a directory of every mount whose content Coolify never had: the kong.yml template too.
w2 = fresh("empty")
alone = coolify.Service.create("v" * 24, "203.0.113.7", w2 + "/w", open(TEMPLATE, encoding="utf-8").read())
alone.parse()
row = alone.storage("supabase-kong", "/home/kong/temp.yml")
check("pasted into an empty resource instead, Coolify makes directories of Coolify's files (why the "
      "README starts from Coolify's template), yet still signs both tokens", [
          "kong.yml is not a directory" for _ in [0] if not (row and row["is_directory"])] + [
          f"{v} is empty" for v in ("SERVICE_SUPABASEANON_KEY", "SERVICE_SUPABASESERVICE_KEY")
          if not (alone.get_var(v) or {}).get("value")])

# The order matters: a token named before SERVICE_PASSWORD_JWT is made empty, for good.
bad = coolify.Service.create("x" * 24, "203.0.113.7", fresh("order") + "/w", yaml.safe_dump({"services": {
    "a": {"image": "a", "environment": ["K=${SERVICE_SUPABASEANON_KEY}", "S=${SERVICE_PASSWORD_JWT}"]}}}))
bad.parse()
bad.parse()
check("restated rule: a Supabase token named before SERVICE_PASSWORD_JWT is created empty and stays so",
      ["it has a value" for _ in [0] if (bad.get_var("SERVICE_SUPABASEANON_KEY") or {}).get("value") is not None])

# Changing SERVICE_PASSWORD_JWT in the editor does not re-sign the tokens (firstOrCreate);
# deleting them makes Coolify sign new ones with the new secret at the next parse.
svc.update_or_create("SERVICE_PASSWORD_JWT", coolify.laravel_password())
svc.parse()
stale = svc.get_var("SERVICE_SUPABASEANON_KEY")["value"] == after["SERVICE_SUPABASEANON_KEY"]
svc.delete_var("SERVICE_SUPABASEANON_KEY")
svc.delete_var("SERVICE_SUPABASESERVICE_KEY")
svc.parse()
new_secret = svc.get_var("SERVICE_PASSWORD_JWT")["value"]
try:
    jwt.decode(svc.get_var("SERVICE_SUPABASEANON_KEY")["value"], new_secret, algorithms=["HS256"])
    resigned = True
except jwt.InvalidTokenError:
    resigned = False
check("restated rule: a new SERVICE_PASSWORD_JWT leaves the tokens as they were; deleting them makes "
      "Coolify sign new ones with it", ["the tokens changed with the secret" for _ in [0] if not stale] +
      ["the regenerated anon token does not verify with the new secret" for _ in [0] if not resigned])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
