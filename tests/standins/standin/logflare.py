"""Stand-in for Logflare, Supabase's analytics (image supabase/logflare; Coolify's template
service supabase-analytics, healthcheck `curl http://127.0.0.1:4000/health`).

Restated only what start order and that healthcheck need: it listens on port 4000 and
answers GET /health (Logflare's health endpoint, lib/logflare_web/router.ex) with 200. The
healthcheck's curl has no -f, so any answer counts; every service of the template waits
for this one. Not restated: log ingestion (POST /api/logs is accepted and dropped) and the
database it needs.
"""

import sys

from .common import Handler, Recorder
from . import common

SERVICE = "analytics"


class LogflareHandler(Handler):
    def route(self, method, path, query):
        if path == "/health":
            return self.reply(200, {"status": "ok"})
        if method == "POST" and path == "/api/logs":
            return self.reply(200, {"message": "Logged!"})
        self.reply(404, {"error": "Not Found"})


def main(argv):
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ("LOGFLARE_PUBLIC_ACCESS_TOKEN", "DB_HOSTNAME"))
    common.serve(SERVICE, 4000, LogflareHandler, rec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
