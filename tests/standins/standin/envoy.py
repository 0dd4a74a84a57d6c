"""Stand-in for Envoy (image envoyproxy/envoy, `envoy -c /etc/envoy/envoy.yaml`): it loads
the same files Envoy does and makes the same decisions for the parts Supabase uses.

Restated from Envoy's configuration reference (envoyproxy/envoy api/envoy/... protos and
docs) and source where named:
- bootstrap: dynamic_resources.{lds,cds}_config.path_config_source.path (and
  static_resources) name the listener and cluster files; a cluster's address is its first
  load_assignment endpoint.
- http_connection_manager: normalize_path (RFC 3986 dot segments, unreserved %XX decoded),
  merge_slashes, path_with_escaped_slashes_action REJECT_REQUEST (%2F/%5C → 400),
  headers_with_underscores_action REJECT_REQUEST (→ 400); virtual hosts by domain.
- routes, first match wins: match.prefix (against :path, query included), match.path
  (exact, query excluded), match.safe_regex; route.prefix_rewrite, host_rewrite_literal;
  request_headers_to_add (append_action, %REQ(...)% and %DOWNSTREAM_LOCAL_PORT%) and
  request_headers_to_remove applied by the router; no route → 404.
- http_filters run in order; typed_per_filter_config {disabled: true} skips a filter on a
  route:
  * envoy.filters.http.cors: a preflight with an allowed origin is answered 200.
  * envoy.filters.http.basic_auth (source/extensions/filters/http/basic_auth/
    basic_auth_filter.cc, config.cc): users are htpasswd `user:{SHA}base64(sha1)` lines;
    401 "User authentication failed. Missing username and password." /
    "… Expected 'Basic' authentication scheme." / "… Invalid basic credential format." /
    "… Invalid username/password combination.", with `www-authenticate: Basic
    realm="http://<host><path>"`; a malformed user list rejects the listener.
  * envoy.filters.http.lua: inline_code run by LuaJIT (standin/lua_host.lua); respond()
    answers; a script error is logged and the request goes on.
  * envoy.filters.http.rbac: ALLOW/DENY rules of policies (permissions: any, url_path,
    header, and/or/not; principals: any, header, ip ranges, and/or/not); RBACPerRoute
    replaces them on a route; a denial is 403 "RBAC: access denied".
  * envoy.filters.http.router: forwards to the route's cluster.
A listener the stand-in cannot load is logged as rejected and not served (Envoy keeps
running without it), so the gateway's TCP healthcheck fails as it would.
"""

import base64
import hashlib
import ipaddress
import re
import signal
import sys
import time
import uuid

import yaml

from . import common
from .common import Recorder, log
from .gateway import Decision, GatewayHandler, LuaHost

SERVICE = "envoy"
ENV_USED = ("ANON_KEY", "SERVICE_ROLE_KEY", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY",
            "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC", "SUPABASE_PUBLIC_URL",
            "DASHBOARD_USERNAME", "JWT_ISSUER")
UNRESERVED = re.compile(r"%(4[1-9A-Fa-f]|5[0-9Aa]|6[1-9A-Fa-f]|7[0-9Aa]|3[0-9]|2[DEde]|5[Ff]|7[Ee])")
SHA_PREFIX = "{SHA}"


class ConfigError(Exception):
    pass


def load_yaml(path, read):
    with open(path, "rb") as f:
        data = f.read()
    read.append((path, data))
    try:
        return yaml.safe_load(data) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: {e}") from None


def _resources(doc, type_suffix):
    return [r for r in (doc.get("resources") or []) if str(r.get("@type", "")).endswith(type_suffix)]


def remove_dot_segments(path):
    out = []
    for seg in path.split("/"):
        if seg == "..":
            if len(out) > 1:
                out.pop()
        elif seg != ".":
            out.append(seg)
    if path.endswith(("/.", "/..")):
        out.append("")
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def string_match(m, value):
    if value is None or not isinstance(m, dict):
        return False
    ic = m.get("ignore_case", False)
    v = value.lower() if ic else value

    def c(x):
        x = "" if x is None else str(x)
        return x.lower() if ic else x

    if "exact" in m:
        return v == c(m["exact"])
    if "prefix" in m:
        return v.startswith(c(m["prefix"]))
    if "suffix" in m:
        return v.endswith(c(m["suffix"]))
    if "contains" in m:
        return c(m["contains"]) in v
    if "safe_regex" in m:
        return re.fullmatch(m["safe_regex"]["regex"], value) is not None
    return False


def header_value(headers, name):
    vals = [v for k, v in headers if k == name.lower()]
    return ",".join(vals) if vals else None


def header_matcher(m, headers):
    value = header_value(headers, m.get("name", ""))
    if value is None and m.get("treat_missing_header_as_empty"):
        value = ""
    if "present_match" in m:
        result = (value is not None) == bool(m["present_match"])
    elif value is None:
        result = False
    elif "string_match" in m:
        result = string_match(m["string_match"], value)
    elif "exact_match" in m:
        result = value == m["exact_match"]
    elif "prefix_match" in m:
        result = value.startswith(m["prefix_match"])
    elif "safe_regex_match" in m:
        result = re.fullmatch(m["safe_regex_match"]["regex"], value) is not None
    else:
        result = True
    return (not result) if m.get("invert_match") else result


def ip_match(cidr, remote):
    try:
        net = ipaddress.ip_network(f"{cidr['address_prefix']}/{cidr.get('prefix_len', 32)}", strict=False)
        return ipaddress.ip_address(remote) in net
    except ValueError:
        return False


def permission_match(p, ctx):
    if p.get("any"):
        return True
    if "url_path" in p:
        return string_match(p["url_path"].get("path"), ctx["path_only"])
    if "header" in p:
        return header_matcher(p["header"], ctx["headers"])
    if "and_rules" in p:
        return all(permission_match(r, ctx) for r in p["and_rules"].get("rules", []))
    if "or_rules" in p:
        return any(permission_match(r, ctx) for r in p["or_rules"].get("rules", []))
    if "not_rule" in p:
        return not permission_match(p["not_rule"], ctx)
    if "destination_port" in p:
        return int(p["destination_port"]) == ctx["port"]
    return False


def principal_match(p, ctx):
    if p.get("any"):
        return True
    if "header" in p:
        return header_matcher(p["header"], ctx["headers"])
    for key in ("direct_remote_ip", "remote_ip", "source_ip"):
        if key in p:
            return ip_match(p[key], ctx["remote"])
    if "and_ids" in p:
        return all(principal_match(r, ctx) for r in p["and_ids"].get("ids", []))
    if "or_ids" in p:
        return any(principal_match(r, ctx) for r in p["or_ids"].get("ids", []))
    if "not_id" in p:
        return not principal_match(p["not_id"], ctx)
    return False


def rbac_allows(rules, ctx):
    """True when RBAC rules let the request through (no rules: no enforcement)."""
    if not rules:
        return True, "no rules"
    matched = None
    for name, policy in (rules.get("policies") or {}).items():
        if any(permission_match(p, ctx) for p in policy.get("permissions", [])) and \
                any(principal_match(p, ctx) for p in policy.get("principals", [])):
            matched = name
            break
    action = rules.get("action", "ALLOW")
    if action == "DENY":
        return matched is None, f"DENY policy {matched}" if matched else "no DENY policy matched"
    return matched is not None, f"ALLOW policy {matched}" if matched else "no ALLOW policy matched"


def parse_htpasswd(text):
    users = {}
    for line in (text or "").split("\n"):
        if not line:
            continue
        if ":" not in line:
            raise ConfigError("basic auth: invalid htpasswd format, username:password is expected")
        name, hashed = line.split(":", 1)
        if not name or not hashed:
            raise ConfigError("basic auth: empty user name or password")
        if name in users:
            raise ConfigError("basic auth: duplicate users")
        if not hashed.startswith(SHA_PREFIX):
            raise ConfigError("basic auth: unsupported htpasswd format: please use {SHA}")
        if len(hashed) - len(SHA_PREFIX) != 28:
            raise ConfigError("basic auth: invalid SHA hash length")
        users[name] = hashed[len(SHA_PREFIX):]
    return users


class Route:
    def __init__(self, d):
        self.name = d.get("name", "") or ""
        m = d.get("match") or {}
        self.prefix = m.get("prefix")
        self.exact = m.get("path")
        self.regex = (m.get("safe_regex") or {}).get("regex")
        self.header_matchers = m.get("headers") or []
        r = d.get("route") or {}
        self.cluster = r.get("cluster")
        self.prefix_rewrite = r.get("prefix_rewrite")
        self.host_rewrite = r.get("host_rewrite_literal")
        self.timeout = r.get("timeout", "15s")
        self.direct = d.get("direct_response")
        self.add = d.get("request_headers_to_add") or []
        self.remove = [h.lower() for h in d.get("request_headers_to_remove") or []]
        self.per_filter = d.get("typed_per_filter_config") or {}

    def matches(self, path, headers):
        path_only = path.split("?", 1)[0]
        if self.prefix is not None:
            ok = path.startswith(self.prefix)
        elif self.exact is not None:
            ok = path_only == self.exact
        elif self.regex is not None:
            ok = re.fullmatch(self.regex, path_only) is not None
        else:
            ok = False
        return ok and all(header_matcher(h, headers) for h in self.header_matchers)

    def rewrite(self, path):
        if self.prefix_rewrite is None:
            return path
        path_only, sep, query = path.partition("?")
        if self.prefix is not None:
            new = self.prefix_rewrite + path[len(self.prefix):]
            return new
        return self.prefix_rewrite + (sep + query if sep else "")

    def label(self):
        if self.name:
            return self.name
        if self.prefix is not None:
            return f"prefix {self.prefix}"
        return f"path {self.exact}" if self.exact is not None else f"regex {self.regex}"

    def disabled(self, filter_name):
        cfg = self.per_filter.get(filter_name)
        return isinstance(cfg, dict) and cfg.get("disabled") is True


class EnvoyConfig:
    """Listener, routes, filters and clusters read from envoy.yaml (or an lds file alone)."""

    def __init__(self, read=None):
        self.read = [] if read is None else read
        self.clusters = {}
        self.listener = None

    @classmethod
    def from_bootstrap(cls, path, read=None):
        cfg = cls(read)
        boot = load_yaml(path, cfg.read)
        dyn = boot.get("dynamic_resources") or {}
        static = boot.get("static_resources") or {}
        listeners = list(static.get("listeners") or [])
        clusters = list(static.get("clusters") or [])
        lds = ((dyn.get("lds_config") or {}).get("path_config_source") or {}).get("path") or \
            (dyn.get("lds_config") or {}).get("path")
        cds = ((dyn.get("cds_config") or {}).get("path_config_source") or {}).get("path") or \
            (dyn.get("cds_config") or {}).get("path")
        if cds:
            clusters += _resources(load_yaml(cds, cfg.read), ".Cluster")
        if lds:
            listeners += _resources(load_yaml(lds, cfg.read), ".Listener")
        cfg._clusters(clusters)
        cfg._listener(listeners)
        return cfg

    @classmethod
    def from_files(cls, lds, cds=None, read=None):
        cfg = cls(read)
        clusters = _resources(load_yaml(cds, cfg.read), ".Cluster") if cds else []
        cfg._clusters(clusters)
        cfg._listener(_resources(load_yaml(lds, cfg.read), ".Listener"))
        return cfg

    def _clusters(self, clusters):
        for c in clusters:
            try:
                ep = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
                self.clusters[c["name"]] = (ep["address"], int(ep["port_value"]))
            except (KeyError, IndexError, TypeError):
                raise ConfigError(f"cluster {c.get('name')!r} has no socket address") from None

    def _listener(self, listeners):
        if not listeners:
            raise ConfigError("no listener")
        lis = listeners[0]
        self.name = lis.get("name", "")
        self.port = int(lis["address"]["socket_address"]["port_value"])
        hcm = None
        for chain in lis.get("filter_chains") or []:
            for f in chain.get("filters") or []:
                if f.get("name") == "envoy.filters.network.http_connection_manager":
                    hcm = f.get("typed_config") or {}
        if hcm is None:
            raise ConfigError("listener has no http_connection_manager")
        self.normalize_path = bool(hcm.get("normalize_path"))
        self.merge_slashes = bool(hcm.get("merge_slashes"))
        self.escaped_slashes = hcm.get("path_with_escaped_slashes_action", "KEEP_UNCHANGED")
        self.underscores = (hcm.get("common_http_protocol_options") or {}).get("headers_with_underscores_action", "ALLOW")
        vhosts = (hcm.get("route_config") or {}).get("virtual_hosts") or []
        self.vhosts = []
        for vh in vhosts:
            self.vhosts.append({"domains": vh.get("domains") or ["*"], "routes": [Route(r) for r in vh.get("routes") or []],
                                "add": vh.get("request_headers_to_add") or [], "cors": vh.get("cors")})
        self.filters = []
        for i, f in enumerate(hcm.get("http_filters") or []):
            name = f.get("name")
            tc = f.get("typed_config") or {}
            entry = {"id": str(i), "name": name, "config": tc, "disabled": bool(f.get("disabled"))}
            if name == "envoy.filters.http.basic_auth":
                entry["users"] = parse_htpasswd((tc.get("users") or {}).get("inline_string", ""))
            self.filters.append(entry)
        for vh in self.vhosts:
            for r in vh["routes"]:
                if r.cluster and r.cluster not in self.clusters:
                    raise ConfigError(f"route {r.name or r.prefix!r}: unknown cluster {r.cluster!r}")


class EnvoyEngine:
    def __init__(self, cfg, lua=None):
        self.cfg = cfg
        self.lua = lua or LuaHost()
        for f in cfg.filters:
            if f["name"] == "envoy.filters.http.lua":
                code = f["config"].get("inline_code") or (f["config"].get("default_source_code") or {}).get("inline_string", "")
                self.lua.envoy_define(f["id"], code)

    def vhost(self, authority):
        host = (authority or "").split(":")[0]
        for vh in self.cfg.vhosts:
            if host in vh["domains"] or authority in vh["domains"]:
                return vh
        for vh in self.cfg.vhosts:
            if "*" in vh["domains"]:
                return vh
        return None

    def select(self, vh, headers):
        path = header_value(headers, ":path") or "/"
        for r in vh["routes"] if vh else []:
            if r.matches(path, headers):
                return r
        return None

    def normalize(self, path):
        path_only, sep, query = path.partition("?")
        if self.cfg.normalize_path:
            path_only = UNRESERVED.sub(lambda m: chr(int(m.group(1), 16)), path_only)
            path_only = remove_dot_segments(path_only)
        if self.cfg.merge_slashes:
            path_only = re.sub("/{2,}", "/", path_only)
        return path_only + sep + query

    def decide(self, method, raw_path, request_headers, remote="127.0.0.1"):
        d = Decision(method=method)
        cfg = self.cfg
        if cfg.underscores == "REJECT_REQUEST" and any("_" in k for k, _ in request_headers):
            d.status, d.trace = 400, ["header name with an underscore rejected"]
            return d
        if cfg.escaped_slashes == "REJECT_REQUEST" and re.search("%2f|%5c", raw_path.split("?")[0], re.I):
            d.status, d.trace = 400, ["escaped slash in path rejected"]
            return d
        path = self.normalize(raw_path)
        headers = [(":method", method), (":path", path), (":scheme", "http")]
        for k, v in request_headers:
            k = k.lower()
            headers.append((":authority", v) if k == "host" else (k, v))
        vh = self.vhost(header_value(headers, ":authority"))
        route = self.select(vh, headers)
        if route is None:
            d.status, d.trace = 404, ["no route"]
            return d
        d.route = route.label()
        for f in cfg.filters:
            name = f["name"]
            if route.disabled(name) or (f["disabled"] and name not in route.per_filter):
                d.trace.append(f"{name} (filter {f['id']}): disabled on this route")
                continue
            if name == "envoy.filters.http.cors":
                pre = self.preflight(vh, route, method, headers)
                if pre:
                    d.status, d.response_headers = 200, pre
                    d.trace.append("cors: preflight answered")
                    return d
            elif name == "envoy.filters.http.basic_auth":
                denied = self.basic_auth(f["users"], headers)
                if denied:
                    d.status, d.body = 401, denied
                    host = header_value(headers, ":authority") or ""
                    d.response_headers = [("content-type", "text/plain"),
                                          ("www-authenticate", f'Basic realm="http://{host}{path.split("?")[0]}"')]
                    d.trace.append(f"basic_auth: {denied}")
                    return d
                d.trace.append("basic_auth: user authenticated")
            elif name == "envoy.filters.http.lua":
                before = header_value(headers, ":path")
                headers, resp, logs = self.lua.envoy_run(f["id"], route.name, headers)
                for level, msg in logs:
                    d.trace.append(f"lua {f['id']} {level}: {msg}")
                if resp:
                    d.status, d.response_headers, d.body = resp
                    d.trace.append(f"lua filter {f['id']} responded {resp[0]}")
                    return d
                if header_value(headers, ":path") != before:
                    # Changed headers clear the route cache: the route is chosen again.
                    route = self.select(vh, headers) or route
            elif name == "envoy.filters.http.rbac":
                rules = f["config"].get("rules")
                per = route.per_filter.get(name)
                if isinstance(per, dict) and "rbac" in per:
                    rules = (per.get("rbac") or {}).get("rules")
                ctx = {"path_only": header_value(headers, ":path").split("?")[0], "headers": headers,
                       "remote": remote, "port": cfg.port}
                ok, why = rbac_allows(rules, ctx)
                d.trace.append(f"rbac: {why}")
                if not ok:
                    d.status, d.body = 403, "RBAC: access denied"
                    d.response_headers = [("content-type", "text/plain")]
                    return d
            elif name == "envoy.filters.http.router":
                return self.route_request(d, vh, route, headers, remote)
            else:
                d.trace.append(f"{name}: not restated, passed")
        return self.route_request(d, vh, route, headers, remote)

    def preflight(self, vh, route, method, headers):
        origin = header_value(headers, "origin")
        if method != "OPTIONS" or not origin or header_value(headers, "access-control-request-method") is None:
            return None
        policy = route.per_filter.get("envoy.filters.http.cors") or (vh or {}).get("cors")
        if not policy:
            return None
        if not any(string_match(m, origin) for m in policy.get("allow_origin_string_match") or []):
            return None
        out = [("access-control-allow-origin", origin)]
        for key in ("allow_methods", "allow_headers", "max_age"):
            if policy.get(key):
                out.append(("access-control-" + key.replace("_", "-"), str(policy[key])))
        return out

    @staticmethod
    def basic_auth(users, headers):
        value = header_value(headers, "authorization")
        if value is None:
            return "User authentication failed. Missing username and password."
        if not value.startswith("Basic "):
            return "User authentication failed. Expected 'Basic' authentication scheme."
        token = value[6:]
        try:
            decoded = base64.b64decode(token + "=" * (-len(token) % 4)).decode("latin-1")
        except ValueError:
            decoded = ""
        if ":" not in decoded:
            return "User authentication failed. Invalid basic credential format."
        user, password = decoded.split(":", 1)
        digest = base64.b64encode(hashlib.sha1(password.encode("latin-1")).digest()).decode()
        if users.get(user) != digest:
            return "User authentication failed. Invalid username/password combination."
        return None

    def route_request(self, d, vh, route, headers, remote):
        if route.direct:
            d.status = int(route.direct.get("status", 200))
            d.body = ((route.direct.get("body") or {}).get("inline_string")) or ""
            return d
        path = header_value(headers, ":path")
        d.path = route.rewrite(path)
        d.upstream = self.cfg.clusters[route.cluster]
        authority = route.host_rewrite or header_value(headers, ":authority") or ""
        out = [(k, v) for k, v in headers if not k.startswith(":")]
        out = [(k, v) for k, v in out if k not in route.remove]
        for spec in list(route.add) + list((vh or {}).get("add") or []):
            self.add_header(out, spec, headers)
        out = [("host", authority)] + out
        if header_value(out, "x-forwarded-proto") is None:
            out.append(("x-forwarded-proto", "http"))
        xff = header_value(out, "x-forwarded-for")
        out = [(k, v) for k, v in out if k != "x-forwarded-for"]
        out.append(("x-forwarded-for", f"{xff},{remote}" if xff else remote))
        if header_value(out, "x-request-id") is None:
            out.append(("x-request-id", str(uuid.uuid4())))
        d.headers = out
        d.trace.append(f"router: {route.cluster} {d.path}")
        return d

    def add_header(self, out, spec, request_headers):
        h = spec.get("header") or {}
        key = str(h.get("key", "")).lower()
        value = str(h.get("value", ""))
        value = re.sub(r"%REQ\(([^)]+)\)%", lambda m: header_value(request_headers, m.group(1).lower()) or "", value)
        value = value.replace("%DOWNSTREAM_LOCAL_PORT%", str(self.cfg.port))
        action = spec.get("append_action")
        if action is None:
            action = "APPEND_IF_EXISTS_OR_ADD" if spec.get("append", True) else "OVERWRITE_IF_EXISTS_OR_ADD"
        present = header_value(out, key) is not None
        if action == "ADD_IF_ABSENT" and present:
            return
        if action in ("OVERWRITE_IF_EXISTS_OR_ADD", "OVERWRITE_IF_EXISTS"):
            if action == "OVERWRITE_IF_EXISTS" and not present:
                return
            out[:] = [(k, v) for k, v in out if k != key]
        out.append((key, value))


class EnvoyHandler(GatewayHandler):
    unreachable = (503, "no healthy upstream", "text/plain")
    server_header = "envoy"


def main(argv):
    rec = Recorder(SERVICE)
    rec.start(argv[1:], ENV_USED)
    args = argv[1:]
    config = None
    for i, a in enumerate(args):
        if a in ("-c", "--config-path") and i + 1 < len(args):
            config = args[i + 1]
        if a == "--version":
            print("envoy stand-in (restates envoyproxy/envoy v1.39 behaviour)")
            return 0
    if not config:
        log(SERVICE, "At least one of --config-path or --config-yaml or Options::configProto() should be non-empty")
        return 1
    read = []
    try:
        cfg = EnvoyConfig.from_bootstrap(config, read)
    except OSError as e:
        log(SERVICE, f"error initializing configuration '{config}': {e}")
        return 1
    except ConfigError as e:
        for path, data in read:
            rec.file(path, data)
        # Envoy rejects the listener update and runs on without it (nothing listens).
        log(SERVICE, f"gRPC config for type.googleapis.com/envoy.config.listener.v3.Listener rejected: {e}")
        rec.note("listener_rejected", str(e))
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        while True:
            time.sleep(3600)
    for path, data in read:
        rec.file(path, data)
    engine = EnvoyEngine(cfg)
    EnvoyHandler.engine = engine
    rec.note("routes", [r.name or r.prefix or r.exact for vh in cfg.vhosts for r in vh["routes"]])
    common.serve(SERVICE, cfg.port, EnvoyHandler, rec)
    return 0
