#!/usr/bin/env python3
"""Prints Coolify's kong.yml with the edit compose-example/coolify/README.md asks for: the
storage-v1 service gets the request-transformer that upstream's kong.yml has there, so that
an opaque key (sb_publishable_..., sb_secret_...) reaches Storage as the JWT it stands for.

usage: storage_route.py KONG_YML
The plugin goes in front of the route's `post-function` (the only one in Coolify's file),
indented like it; anything else is left as it is.
"""
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r"^(?P<indent>[ ]*)- name: post-function\n", text, re.M)
if not m or "name: storage-v1" not in text[:m.start()]:
    sys.exit("storage_route.py: no post-function plugin after storage-v1")
i = m.group("indent")
plugin = (f"{i}- name: request-transformer\n{i}  config:\n"
          f"{i}    add: {{headers: [\"Authorization: $LUA_AUTH_EXPR\"]}}\n"
          f"{i}    replace: {{headers: [\"Authorization: $LUA_AUTH_EXPR\"]}}\n")
sys.stdout.write(text[:m.start()] + plugin + text[m.start():])
