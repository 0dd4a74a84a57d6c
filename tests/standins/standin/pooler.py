"""Stand-in for Supavisor (image supabase/supavisor): `/app/bin/migrate`, `/app/bin/supavisor
eval …` and `/app/bin/server`, as upstream's compose chains them.

Restated from supabase/supavisor (lib/supavisor_web/router.ex): GET /api/health needs no
token (the compose healthcheck); the other API routes need an HS256 token signed with
API_JWT_SECRET (403 with an empty body otherwise). Not restated: pooling.
"""

import os

from . import common
from .common import Handler, Recorder

SERVICE = "pooler"


class PoolerHandler(Handler):
    def route(self, method, path, query):
        if path == "/api/health":
            return self.reply(204, b"")
        token = common.bearer(self.lower_headers()) or ""
        try:
            header, payload, signing_input, signature = common.split_token(token)
            ok = header.get("typ") == "JWT" and str(header.get("alg", "")).startswith("HS") and \
                common.verify_signature(header["alg"], (os.environ.get("API_JWT_SECRET") or "").encode(),
                                        signing_input, signature)
        except common.TokenFormatError:
            ok = False
        if not ok:
            return self.reply(403, b"")
        self.reply(404, {"error": "not found"})


def main(argv):
    prog = os.path.basename(argv[0])
    if prog in ("migrate", "supavisor"):
        return 0
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ("API_JWT_SECRET", "METRICS_JWT_SECRET"))
    common.serve(SERVICE, common.env_int("PORT", 4000), PoolerHandler, rec)
    return 0
