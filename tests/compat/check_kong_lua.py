#!/usr/bin/env python3
"""Kong's request-transformer Lua expressions in kong.yml, evaluated by LuaJIT (Kong runs on it).

Usage: check_kong_lua.py KEYS_DIR, with the case's inputs in the environment (see matrix.py).
Each `$(...)` template is run as a Lua expression with mock `headers` / `query_params` tables
and its value compared with the translation the contract describes (section 3, Kong):
- auth (reads `headers.authorization`, emits `Bearer ...`): an Authorization header is kept
  unless it starts with `Bearer sb_`; apikey == secret key -> `Bearer <service token>`;
  == publishable key -> `Bearer <anon token>`; anything else -> the apikey as is.
- realtime websocket (reads `query_params.apikey`): the same mapping, emitting the raw JWT.
- functions (any other expression): apikey header or `Authorization: Bearer <opaque>` equal to
  the secret / publishable key -> the raw asymmetric JWT; anything else -> nil.
"""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from check_files import lua_exprs
from compat_lib import Inputs, KeysDir, Reporter, expect

NIL = "<nil>"

HARNESS = r"""
local function run(expr, headers, query_params)
  -- Error messages quote the source, which holds keys: report only the kind of error.
  local f = loadstring("return " .. expr)
  if not f then return "<syntax error>" end
  setfenv(f, { headers = headers, query_params = query_params, tostring = tostring, type = type })
  local ok, value = pcall(f)
  if not ok then return "<runtime error>" end
  if value == nil then return "<nil>" end
  return tostring(value)
end
"""


def lua_str(s: str | None) -> str:
    if s is None:
        return "nil"
    assert "]==]" not in s
    return "[==[" + s + "]==]"


def lua_table(d: dict) -> str:
    return "{" + ", ".join(f"[ {lua_str(k)} ] = {lua_str(v)}" for k, v in d.items() if v is not None) + "}"


def classify(expr: str) -> str:
    if "query_params" in expr:
        return "realtime"
    if "'Bearer sb_'" in expr or '"Bearer sb_"' in expr or ("headers.authorization" in expr and "Bearer " in expr.replace("'Bearer sb_", "")):
        return "auth"
    return "functions"


def scenarios(kind: str, k: dict) -> list[tuple[str, dict, dict, str]]:
    """(description, headers, query_params, expected value) per expression kind."""
    user = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"  # a user session token
    if kind == "auth":
        return [
            ("secret key", {"apikey": k["sec"]}, {}, "Bearer " + k["service"]),
            ("publishable key", {"apikey": k["pub"]}, {}, "Bearer " + k["anon"]),
            ("legacy-style JWT apikey", {"apikey": k["eff_anon"]}, {}, k["eff_anon"]),
            ("user Authorization kept", {"apikey": k["pub"], "authorization": "Bearer " + user}, {}, "Bearer " + user),
            ("Bearer sb_ replaced", {"apikey": k["pub"], "authorization": "Bearer " + k["pub"]}, {}, "Bearer " + k["anon"]),
            ("Bearer sb_secret replaced", {"apikey": k["sec"], "authorization": "Bearer " + k["sec"]}, {}, "Bearer " + k["service"]),
        ]
    if kind == "realtime":
        return [
            ("secret key", {}, {"apikey": k["sec"]}, k["service"]),
            ("publishable key", {}, {"apikey": k["pub"]}, k["anon"]),
            ("JWT apikey", {}, {"apikey": k["eff_anon"]}, k["eff_anon"]),
        ]
    return [
        ("apikey secret", {"apikey": k["sec"]}, {}, k["service"]),
        ("apikey publishable", {"apikey": k["pub"]}, {}, k["anon"]),
        ("Bearer secret", {"authorization": "Bearer " + k["sec"]}, {}, k["service"]),
        ("Bearer publishable", {"authorization": "Bearer " + k["pub"]}, {}, k["anon"]),
        ("other apikey", {"apikey": k["eff_anon"]}, {}, NIL),
        ("nothing", {}, {}, NIL),
    ]


def check_lua(d: KeysDir, inputs: Inputs) -> None:
    exprs = lua_exprs(yaml.safe_load(d.kong_text))
    expect(exprs, "kong.yml: no Lua expression found")
    k = {
        "pub": d.var("supabase.env", "SUPABASE_PUBLISHABLE_KEY"),
        "sec": d.var("supabase.env", "SUPABASE_SECRET_KEY"),
        "anon": d.var("supabase.env", "ANON_KEY_ASYMMETRIC"),
        "service": d.var("supabase.env", "SERVICE_ROLE_KEY_ASYMMETRIC"),
        "eff_anon": d.var("studio.env", "SUPABASE_ANON_KEY"),
    }
    if k["eff_anon"] == k["anon"] and inputs.anon:
        k["eff_anon"] = inputs.anon
    cases = []
    lines = [HARNESS]
    kinds = set()
    for path, expr in exprs:
        kind = classify(expr)
        kinds.add(kind)
        body = expr[1:]  # drop the '$' of '$(...)'
        for desc, headers, query, want in scenarios(kind, k):
            lines.append(f"io.write(run({lua_str(body)}, {lua_table(headers)}, {lua_table(query)}), '\\0')")
            cases.append((path, kind, desc, want))
    p = subprocess.run(["luajit", "-"], input="\n".join(lines).encode(), capture_output=True)
    expect(p.returncode == 0, f"luajit failed: {p.stderr.decode(errors='replace')[-200:]}")
    results = p.stdout.decode().split("\0")[:-1]
    expect(len(results) == len(cases), "luajit printed a wrong number of results")
    bad = [f"{kind} expr at {path}: {desc}" + (f" ({got})" if got in ("<syntax error>", "<runtime error>", NIL) else "")
           for (path, kind, desc, want), got in zip(cases, results) if got != want]
    expect(not bad, "wrong value for: " + "; ".join(bad[:4]))
    expect("auth" in kinds, "kong.yml: no auth translation expression (LUA_AUTH_EXPR)")
    expect("realtime" in kinds, "kong.yml: no realtime websocket expression (LUA_RT_WS_EXPR)")
    expect("functions" in kinds, "kong.yml: no functions expression (LUA_FUNCTIONS_EXPR)")


def check_no_lua(d: KeysDir) -> None:
    exprs = lua_exprs(yaml.safe_load(d.kong_text))
    expect(not exprs, f"kong.yml: {len(exprs)} Lua expression(s) the template did not have")


def main() -> None:
    d = KeysDir.load(sys.argv[1])
    r = Reporter("lua")
    if os.environ.get("COMPAT_OLD_TEMPLATE"):
        r.check("kong.no_expressions_added", check_no_lua, d)  # the old template has none
    else:
        r.check("kong.expressions", check_lua, d, Inputs(dict(os.environ)))
    r.exit()


if __name__ == "__main__":
    main()
