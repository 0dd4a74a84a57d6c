"""Stand-in for MinIO (Coolify's Supabase template: image ghcr.io/coollabsio/minio with
`server --console-address ":9001" /data`, healthcheck `mc ready local`) and for the MinIO
client `mc` (image minio/mc, which the template's one-shot minio-createbucket runs through
its entrypoint.sh: `mc alias set`, then `mc mb --ignore-existing ALIAS/BUCKET`).

Restated only what start order and the healthchecks need (MinIO's documented health API,
minio/minio cmd/healthcheck-router.go: GET /minio/health/live and /minio/health/ready answer
200; mc's `ready ALIAS` waits for the ready answer; the minio image ships mc with the alias
`local` for http://localhost:9000). `mc mb` sends PUT /<bucket>; the server answers 200, or
409 BucketAlreadyOwnedByYou for a bucket it has, which --ignore-existing accepts. Not
restated: storage, signatures, the console.
"""

import json
import os
import sys
import urllib.error
import urllib.request

from . import common
from .common import Handler, Recorder, log

SERVICE = "minio"
ALIASES = "/tmp/.mc-aliases.json"  # mc keeps its aliases in ~/.mc/config.json


class MinioHandler(Handler):
    buckets = set()

    def route(self, method, path, query):
        if path in ("/minio/health/live", "/minio/health/ready"):
            return self.reply(200, b"")
        bucket = path.strip("/")
        if method == "PUT" and bucket and "/" not in bucket:
            if bucket in self.buckets:
                return self.reply(409, b"<Error><Code>BucketAlreadyOwnedByYou</Code></Error>",
                                  content_type="application/xml")
            self.buckets.add(bucket)
            return self.reply(200, b"")
        self.reply(404, b"<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml")


def server(args):
    rec = Recorder(SERVICE)
    rec.start(args, ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"))
    if not os.environ.get("MINIO_ROOT_USER") or not os.environ.get("MINIO_ROOT_PASSWORD"):
        log(SERVICE, "MINIO_ROOT_USER and MINIO_ROOT_PASSWORD are required")
        return 1
    common.serve(SERVICE, 9000, MinioHandler, rec)
    return 0


def aliases():
    try:
        with open(ALIASES, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"local": "http://localhost:9000"}


def mc(args):
    if args[:1] == ["ready"] and len(args) == 2:
        url = aliases().get(args[1])
        return 1 if url is None else common.http_ok(url + "/minio/health/ready", "mc ready")
    if args[:2] == ["alias", "set"] and len(args) >= 4:
        known = aliases()
        known[args[2]] = args[3].rstrip("/")
        with open(ALIASES, "w", encoding="utf-8") as f:
            json.dump(known, f)
        print(f"Added `{args[2]}` successfully.")
        return 0
    if args[:1] == ["mb"]:
        ignore = "--ignore-existing" in args
        target = [a for a in args[1:] if not a.startswith("-")]
        alias, _, bucket = (target[0] if target else "").partition("/")
        url = aliases().get(alias)
        if url is None or not bucket:
            print(f"mc: <ERROR> Unable to make bucket `{alias}/{bucket}`.", file=sys.stderr)
            return 1
        req = urllib.request.Request(f"{url}/{bucket}", method="PUT", data=b"")
        try:
            with urllib.request.urlopen(req, timeout=10):
                pass
        except urllib.error.HTTPError as e:
            if not (e.code == 409 and ignore):
                print(f"mc: <ERROR> Unable to make bucket `{alias}/{bucket}`: {e.code}", file=sys.stderr)
                return 1
        except OSError as e:
            print(f"mc: <ERROR> Unable to make bucket `{alias}/{bucket}`: {e}", file=sys.stderr)
            return 1
        print(f"Bucket created successfully `{alias}/{bucket}`.")
        return 0
    print(f"mc stand-in: unsupported command {args!r}", file=sys.stderr)
    return 1


def main(argv):
    if os.path.basename(argv[0]) == "mc":
        return mc(argv[1:])
    if argv[1:2] != ["server"]:
        log(SERVICE, f"minio stand-in: unsupported command {argv[1:]!r}")
        return 1
    return server(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
