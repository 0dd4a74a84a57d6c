"""Stand-in for imgproxy (image darthsim/imgproxy, ENTRYPOINT ["imgproxy"]).

Restated: it listens on IMGPROXY_BIND (":8080" by default; compose sets ":5001"), answers
GET /health with 200, and `imgproxy health` exits 0 when that answer is 200 (upstream's
compose healthcheck). Not restated: image processing.
"""

import os

from . import common
from .common import Handler, Recorder

SERVICE = "imgproxy"


def port():
    bind = os.environ.get("IMGPROXY_BIND") or ":8080"
    return int(bind.rsplit(":", 1)[1])


class ImgproxyHandler(Handler):
    def route(self, method, path, query):
        if path == "/health":
            return self.reply(200, "imgproxy is running")
        self.reply(404, "Not found")


def main(argv):
    if argv[1:2] == ["health"]:
        return common.http_ok(f"http://127.0.0.1:{port()}/health", "imgproxy health")
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ("IMGPROXY_BIND",))
    common.serve(SERVICE, port(), ImgproxyHandler, rec)
    return 0
