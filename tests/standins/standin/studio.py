"""Stand-in for Studio (image supabase/studio, `node apps/studio/server.js`).

Studio verifies no token itself (supabase/supabase apps/studio: AUTH_JWT_SECRET is handed
to the browser, which signs its own HS256 role-impersonation tokens). What is restated:
it listens on PORT (3000) on the address HOSTNAME names, and upstream's healthcheck fetches
/api/platform/profile and expects 200 (docker/docker-compose.yml, service studio). The
stand-in records the key variables it is given. Not restated: the dashboard itself.
"""

import os
import sys

from . import common
from .common import Handler, Recorder

SERVICE = "studio"
ENV_USED = ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY",
            "AUTH_JWT_SECRET", "SUPABASE_URL", "SUPABASE_PUBLIC_URL")


class StudioHandler(Handler):
    def route(self, method, path, query):
        if path == "/api/platform/profile":
            return self.reply(200, {"id": 1, "primary_email": "admin@example.com", "username": "supabase"})
        if path.startswith("/api/"):
            return self.reply(404, {"message": "Not found"})
        self.reply(200, "<!doctype html><title>Supabase Studio (stand-in)</title>", content_type="text/html; charset=utf-8")


def main(argv):
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ENV_USED, argv_file="node-argv")
    # Next.js' standalone server binds to HOSTNAME (docker sets it to the container id,
    # hence upstream's HOSTNAME: "0.0.0.0"; with the container id, localhost does not answer).
    host = os.environ.get("HOSTNAME") or "0.0.0.0"
    common.serve(SERVICE, common.env_int("PORT", 3000), StudioHandler, rec, host=host)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
