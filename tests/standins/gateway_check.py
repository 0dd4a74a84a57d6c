#!/usr/bin/env python3
"""Runs requests through a Kong configuration offline and prints each decision.

The engine is the one the Kong stand-in serves with (tests/standins/standin/kong.py; Lua
runs in LuaJIT), so a kong.yml rendered by upstream's entrypoint can be compared with the
one supakeys renders, request by request, with no network and no container. (Envoy is not
restated: run the real Envoy, tests/standins/build's supakeys-envoy images.)

usage:
  gateway_check.py --kong KONG.yml [--flavor expressions] REQUESTS.yaml
  gateway_check.py --compare-kong A.yml B.yml REQUESTS.yaml

REQUESTS.yaml is a list of {name, method (GET), path, headers: {name: value}}; `$NAME` and
`${NAME}` in paths and header values are taken from the environment. In the output, a
header value equal to one of the environment's key variables (ANON_KEY, …) is shown by
that variable's name. --compare-kong prints each request's decision under A,
and B's when it differs, and exit 1 when one does (route names and Kong's request ids are
not compared: only status, body, upstream, path and the auth headers). Needs python3 with PyYAML and luajit.
"""

import argparse
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from standin import kong  # noqa: E402
from standin.gateway import LuaHost  # noqa: E402

NAMED = ("ANON_KEY", "SERVICE_ROLE_KEY", "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC",
         "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "USER_JWT")


def label(value):
    if value is None:
        return "-"
    for name in NAMED:
        v = os.environ.get(name)
        if v and value == v:
            return name
        if v and value == "Bearer " + v:
            return "Bearer " + name
        if v and v in value and len(v) > 20:
            return value.replace(v, "$" + name)
    return value if len(value) <= 48 else value[:45] + "..."


def load_requests(path):
    with open(path, encoding="utf-8") as f:
        reqs = yaml.safe_load(f) or []
    out = []
    for r in reqs:
        headers = [(str(k).lower(), os.path.expandvars(str(v))) for k, v in (r.get("headers") or {}).items()]
        out.append({"name": r.get("name") or r["path"], "method": r.get("method", "GET"),
                    "path": os.path.expandvars(r["path"]), "headers": headers})
    return out


def describe(decision):
    d = decision
    if d.status:
        body = d.body.strip().replace("\n", " ")
        return f"{d.status} {body[:60]!r} [route {d.route or '-'}]"
    host, port = d.upstream
    parts = [f"-> {host}:{port}{label(d.path)}", f"[route {d.route or '-'}]"]
    for name in ("authorization", "apikey", "sb-api-key", "x-api-key"):
        parts.append(f"{name}={label(d.header(name))}")
    return " ".join(parts)


def outcome(d):
    body = d.body
    rid = getattr(d, "request_id", None)
    if rid:
        body = body.replace(rid, "<request_id>")
    return (d.status, body, d.upstream, d.path, d.header("authorization"), d.header("apikey"),
            d.header("sb-api-key"), d.header("x-api-key"))


def engine_for(path, flavor=None, lua=None):
    env = dict(os.environ)
    if flavor:
        env["KONG_ROUTER_FLAVOR"] = flavor
    env.setdefault("KONG_PLUGINS", "bundled")
    return kong.KongEngine(kong.load(path, env), lua)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--kong", metavar="KONG_YML")
    g.add_argument("--compare-kong", nargs=2, metavar=("A", "B"))
    ap.add_argument("--flavor", default=None)
    ap.add_argument("--trace", action="store_true", help="print each filter's step")
    ap.add_argument("requests")
    args = ap.parse_args()
    reqs = load_requests(args.requests)
    lua = LuaHost()
    if args.compare_kong:
        a = engine_for(args.compare_kong[0], args.flavor, lua)
        b = engine_for(args.compare_kong[1], args.flavor, lua)
        differ = 0
        for r in reqs:
            da = a.decide(r["method"], r["path"], r["headers"])
            db = b.decide(r["method"], r["path"], r["headers"])
            # Route names of unnamed routes differ in wording only; compare the outcome.
            ka, kb = outcome(da), outcome(db)
            same = ka == kb
            differ += not same
            print(f"{'same' if same else 'DIFF'}  {r['name']}: {describe(da)}")
            if not same:
                print(f"      B: {describe(db)}")
        print(f"{len(reqs) - differ} same, {differ} different")
        return 1 if differ else 0
    eng = engine_for(args.kong, args.flavor, lua)
    for r in reqs:
        d = eng.decide(r["method"], r["path"], r["headers"])
        print(f"{r['name']}: {describe(d)}")
        if args.trace:
            for step in d.trace:
                print(f"    {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
