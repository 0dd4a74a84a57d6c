#!/usr/bin/python3
"""Entry point of every stand-in program: `run.py PROGRAM [ARGS...]` (the wrappers at the
upstream images' paths call it). PROGRAM names the module; argv[0] of the module is the
program name as upstream spells it."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROGRAMS = {
    "auth": ("standin.auth", "main"),
    "postgrest": ("standin.rest", "main"),
    "realtime-seed": ("standin.realtime", "seed"),
    "realtime": ("standin.realtime", "main"),
    "node": ("standin.node", "main"),
    "edge-runtime": ("standin.functions", "main"),
    "envoy": ("standin.envoy", "main"),
    "kong": ("standin.kong", "main"),
    "postgres": ("standin.db", "main"),
    "pg_isready": ("standin.db", "pg_isready"),
    "imgproxy": ("standin.imgproxy", "main"),
    "migrate": ("standin.pooler", "main"),
    "supavisor": ("standin.pooler", "main"),
    "pooler": ("standin.pooler", "main"),
    "realtime-eval": ("standin.realtime", "release_eval"),
    "minio": ("standin.minio", "main"),
    "mc": ("standin.minio", "main"),
    "logflare": ("standin.logflare", "main"),
    "vector": ("standin.vector", "main"),
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in PROGRAMS:
        print(f"usage: run.py {{{','.join(PROGRAMS)}}} [ARGS...]", file=sys.stderr)
        return 2
    module_name, func = PROGRAMS[sys.argv[1]]
    module = __import__(module_name, fromlist=[func])
    return getattr(module, func)(sys.argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
