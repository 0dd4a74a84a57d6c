#!/usr/bin/env python3
"""The test's only change to the docker-compose.yml Coolify wrote: the stand-in images in place
of the real ones (their services cannot run here; tests/standins restates each), and the
results folder the stand-ins record into, mounted at /results.

usage: standins.py COMPOSE RESULTS TAG SUPAKEYS_IMAGE
"""
import sys

import yaml

# Coolify's service name -> the stand-in (tests/standins/build names them after upstream).
STANDIN = {
    "supabase-kong": "kong", "supabase-studio": "studio", "supabase-db": "db",
    "supabase-analytics": "analytics", "supabase-vector": "vector", "supabase-rest": "rest",
    "supabase-auth": "auth", "realtime-dev": "realtime", "supabase-minio": "minio",
    "minio-createbucket": "mc", "supabase-storage": "storage", "imgproxy": "imgproxy",
    "supabase-meta": "meta", "supabase-edge-functions": "functions", "supabase-supavisor": "pooler",
}

path, results, tag, supakeys = sys.argv[1:5]
with open(path, encoding="utf-8") as f:
    doc = yaml.safe_load(f)
for name, svc in doc["services"].items():
    if name == "supakeys":
        svc["image"] = supakeys
        continue
    svc["image"] = f"supakeys-standin-{STANDIN[name]}:{tag}"
    svc["volumes"] = list(svc.get("volumes") or []) + [f"{results}:/results"]
with open(path, "w", encoding="utf-8") as f:
    yaml.safe_dump(doc, f, sort_keys=False, width=10**6)
