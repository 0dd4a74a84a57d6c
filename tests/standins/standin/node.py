"""Stand-in for `node` in the node-based images: runs the stand-in of the script it is given
(storage, studio, postgres-meta), and `node -e CODE` for upstream's Studio healthcheck.

Upstream's healthcheck (supabase/supabase docker/docker-compose.yml, service studio) runs
`node -e "fetch('<url>').then((r) => {if (r.status !== 200) throw new Error(r.status)})"`.
The stand-in understands exactly that shape: it GETs the URL and exits 1 when the status is
not the expected one (or the request fails), like the uncaught rejection would. Other code
is refused loudly.
"""

import re
import sys
import urllib.error
import urllib.request

SCRIPTS = {
    "dist/start/server.js": "storage",
    "apps/studio/server.js": "studio",
    "dist/server/server.js": "meta",
}


def evaluate(code):
    m = re.search(r"fetch\(\s*['\"]([^'\"]+)['\"]\s*\)", code)
    if not m:
        print("node stand-in: -e supports only fetch('<url>') status checks", file=sys.stderr)
        return 1
    want = re.search(r"status\s*!==?\s*(\d{3})", code)
    try:
        with urllib.request.urlopen(m.group(1), timeout=5) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except Exception as e:
        print(f"TypeError: fetch failed ({e})", file=sys.stderr)
        return 1
    if want and status != int(want.group(1)):
        print(f"Error: {status}", file=sys.stderr)
        return 1
    return 0


def main(argv):
    args = argv[1:]
    if len(args) >= 2 and args[0] in ("-e", "--eval"):
        return evaluate(args[1])
    if not args:
        print("node stand-in: no script", file=sys.stderr)
        return 1
    for suffix, name in SCRIPTS.items():
        if args[0].endswith(suffix):
            module = __import__(f"standin.{name}", fromlist=["main"])
            return module.main(argv)
    print(f"node stand-in: unknown script {args[0]}", file=sys.stderr)
    return 1
