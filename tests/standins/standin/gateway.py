"""The gateway machinery of the Kong stand-in: the LuaJIT coprocess that runs Kong's Lua, the
decision record, and the HTTP front that turns a decision into a proxied request. (Envoy is
not restated: the Docker tests run the real Envoy.)

The engine is pure apart from Lua: `decide(request) -> Decision` needs no network, which is
what tests/standins/gateway_check.py uses to compare configurations offline.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field

from .common import Handler, log

HOST_LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lua_host.lua")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length"}


def _enc(value):
    data = value.encode("latin-1", "replace") if isinstance(value, str) else bytes(value)
    return data.hex() if data else "-"


def _dec(field_):
    return "" if field_ == "-" else bytes.fromhex(field_).decode("latin-1")


class LuaError(Exception):
    pass


class LuaHost:
    """One LuaJIT process (lua_host.lua) serving every Lua call, one call at a time."""

    def __init__(self):
        luajit = os.environ.get("LUAJIT") or shutil.which("luajit")
        if not luajit:
            raise LuaError("luajit is not installed (Debian: apt-get install luajit)")
        self.proc = subprocess.Popen([luajit, HOST_LUA], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, encoding="ascii", bufsize=1)
        self.lock = threading.Lock()
        self.logs = []

    def call(self, *fields):
        with self.lock:
            self.proc.stdin.write(" ".join(fields) + "\n")
            self.proc.stdin.flush()
            logs = []
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    raise LuaError("luajit exited")
                parts = line.split()
                if parts[0] == "L":
                    logs.append((_dec(parts[1]), _dec(parts[2])))
                    continue
                if parts[0] == "ERR":
                    raise LuaError(_dec(parts[1]))
                return parts[1:], logs

    @staticmethod
    def list_fields(headers):
        out = [_enc(str(len(headers)))]
        for k, v in headers:
            out += [_enc(k), _enc(v)]
        return out

    @staticmethod
    def read_list(parts, i):
        n = int(_dec(parts[i]))
        items = [(_dec(parts[i + 2 * k + 1]), _dec(parts[i + 2 * k + 2])) for k in range(n)]
        return items, i + 2 * n + 1

    def kong_render(self, template, headers, query):
        parts, _ = self.call("T", _enc(template), *self.list_fields(headers), *self.list_fields(query))
        return _dec(parts[0])

    def kong_define(self, fid, code):
        self.call("K", _enc(fid), _enc(code))

    def kong_run(self, fid, headers, method, path):
        parts, logs = self.call("P", _enc(fid), *self.list_fields(headers), _enc(method), _enc(path))
        status = _dec(parts[0])
        new_headers, i = self.read_list(parts, 1)
        resp_headers, i = self.read_list(parts, i)
        body = _dec(parts[i])
        return new_headers, ((int(status), resp_headers, body) if status else None), logs


@dataclass
class Decision:
    """What a gateway does with one request: answer itself (status set) or forward it."""

    status: int = 0
    body: str = ""
    response_headers: list = field(default_factory=list)
    route: str = ""
    upstream: tuple = None  # (host, port)
    method: str = "GET"
    path: str = ""  # path and query sent upstream
    headers: list = field(default_factory=list)  # headers sent upstream (lower-case names)
    trace: list = field(default_factory=list)

    def header(self, name):
        """The value upstream receives (surrounding whitespace is not part of it)."""
        vals = [v.strip(" \t") for k, v in self.headers if k == name]
        return ",".join(vals) if vals else None

    def summary(self):
        out = {"route": self.route}
        if self.status:
            out.update(status=self.status, body=self.body)
        else:
            out.update(forward=f"{self.upstream[0]}:{self.upstream[1]}{self.path}" if self.upstream else None)
            for name in ("authorization", "apikey", "sb-api-key", "x-api-key", "host"):
                out[name] = self.header(name)
        return out


def hop_clean(headers):
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and not k.startswith(":")]


def forward(decision, body, timeout=30):
    """Sends the decided request upstream; returns (status, headers, body) or raises OSError."""
    host, port = decision.upstream
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(decision.method, decision.path, skip_host=True, skip_accept_encoding=True)
        for k, v in hop_clean(decision.headers):
            # Header values lose their surrounding whitespace on the wire (RFC 9110 OWS).
            conn.putheader(k, v.strip(" \t"))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.getheaders(), data
    finally:
        conn.close()


def resolves(host):
    try:
        socket.getaddrinfo(host, None)
        return True
    except OSError:
        return False


class GatewayHandler(Handler):
    """HTTP front of a gateway engine: decide, then answer or proxy."""

    engine = None
    # How the gateway answers an unreachable upstream: (status, body, content-type).
    unreachable = None
    proxied_headers = ()  # added to answers that came from the upstream

    def route(self, method, path, query):
        request_headers = [(k.lower(), v) for k, v in self.headers.items()]
        decision = self.engine.decide(method, self.path, request_headers, self.client_address[0])
        body = self.body()
        self.extra["route"] = decision.route
        if decision.status:
            self.extra["decision"] = decision.status
            return self.answer(decision.status, decision.response_headers, decision.body.encode("latin-1", "replace"))
        self.extra["forwarded"] = {k: decision.header(k) for k in ("authorization", "apikey", "sb-api-key", "x-api-key")
                                   if decision.header(k) is not None}
        self.extra["upstream"] = f"{decision.upstream[0]}:{decision.upstream[1]}{decision.path}"
        if not resolves(decision.upstream[0]):
            status, text, ctype = self.unreachable
            return self.answer(status, [("content-type", ctype)], text.encode())
        try:
            status, headers, data = forward(decision, body)
        except OSError as e:
            log(self.service, f"upstream {decision.upstream} failed: {e}")
            status, text, ctype = self.unreachable
            return self.answer(status, [("content-type", ctype)], text.encode())
        self.answer(status, [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP] + list(self.proxied_headers), data)

    def answer(self, status, headers, data):
        self.body()
        self.log_request(status)
        self.send_response_only(status)
        headers = [(k, v) for k, v in headers if k.lower() != "date"]
        for k, v in [("date", self.date_time_string())] + headers:
            self.send_header(k, v)
        self.finish_reply(status, data)


def request_id():
    return uuid.uuid4().hex


def dump(obj):
    return json.dumps(obj, indent=1, sort_keys=True)


def eprint(*a):
    print(*a, file=sys.stderr, flush=True)
