#!/usr/bin/env python3
"""The files as their readers see them: env files, modes, and kong.yml.

Usage: check_files.py KEYS_DIR, with the case's inputs in the environment (see matrix.py).
- Every `*.env` file read by POSIX `sh` (`set -a; . file`) and by python-dotenv yields the
  same names and values, in the `NAME='value'` form the output contract promises.
- Modes: state.json, auth.env and supabase.env 0600, the rest 0644; no private key member
  reaches a world-readable file.
- kong.yml, parsed by PyYAML (a second YAML implementation): `_format_version`, no `$NAME`
  placeholder left, consumer credentials and Lua expressions byte-identical to the env files,
  the dashboard credentials intact, the open JWKS route, the OAuth metadata path (contract 3, Kong).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import yaml

from compat_lib import (
    ALL_FILES,
    ENV_FILES,
    JWT_IN_TEXT_RE,
    PRIVATE_FILES,
    Inputs,
    KeysDir,
    Reporter,
    expect,
    fail,
)

LINE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*='[^'\n]*'$")
PLACEHOLDER_RE = re.compile(r"\$(\{?[A-Za-z_][A-Za-z0-9_]*)")


def sh_env(path: str) -> dict[str, str]:
    out = subprocess.run(
        ["env", "-i", "/bin/sh", "-c", 'set -a; . "$1"; exec env -0', "sh", path],
        check=True,
        capture_output=True,
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if item)


def check_modes(d: KeysDir) -> None:
    for name in ALL_FILES:
        p = d.path / name
        expect(p.is_file(), f"{name}: missing")
        mode = stat.S_IMODE(p.stat().st_mode)
        want = PRIVATE_FILES.get(name, 0o644)
        expect(mode == want, f"{name}: mode {mode:o}, want {want:o}")


def check_env_file(d: KeysDir, name: str) -> None:
    path = str(d.path / name)
    text = (d.path / name).read_text()
    expect(text.endswith("\n"), f"{name}: last line has no newline")
    for i, line in enumerate(text.split("\n")[:-1], 1):
        if line == "" or line.startswith("#"):
            continue
        expect(LINE_RE.match(line), f"{name}:{i}: not a NAME='value' line")
    baseline = sh_env("/dev/null")
    from_sh = {k: v for k, v in sh_env(path).items() if baseline.get(k) != v or k not in baseline}
    from_dotenv = d.env[name]
    expect(set(from_sh) == set(from_dotenv), f"{name}: sh and python-dotenv see different names "
           f"(sh only: {sorted(set(from_sh) - set(from_dotenv))}, dotenv only: {sorted(set(from_dotenv) - set(from_sh))})")
    for k, v in from_dotenv.items():
        expect(from_sh[k] == v, f"{name}: {k} differs between sh and python-dotenv")
        expect(v, f"{name}: {k} is empty")
    missing = [k for k in ENV_FILES[name] if k not in from_dotenv]
    expect(not missing, f"{name}: missing {missing}")


def check_no_private_leak(d: KeysDir) -> None:
    """Private JWK members of the state's keys appear only in the 0600 files."""
    secrets = []
    for k in d.state().get("keys", []):
        jwk = k.get("jwk", {})
        secrets += [jwk[m] for m in ("d", "p", "q", "dp", "dq", "qi") if m in jwk]
    expect(secrets, "state.json: no private members found to look for")
    for name in ALL_FILES:
        if name in PRIVATE_FILES:
            continue
        text = (d.path / name).read_text()
        for s in secrets:
            expect(s not in text, f"{name}: contains a private key member")
        expect('"d":' not in text.replace(" ", ""), f"{name}: contains a JWK 'd' member")


def check_log_no_secrets(d: KeysDir, inputs: Inputs, log: str) -> None:
    """supakeys' log names kids and files, never a secret (issue 2, behaviour 7)."""
    text = open(log, encoding="utf-8", errors="replace").read()
    secrets = {"JWT_SECRET": inputs.secret, "SUPABASE_SECRET_KEY": d.var("supabase.env", "SUPABASE_SECRET_KEY")}
    for k in d.state().get("keys", []):
        for m in ("d", "p", "q"):
            if m in k.get("jwk", {}):
                secrets[f"private member {m}"] = k["jwk"][m]
    secrets["SERVICE_ROLE_KEY_ASYMMETRIC"] = d.var("supabase.env", "SERVICE_ROLE_KEY_ASYMMETRIC")
    if inputs.service:
        secrets["SERVICE_ROLE_KEY"] = inputs.service
    leaked = [name for name, value in secrets.items() if value and value in text]
    expect(not leaked, f"init log contains {leaked}")
    if os.environ.get("SUPAKEYS_LOG_FORMAT") == "json":
        for i, line in enumerate(text.splitlines(), 1):
            try:
                expect(isinstance(json.loads(line), dict), f"init log line {i} is not a JSON object")
            except ValueError:
                fail(f"init log line {i} is not JSON (SUPAKEYS_LOG_FORMAT=json)")


def walk_strings(node, path="$"):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk_strings(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def lua_exprs(doc) -> list[tuple[str, str]]:
    """Request-transformer templates: the `$(...)` part of a string value."""
    out = []
    for path, s in walk_strings(doc):
        i = s.find("$(")
        if i >= 0:
            out.append((path, s[i:]))
    return out


def lua_literals(expr: str) -> list[str]:
    return [m.group(2) for m in re.finditer(r"(['\"])(.*?)\1", expr)]


def check_kong(d: KeysDir, inputs: Inputs) -> None:
    doc = yaml.safe_load(d.kong_text)
    expect(isinstance(doc, dict), "kong.yml: not a mapping")
    fv = doc.get("_format_version")
    expect(isinstance(fv, str) and fv in ("1.1", "2.1", "3.0"), f"kong.yml: _format_version {fv!r} is not '1.1', '2.1' or '3.0' (a string)")
    for path, s in walk_strings(doc):
        if s in (inputs.dash_password, inputs.dash_user):
            continue  # user-supplied values may hold '$'; checked for exact equality below
        rest = s.replace("$(", "")
        m = PLACEHOLDER_RE.search(rest)
        expect(m is None, f"kong.yml: placeholder ${m.group(1) if m else ''} left at {path}")


# YAML 1.2 core schema resolution of plain scalars (yaml-rust2, which writes kong.yml, follows it).
CORE_12 = [
    ("null", re.compile(r"^(~|null|Null|NULL|)$")),
    ("bool", re.compile(r"^(true|True|TRUE|false|False|FALSE)$")),
    ("int", re.compile(r"^([-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")),
    ("float", re.compile(r"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")),
]
PY11_KIND = {
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:bool": "bool",
    "tag:yaml.org,2002:int": "int",
    "tag:yaml.org,2002:float": "float",
    "tag:yaml.org,2002:timestamp": "timestamp",
    "tag:yaml.org,2002:str": "str",
}


def check_kong_scalars(d: KeysDir) -> None:
    """Every plain scalar means the same in YAML 1.1 (PyYAML, Kong's lyaml) and YAML 1.2."""
    bad = []

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                walk(v, f"{path}.{k.value}")
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, f"{path}[{i}]")
        elif isinstance(node, yaml.ScalarNode) and node.style is None:
            kind11 = PY11_KIND.get(node.tag, node.tag)
            kind12 = next((k for k, rx in CORE_12 if rx.match(node.value)), "str")
            if kind11 != kind12:
                bad.append(f"{path} ({kind11} in YAML 1.1, {kind12} in 1.2)")

    walk(yaml.compose(d.kong_text), "$")
    expect(not bad, "kong.yml: unquoted scalars whose type depends on the YAML version: " + "; ".join(bad[:3]))


def consumer_keys(doc) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in doc.get("consumers") or []:
        out[c.get("username")] = [k.get("key") for k in c.get("keyauth_credentials") or []]
    for k in doc.get("keyauth_credentials") or []:  # top-level form
        out.setdefault(k.get("consumer"), []).append(k.get("key"))
    return out


def check_kong_credentials(d: KeysDir, inputs: Inputs) -> None:
    doc = yaml.safe_load(d.kong_text)
    keys = consumer_keys(doc)
    anon = d.var("studio.env", "SUPABASE_ANON_KEY")
    service = d.var("studio.env", "SUPABASE_SERVICE_KEY")
    pub = d.var("studio.env", "SUPABASE_PUBLISHABLE_KEY")
    sec = d.var("studio.env", "SUPABASE_SECRET_KEY")
    want = {"anon": {anon, pub}, "service_role": {service, sec}}
    if os.environ.get("COMPAT_OLD_TEMPLATE"):  # no opaque key placeholders in that template
        want = {"anon": {anon}, "service_role": {service}}
    if inputs.mode == "resign" and inputs.legacy and inputs.hs256:
        want["anon"].add(inputs.anon)  # the legacy key stays accepted next to the re-signed one
        want["service_role"].add(inputs.service)
    for consumer, values in want.items():
        got = keys.get(consumer)
        expect(got is not None, f"kong.yml: no consumer {consumer}")
        expect(all(isinstance(k, str) and k for k in got), f"kong.yml: consumer {consumer} has an empty key")
        expect(len(got) == len(set(got)), f"kong.yml: consumer {consumer} lists a key twice")
        missing = values - set(got)
        expect(not missing, f"kong.yml: consumer {consumer} lacks {len(missing)} expected key(s) (byte comparison)")
        extra = set(got) - values
        expect(not extra, f"kong.yml: consumer {consumer} has {len(extra)} unexpected key(s)")
    expect(not (set(keys["anon"]) & set(keys["service_role"])), "kong.yml: a key belongs to both anon and service_role")


def check_kong_dashboard(d: KeysDir, inputs: Inputs) -> None:
    doc = yaml.safe_load(d.kong_text)
    creds = list(doc.get("basicauth_credentials") or [])
    for c in doc.get("consumers") or []:
        creds += [dict(x, consumer=c.get("username")) for x in c.get("basicauth_credentials") or []]
    expect(len(creds) == 1, f"kong.yml: {len(creds)} basicauth credentials, want 1")
    c = creds[0]
    for field, want in (("username", inputs.dash_user), ("password", inputs.dash_password)):
        got = c.get(field)
        # YAML 1.1 loaders (PyYAML, Kong's lyaml) turn unquoted 1_000, 0b1010, +.inf into numbers.
        expect(isinstance(got, str), f"kong.yml: dashboard {field} reads back as {type(got).__name__}, not a string (unquoted YAML 1.1 scalar)")
        expect(got == want, f"kong.yml: dashboard {field} not byte-identical to DASHBOARD_{field.upper()}")


def check_kong_lua(d: KeysDir, inputs: Inputs) -> None:
    doc = yaml.safe_load(d.kong_text)
    exprs = lua_exprs(doc)
    expect(exprs, "kong.yml: no Lua expression found")
    pub = d.var("supabase.env", "SUPABASE_PUBLISHABLE_KEY")
    sec = d.var("supabase.env", "SUPABASE_SECRET_KEY")
    anon = d.var("supabase.env", "ANON_KEY_ASYMMETRIC")
    service = d.var("supabase.env", "SERVICE_ROLE_KEY_ASYMMETRIC")
    seen = set()
    for path, expr in exprs:
        expect(expr.endswith(")"), f"kong.yml: Lua expression at {path} does not end with ')'")
        expect(expr.count("(") == expr.count(")"), f"kong.yml: unbalanced parentheses at {path}")
        expect(expr.count("'") % 2 == 0 and expr.count('"') % 2 == 0, f"kong.yml: unbalanced quotes at {path}")
        lits = lua_literals(expr)
        for lit in lits:
            if lit.startswith("sb_"):
                expect(lit in (pub, sec), f"kong.yml: opaque key literal at {path} is not byte-identical to the env files")
                seen.add(lit)
            for tok in JWT_IN_TEXT_RE.findall(lit):
                expect(tok in (anon, service), f"kong.yml: JWT literal at {path} is not an asymmetric API token")
                expect(lit in (tok, "Bearer " + tok), f"kong.yml: JWT literal at {path} is not the token or 'Bearer <token>'")
                seen.add(tok)
        # Each opaque key maps to its own role's token: the first JWT after it.
        for i, lit in enumerate(lits):
            if lit in (pub, sec):
                nxt = next((JWT_IN_TEXT_RE.findall(x)[0] for x in lits[i + 1:] if JWT_IN_TEXT_RE.findall(x)), None)
                want = service if lit == sec else anon
                expect(nxt == want, f"kong.yml: at {path} an opaque key is not mapped to its role's token")
    for what, v in (("publishable key", pub), ("secret key", sec), ("ANON_KEY_ASYMMETRIC", anon), ("SERVICE_ROLE_KEY_ASYMMETRIC", service)):
        expect(v in seen, f"kong.yml: no Lua expression uses the {what}")
    expect(any(("'Bearer " + service + "'") in e or ('"Bearer ' + service + '"') in e for _, e in exprs), "kong.yml: no Lua expression emits 'Bearer <service token>'")


def routes(doc):
    for si, svc in enumerate(doc.get("services") or []):
        for r in svc.get("routes") or []:
            yield si, svc, r


def check_kong_routes(d: KeysDir, inputs: Inputs) -> None:
    doc = yaml.safe_load(d.kong_text)
    jwks = [(si, s, r) for si, s, r in routes(doc) if "/auth/v1/.well-known/jwks.json" in (r.get("paths") or [])]
    expect(len(jwks) == 1, "kong.yml: no single route for /auth/v1/.well-known/jwks.json")
    si, svc, r = jwks[0]
    expect(svc.get("url") == "http://auth:9999/.well-known/jwks.json", "kong.yml: JWKS service url is not http://auth:9999/.well-known/jwks.json")
    expect(r.get("strip_path", True) is True, "kong.yml: JWKS route strip_path is not true")
    plugins = [p.get("name") for p in (svc.get("plugins") or []) + (r.get("plugins") or [])]
    expect(plugins == ["cors"], f"kong.yml: JWKS route plugins {plugins}, want only cors")
    auth = [i for i, s, r in routes(doc) if "/auth/v1/" in (r.get("paths") or [])]
    expect(auth, "kong.yml: no /auth/v1/ route")
    expect(si < min(auth), "kong.yml: JWKS route is not listed before the /auth/v1/ route")
    if os.environ.get("COMPAT_OLD_TEMPLATE"):
        return  # no OAuth metadata route in the old template
    path = "/.well-known/oauth-authorization-server"
    if inputs.issuer:
        tail = re.sub(r"^https?://[^/]*", "", inputs.issuer).rstrip("/")
        path += tail
    all_paths = [p for _, _, r in routes(doc) for p in (r.get("paths") or [])]
    expect(path in all_paths, f"kong.yml: no route for {path} (WELL_KNOWN_OAUTH_PATH)")


def main() -> None:
    d = KeysDir.load(sys.argv[1])
    inputs = Inputs(dict(os.environ))
    r = Reporter("files")
    r.check("modes", check_modes, d)
    for name in ENV_FILES:
        if name in d.env:
            r.check(f"env.{name}", check_env_file, d, name)
        else:
            r.check(f"env.{name}", fail, f"{name}: missing")
    r.check("no_private_in_public_files", check_no_private_leak, d)
    if os.environ.get("COMPAT_INIT_LOG"):
        r.check("init_log_no_secrets", check_log_no_secrets, d, inputs, os.environ["COMPAT_INIT_LOG"])
    if not d.kong_text:
        r.check("kong", fail, "kong.yml: missing or empty")
    else:
        r.check("kong.yaml", check_kong, d, inputs)
        r.check("kong.scalars_yaml11_eq_12", check_kong_scalars, d)
        r.check("kong.credentials", check_kong_credentials, d, inputs)
        r.check("kong.dashboard", check_kong_dashboard, d, inputs)
        if not os.environ.get("COMPAT_OLD_TEMPLATE"):  # the old template has no Lua
            r.check("kong.lua", check_kong_lua, d, inputs)
        r.check("kong.routes", check_kong_routes, d, inputs)
    r.exit()


if __name__ == "__main__":
    main()
