"""Stand-in for postgres-meta (image supabase/postgres-meta, `node dist/server/server.js`).

postgres-meta checks no JWT (the gateway's /pg/ route is what protects it: admin key only).
Restated: it listens on PG_META_PORT (8080). Not restated: the database; every GET answers
an empty JSON list, which is what an empty database gives for its list endpoints.
"""

import sys

from . import common
from .common import Handler, Recorder

SERVICE = "meta"


class MetaHandler(Handler):
    def route(self, method, path, query):
        if path == "/health":
            return self.reply(200, {"date": "stand-in"})
        self.reply(200, [])


def main(argv):
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ("PG_META_PORT", "CRYPTO_KEY"))
    common.serve(SERVICE, common.env_int("PG_META_PORT", 8080), MetaHandler, rec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
