"""Stand-in for Vector, the log shipper (image timberio/vector, ENTRYPOINT
/usr/local/bin/vector; Coolify's template runs `--config /etc/vector/vector.yml` and checks
`wget --spider http://supabase-vector:9001/health`).

Restated only what start order and that healthcheck need: Vector reads the file given with
--config (YAML) and, when its `api.enabled` is true, serves its API at `api.address`, whose
GET /health answers 200 {"ok":true} (vector.dev docs, "API" reference). A missing or
unreadable config stops it. Not restated: sources, transforms and sinks (the docker socket
mounted for its docker_logs source is never opened).
"""

import signal
import sys

import yaml

from . import common
from .common import Handler, Recorder, log

SERVICE = "vector"


class VectorHandler(Handler):
    def route(self, method, path, query):
        if path == "/health":
            return self.reply(200, {"ok": True})
        self.reply(404, b"")


def main(argv):
    args = argv[1:]
    rec = Recorder(SERVICE)
    rec.start(args, ("LOGFLARE_PUBLIC_ACCESS_TOKEN",))
    if len(args) != 2 or args[0] not in ("--config", "-c"):
        log(SERVICE, f"vector stand-in: want --config FILE, got {args!r}")
        return 1
    try:
        with open(args[1], "rb") as f:
            data = f.read()
        config = yaml.safe_load(data) or {}
    except (OSError, yaml.YAMLError) as e:
        log(SERVICE, f"ERROR vector::cli: Configuration error. error={e}")
        return 78
    rec.file(args[1], data)
    api = config.get("api") or {}
    if api.get("enabled") is not True:
        log(SERVICE, "the API is disabled: nothing answers the healthcheck")
        signal.pause()
        return 0
    host, port = str(api.get("address") or "127.0.0.1:8686").rsplit(":", 1)
    common.serve(SERVICE, int(port), VectorHandler, rec, host=host)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
