#!/usr/bin/env python3
"""The answers Envoy makes itself, sent by the real binary, against the bytes doctor reads.

usage:
  envoy_replies.py upstream                 the service behind Envoy (in a container, port 9000)
  envoy_replies.py capture PORT DIR         one request per reply kind to 127.0.0.1:PORT,
                                            each raw answer written to DIR/<kind>.http
  envoy_replies.py compare GOT_DIR WANT_DIR one line per kind; exit 1 when one differs

Requests are sent as doctor sends them (HTTP/1.1, `Connection: close`) to the routes of
envoy-replies.yaml. Compared: the status line, each header name and value in order, and the
body; the values of `date` and `x-envoy-upstream-service-time` change from one run to the
next and are not compared.
"""
import json
import os
import socket
import sys
import time

# kind -> (path, extra header lines)
REQUESTS = {
    "relayed": ("/relayed", ""),
    "lua-refusal": ("/lua-refusal", ""),
    "rbac-denied": ("/rbac-denied", ""),
    "connection-refused": ("/connection-refused", ""),
    "no-healthy-upstream": ("/no-healthy-upstream", ""),
    "timeout": ("/timeout", ""),
    "basic-auth-missing": ("/dashboard", ""),
    "basic-auth-wrong": ("/dashboard", "Authorization: Basic dTp4\r\n"),
    # Past basic auth (it guards paths without a route too), the router finds none.
    "no-route": ("/nothing", "Authorization: Basic dTpw\r\n"),
    "underscore-header": ("/relayed", "x_forwarded: 1\r\n"),
    "escaped-slash": ("/relayed%2Fx", ""),
}
VOLATILE = ("date", "x-envoy-upstream-service-time")


def upstream():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path.startswith("/timeout"):
                time.sleep(3)  # longer than the route's 1 s timeout
            body = json.dumps({"code": "PGRST205", "message": "no such table"}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("0.0.0.0", 9000), Handler).serve_forever()


def exchange(port, path, extra):
    raw = f"GET {path} HTTP/1.1\r\nHost: api-gw:8000\r\nAccept: application/json\r\nConnection: close\r\n{extra}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def capture(port, out):
    # Envoy answers once its clusters are initialised: wait for the relayed answer (bounded).
    deadline = time.monotonic() + 30
    while True:
        try:
            if exchange(port, "/relayed", "").startswith(b"HTTP/1.1 404"):
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit("envoy_replies: Envoy did not relay an answer within 30 s")
        time.sleep(0.2)
    os.makedirs(out, exist_ok=True)
    for kind, (path, extra) in REQUESTS.items():
        with open(os.path.join(out, kind + ".http"), "wb") as f:
            f.write(exchange(port, path, extra))


def comparable(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        name, _, value = line.partition(":")
        out.append(name + ":" if name.lower() in VOLATILE else f"{name}:{value}")
    return out, body


def compare(got_dir, want_dir):
    bad = 0
    for kind in REQUESTS:
        got = open(os.path.join(got_dir, kind + ".http"), "rb").read()
        want = open(os.path.join(want_dir, kind + ".http"), "rb").read()
        (gh, gb), (wh, wb) = comparable(got), comparable(want)
        if (gh, gb) == (wh, wb):
            print(f"same  {kind}: {gh[0]} {gb[:60]!r}")
        else:
            bad += 1
            print(f"DIFF  {kind}: got {gh} {gb[:80]!r}\n      doctor's tests read {wh} {wb[:80]!r}")
    return 1 if bad else 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "upstream":
        upstream()
    elif cmd == "capture" and len(sys.argv) == 4:
        capture(int(sys.argv[2]), sys.argv[3])
    elif cmd == "compare" and len(sys.argv) == 4:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
