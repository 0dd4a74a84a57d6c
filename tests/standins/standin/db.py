"""Stand-in for the database (image supabase/postgres): no database, only what the stack's
healthchecks and start order need.

Restated: `docker-entrypoint.sh postgres …` starts a server on PGPORT/POSTGRES_PORT (5432)
that accepts TCP connections, and `pg_isready [-h HOST] [-p PORT]` prints
"HOST:PORT - accepting connections" and exits 0 when a connection succeeds, else
"HOST:PORT - no response" and exits 2 (PostgreSQL's pg_isready exit codes). It records
JWT_EXP (upstream's jwt.sql reads it).
"""

import os
import signal
import socket
import sys
import threading

from .common import Recorder, log

SERVICE = "db"


def port():
    return int(os.environ.get("PGPORT") or os.environ.get("POSTGRES_PORT") or 5432)


def pg_isready(argv):
    host, p = "localhost", port()
    args = argv[1:]
    for i, a in enumerate(args):
        if a in ("-h", "--host") and i + 1 < len(args):
            host = args[i + 1]
        elif a in ("-p", "--port") and i + 1 < len(args):
            p = int(args[i + 1])
    if host.startswith("/"):
        host = "localhost"
    try:
        with socket.create_connection((host, p), timeout=3):
            pass
    except OSError:
        print(f"{host}:{p} - no response")
        return 2
    print(f"{host}:{p} - accepting connections")
    return 0


def main(argv):
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ("JWT_EXP", "POSTGRES_PASSWORD", "POSTGRES_DB"))
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port()))
    srv.listen(64)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    log(SERVICE, f"accepting connections on {port()} (no database behind it)")

    def handle(conn):
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(1024)
            except OSError:
                pass

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
