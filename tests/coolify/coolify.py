#!/usr/bin/env python3
"""What Coolify does to a Docker Compose service before `docker compose up`, restated.

Coolify cannot run here. This module restates, from its source (coollabsio/coolify at commit
379abb252621f34b318190bd49b614aed9818716, 2026-08-22; the functions and files are named where
each rule is restated), what happens to a "Service" (a compose-based resource such as the
Supabase template) between choosing it and the containers running:

- Service creation and every save of "Edit Compose File" parse the compose file
  (bootstrap/helpers/parsers.php serviceParser; app/Livewire/Project/Service/StackForm.php):
  magic variables are generated once and kept (`firstOrCreate`), `${VAR:-default}` lines
  become variables of the environment editor, inline `content:` files are stored and
  written to the server, and the deployable compose file is built (container names, the
  service network, restart policy, labels, `env_file: .env`, renamed volumes).
- A deploy (app/Actions/Service/StartService.php) parses again, writes docker-compose.yml
  and .env (app/Models/Service.php saveComposeConfigs) and runs
  `docker compose --project-directory W -f W/docker-compose.yml --project-name UUID up -d
  --remove-orphans --force-recreate --build` after creating the external network UUID.

The "database" of one Service is a JSON state file: its compose text, the environment
variables (in creation order), the sub-services and the file storages. Not restated: the
reverse proxy and its labels (only labels), logging drivers, preview deployments, shared
`{{team.X}}` variables, the build of images, the UI.

usage:
  coolify.py new STATE TEMPLATE WORKDIR [--uuid U] [--server-ip IP]
                                     create a service from a template (+ New, Service)
  coolify.py edit-compose STATE FILE replace the compose file (Edit Compose File, save)
  coolify.py env STATE KEY           print a variable of the environment editor
  coolify.py set-env STATE KEY VALUE set one (the environment editor)
  coolify.py delete-env STATE KEY    delete one
  coolify.py edit-file STATE SERVICE MOUNT FILE
                                     save a file storage (the service's Storages tab)
  coolify.py deploy STATE            parse, write the files, docker-compose.yml and .env
  coolify.py command STATE           print the compose arguments of the deploy, one a line
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import string
import sys

import yaml

COMMIT = "379abb252621f34b318190bd49b614aed9818716"
# bootstrap/helpers/constants.php RESTART_MODE.
RESTART_MODE = "unless-stopped"
# bootstrap/helpers/constants.php DATABASE_DOCKER_IMAGES, by base name (docker.php
# isDatabaseImage compares the part after the last '/' and before ':').
DATABASE_IMAGES = {"mariadb", "mongodb", "redis", "mysql", "mysql-server", "postgis", "postgres",
                   "postgresql", "mongo", "memcached", "couchdb", "neo4j", "influxdb",
                   "clickhouse-server", "timescaledb", "timescaledb-ha", "pgvector"}
# parsers.php serviceParser: `$regex` that finds variable references in a value.
REFERENCE = re.compile(r"\$(\{?([a-zA-Z_\x80-\xff][a-zA-Z0-9_\x80-\xff]*)\}?)")
ALNUM = string.ascii_letters + string.digits


# ---------------------------------------------------------------- generated values


def laravel_password(length=32):
    """Illuminate\\Support\\Str::password(symbols: false): letters and digits, at least one of
    each set, shuffled."""
    chars = [secrets.choice(string.ascii_letters), secrets.choice(string.digits)]
    chars += [secrets.choice(ALNUM) for _ in range(length - 2)]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def laravel_random(length):
    """Str::random: letters and digits."""
    return "".join(secrets.choice(ALNUM) for _ in range(length))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def supabase_token(role, signing_key, now=None):
    """shared.php generateEnvValue SUPABASEANON / SUPABASESERVICE: lcobucci/jwt's Builder with
    the JOSE encoder and the default claim formatter, HS256 (Sha256 signer) keyed with the
    plain text of SERVICE_PASSWORD_JWT. Header {"typ":"JWT","alg":"HS256"} (the Builder's
    header order); claims in the order they are set: iss "supabase", iat = now with seconds
    and microseconds cut (`setTime(H, i)`; a whole second, so an integer), exp = iat + 100
    years (Carbon `modify('+100 year')`, Feb 29 overflowing to Mar 1), role."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    iat = now.replace(second=0, microsecond=0)
    try:
        exp = iat.replace(year=iat.year + 100)
    except ValueError:  # Feb 29 -> Mar 1, as PHP's date arithmetic overflows
        exp = iat.replace(year=iat.year + 100, month=3, day=1)
    header = {"typ": "JWT", "alg": "HS256"}
    claims = {"iss": "supabase", "iat": int(iat.timestamp()), "exp": int(exp.timestamp()), "role": role}
    enc = lambda d: b64url(json.dumps(d, separators=(",", ":")).encode())  # noqa: E731
    signing_input = f"{enc(header)}.{enc(claims)}"
    sig = hmac.new(signing_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def magic_command(name):
    """shared.php parseCommandFromMagicEnvVariable: SERVICE_<COMMAND>_<NAME>, where a name
    with three underscores keeps the middle part in the command (SERVICE_PASSWORD_64_X)."""
    count = name.count("_")
    rest = name[len("SERVICE_"):]
    if count == 2:
        return rest.rsplit("_", 1)[0]
    if count == 3:
        if name.startswith("SERVICE_FQDN") or name.startswith("SERVICE_URL"):
            return rest.split("_", 1)[0]
        return rest.rsplit("_", 1)[0]
    return ""


def generate_value(command, state):
    """shared.php generateEnvValue. SUPABASEANON/SUPABASESERVICE need SERVICE_PASSWORD_JWT to
    exist already; without it the value is null (the variable is still created, empty)."""
    if command == "PASSWORD":
        return laravel_password()
    if command == "PASSWORD_64":
        return laravel_password(64)
    if command in ("BASE64", "BASE64_32"):
        return laravel_random(32)
    if command == "BASE64_64":
        return laravel_random(64)
    if command == "BASE64_128":
        return laravel_random(128)
    if command in ("REALBASE64", "REALBASE64_32"):
        return base64.b64encode(secrets.token_bytes(32)).decode()
    if command == "REALBASE64_64":
        return base64.b64encode(secrets.token_bytes(64)).decode()
    if command == "HEX_32":
        return secrets.token_hex(16)
    if command == "HEX_64":
        return secrets.token_hex(32)
    if command == "USER":
        return laravel_random(16)
    if command == "LOWERCASEUSER":
        return laravel_random(16).lower()
    if command in ("SUPABASEANON", "SUPABASESERVICE"):
        key = state.get_var("SERVICE_PASSWORD_JWT")
        if key is None:
            return None
        return supabase_token("anon" if command == "SUPABASEANON" else "service_role", key["value"] or "")
    return None


# ---------------------------------------------------------------- parsing helpers


def balanced(text, start=0):
    """services.php extractBalancedBraceContent: the text inside the first {...} at or after
    `start`, braces nested, with its start and end offsets."""
    open_pos = text.find("{", start)
    if open_pos < 0:
        return None
    depth, pos = 1, open_pos + 1
    while pos < len(text) and depth > 0:
        depth += {"{": 1, "}": -1}.get(text[pos], 0)
        pos += 1
    if depth != 0:
        return None
    return text[open_pos + 1:pos - 1], open_pos, pos - 1


def split_operator(content):
    """services.php splitOnOperatorOutsideNested: NAME, then the first of :- - :? ? outside
    nested braces, then the default."""
    depth = 0
    for i, c in enumerate(content):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            for op in (":-", "-", ":?", "?"):
                if content.startswith(op, i):
                    return content[:i], op, content[i + len(op):]
    return None


def replace_variables(value):
    """services.php replaceVariables: the name (or name and operator) inside ${...}."""
    if value.startswith("${"):
        found = balanced(value)
        if found:
            return found[0]
        return value.split("}")[0].replace("$", "", 1).replace("{", "", 1)
    if value.startswith("$"):
        return value[1:]
    return value


def key_values(environment):
    """shared.php convertToKeyValueCollection: a list of NAME=value (a bare NAME has the empty
    value) or a mapping, as an ordered mapping."""
    out = {}
    if isinstance(environment, dict):
        for k, v in environment.items():
            out[str(k)] = "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
        return out
    for item in environment or []:
        if isinstance(item, str):
            key, _, value = item.partition("=")
            if key:
                out[key] = value
    return out


def is_database(image):
    """docker.php isDatabaseImage (the known-database list; the context refinement for images
    such as supertokens-postgresql is not restated)."""
    if not image:
        return False
    base = image.split(":")[0].rsplit("/", 1)[-1]
    return base in DATABASE_IMAGES


def volume_string(text):
    """parsers.php parseDockerVolumeString for SOURCE:TARGET[:MODE] (no Windows drives, no
    ${VAR} sources)."""
    parts = text.strip().split(":")
    modes = {"ro", "rw", "z", "Z", "rslave", "rprivate", "rshared", "slave", "private", "shared",
             "cached", "delegated", "consistent"}
    if len(parts) == 1:
        return parts[0], parts[0], None
    if len(parts) >= 3 and parts[-1] in modes:
        return parts[0], ":".join(parts[1:-1]), parts[-1]
    return parts[0], ":".join(parts[1:]), None


def is_local(source):
    """shared.php sourceIsLocal."""
    return source.startswith(("./", "/", "~", ".."))


def slug(text):
    """Illuminate Str::slug(text, '-'), for the volume names Coolify uses (ASCII)."""
    text = re.sub(r"[^a-z0-9\s-]", "", text.lower().replace("_", "-"))
    return re.sub(r"[-\s]+", "-", text).strip("-")


# ---------------------------------------------------------------- the service's records


class Service:
    """One Coolify Service: what its database rows hold (the parts restated here)."""

    def __init__(self, data):
        self.data = data

    @classmethod
    def create(cls, uuid, server_ip, workdir, compose):
        return cls({"uuid": uuid, "server_ip": server_ip, "workdir": workdir,
                    "compose_raw": compose, "compose": "", "vars": [], "apps": {}, "files": []})

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def save(self, path):
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f, indent=1)
        os.replace(tmp, path)

    # Eloquent's firstOrCreate / updateOrCreate on the service's environment variables.
    def get_var(self, key):
        return next((v for v in self.data["vars"] if v["key"] == key), None)

    def first_or_create(self, key, value=None):
        found = self.get_var(key)
        if found is None:
            found = {"key": key, "value": value}
            self.data["vars"].append(found)
        return found

    def update_or_create(self, key, value):
        found = self.first_or_create(key, value)
        found["value"] = value
        return found

    def delete_var(self, key):
        self.data["vars"] = [v for v in self.data["vars"] if v["key"] != key]

    @property
    def uuid(self):
        return self.data["uuid"]

    def app(self, name, image):
        apps = self.data["apps"]
        if name not in apps:
            apps[name] = {"database": is_database(image), "fqdn": None, "exclude_from_status": False}
        apps[name]["image"] = image
        return apps[name]

    # ---------------------------------------------------------------- URLs

    def url(self, name):
        """shared.php generateUrl with sslip (no wildcard domain): http://NAME.IP.sslip.io."""
        return f"http://{name}.{self.data['server_ip']}.sslip.io"

    def fqdn(self, name):
        """shared.php generateFqdn, parser version 5: the host without a scheme."""
        return f"{name}.{self.data['server_ip']}.sslip.io"

    # ---------------------------------------------------------------- files

    def host_path(self, fs_path):
        return self.data["workdir"] + fs_path[1:] if fs_path.startswith(".") else fs_path

    def storage(self, resource, mount_path):
        return next((f for f in self.data["files"]
                     if f["resource"] == resource and f["mount_path"] == mount_path), None)

    def save_storage(self, row):
        """LocalFileVolume::saveStorageOnServer, run when a row is created (the model's
        `created` hook dispatches ServerStorageSaveJob): a directory is made; a file is
        written with its content (`tee`) and made executable (`chmod +x`); a file where a
        directory is wanted is read into the row instead (and the job fails)."""
        path = self.host_path(row["fs_path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if row["is_directory"]:
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    row["content"] = f.read()
                row["is_directory"] = False
                return
            os.makedirs(path, exist_ok=True)
            return
        if os.path.isdir(path):  # `rm -fr` the directory, then write the file
            shutil.rmtree(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(row["content"] or "")
        os.chmod(path, os.stat(path).st_mode | 0o111)

    def files_from_server(self, resource):
        """services.php getFilesystemVolumesFromServer(isInit: true), the ServerFilesFromServerJob
        every parse dispatches: an existing file or directory is left as it is (and the row
        follows it); a missing one is written from the row's content, or made a directory."""
        for row in self.data["files"]:
            if row["resource"] != resource:
                continue
            path = self.host_path(row["fs_path"])
            if os.path.isfile(path):
                row["is_directory"] = False
            elif os.path.isdir(path):
                row["content"], row["is_directory"] = None, True
            elif row["content"] and not row["is_directory"]:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(row["content"])
            elif row["is_directory"] or row["content"] is None:
                row["content"], row["is_directory"] = None, True
                os.makedirs(path, exist_ok=True)

    # ---------------------------------------------------------------- serviceParser

    def parse(self):
        """parsers.php serviceParser: returns the deployable compose document and records what
        Coolify records. The queued file jobs run here, synchronously."""
        uuid = self.uuid
        doc = yaml.safe_load(self.data["compose_raw"])
        services = doc.get("services") or {}
        top_volumes = {k: v for k, v in (doc.get("volumes") or {}).items() if v is not None}
        top_networks = dict(doc.get("networks") or {})
        # Presave: one sub-service (application or database) per compose service.
        for name, svc in services.items():
            self.app(name, svc.get("image"))
        all_magic = {}
        for name, svc in services.items():
            app = self.app(name, svc.get("image"))
            env = key_values(svc.get("environment"))
            magic = {}
            for key, value in env.items():
                for m in REFERENCE.finditer(value):
                    if m.group(2).startswith("SERVICE_") and m.group(2) not in magic:
                        magic[m.group(2)] = ""
                if key.startswith(("SERVICE_FQDN_", "SERVICE_URL_")):
                    self.url_variables(name, app, key, value)
            all_magic.update(magic)
            for key in magic:
                command = magic_command(key)
                if command in ("FQDN", "URL"):
                    prefix = "SERVICE_FQDN_" if command == "FQDN" else "SERVICE_URL_"
                    target = key[len(prefix):].lower()
                    random = f"{target.replace('_', '-')}-{uuid}"
                    url, fqdn = self.url(random), self.fqdn(random)
                    self.first_or_create(key, fqdn if command == "FQDN" else url)
                    other = ("SERVICE_URL_" if command == "FQDN" else "SERVICE_FQDN_") + target.upper()
                    self.first_or_create(other, url if command == "FQDN" else fqdn)
                else:
                    if self.get_var(key) is None:
                        self.first_or_create(key, generate_value(command, self))
        parsed = {}
        for name, svc in services.items():
            parsed[name] = self.parse_service(name, dict(svc), top_volumes, top_networks, all_magic, services)
        top = {"services": parsed}
        if top_volumes:
            top["volumes"] = top_volumes
        if top_networks:
            top["networks"] = top_networks
        self.data["compose"] = yaml.safe_dump(top, sort_keys=False, default_flow_style=False, width=10**6)
        # docker_compose_raw keeps the user's file without the inline contents (they now live
        # in the file storages and are never applied again from the compose text).
        raw = yaml.safe_load(self.data["compose_raw"])
        for svc in (raw.get("services") or {}).values():
            for v in svc.get("volumes") or []:
                if isinstance(v, dict):
                    for k in ("content", "isDirectory", "is_directory"):
                        v.pop(k, None)
        self.data["compose_raw"] = yaml.safe_dump(raw, sort_keys=False, width=10**6)
        return top

    def url_variables(self, name, app, key, value):
        """A SERVICE_URL_X[_PORT] / SERVICE_FQDN_X[_PORT] key: the service's URL is saved once
        and the four variables are (re)written (services.php parseServiceEnvironmentVariable)."""
        prefix = "SERVICE_URL_" if key.startswith("SERVICE_URL_") else "SERVICE_FQDN_"
        rest = key[len(prefix):]
        last = rest.rsplit("_", 1)
        port = last[1] if len(last) == 2 and last[1].isdigit() else None
        target = last[0] if port else rest
        random = f"{target.lower()}-{self.uuid}"
        if app["database"] or not app["fqdn"]:
            fqdn, url = self.fqdn(random), self.url(random)
        else:
            url = app["fqdn"].split(",")[0]
            url = re.sub(r":\d+$", "", url)
            fqdn = url
        if value.startswith("/") and value != "/":
            fqdn, url = fqdn + value, url + value
        env_fqdn = fqdn.split("://", 1)[-1]
        if not app["database"] and app["fqdn"] is None:
            app["fqdn"] = f"{url}:{port}" if port else url
        self.update_or_create(f"SERVICE_FQDN_{target}", env_fqdn)
        self.update_or_create(f"SERVICE_URL_{target}", url)
        if port:
            self.update_or_create(f"SERVICE_FQDN_{target}_{port}", f"{env_fqdn}:{port}")
            self.update_or_create(f"SERVICE_URL_{target}_{port}", f"{url}:{port}")

    def parse_service(self, name, svc, top_volumes, top_networks, all_magic, services):
        uuid = self.uuid
        app = self.data["apps"][name]
        container = f"{name}-{uuid}"
        volumes = []
        for volume in svc.get("volumes") or []:
            content, is_dir, mode = None, False, None
            if isinstance(volume, str):
                source, target, mode = volume_string(volume)
                kind = "bind" if is_local(source) else "volume"
                found = self.storage(name, target)
                if kind == "bind":
                    if found:
                        content, is_dir = found["content"], found["is_directory"]
                    else:
                        is_dir = True  # "we cannot determine if the bind is a directory"
            else:
                kind, source, target = volume.get("type"), volume.get("source"), volume.get("target")
                content = volume.get("content")
                is_dir = bool(volume.get("isDirectory")) or bool(volume.get("is_directory"))
                found = self.storage(name, target)
                if found:
                    content, is_dir = found["content"], found["is_directory"]
                elif not is_dir and content is None:
                    is_dir = True
            if kind == "bind":
                if source in ("/var/run/docker.sock", "/tmp", "/tmp/"):
                    volume = f"{source}:{target}" + (f":{mode}" if mode else "")
                else:
                    fs_path = source.rstrip("/") if source != "/" else source
                    row = self.storage(name, target)
                    if row is None:
                        row = {"resource": name, "mount_path": target, "fs_path": fs_path,
                               "content": content, "is_directory": is_dir}
                        self.data["files"].append(row)
                        self.save_storage(row)
                    else:
                        row.update({"fs_path": fs_path, "content": content, "is_directory": is_dir})
                    host = self.host_path(fs_path)
                    if isinstance(volume, str):
                        volume = f"{host}:{target}" + (f":{mode}" if mode else "")
                    else:
                        volume = dict(volume, source=host)
            elif kind == "volume":
                vol = f"{uuid}_{slug(source)}"
                top_volumes[vol] = {"name": vol}
                if isinstance(volume, str):
                    volume = f"{vol}:{target}" + (f":{mode}" if mode else "")
                else:
                    volume = dict(volume, source=vol)
            if isinstance(volume, dict):
                for k in ("content", "isDirectory", "is_directory"):
                    volume.pop(k, None)
            volumes.append(volume)
        self.files_from_server(name)

        networks = {}
        if svc.get("network_mode") is None:
            for net in svc.get("networks") or []:
                networks[net] = None
            for net_name, net in top_networks.items():
                if net_name != "default" and not (net or {}).get("aliases") and net_name not in networks:
                    networks[net_name] = None
            networks[uuid] = None
            top_networks[uuid] = {"name": uuid, "external": True}

        env = key_values(svc.get("environment"))
        environment = dict(env)
        normal = {k: v for k, v in env.items() if k not in all_magic and not v.startswith("SERVICE_")}
        for key, value in normal.items():
            parsed = replace_variables(value)
            if parsed.startswith("SERVICE_"):
                self.update_or_create(key, value)
                continue
            if not value.startswith("$"):
                continue
            if key == parsed:
                self.first_or_create(key)
                continue
            found = balanced(value)
            if found is None:
                continue  # the "malformed input" branch is not restated
            split = split_operator(found[0])
            if split is None:
                environment[found[0]] = self.first_or_create(found[0])["value"]
                continue
            var, op, default = split
            environment[var] = self.first_or_create(var, default)["value"]
            if "${" in default:
                pos = 0
                while (nested := balanced(default, pos)) is not None:
                    inner = split_operator(nested[0])
                    nested_name = inner[0] if inner else nested[0]
                    if not nested_name.startswith(("SERVICE_URL_", "SERVICE_FQDN_")):
                        environment[nested_name] = self.first_or_create(
                            nested_name, inner[2] if inner else None)["value"]
                    pos = nested[2] + 1
                    if pos >= len(default):
                        break

        coolify = {}
        if self.get_var("COOLIFY_RESOURCE_UUID") is None:
            coolify["COOLIFY_RESOURCE_UUID"] = uuid
        if self.get_var("COOLIFY_CONTAINER_NAME") is None:
            coolify["COOLIFY_CONTAINER_NAME"] = container
        if not app["database"] and app["fqdn"]:
            fqdns = [f for f in app["fqdn"].split(",") if f]
            coolify["COOLIFY_FQDN"] = ",".join(re.sub(r"^https?://", "", re.sub(r":\d+$", "", f)) for f in fqdns)
            coolify["COOLIFY_URL"] = ",".join(re.sub(r":\d+$", "", f) for f in fqdns)
        out_env = {}
        for key, value in environment.items():
            if key.startswith("SERVICE_FQDN_"):
                continue
            if value == "":
                db = self.get_var(key)
                if db and db["value"]:
                    value = db["value"]
            out_env[key] = value
        out_env.update(coolify)
        for other in services:
            out_env["SERVICE_NAME_" + other.replace("-", "_").replace(".", "_").upper()] = other

        labels = [f"{k}={v}" for k, v in (svc.get("labels") or {}).items()] \
            if isinstance(svc.get("labels"), dict) else list(svc.get("labels") or [])
        labels += self.default_labels(name, container, app)
        if svc.get("restart") == "no" or svc.get("exclude_from_hc"):
            app["exclude_from_status"] = True
        svc.pop("exclude_from_hc", None)
        payload = dict(svc)
        payload["container_name"] = container
        payload["restart"] = str(svc.get("restart", RESTART_MODE))
        payload["labels"] = labels
        if svc.get("network_mode") is None:
            payload["networks"] = networks
        if volumes:
            payload["volumes"] = volumes
        payload["environment"] = out_env
        env_files = svc.get("env_file") or []
        env_files = [env_files] if isinstance(env_files, str) else list(env_files)
        payload["env_file"] = list(dict.fromkeys(env_files + [".env"]))
        return payload

    def default_labels(self, name, container, app):
        """docker.php defaultLabels (the proxy's routing labels are not restated)."""
        return ["coolify.managed=true", "coolify.type=service", f"coolify.name={slug(container)}",
                f"coolify.service.subType={'database' if app['database'] else 'application'}",
                f"coolify.service.subName={slug(name)}", "coolify.pullRequestId=0"]

    # ---------------------------------------------------------------- deploy

    def env_text(self):
        """Service.php saveComposeConfigs: SERVICE_NAME_* for every service, then every
        variable, SERVICE_* names first, then values referring to $SERVICE_*, then the rest,
        as KEY=real_value (EnvironmentVariable::realValue: JSON objects and arrays as they
        are, other values with \\ \\r \\t NUL " ' escaped, null as empty)."""
        lines = []
        doc = yaml.safe_load(self.data["compose"])
        for name in doc["services"]:
            lines.append("SERVICE_NAME_" + name.replace("-", "_").replace(".", "_").upper() + "=" + name)

        def group(v):
            if v["key"].startswith("SERVICE_"):
                return 1
            if str(v["value"] or "").startswith(("$SERVICE_", "${SERVICE_")):
                return 2
            return 3

        for v in sorted(self.data["vars"], key=group):
            value = "" if v["value"] is None else str(v["value"])
            if not (value.startswith(("{", "[")) and is_json(value)):
                for a, b in (("\\", "\\\\"), ("\r", "\\r"), ("\t", "\\t"), ("\0", "\\0"), ('"', '\\"'), ("'", "\\'")):
                    value = value.replace(a, b)
            lines.append(f"{v['key']}={value}")
        return "\n".join(lines)

    def deploy(self):
        """StartService::handle up to `docker compose up`: parse, then saveComposeConfigs."""
        self.parse()
        workdir = self.data["workdir"]
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "docker-compose.yml"), "w", encoding="utf-8") as f:
            f.write(self.data["compose"])
        with open(os.path.join(workdir, ".env"), "w", encoding="utf-8") as f:
            f.write(self.env_text())

    def command(self):
        w = self.data["workdir"]
        return ["--project-directory", w, "-f", f"{w}/docker-compose.yml", "--project-name", self.uuid,
                "up", "-d", "--remove-orphans", "--force-recreate", "--build"]


def is_json(text):
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, path = argv[1], argv[2]
    if cmd == "new":
        template, workdir = argv[3], os.path.abspath(argv[4])
        opts = dict(zip(argv[5::2], argv[6::2]))
        uuid = opts.get("--uuid") or "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(24))
        with open(template, encoding="utf-8") as f:
            text = f.read()
        svc = Service.create(uuid, opts.get("--server-ip", "127.0.0.1"), workdir, text)
        svc.parse()
        svc.save(path)
        return 0
    svc = Service.load(path)
    if cmd == "edit-compose":
        with open(argv[3], encoding="utf-8") as f:
            svc.data["compose_raw"] = f.read()
        svc.parse()
    elif cmd == "env":
        var = svc.get_var(argv[3])
        if var is None:
            return 1
        print("" if var["value"] is None else var["value"])
        return 0
    elif cmd == "set-env":
        svc.update_or_create(argv[3], argv[4])
    elif cmd == "delete-env":
        svc.delete_var(argv[3])
    elif cmd == "edit-file":
        # app/Livewire/Project/Service/FileStorage.php submit: the row's content, then
        # LocalFileVolume::saveStorageOnServer writes it to the server.
        row = svc.storage(argv[3], argv[4])
        if row is None or row["is_directory"]:
            print(f"no file storage {argv[4]} for {argv[3]}", file=sys.stderr)
            return 1
        with open(argv[5], encoding="utf-8") as f:
            row["content"] = f.read()
        svc.save_storage(row)
    elif cmd == "deploy":
        svc.deploy()
    elif cmd == "command":
        print("\n".join(svc.command()))
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    svc.save(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
