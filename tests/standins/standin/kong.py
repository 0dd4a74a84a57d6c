"""Stand-in for Kong 3.9 in DB-less mode (image kong/kong, `kong docker-start`, `kong health`).

Restated from Kong/kong (3.x sources named below; the plugin texts were checked in this
project's research):
- DB-less start: KONG_DECLARATIVE_CONFIG (YAML) with `_format_version` 1.1/2.1/3.0;
  unknown top-level, service and route fields fail the start, `_comment`/`_ignore` are
  allowed; plugins must be enabled by KONG_PLUGINS ("bundled" by default); `expression`
  and `priority` exist on routes only with KONG_ROUTER_FLAVOR=expressions; key-auth keys
  are unique, a null key is generated, an empty one is refused; paths start with `/` or `~`.
- kong/router/transform.lua (get_priority, split_routes_and_services_by_path) + atc.lua:
  routes are tried by priority: `expression` routes before every traditional route (then by
  their `priority`), traditional ones by number of match fields, then by path length
  (each path of a route on its own); paths are prefixes (`~` = anchored regex).
- kong/router/utils.lua (path_handling v0): strip_path removes the matched prefix and
  joins the rest to the service path.
- Plugins run by priority, not by listing: cors 2000, key-auth 1250, basic-auth 1100,
  acl 950, request-transformer 801, request-termination 2, post-function -1000.
  * kong/plugins/key-auth/handler.lua: key from the `apikey` header, else the query;
    none → 401 "No API key found in request" + `WWW-Authenticate: Key realm="kong"`;
    unknown → 401 "Invalid authentication credentials"; two values → 401 "Duplicate API
    key found"; sets X-Consumer-Username etc.
  * basic-auth: none → 401 "Unauthorized" + `WWW-Authenticate: Basic realm="kong"`;
    wrong → 401 "Invalid authentication credentials"; hide_credentials drops the header.
  * acl: a consumer without an allowed group → 403 "You cannot consume this service".
  * request-transformer (access.lua): remove, rename, replace (only when present), add
    (only when absent), append, for headers and querystring; values split at the first
    colon(s) keep their leading space; `$(…)` templates run in LuaJIT (lua_host.lua).
  * request-termination: status_code + message through kong.response.error.
  * pre-/post-function: the Lua chunks run in LuaJIT with a small PDK mock.
- kong/tools/http.lua get_error_template: errors are JSON
  {"message":…,"request_id":…} (text/plain when the client accepts only text).
- `kong health`: healthy while the server whose pid is in <prefix>/pids/nginx.pid runs.
Not restated: cors response headers, other plugins (they fail the start loudly), TLS.
"""

import json
import os
import re
import sys
import uuid
from urllib.parse import parse_qsl, quote

import yaml

from . import common
from .common import Recorder, log
from .gateway import Decision, GatewayHandler, LuaHost

SERVICE = "kong"
ENV_USED = ("KONG_DECLARATIVE_CONFIG", "KONG_DATABASE", "KONG_ROUTER_FLAVOR", "KONG_PLUGINS",
            "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY",
            "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC", "DASHBOARD_USERNAME", "JWT_ISSUER")
VERSION = "3.9.3"
PRIORITY = {"cors": 2000, "ip-restriction": 990, "key-auth": 1250, "basic-auth": 1100, "acl": 950,
            "request-transformer": 801, "request-termination": 2, "pre-function": 1000000,
            "post-function": -1000}
RESTATED = set(PRIORITY) - {"ip-restriction"}
TOP_FIELDS = {"_format_version", "_transform", "_comment", "_ignore", "_workspace", "_info", "services",
              "routes", "consumers", "plugins", "upstreams", "targets", "certificates", "ca_certificates",
              "snis", "acls", "keyauth_credentials", "basicauth_credentials", "vaults"}
SERVICE_FIELDS = {"name", "url", "protocol", "host", "port", "path", "retries", "connect_timeout",
                  "write_timeout", "read_timeout", "tags", "client_certificate", "tls_verify",
                  "tls_verify_depth", "ca_certificates", "enabled", "routes", "plugins", "id"}
ROUTE_FIELDS = {"name", "protocols", "methods", "hosts", "paths", "headers", "https_redirect_status_code",
                "regex_priority", "strip_path", "path_handling", "preserve_host", "request_buffering",
                "response_buffering", "snis", "sources", "destinations", "tags", "service", "plugins", "id"}
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "grpc": 80, "grpcs": 443}


class ConfigError(Exception):
    pass


def check_fields(kind, entity, allowed):
    for key in entity:
        if key in allowed or key in ("_comment", "_ignore"):
            continue
        raise ConfigError(f"in '{kind}': {key}: unknown field")


# ---------------------------------------------------------------- expressions


TOKEN = re.compile(r'\s*(r#"(?:.|\n)*?"#|"(?:\\.|[^"\\])*"|\|\||&&|==|!=|\^=|=\^|~|!|\(|\)|not\s+in\b|in\b|contains\b|[A-Za-z_][A-Za-z0-9_.\-]*|\d+)')


def tokenize(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConfigError(f"Router Expression failed validation: cannot parse near {text[pos:pos + 20]!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


class Expression:
    """The part of Kong's ATC expression language routes use: predicates on http.path,
    http.method, http.host, net.protocol, http.headers.*, http.queries.*, joined by &&, ||,
    ! and parentheses. Evaluation returns (matched, stripped prefix of the path)."""

    OPS = {"==", "!=", "^=", "=^", "~", "contains", "in", "not in"}

    def __init__(self, text):
        self.tokens = tokenize(text)
        self.i = 0
        self.tree = self.parse_or()
        if self.i != len(self.tokens):
            raise ConfigError(f"Router Expression failed validation: unexpected {self.tokens[self.i]!r}")

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def parse_or(self):
        node = self.parse_and()
        while self.peek() == "||":
            self.take()
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self):
        node = self.parse_not()
        while self.peek() == "&&":
            self.take()
            node = ("and", node, self.parse_not())
        return node

    def parse_not(self):
        if self.peek() == "!":
            self.take()
            return ("not", self.parse_not())
        if self.peek() == "(":
            self.take()
            node = self.parse_or()
            if self.take() != ")":
                raise ConfigError("Router Expression failed validation: missing )")
            return node
        field = self.take()
        op = self.take()
        if op is not None and re.fullmatch(r"not\s+in", op):
            op = "not in"
        if op not in self.OPS:
            raise ConfigError(f"Router Expression failed validation: bad operator {op!r}")
        raw = self.take()
        if raw is None:
            raise ConfigError("Router Expression failed validation: missing value")
        if raw.startswith('r#"'):
            value = raw[3:-2]
        elif raw.startswith('"'):
            value = json.loads(raw)
        elif raw.isdigit():
            value = int(raw)
        else:
            raise ConfigError(f"Router Expression failed validation: bad value {raw!r}")
        return ("pred", field, op, value)

    def evaluate(self, req):
        strip = []
        ok = self._eval(self.tree, req, strip)
        return ok, (strip[0] if strip else None)

    def _eval(self, node, req, strip):
        kind = node[0]
        if kind == "or":
            return self._eval(node[1], req, strip) or self._eval(node[2], req, strip)
        if kind == "and":
            return self._eval(node[1], req, strip) and self._eval(node[2], req, strip)
        if kind == "not":
            return not self._eval(node[1], req, [])
        _, field, op, value = node
        actual = req.field(field)
        if actual is None:
            return False
        if op == "==":
            ok = actual == value
        elif op == "!=":
            ok = actual != value
        elif op == "^=":
            ok = str(actual).startswith(value)
        elif op == "=^":
            ok = str(actual).endswith(value)
        elif op == "~":
            m = re.search(value, str(actual))
            ok = m is not None
            if ok and field == "http.path":
                strip.append(str(actual)[:m.end()] if m.start() == 0 else "")
                return True
        elif op == "contains":
            ok = value in str(actual)
        else:
            ok = False
        if ok and field == "http.path" and op in ("==", "^="):
            strip.append(value)
        return ok


# ---------------------------------------------------------------- configuration


class Route:
    def __init__(self, d, service, flavor):
        check_fields("routes", d, ROUTE_FIELDS | ({"expression", "priority"} if flavor == "expressions" else set()))
        self.name = d.get("name") or d.get("id") or ""
        self.service = service
        self.strip_path = d.get("strip_path", True)
        self.preserve_host = d.get("preserve_host", False)
        self.methods = d.get("methods") or []
        self.hosts = d.get("hosts") or []
        self.headers = d.get("headers") or {}
        self.paths = d.get("paths") or []
        self.priority = int(d.get("priority") or 0)
        self.plugins = {}
        for p in self.paths:
            if not isinstance(p, str) or not (p.startswith("/") or p.startswith("~/")):
                raise ConfigError(f"in 'routes' {self.name!r}: paths: should start with: / (fixed path) "
                                  "or ~/ (regex path)")
        # kong/db/schema/entities/routes.lua: the buffering switches are booleans; Kong's
        # schema refuses another type (a string "false" included).
        for name in ("request_buffering", "response_buffering"):
            if name in d and not isinstance(d[name], bool):
                raise ConfigError(f"in 'routes' {self.name!r}: {name}: expected a boolean")
        self.expression = Expression(d["expression"]) if d.get("expression") else None
        if self.expression and self.paths:
            raise ConfigError(f"in 'routes' {self.name!r}: expression and paths cannot be combined")


class Service:
    def __init__(self, d):
        check_fields("services", d, SERVICE_FIELDS)
        self.name = d.get("name") or d.get("id")
        url = d.get("url")
        if url:
            m = re.match(r"^(https?|wss?|grpcs?)://([^/:]+)(?::(\d+))?(/.*)?$", url)
            if not m:
                raise ConfigError(f"in 'services' {self.name!r}: url: invalid url")
            self.protocol, self.host = m.group(1), m.group(2)
            self.port = int(m.group(3) or DEFAULT_PORTS[self.protocol])
            self.path = m.group(4)
        else:
            self.protocol = d.get("protocol", "http")
            self.host = d.get("host")
            self.port = int(d.get("port") or DEFAULT_PORTS.get(self.protocol, 80))
            self.path = d.get("path")
        if d.get("protocol"):
            self.protocol = d["protocol"]
        # kong/db/schema/entities/services.lua: the timeouts are integers from 1 to 2^31-2
        # (nonzero_timeout); a string such as "60" or "$KONG_STORAGE_CONNECT_TIMEOUT" is refused.
        for name in ("connect_timeout", "write_timeout", "read_timeout"):
            value = d.get(name)
            if name in d and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 2**31 - 2):
                raise ConfigError(f"in 'services' {self.name!r}: {name}: expected an integer")
        self.plugins = {}


class KongConfig:
    def __init__(self, doc, env):
        if not isinstance(doc, dict):
            raise ConfigError("expected an object")
        version = str(doc.get("_format_version", ""))
        if version not in ("1.1", "2.1", "3.0"):
            raise ConfigError(f"_format_version: expected one of: 1.1, 2.1, 3.0 (got {version!r})")
        check_fields("declarative config", doc, TOP_FIELDS)
        self.flavor = env.get("KONG_ROUTER_FLAVOR") or "traditional_compatible"
        enabled = [p.strip() for p in (env.get("KONG_PLUGINS") or "bundled").split(",") if p.strip()]
        self.enabled = set(enabled)
        self.services, self.routes, self.global_plugins = {}, [], {}
        self.consumers, self.keys, self.basic = {}, {}, {}
        for sd in doc.get("services") or []:
            svc = Service(sd)
            self.services[svc.name] = svc
            for pd in sd.get("plugins") or []:
                self._plugin(pd, svc.plugins)
            for rd in sd.get("routes") or []:
                self._route(rd, svc)
        for rd in doc.get("routes") or []:
            svc = self.services.get(rd.get("service") if not isinstance(rd.get("service"), dict)
                                    else rd["service"].get("name"))
            if svc is None:
                raise ConfigError(f"in 'routes' {rd.get('name')!r}: service: unknown reference")
            self._route(rd, svc)
        for pd in doc.get("plugins") or []:
            target = self.global_plugins
            if pd.get("service"):
                target = self.services[pd["service"]].plugins
            elif pd.get("route"):
                target = next(r for r in self.routes if r.name == pd["route"]).plugins
            self._plugin(pd, target)
        for cd in doc.get("consumers") or []:
            name = cd.get("username") or cd.get("custom_id")
            self.consumers[name] = {"username": cd.get("username"), "id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(name))),
                                    "groups": []}
            for kd in cd.get("keyauth_credentials") or []:
                self._key(kd, name)
            for bd in cd.get("basicauth_credentials") or []:
                self._basic(bd, name)
            for ad in cd.get("acls") or []:
                self.consumers[name]["groups"].append(ad.get("group"))
        for kd in doc.get("keyauth_credentials") or []:
            self._key(kd, self._consumer_ref(kd))
        for bd in doc.get("basicauth_credentials") or []:
            self._basic(bd, self._consumer_ref(bd))
        for ad in doc.get("acls") or []:
            self.consumers[self._consumer_ref(ad)]["groups"].append(ad.get("group"))
        self.order = self._order()

    def _consumer_ref(self, d):
        ref = d.get("consumer")
        if isinstance(ref, dict):
            ref = ref.get("username") or ref.get("id")
        if ref not in self.consumers:
            raise ConfigError(f"consumer: unknown reference {ref!r}")
        return ref

    def _key(self, kd, consumer):
        key = kd.get("key") if isinstance(kd, dict) else None
        if key is None:
            key = uuid.uuid4().hex  # `auto = true`: Kong generates a key
        if not isinstance(key, str) or key == "":
            raise ConfigError("in 'keyauth_credentials': key: length must be at least 1")
        if key in self.keys:
            raise ConfigError("uniqueness violation: 'keyauth_credentials' entity with key set to "
                              "'<redacted>' already declared")
        self.keys[key] = consumer

    def _basic(self, bd, consumer):
        user, password = bd.get("username"), bd.get("password")
        if not user or password is None:
            raise ConfigError("in 'basicauth_credentials': username and password are required")
        self.basic[str(user)] = (consumer, str(password))

    def _plugin(self, pd, target):
        name = pd.get("name")
        if name not in self.enabled and not ("bundled" in self.enabled and name in PRIORITY):
            raise ConfigError(f"plugin '{name}' not enabled; add it to the 'plugins' configuration property")
        if name not in RESTATED:
            raise ConfigError(f"stand-in: plugin '{name}' is not restated")
        if pd.get("enabled", True) is False:
            return
        target[name] = pd.get("config") or {}

    def _route(self, rd, svc):
        route = Route(rd, svc, self.flavor)
        for pd in rd.get("plugins") or []:
            self._plugin(pd, route.plugins)
        self.routes.append(route)

    def _order(self):
        """(priority, route, path) candidates, best first (router/transform.lua get_priority)."""
        cands = []
        for idx, r in enumerate(self.routes):
            if r.expression:
                cands.append(((1, r.priority, 0, 0, 0, 0), idx, r, None))
                continue
            weight = sum(1 for f in (r.methods, r.hosts, r.headers, r.paths) if f)
            plain_host = 1 if r.hosts and not any("*" in h for h in r.hosts) else 0
            for p in r.paths or [None]:
                regex = 1 if p and p.startswith("~") else 0
                length = 0 if (p is None or regex) else len(p)
                cands.append(((0, weight, plain_host, len(r.headers), regex, length), idx, r, p))
        cands.sort(key=lambda c: (c[0], -c[1]), reverse=True)
        return [(r, p) for _, _, r, p in cands]


# ---------------------------------------------------------------- request


def normalize(path):
    path = re.sub(r"%(4[1-9A-Fa-f]|5[0-9Aa]|6[1-9A-Fa-f]|7[0-9Aa]|3[0-9]|2[DEde]|5[Ff]|7[Ee])",
                  lambda m: chr(int(m.group(1), 16)), path)
    out = []
    for seg in path.split("/"):
        if seg == "..":
            if len(out) > 1:
                out.pop()
        elif seg != ".":
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


class Request:
    def __init__(self, method, path, query, headers):
        self.method, self.path, self.query, self.headers = method, path, query, headers

    def header(self, name):
        vals = [v for k, v in self.headers if k == name]
        return vals[0] if vals else None

    def field(self, name):
        if name == "http.path":
            return self.path
        if name == "http.method":
            return self.method
        if name == "http.host":
            return (self.header("host") or "").split(":")[0]
        if name == "net.protocol":
            return "http"
        if name.startswith("http.headers."):
            return self.header(name[len("http.headers."):].replace("_", "-"))
        if name.startswith("http.queries."):
            vals = [v for k, v in parse_qsl(self.query, keep_blank_values=True) if k == name[len("http.queries."):]]
            return vals[0] if vals else None
        return None


def kong_error_body(status, message, accept, rid):
    if accept and "json" not in accept and accept.startswith("text/plain"):
        return f"{message}\nrequest_id: {rid}\n", "text/plain; charset=utf-8"
    return ('{\n  "message":%s,\n  "request_id":"%s"\n}' % (json.dumps(message), rid),
            "application/json; charset=utf-8")


DEFAULT_MESSAGES = {401: "Unauthorized", 404: "Not found", 503: "Service unavailable", 500: "An unexpected error occurred"}


def query_pairs(query):
    """ngx.req.get_uri_args: decoded pairs; a name without `=` is a flag."""
    out = []
    for part in query.split("&") if query else []:
        if not part:
            continue
        if "=" in part:
            k, v = part.split("=", 1)
            out.append((unquote(k), unquote(v)))
        else:
            out.append((unquote(part), "\0true"))
    return out


def unquote(s):
    from urllib.parse import unquote_plus
    return unquote_plus(s)


def encode_query(pairs):
    """kong.tools.http encode_args: keys sorted, values escaped, flags bare."""
    items = sorted(pairs, key=lambda kv: kv[0])
    out = []
    for k, v in items:
        if v == "\0true":
            out.append(quote(k, safe=""))
        else:
            out.append(f"{quote(k, safe='')}={quote(v, safe='')}")
    return "&".join(out)


class KongEngine:
    def __init__(self, cfg, lua=None):
        self.cfg = cfg
        self.lua = lua or LuaHost()
        self.functions = {}
        n = 0
        for holder in [cfg.global_plugins] + [s.plugins for s in cfg.services.values()] + [r.plugins for r in cfg.routes]:
            for name in ("pre-function", "post-function"):
                for code in (holder.get(name) or {}).get("access") or []:
                    fid = str(n)
                    n += 1
                    self.lua.kong_define(fid, code)
                    self.functions[id(code)] = fid

    def error(self, d, status, message=None, headers=(), accept=None):
        message = message or DEFAULT_MESSAGES.get(status, "")
        body, ctype = kong_error_body(status, message, accept, d.request_id)
        d.status, d.body = status, body
        d.response_headers = [("content-type", ctype), ("server", f"kong/{VERSION}"),
                              ("x-kong-request-id", d.request_id)] + list(headers)
        return d

    def match(self, req):
        for route, path in self.cfg.order:
            if route.methods and req.method not in route.methods:
                continue
            if route.hosts and req.field("http.host") not in route.hosts:
                continue
            if route.expression:
                ok, strip = route.expression.evaluate(req)
                if ok:
                    return route, strip
                continue
            if path is None:
                return route, ""
            if path.startswith("~"):
                m = re.match(path[1:], req.path)
                if m:
                    return route, m.group(0)
            elif req.path.startswith(path):
                return route, path
        return None, None

    def plugins_for(self, route):
        merged = dict(self.cfg.global_plugins)
        merged.update(route.service.plugins)
        merged.update(route.plugins)
        return sorted(merged.items(), key=lambda kv: PRIORITY[kv[0]], reverse=True)

    def decide(self, method, raw_path, request_headers, remote="127.0.0.1"):
        d = Decision(method=method)
        d.request_id = uuid.uuid4().hex
        path, _, query = raw_path.partition("?")
        path = normalize(path)
        headers = [(k.lower(), v) for k, v in request_headers]
        accept = next((v for k, v in headers if k == "accept"), None)
        req = Request(method, path, query, headers)
        route, strip = self.match(req)
        if route is None:
            d.trace.append("no route")
            return self.error(d, 404, "no Route matched with those values", accept=accept)
        d.route = route.name
        ctx = {"consumer": None, "query": query, "query_changed": False}
        for name, conf in self.plugins_for(route):
            handler = getattr(self, "p_" + name.replace("-", "_"))
            out = handler(d, conf, req, ctx, accept)
            if out is not None:
                return out
        svc = route.service
        rest = path[len(strip):] if (route.strip_path and strip) else path
        d.path = join_v0(svc.path or "/", rest, path) if route.strip_path else join_v0(svc.path or "/", path, path)
        q = encode_query(ctx["query_pairs"]) if ctx["query_changed"] else query
        if q:
            d.path += "?" + q
        d.upstream = (svc.host, svc.port)
        host = req.header("host") if route.preserve_host else (
            svc.host if svc.port == DEFAULT_PORTS.get(svc.protocol) else f"{svc.host}:{svc.port}")
        out = [("host", host)] + [(k, v) for k, v in req.headers if k != "host"]
        out += [("x-forwarded-for", remote), ("x-forwarded-proto", "http"),
                ("x-forwarded-host", (req.header("host") or "").split(":")[0]),
                ("x-forwarded-path", path), ("x-real-ip", remote)]
        if route.strip_path and strip:
            out.append(("x-forwarded-prefix", strip.rstrip("/") or "/"))
        d.headers = out
        d.trace.append(f"proxy: {svc.name} {d.path}")
        return d

    # -------------------------------------------------------------- plugins

    def p_cors(self, d, conf, req, ctx, accept):
        if req.method == "OPTIONS" and req.header("origin") and req.header("access-control-request-method"):
            d.status, d.body = 200, ""
            d.response_headers = [("access-control-allow-origin", "*"),
                                  ("access-control-allow-methods", "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT")]
            d.trace.append("cors: preflight answered")
            return d
        return None

    def p_key_auth(self, d, conf, req, ctx, accept):
        if req.method == "OPTIONS" and conf.get("run_on_preflight") is False:
            return None
        key = None
        for name in conf.get("key_names") or ["apikey"]:
            vals = [v for k, v in req.headers if k == name.lower().replace("_", "-")] if conf.get("key_in_header", True) else []
            if not vals and conf.get("key_in_query", True):
                vals = [v for k, v in query_pairs(ctx["query"]) if k == name]
            if len(vals) > 1:
                return self.error(d, 401, "Duplicate API key found", accept=accept)
            if vals:
                key = vals[0]
                if conf.get("hide_credentials"):
                    req.headers[:] = [(k, v) for k, v in req.headers if k != name.lower()]
                break
        if not key or key == "\0true":
            d.trace.append("key-auth: no key")
            return self.error(d, 401, "No API key found in request", [("www-authenticate", 'Key realm="kong"')], accept)
        consumer = self.cfg.keys.get(key)
        if consumer is None:
            d.trace.append("key-auth: unknown key")
            return self.error(d, 401, "Invalid authentication credentials", accept=accept)
        self.authenticate(req, ctx, consumer)
        d.trace.append(f"key-auth: consumer {consumer}")
        return None

    def authenticate(self, req, ctx, consumer):
        ctx["consumer"] = consumer
        c = self.cfg.consumers[consumer]
        req.headers[:] = [(k, v) for k, v in req.headers if k not in ("x-consumer-id", "x-consumer-username",
                                                                        "x-anonymous-consumer")]
        req.headers += [("x-consumer-id", c["id"]), ("x-consumer-username", c["username"] or "")]

    def p_basic_auth(self, d, conf, req, ctx, accept):
        value = req.header("authorization") or req.header("proxy-authorization")
        if value is None:
            return self.error(d, 401, "Unauthorized", [("www-authenticate", 'Basic realm="kong"')], accept)
        user = password = None
        m = re.match(r"\s*[Bb]asic\s*(.+)", value)
        if m:
            import base64
            try:
                decoded = base64.b64decode(m.group(1)).decode("latin-1")
            except ValueError:
                decoded = ""
            if ":" in decoded and not decoded.startswith(":"):
                user, password = decoded.split(":", 1)
        if conf.get("hide_credentials"):
            req.headers[:] = [(k, v) for k, v in req.headers if k not in ("authorization", "proxy-authorization")]
        cred = self.cfg.basic.get(user) if user else None
        if cred is None or cred[1] != password:
            d.trace.append("basic-auth: invalid credentials")
            return self.error(d, 401, "Invalid authentication credentials", accept=accept)
        self.authenticate(req, ctx, cred[0])
        d.trace.append(f"basic-auth: consumer {cred[0]}")
        return None

    def p_acl(self, d, conf, req, ctx, accept):
        consumer = ctx["consumer"]
        if consumer is None:
            return self.error(d, 401, accept=accept)
        groups = self.cfg.consumers[consumer]["groups"]
        allow, deny = conf.get("allow"), conf.get("deny")
        if (allow and not any(g in allow for g in groups)) or (deny and any(g in deny for g in groups)):
            d.trace.append(f"acl: groups {groups} refused")
            return self.error(d, 403, "You cannot consume this service", accept=accept)
        if not conf.get("hide_groups_header"):
            req.headers.append(("x-consumer-groups", ", ".join(groups)))
        d.trace.append(f"acl: groups {groups} allowed")
        return None

    def p_ip_restriction(self, d, conf, req, ctx, accept):
        return None

    def p_request_termination(self, d, conf, req, ctx, accept):
        status = int(conf.get("status_code") or 503)
        if conf.get("body"):
            d.status, d.body = status, conf["body"]
            d.response_headers = [("content-type", conf.get("content_type") or "application/json; charset=utf-8")]
            return d
        d.trace.append(f"request-termination: {status}")
        return self.error(d, status, conf.get("message"), accept=accept)

    def render(self, value, template_headers, template_query):
        if "$(" not in value:
            return value
        return self.lua.kong_render(value, template_headers, template_query)

    def p_request_transformer(self, d, conf, req, ctx, accept):
        # The template environment sees the request as the plugin found it.
        t_headers = list(req.headers)
        t_query = query_pairs(ctx["query"])

        def items(section, kind):
            for pair in (conf.get(section) or {}).get(kind) or []:
                m = re.match(r"^([^:]+):*(.*)$", pair, re.S)
                name, value = m.group(1), m.group(2)
                yield name, (self.render(value, t_headers, t_query) if value != "" else None)

        headers = req.headers
        present = lambda n: any(k == n for k, _ in headers)  # noqa: E731
        for name, _ in items("remove", "headers"):
            headers[:] = [(k, v) for k, v in headers if k != name.lower()]
        for name, value in items("rename", "headers"):
            new = (value or "").strip().lower()
            headers[:] = [((new if k == name.lower() else k), v) for k, v in headers]
        for name, value in items("replace", "headers"):
            n = name.lower()
            if present(n) and value is not None:
                headers[:] = [(k, v) for k, v in headers if k != n] + [(n, value)]
        for name, value in items("add", "headers"):
            n = name.lower()
            if not present(n) and value is not None:
                headers.append((n, value))
        for name, value in items("append", "headers"):
            if value is not None:
                headers.append((name.lower(), value))
        pairs = query_pairs(ctx["query"])
        changed = False
        qpresent = lambda n: any(k == n for k, _ in pairs)  # noqa: E731
        for name, _ in items("remove", "querystring"):
            pairs, changed = [(k, v) for k, v in pairs if k != name], True
        for name, value in items("replace", "querystring"):
            if qpresent(name) and value is not None:
                pairs, changed = [(k, v) for k, v in pairs if k != name] + [(name, value)], True
        for name, value in items("add", "querystring"):
            if not qpresent(name) and value is not None:
                pairs.append((name, value))
                changed = True
        for name, value in items("append", "querystring"):
            if value is not None:
                pairs.append((name, value))
                changed = True
        if changed:
            ctx["query_pairs"], ctx["query_changed"] = pairs, True
            ctx["query"] = encode_query(pairs)
        d.trace.append("request-transformer: applied")
        return None

    def _function(self, d, conf, req, ctx, accept, phase_name):
        for code in conf.get("access") or []:
            fid = self.functions[id(code)]
            headers, resp, logs = self.lua.kong_run(fid, req.headers, req.method, req.path)
            req.headers[:] = headers
            for level, msg in logs:
                d.trace.append(f"{phase_name} {level}: {msg}")
            if resp:
                status, rh, body = resp
                d.status, d.body, d.response_headers = status, body, rh
                return d
        d.trace.append(f"{phase_name}: ran")
        return None

    def p_pre_function(self, d, conf, req, ctx, accept):
        return self._function(d, conf, req, ctx, accept, "pre-function")

    def p_post_function(self, d, conf, req, ctx, accept):
        return self._function(d, conf, req, ctx, accept, "post-function")


def join_v0(base, rest, full_path):
    """kong/router/utils.lua, path_handling v0, strip_path on."""
    if base.endswith("/"):
        return base + (rest[1:] if rest.startswith("/") else rest)
    if rest == "":
        if base == "/":
            return "/"
        return base + "/" if full_path.endswith("/") else base
    return base + rest if rest.startswith("/") else base + "/" + rest


class KongHandler(GatewayHandler):
    unreachable = (502, "An invalid response was received from the upstream server", "application/json; charset=utf-8")
    proxied_headers = (("Via", f"1.1 kong/{VERSION}"),)


def prefix():
    return os.environ.get("KONG_PREFIX") or "/usr/local/kong"


def health():
    pid_file = os.path.join(prefix(), "pids", "nginx.pid")
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        print(f"Error: Kong is not running at {prefix()}", file=sys.stderr)
        return 1
    print(f"nginx.......running\n\nKong is healthy at {prefix()}")
    return 0


def load(path, env, rec=None):
    with open(path, "rb") as f:
        data = f.read()
    if rec is not None:
        rec.file(path, data, also="kong.yml")
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise ConfigError(f"failed parsing declarative configuration: {e}") from None
    return KongConfig(doc, env)


def main(argv):
    args = argv[1:]
    if args[:1] == ["health"]:
        return health()
    if args[:1] in (["version"], ["--version"]):
        print(f"Kong {VERSION} (stand-in)")
        return 0
    if args[:1] not in (["docker-start"], ["start"]):
        log(SERVICE, f"kong stand-in: unsupported command {args!r}")
        return 1
    # `kong prepare` starts from a clean prefix: no pid file of a previous run.
    try:
        os.unlink(os.path.join(prefix(), "pids", "nginx.pid"))
    except OSError:
        pass
    rec = Recorder(SERVICE)
    rec.start(args, ENV_USED)
    env = os.environ
    if (env.get("KONG_DATABASE") or "postgres") != "off":
        log(SERVICE, "Error: the stand-in runs DB-less only (KONG_DATABASE=off)")
        return 1
    path = env.get("KONG_DECLARATIVE_CONFIG")
    if not path:
        log(SERVICE, "Error: KONG_DECLARATIVE_CONFIG is not set")
        return 1
    try:
        cfg = load(path, env, rec)
    except OSError as e:
        log(SERVICE, f"Error: {e}")
        return 1
    except ConfigError as e:
        log(SERVICE, f"Error: failed loading declarative config file {path}: {e}")
        return 1
    KongHandler.engine = KongEngine(cfg)
    rec.note("routes", [r.name for r in cfg.routes])
    listen = (env.get("KONG_PROXY_LISTEN") or "0.0.0.0:8000").split(",")[0].split()[0]
    host, port = listen.rsplit(":", 1)

    def write_pid():
        os.makedirs(os.path.join(prefix(), "pids"), exist_ok=True)
        with open(os.path.join(prefix(), "pids", "nginx.pid"), "w") as f:
            f.write(f"{os.getpid()}\n")

    common.serve(SERVICE, int(port), KongHandler, rec, host=host, ready=write_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
