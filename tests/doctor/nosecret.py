#!/usr/bin/env python3
"""Fails when any secret of a keys directory appears in doctor's output.

    nosecret.py KEYS_DIR FILE...

Secrets: every value of supabase.env (JWT_KEYS, the API tokens and their signatures, the
opaque keys), the private members of every key in state.json, the internal HS256 secret,
and the values given in the environment as JWT_SECRET, ANON_KEY, SERVICE_ROLE_KEY and
SUPAKEYS_ACCESS_TOKEN (with their signatures on their own).
"""

import json
import os
import sys


def dotenv(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            name, value = line.split("=", 1)
            out[name] = value.strip().strip("'")
    return out


def main(argv):
    keys, files = argv[1], argv[2:]
    secrets = {}  # value -> where it comes from (never printed: the value)
    for name, value in dotenv(os.path.join(keys, "supabase.env")).items():
        secrets[value] = f"supabase.env {name}"
    with open(os.path.join(keys, "state.json"), encoding="utf-8") as f:
        state = json.load(f)
    for name in ("publishable_key", "secret_key", "internal_jwt_secret"):
        secrets[state[name]] = f"state.json {name}"
    for key in state["keys"]:
        for member in ("d", "p", "q", "dp", "dq", "qi"):
            if key.get("jwk", {}).get(member):
                secrets[key["jwk"][member]] = f"state.json private member {member} of {key['kid']}"
    for name in ("JWT_SECRET", "ANON_KEY", "SERVICE_ROLE_KEY", "SUPAKEYS_ACCESS_TOKEN"):
        if os.environ.get(name):
            secrets[os.environ[name]] = f"${name}"
    # A JWT's signature alone is as telling as the token.
    for value, origin in list(secrets.items()):
        if value.count(".") == 2:
            secrets[value.rsplit(".", 1)[1]] = f"the signature of {origin}"
    bad = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for value, origin in secrets.items():
            if len(value) >= 16 and value in text:
                bad.append(f"{path}: holds {origin}")
    if bad:
        print("\n".join(sorted(set(bad))))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
