"""A table of bad inputs run against the real binary: each must exit with its documented code,
name the culprit, leave every byte (and mode, owner, mtime) of the directory as it was, and
print no secret. Every run logs at trace level."""

import fcntl
import json
import os
import shutil
import socket
import subprocess

from lib import (
    OTHER_SECRET,
    b64,
    SECRET,
    SECRET_B,
    base_env,
    hs256,
    leaks,
    legacy_key,
    run,
    secrets_in,
    snapshot,
)

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


class Ctx:
    def __init__(self, work, d):
        self.work, self.d = work, d
        self.env = base_env(d)
        self.args = []
        self.prefix = []
        self.cleanup = []
        self.watch = d  # the directory whose bytes must not change

    def file(self, name, content, mode=0o644):
        p = os.path.join(self.work, name)
        with open(p, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(p, mode)
        return p

    def state(self):
        return json.load(open(os.path.join(self.d, "state.json")))

    def put_state(self, value):
        text = value if isinstance(value, (str, bytes)) else json.dumps(value, indent=2)
        with open(os.path.join(self.d, "state.json"), "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)


def private_jwk(work, tag):
    """A fresh private ES256 JWK, made by supakeys itself in a scratch directory."""
    d = os.path.join(work, f"jwk-{tag}")
    os.mkdir(d)
    r = run(base_env(d))
    assert r.code == 0, r.stderr
    return json.load(open(os.path.join(d, "state.json")))["keys"][0]["jwk"]


def tmpfs(c, size, fill):
    """Mounts a tmpfs of `size`, optionally filled up, and points the keys directory into it."""
    mnt = os.path.join(c.work, "tmpfs")
    os.mkdir(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mnt], capture_output=True, text=True)
    if p.returncode != 0:
        raise Skip(f"cannot mount a tmpfs here ({p.stderr.strip()})")
    c.cleanup.append(lambda: subprocess.run(["umount", "-l", mnt]))
    d = os.path.join(mnt, "keys")
    os.mkdir(d)
    return mnt, d


class Skip(Exception):
    pass


def disk_full_fresh(c):
    mnt, d = tmpfs(c, "64k", True)
    subprocess.run(["dd", "if=/dev/zero", f"of={mnt}/filler", "bs=4k"], capture_output=True)
    c.watch = d
    c.env["SUPAKEYS_DIR"] = d


def disk_full_rerun(c):
    mnt, d = tmpfs(c, "64k", False)
    c.env["SUPAKEYS_DIR"] = d
    r = run(c.env)
    assert r.code == 0, r.stderr
    subprocess.run(["dd", "if=/dev/zero", f"of={mnt}/filler", "bs=4k"], capture_output=True)
    c.watch = d
    c.env["JWT_SECRET"] = SECRET_B


def disk_fills_mid_run(c):
    # 4 pages: state.json, auth.env, jwks.json and jwt_jwks.json fit, realtime.env does not.
    mnt, d = tmpfs(c, "16k", False)
    c.watch = d
    c.env["SUPAKEYS_DIR"] = d


def lock_held(c):
    fd = os.open(c.d, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    c.cleanup.append(lambda: os.close(fd))
    c.env["SUPAKEYS_LOCK_TIMEOUT"] = "1"


def read_only_fresh(c):
    os.chmod(c.d, 0o555)
    subprocess.run(["chown", "nobody:nogroup", c.d], check=True)
    c.prefix = NOBODY


def read_only_rerun(c):
    # Files readable by nobody, directory not writable: the changed JWT_SECRET needs writes.
    for n in os.listdir(c.d):
        os.chown(os.path.join(c.d, n), 65534, 65534)
    os.chmod(c.d, 0o755)
    c.prefix = NOBODY
    c.env["JWT_SECRET"] = SECRET_B


def wrong_owner(c):
    # The directory belongs to nobody, but state.json (0600) to root: nobody cannot read it.
    subprocess.run(["chown", "nobody:nogroup", c.d], check=True)
    c.prefix = NOBODY


def symlink(name, target_kind):
    def prepare(c):
        p = os.path.join(c.d, name)
        target = os.path.join(c.work, "elsewhere-" + name)
        if os.path.exists(p):
            shutil.copy(p, target)
            os.remove(p)
        elif target_kind == "file":
            open(target, "w").write("not supakeys'\n")
        os.symlink(target if target_kind != "dangling" else target + ".missing", p)
    return prepare


def directory_at(name):
    def prepare(c):
        p = os.path.join(c.d, name)
        if os.path.exists(p):
            os.remove(p)
        os.mkdir(p)
    return prepare


def edit_state(fn):
    def prepare(c):
        s = c.state()
        fn(s)
        c.put_state(s)
    return prepare


def setenv(**kv):
    def prepare(c):
        for k, v in kv.items():
            if v is None:
                c.env.pop(k, None)
            else:
                c.env[k] = v() if callable(v) else v
    return prepare


def envfile(text, **kv):
    def prepare(c):
        p = c.file("bad.env", text)
        c.env["SUPAKEYS_ENV_FILE"] = p
        for k, v in kv.items():
            c.env.pop(k, None) if v is None else c.env.__setitem__(k, v)
    return prepare


def template(text):
    def prepare(c):
        c.env["SUPAKEYS_KONG_TEMPLATE"] = c.file("kong.tmpl.yml", text)
    return prepare


def jwt_keys(build):
    def prepare(c):
        c.env["JWT_KEYS"] = json.dumps(build(c)) if not isinstance(build, str) else build
    return prepare


def both_legacy(anon, service):
    def prepare(c):
        c.env["ANON_KEY"] = anon() if callable(anon) else anon
        c.env["SERVICE_ROLE_KEY"] = service() if callable(service) else service
    return prepare


def special_at(name, kind):
    """Replaces a managed file with a FIFO or a socket: reading either must never block."""
    def prepare(c):
        p = os.path.join(c.d, name)
        if os.path.lexists(p):
            os.remove(p)
        if kind == "fifo":
            os.mkfifo(p)
        else:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(p)
            sock.close()
    return prepare


def hard_link(name):
    """Replaces a managed file with a hard link to a root-only file outside the directory
    (where fs.protected_hardlinks is off, the directory's owner can make one)."""
    def prepare(c):
        outside = os.path.join(c.work, "outside-secret")
        with open(outside, "w") as f:
            f.write("NAME='outside content'\n")
        os.chmod(outside, 0o600)
        os.remove(os.path.join(c.d, name))
        os.link(outside, os.path.join(c.d, name))
    return prepare


def fifo_input(var, via_link=False):
    """An input file (kong template, env file) that is a FIFO with no writer."""
    def prepare(c):
        p = os.path.join(c.work, "input.fifo")
        os.mkfifo(p)
        if via_link:
            os.symlink(p, p + ".link")
            p += ".link"
        c.env[var] = p
    return prepare


def state_value(path, value):
    """Sets one value of state.json (path: keys into the JSON object)."""
    def edit(s):
        node = s
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value(s) if callable(value) else value
    return edit_state(edit)


def chown_all(c, uid):
    os.chown(c.d, uid, uid)
    for n in os.listdir(c.d):
        os.chown(os.path.join(c.d, n), uid, uid)


def foreign_kong_yml(c):
    chown_all(c, 1000)
    os.chown(os.path.join(c.d, "kong.yml"), 65534, 65534)


def foreign_auth_env(c):
    # The directory and its files belong to nobody, but auth.env (0600) to root: nobody
    # cannot read it. The run must stop before renaming anything.
    chown_all(c, 65534)
    os.chown(os.path.join(c.d, "auth.env"), 0, 0)
    c.env["JWT_SECRET"] = SECRET_B
    c.prefix = NOBODY


RSA_CACHE = {}


def rsa_jwk(work, bits, e=65537, kid="rsa-key"):
    """A private RS256 JWK made by openssl (any size and exponent, unlike supakeys)."""
    if (bits, e) not in RSA_CACHE:
        pem = os.path.join(work, f"rsa-{bits}-{e}.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
                        "-pkeyopt", f"rsa_keygen_pubexp:{e}", "-out", pem], check=True, capture_output=True)
        text = subprocess.run(["openssl", "pkey", "-in", pem, "-text", "-noout"], check=True,
                              capture_output=True, text=True).stdout
        parts, name = {}, None
        for line in text.splitlines():
            if line.startswith("publicExponent:"):
                parts["publicExponent"] = format(int(line.split()[1]), "x")
            elif not line.startswith(" ") and line.endswith(":"):
                name = line[:-1]
                parts[name] = ""
            elif line.startswith(" ") and name:
                parts[name] += line.strip().replace(":", "")
        member = lambda hexs: b64(int(hexs, 16).to_bytes((int(hexs, 16).bit_length() + 7) // 8, "big"))  # noqa: E731
        names = {"n": "modulus", "e": "publicExponent", "d": "privateExponent", "p": "prime1", "q": "prime2",
                 "dp": "exponent1", "dq": "exponent2", "qi": "coefficient"}
        RSA_CACHE[(bits, e)] = {k: member(parts[v]) for k, v in names.items()}
    return {"kty": "RSA", "kid": kid, "use": "sig", "key_ops": ["sign", "verify"], "alg": "RS256", "ext": True,
            **RSA_CACHE[(bits, e)]}


def rsa_state(bits):
    def edit(s):
        key = s["keys"][0]
        key["alg"] = "RS256"
        key["jwk"] = rsa_jwk(CTX["work"], bits, kid=key["kid"])
    return edit_state(edit)


CTX = {}
BAD = "abc\udcff"  # the byte 0xff (surrogateescape): not UTF-8


def billion_laughs():
    text = "_format_version: '2.1'\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, 10):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    return text


OCT = {"kty": "oct", "k": "", "alg": "HS256"}
FMT = "_format_version: '2.1'\n"
now_key = lambda role, **kw: (lambda: legacy_key(role, **kw))  # noqa: E731


def signer(c, **changes):
    jwk = dict(c.jwk_a)
    jwk.update(changes)
    return [jwk, OCT]


# (name, initialised, prepare, args, code, substrings the message must contain)
CASES = [
    # Environment values.
    ("JWT_SECRET unset", False, setenv(JWT_SECRET=None), [], 2, ["JWT_SECRET"]),
    ("JWT_SECRET of 17 characters", False, setenv(JWT_SECRET="tooshort-secret-1"), [], 2, ["JWT_SECRET"]),
    ("JWT_SECRET of 31 characters", False, setenv(JWT_SECRET="x" * 31), [], 2, ["JWT_SECRET"]),
    ("ANON_KEY not a JWT", False, both_legacy("garbage-not-a-jwt", now_key("service_role")), [], 2, ["ANON_KEY"]),
    ("ANON_KEY signed with another secret", False,
     both_legacy(lambda: legacy_key("anon", OTHER_SECRET), now_key("service_role")), [], 2, ["ANON_KEY"]),
    ("ANON_KEY with alg none", False,
     both_legacy(lambda: hs256({"role": "anon", "iss": "supabase", "iat": 1, "exp": 4102444800}, SECRET,
                               {"alg": "none", "typ": "JWT"}), now_key("service_role")), [], 2, ["ANON_KEY"]),
    ("SERVICE_ROLE_KEY with role anon", False, both_legacy(now_key("anon"), now_key("anon")), [], 2,
     ["SERVICE_ROLE_KEY"]),
    ("expired ANON_KEY", False, both_legacy(now_key("anon", exp_in=-60), now_key("service_role")), [], 2,
     ["ANON_KEY"]),
    ("ANON_KEY without SERVICE_ROLE_KEY", False, setenv(ANON_KEY=now_key("anon")), [], 2, ["SERVICE_ROLE_KEY"]),
    ("SERVICE_ROLE_KEY without ANON_KEY", False, setenv(SERVICE_ROLE_KEY=now_key("service_role")), [], 2,
     ["ANON_KEY"]),
    ("SERVICE_ROLE_KEY payload not JSON", False,
     both_legacy(now_key("anon"), "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"), [], 2, ["SERVICE_ROLE_KEY"]),
    ("SUPAKEYS_ALG=HS256", False, setenv(SUPAKEYS_ALG="HS256"), [], 2, ["SUPAKEYS_ALG"]),
    ("SUPAKEYS_ALG=es256 (lower case)", False, setenv(SUPAKEYS_ALG="es256"), [], 2, ["SUPAKEYS_ALG"]),
    ("SUPAKEYS_RSA_BITS=1024", False, setenv(SUPAKEYS_ALG="RS256", SUPAKEYS_RSA_BITS="1024"), [], 2,
     ["SUPAKEYS_RSA_BITS"]),
    ("SUPAKEYS_KID with a colon", False, setenv(SUPAKEYS_KID="2024-01-01T00:00:00Z"), [], 2, ["SUPAKEYS_KID"]),
    ("SUPAKEYS_KID of 129 characters", False, setenv(SUPAKEYS_KID="k" * 129), [], 2, ["SUPAKEYS_KID"]),
    ("SUPAKEYS_KID with a quote", False, setenv(SUPAKEYS_KID="a'b"), [], 2, ["SUPAKEYS_KID"]),
    ("SUPAKEYS_LEGACY_API_KEYS=drop", False, setenv(SUPAKEYS_LEGACY_API_KEYS="drop"), [], 2,
     ["SUPAKEYS_LEGACY_API_KEYS"]),
    ("SUPAKEYS_TOKEN_TTL=0", False, setenv(SUPAKEYS_TOKEN_TTL="0"), [], 2, ["SUPAKEYS_TOKEN_TTL"]),
    ("SUPAKEYS_TOKEN_TTL=101y", False, setenv(SUPAKEYS_TOKEN_TTL="101y"), [], 2, ["SUPAKEYS_TOKEN_TTL"]),
    ("SUPAKEYS_LOCK_TIMEOUT=-1", False, setenv(SUPAKEYS_LOCK_TIMEOUT="-1"), [], 2, ["SUPAKEYS_LOCK_TIMEOUT"]),
    ("SUPAKEYS_LOG_LEVEL=verbose", False, setenv(SUPAKEYS_LOG_LEVEL="verbose"), [], 2, ["SUPAKEYS_LOG_LEVEL"]),
    ("SUPAKEYS_LOG_FORMAT=xml", False, setenv(SUPAKEYS_LOG_FORMAT="xml"), [], 2, ["SUPAKEYS_LOG_FORMAT"]),
    ("JWT_ISSUER=ftp://", False, setenv(JWT_ISSUER="ftp://example.com/auth/v1"), [], 2, ["JWT_ISSUER"]),
    ("SUPABASE_SECRET_KEY with a wrong prefix", False, setenv(SUPABASE_SECRET_KEY="sk_live_abcdefghijklmnopqrstuvwx"),
     [], 2, ["SUPABASE_SECRET_KEY"]),
    ("SUPABASE_SECRET_KEY with a quote", False,
     setenv(SUPABASE_SECRET_KEY="sb_secret_abcdefghij'klmnopqrstu_abcdefgh"), [], 2, ["SUPABASE_SECRET_KEY"]),
    ("SUPABASE_PUBLISHABLE_KEY holding a secret key", False,
     setenv(SUPABASE_PUBLISHABLE_KEY="sb_secret_AAAAAAAAAAAAAAAAAAAAAA_AAAAAAAA"), [], 2,
     ["SUPABASE_PUBLISHABLE_KEY"]),
    ("DASHBOARD_PASSWORD unset", False, setenv(DASHBOARD_PASSWORD=None), [], 2, ["DASHBOARD_PASSWORD"]),
    ("DASHBOARD_USERNAME unset", False, setenv(DASHBOARD_USERNAME=None), [], 2, ["DASHBOARD_USERNAME"]),
    ("unknown flag", False, setenv(), ["--frobnicate"], 2, ["--frobnicate"]),
    ("unknown command", False, setenv(), ["explode"], 2, ["explode"]),
    # Env files.
    ("env file missing", False, setenv(SUPAKEYS_ENV_FILE="/nonexistent/supabase.env"), [], 2,
     ["/nonexistent/supabase.env"]),
    ("env file line without =", False, envfile("A=1\nthis is not a line\n"), [], 2, ["bad.env:2"]),
    ("env file unterminated quote", False, envfile("JWT_SECRET='" + SECRET + "\n"), [], 2, ["bad.env:1"]),
    ("env file name with a space", False, envfile("OK=1\n\nMY VAR=x\n"), [], 2, ["bad.env:3", "space"]),
    ("env file text after the quote", False, envfile("A='x' y\n"), [], 2, ["bad.env:1"]),
    ("env file not UTF-8", False, envfile(b"A=\xff\xfe\n"), [], 2, ["bad.env"]),
    # Class 6 of issue 16: what Docker Compose refuses, and what it reads in a way supakeys
    # does not reproduce, is refused with its line; expansion is bounded.
    ("env file ${NAME?} unset", False, envfile("A=1\nJWT_SECRET=${NOT_SET?give the secret}\n"), [], 2,
     ["bad.env:2", "requires NOT_SET"]),
    ("env file ${ without a form", False, envfile("JWT_SECRET=${oops\n"), [], 2, ["bad.env:1", "${"]),
    ("env file variable after a closing quote", False, envfile("A='x' JWT_SECRET=" + SECRET + "\n"), [], 2,
     ["bad.env:1", "closing quote"]),
    ("env file NUL from an escape", False, envfile('A="\\0000"\n'), [], 2, ["bad.env:1", "NUL"]),
    ("env file long s in a $NAME", False, envfile("A=$\u017f\n"), [], 2, ["bad.env:1", "Kelvin"]),
    ("env file $NAME of a variable that is not UTF-8", False, envfile("A=$BADENV\n", BADENV=BAD), [], 2,
     ["bad.env:1", "BADENV", "not UTF-8"]),
    ("env file expanding to 2 MiB", False,
     envfile("A0=" + "x" * 1024 + "\n" + "".join(f"A{n}=$A{n - 1}$A{n - 1}\n" for n in range(1, 40))), [], 2,
     ["bad.env:12", "1 MiB"]),
    ("env file values of 32 MiB in all", False,
     envfile("A0=" + "x" * 1024 + "\n" + "".join(f"A{n}=$A{n - 1}$A{n - 1}\n" for n in range(1, 11))
             + "".join(f"B{n}=$A10\n" for n in range(100))), [], 2, ["bad.env:", "16 MiB"]),
    ("env file of 100000 ${BIG:+x} reading a 512 KiB value", False,
     envfile("A0=" + "x" * 1024 + "\n" + "".join(f"A{n}=$A{n - 1}$A{n - 1}\n" for n in range(1, 10))
             + "B=" + "${A9:+x}" * 100000 + "\n"), [], 2, ["bad.env:11", "64 MiB"]),
    ("env file defaults nested 100000 deep", False,
     envfile("A=" + "${X:-" * 100000 + "x" + "}" * 100000 + "\n"), [], 2, ["bad.env:1", "deep"]),
    ("env file is a directory", False, lambda c: c.env.__setitem__("SUPAKEYS_ENV_FILE", c.work), [], 2,
     ["env file"]),
    ("env file holds a short JWT_SECRET", False, envfile("JWT_SECRET=short-secret-in-file\n", JWT_SECRET=None),
     [], 2, ["JWT_SECRET"]),
    # JWT_KEYS.
    ("JWT_KEYS not JSON", False, jwt_keys("[{not json"), [], 2, ["JWT_KEYS"]),
    ("JWT_KEYS an object", False, jwt_keys(lambda c: {"keys": signer(c)}), [], 2, ["JWT_KEYS"]),
    ("JWT_KEYS signing key without kid", False,
     jwt_keys(lambda c: [{k: v for k, v in c.jwk_a.items() if k != "kid"}, OCT]), [], 2, ["JWT_KEYS", "kid"]),
    ("JWT_KEYS two signing keys", False, jwt_keys(lambda c: [c.jwk_a, c.jwk_b, OCT]), [], 2, ["JWT_KEYS"]),
    ("JWT_KEYS foreign public part", False, jwt_keys(lambda c: signer(c, x=c.jwk_b["x"], y=c.jwk_b["y"])), [], 2,
     ["JWT_KEYS"]),
    ("JWT_KEYS kid with a space", False, jwt_keys(lambda c: signer(c, kid="a b")), [], 2, ["JWT_KEYS", "kid"]),
    ("JWT_KEYS curve P-384", False, jwt_keys(lambda c: signer(c, crv="P-384")), [], 2, ["JWT_KEYS", "crv"]),
    ("JWT_KEYS d not base64url", False, jwt_keys(lambda c: signer(c, d="not+base64/url==")), [], 2,
     ["JWT_KEYS", "\"d\""]),
    ("JWT_KEYS d missing", False, jwt_keys(lambda c: [{k: v for k, v in c.jwk_a.items() if k != "d"}, OCT]), [], 2,
     ["JWT_KEYS", "\"d\""]),
    ("JWT_KEYS alg ES512", False, jwt_keys(lambda c: signer(c, alg="ES512")), [], 2, ["JWT_KEYS"]),
    ("JWT_KEYS differs from the state", True, jwt_keys(lambda c: signer(c)), [], 2, ["JWT_KEYS", "state.json"]),
    # state.json.
    ("state.json truncated", True, lambda c: c.put_state(open(os.path.join(c.d, "state.json")).read()[:200]),
     [], 3, ["state.json"]),
    ("state.json empty", True, lambda c: c.put_state(""), [], 3, ["state.json"]),
    ("state.json binary garbage", True, lambda c: c.put_state(bytes(range(256))), [], 3, ["state.json"]),
    ("state.json a JSON array", True, lambda c: c.put_state("[1,2,3]"), [], 3, ["state.json"]),
    ("state.json version 99", True, edit_state(lambda s: s.__setitem__("version", 99)), [], 3,
     ["state.json", "version 99"]),
    ("state.json version missing", True, edit_state(lambda s: s.pop("version")), [], 3, ["state.json", "version"]),
    ("state.json unknown field", True, edit_state(lambda s: s.__setitem__("surprise", 1)), [], 3, ["state.json"]),
    ("state.json no keys", True, edit_state(lambda s: s.__setitem__("keys", [])), [], 3, ["state.json"]),
    ("state.json two current keys", True,
     edit_state(lambda s: s["keys"].append(dict(s["keys"][0], kid="other", jwk=dict(s["keys"][0]["jwk"], kid="other")))),
     [], 3, ["state.json"]),
    ("state.json tampered d", True,
     edit_state(lambda s: s["keys"][0]["jwk"].__setitem__("d", ("B" if s["keys"][0]["jwk"]["d"][0] == "A" else "A") + s["keys"][0]["jwk"]["d"][1:])), [], 3,
     ["state.json"]),
    ("state.json kid differs from its jwk", True, edit_state(lambda s: s["keys"][0].__setitem__("kid", "other")),
     [], 3, ["state.json"]),
    ("state.json unknown status", True, edit_state(lambda s: s["keys"][0].__setitem__("status", "sleeping")), [], 3,
     ["state.json"]),
    ("state.json malformed secret_key", True, edit_state(lambda s: s.__setitem__("secret_key", "sb_secret_x")), [], 3,
     ["state.json", "secret_key"]),
    ("state.json minted.exp before iat", True,
     edit_state(lambda s: s["minted"].__setitem__("exp", s["minted"]["iat"] - 1)), [], 3, ["state.json", "minted"]),
    # Kong templates.
    ("kong template missing", False, setenv(SUPAKEYS_KONG_TEMPLATE="/nonexistent/kong.yml"), [], 2,
     ["/nonexistent/kong.yml"]),
    ("kong template not YAML", False, template(FMT + "services: [\n"), [], 2, ["kong.tmpl.yml"]),
    ("kong template unknown placeholder", False, template(FMT + "consumers:\n  - username: $NOT_A_PLACEHOLDER\n"),
     [], 2, ["$NOT_A_PLACEHOLDER"]),
    ("kong template two documents", False, template(FMT + "---\n" + FMT), [], 2, ["kong.tmpl.yml"]),
    ("kong template without _format_version", False, template("services: []\n"), [], 2,
     ["kong.tmpl.yml", "_format_version"]),
    ("kong template a list", False, template("- _format_version: '2.1'\n"), [], 2, ["kong.tmpl.yml"]),
    ("kong template not UTF-8", False, template(b"_format_version: '2.1'\nx: \xff\n"), [], 2, ["kong.tmpl.yml"]),
    ("kong template is a directory", False, lambda c: c.env.__setitem__("SUPAKEYS_KONG_TEMPLATE", c.work), [], 2,
     ["kong template"]),
    # Directory states.
    ("directory missing", False, lambda c: c.env.__setitem__("SUPAKEYS_DIR", c.d + "-missing"), [], 4, ["-missing"]),
    ("directory is a regular file", False,
     lambda c: c.env.__setitem__("SUPAKEYS_DIR", c.file("plain-file", "x")), [], 4, ["plain-file"]),
    ("read-only directory (nobody, first run)", False, read_only_fresh, [], 4, ["keys"]),
    ("read-only directory (nobody, JWT_SECRET changed)", True, read_only_rerun, [], 4, ["keys"]),
    ("wrong owner: state.json root 0600, run as nobody", True, wrong_owner, [], 4, ["state.json"]),
    ("state.json is a symlink", True, symlink("state.json", "file"), [], 4, ["state.json"]),
    ("state.json is a dangling symlink", True, symlink("state.json", "dangling"), [], 4, ["state.json"]),
    ("kong.yml is a symlink (existing directory)", True, symlink("kong.yml", "file"), [], 4, ["kong.yml"]),
    ("kong.yml is a symlink (first run)", False, symlink("kong.yml", "file"), [], 4, ["kong.yml"]),
    ("auth.env is a directory (existing directory)", True, directory_at("auth.env"), [], 4, ["auth.env"]),
    ("jwks.json is a directory (first run)", False, directory_at("jwks.json"), [], 4, ["jwks.json"]),
    ("state.json is a directory", False, directory_at("state.json"), [], 4, ["state.json"]),
    ("disk full (first run)", False, disk_full_fresh, [], 4, ["keys"]),
    ("disk full (JWT_SECRET changed)", False, disk_full_rerun, [], 4, ["keys"]),
    ("disk fills up during the first run", False, disk_fills_mid_run, [], 4, ["keys"]),
    ("lock held by another process", True, lock_held, [], 5, ["lock"]),
    # check and print-env.
    ("check without a state", False, setenv(), ["check"], 3, ["state.json"]),
    ("print-env without a state", False, setenv(), ["print-env"], 3, ["supabase.env"]),
    ("check of an edited kong.yml", True,
     lambda c: open(os.path.join(c.d, "kong.yml"), "a").write("# edited\n"), ["check"], 6, ["kong.yml"]),
    ("check of a deleted auth.env", True, lambda c: os.remove(os.path.join(c.d, "auth.env")), ["check"], 6,
     ["auth.env"]),

    # Issue 10. A needle "NOT x" means x must not appear in the message.
    # Class 3 and 9: managed files that are not regular files are refused without blocking.
    ("state.json is a FIFO", True, special_at("state.json", "fifo"), [], 4, ["state.json", "FIFO"]),
    ("kong.yml is a FIFO", True, special_at("kong.yml", "fifo"), [], 4, ["kong.yml", "FIFO"]),
    ("auth.env is a socket", True, special_at("auth.env", "socket"), [], 4, ["auth.env", "socket"]),
    ("check with a FIFO for jwks.json", True, special_at("jwks.json", "fifo"), ["check"], 4, ["jwks.json", "FIFO"]),
    ("keys list with a FIFO for supabase.env", True, special_at("supabase.env", "fifo"), ["keys", "list"], 4,
     ["supabase.env", "FIFO"]),
    ("print-env with supabase.env a symlink", True, symlink("supabase.env", "file"), ["print-env"], 4,
     ["supabase.env", "symlink"]),
    ("print-env with supabase.env hard-linked to a file outside", True, hard_link("supabase.env"), ["print-env"], 4,
     ["supabase.env", "hard link"]),
    # Class 9: input files that are not regular files, or too large.
    ("kong template is a FIFO", False, fifo_input("SUPAKEYS_KONG_TEMPLATE"), [], 2, ["input.fifo", "FIFO"]),
    ("kong template is a symlink to a FIFO", False, fifo_input("SUPAKEYS_KONG_TEMPLATE", True), [], 2,
     ["input.fifo.link", "FIFO"]),
    ("env file is a FIFO", False, fifo_input("SUPAKEYS_ENV_FILE"), [], 2, ["input.fifo", "FIFO"]),
    ("env file is /dev/zero", False, setenv(SUPAKEYS_ENV_FILE="/dev/zero"), [], 2, ["/dev/zero", "device"]),
    ("kong template is /dev/zero", False, setenv(SUPAKEYS_KONG_TEMPLATE="/dev/zero"), [], 2,
     ["/dev/zero", "device"]),
    ("kong template of 2 MiB", False, template("_format_version: '2.1'\nx: '" + "a" * (2 << 20) + "'\n"), [], 2,
     ["kong.tmpl.yml", "larger than"]),
    ("env file of 2 MiB", False, envfile("A=" + "a" * (2 << 20) + "\n"), [], 2, ["bad.env", "larger than"]),
    # Class 6: values that are not UTF-8 are bad input, never "unset".
    ("JWT_KEYS not UTF-8 (first run)", False, setenv(JWT_KEYS=BAD), [], 2, ["JWT_KEYS: is not valid UTF-8"]),
    ("SUPABASE_SECRET_KEY not UTF-8 (existing state)", True, setenv(SUPABASE_SECRET_KEY=BAD), [], 2,
     ["SUPABASE_SECRET_KEY: is not valid UTF-8"]),
    ("JWT_SECRET not UTF-8", False, setenv(JWT_SECRET="a" * 40 + BAD), [], 2, ["JWT_SECRET: is not valid UTF-8"]),
    ("ANON_KEY not UTF-8", False, setenv(ANON_KEY=BAD), [], 2, ["ANON_KEY: is not valid UTF-8"]),
    ("DASHBOARD_USERNAME not UTF-8", False, setenv(DASHBOARD_USERNAME=BAD), [], 2,
     ["DASHBOARD_USERNAME: is not valid UTF-8"]),
    ("SUPAKEYS_DIR not UTF-8", False, setenv(SUPAKEYS_DIR=BAD), [], 2, ["SUPAKEYS_DIR: is not valid UTF-8"]),
    ("--dir not UTF-8", False, setenv(), ["--dir", BAD], 2, ["--dir: is not valid UTF-8", "NOT SUPAKEYS_DIR"]),
    ("SUPAKEYS_ENV_FILE not UTF-8", False, setenv(SUPAKEYS_ENV_FILE=BAD), [], 2,
     ["SUPAKEYS_ENV_FILE: is not valid UTF-8"]),
    ("keys revoke KID not UTF-8", True, setenv(), ["keys", "revoke", BAD], 2, ["KID (the argument of keys revoke)"]),
    ("env file line not UTF-8", False, envfile(b"A=1\nB=caf\xe9\n"), [], 2, ["bad.env:2", "UTF-8"]),
    # Class 10: the message names where the value came from.
    ("--alg ES265 as a flag", False, setenv(), ["--alg", "ES265"], 2, ["--alg: must be", "NOT SUPAKEYS_ALG"]),
    ("SUPAKEYS_ALG in the env file", False, envfile("SUPAKEYS_ALG=ES265\n"), [], 2, ["SUPAKEYS_ALG (in "]),
    ("keys revoke 'bad kid' with SUPAKEYS_KID set", True, setenv(SUPAKEYS_KID="first"), ["keys", "revoke", "bad kid"],
     2, ["KID (the argument of keys revoke): contains a space", "NOT SUPAKEYS_KID"]),
    ("ANON_KEY with a newline inside", False,
     both_legacy(lambda: legacy_key("anon")[:30] + "\n" + legacy_key("anon")[30:], now_key("service_role")), [], 2,
     ["ANON_KEY: contains a newline"]),
    ("SUPAKEYS_LOG_LEVEL with a trailing space", False, setenv(SUPAKEYS_LOG_LEVEL="info "), [], 2,
     ["SUPAKEYS_LOG_LEVEL", "ends with a space"]),
    # Class 12: every value is bounded like the ones supakeys makes.
    ("state.json secret_key of 2 MiB", True, state_value(["secret_key"], "sb_secret_" + "a" * (2 << 20)), [], 3,
     ["state.json", "larger than"]),
    ("state.json publishable_key of 300 characters", True,
     state_value(["publishable_key"], "sb_publishable_" + "a" * 300), [], 3, ["state.json", "publishable_key"]),
    # Class 7 of issue 16: the legacy HS256 mode is part of the state (schema 3).
    ("state.json legacy_hs256.mode unknown", True, state_value(["legacy_hs256", "mode"], "maybe"), [], 3,
     ["state.json", "maybe"]),
    ("state.json legacy_hs256 missing", True, edit_state(lambda s: s.pop("legacy_hs256")), [], 3,
     ["state.json", "legacy_hs256"]),
    ("state.json legacy_hs256.changed_at negative", True, state_value(["legacy_hs256", "changed_at"], -1), [], 3,
     ["state.json", "legacy_hs256.changed_at"]),
    ("state.json schema 2 that has legacy_hs256", True, edit_state(lambda s: s.__setitem__("version", 2)), [], 3,
     ["state.json", "schema 2 has no legacy_hs256"]),
    ("state.json created_at negative", True, state_value(["keys", 0, "created_at"], -1), [], 3,
     ["state.json", "created_at"]),
    ("state.json minted.exp in year 30000", True, state_value(["minted", "exp"], 884541340800), [], 3,
     ["state.json", "minted"]),
    ("state.json fingerprint not hex", True, state_value(["inputs", "jwt_secret"], "x" * 5000), [], 3,
     ["state.json", "fingerprint"]),
    ("state.json RSA key of 2560 bits", True, rsa_state(2560), [], 3, ["state.json", "2560 bits"]),
    ("JWT_KEYS RSA key of 2560 bits", False, jwt_keys(lambda c: [rsa_jwk(c.work, 2560), OCT]), [], 2,
     ["JWT_KEYS", "2560 bits"]),
    ("JWT_KEYS RSA key with e=3", False, jwt_keys(lambda c: [rsa_jwk(c.work, 2048, 3), OCT]), [], 2,
     ["JWT_KEYS", "65537"]),
    ("JWT_KEYS of 100 KiB", False, setenv(JWT_KEYS="[" + " " * (100 << 10) + "]"), [], 2, ["JWT_KEYS", "KiB"]),
    ("JWT_ISSUER with a newline", False, setenv(JWT_ISSUER="https://example.com/auth/v1\n/x"), [], 2,
     ["JWT_ISSUER", "newline"]),
    ("JWT_ISSUER with a query", False, setenv(JWT_ISSUER="https://example.com/auth/v1?x=1"), [], 2,
     ["JWT_ISSUER", "query"]),
    ("JWT_ISSUER of 3000 characters", False, setenv(JWT_ISSUER="https://example.com/" + "a" * 3000), [], 2,
     ["JWT_ISSUER", "longer than"]),
    ("JWT_SECRET of 5000 characters", False, setenv(JWT_SECRET="s" * 5000), [], 2, ["JWT_SECRET", "longer than"]),
    ("ANON_KEY of 20 KiB", False, both_legacy("a" * (20 << 10), now_key("service_role")), [], 2,
     ["ANON_KEY", "KiB"]),
    ("SUPABASE_SECRET_KEY of 300 characters", False, setenv(SUPABASE_SECRET_KEY="sb_secret_" + "a" * 300), [], 2,
     ["SUPABASE_SECRET_KEY", "16 to 128"]),
    ("DASHBOARD_USERNAME with a colon", False, setenv(DASHBOARD_USERNAME="ad:min"), [], 2,
     ["DASHBOARD_USERNAME", "':'"]),
    ("DASHBOARD_PASSWORD with a newline", False, setenv(DASHBOARD_PASSWORD="pass\nword"), [], 2,
     ["DASHBOARD_PASSWORD", "control character"]),
    ("kong template path with a newline", False, setenv(SUPAKEYS_KONG_TEMPLATE="/tmp/x\ny.yml"), [], 2,
     ["SUPAKEYS_KONG_TEMPLATE", "control character"]),
    # Class 7: templates read as Kong reads them, within a budget.
    ("kong template billion laughs", False, lambda c: template(billion_laughs())(c), [], 2,
     ["kong.tmpl.yml", "billion laughs"]),
    ("kong template nested 10000 deep (flow)", False, template(FMT + "x: " + "[" * 10000 + "]" * 10000 + "\n"), [],
     2, ["kong.tmpl.yml", "recursion limit"]),
    ("kong template nested 100 deep (block)", False,
     template(FMT + "".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "v\n"), [], 2,
     ["kong.tmpl.yml", "deeper than 64"]),
    ("kong template placeholder in a key", False, template(FMT + "consumers:\n  - $DASHBOARD_PASSWORD: x\n"), [], 2,
     ["$DASHBOARD_PASSWORD", "mapping key"]),
    ("kong template merge key with a scalar", False, template(FMT + "a: {<<: 5}\n"), [], 2, ["merge key"]),
    ("kong template with a !!binary tag", False, template(FMT + "a: !!binary aGk=\n"), [], 2, ["!!binary"]),
    ("kong template duplicate key", False, template(FMT + "a: 1\na: 2\n"), [], 2, ["twice"]),
    ("kong template renders to more than 8 MiB", False,
     template(FMT + "".join(f"k{i}: '" + " ".join(["$LUA_AUTH_EXPR"] * 10) + "'\n" for i in range(4000))), [], 2,
     ["renders to more than"]),
    ("kong template numeric _format_version", False, template("_format_version: 2.1\n"), [], 2,
     ["_format_version", "not a string"]),
    # Class 8: legacy NumericDates that are not numbers, or beyond any verifier.
    ("ANON_KEY exp is a string", False,
     both_legacy(lambda: hs256({"role": "anon", "iss": "supabase", "iat": 1, "exp": "soon"}, SECRET),
                 now_key("service_role")), [], 2, ["ANON_KEY", "exp claim that is not a number"]),
    ("ANON_KEY exp after 9999", False,
     both_legacy(lambda: hs256({"role": "anon", "iss": "supabase", "iat": 1, "exp": 3e11}, SECRET),
                 now_key("service_role")), [], 2, ["ANON_KEY", "9999"]),
    ("ANON_KEY nbf not a number", False,
     both_legacy(lambda: hs256({"role": "anon", "iss": "supabase", "iat": 1, "nbf": [], "exp": 4102444800}, SECRET),
                 now_key("service_role")), [], 2, ["ANON_KEY", "nbf"]),
    # Class 4: owners.
    ("check of a file of another uid (directory of uid 1000)", True, foreign_kong_yml, ["check"], 6,
     ["kong.yml belongs to uid 65534, the directory to uid 1000"]),
    ("root 0600 auth.env in a directory of nobody, run as nobody", True, foreign_auth_env, [], 4,
     ["auth.env", "belongs to uid 0"]),
]


def main(t, work):
    CTX["work"] = work
    jwk_a, jwk_b = private_jwk(work, "a"), private_jwk(work, "b")
    OCT["k"] = __import__("lib").b64(SECRET.encode())
    skipped = []
    for i, (name, initialised, prepare, args, code, needles) in enumerate(CASES):
        case_dir = os.path.join(work, f"case-{i:02d}")
        os.mkdir(case_dir)
        d = os.path.join(case_dir, "keys")
        os.mkdir(d)
        c = Ctx(case_dir, d)
        c.jwk_a, c.jwk_b = jwk_a, jwk_b
        try:
            if initialised:
                r = run(c.env)
                assert r.code == 0, r.stderr
            try:
                prepare(c)
            except Skip as why:
                skipped.append(f"{name}: {why}")
                print(f"SKIP hostile[{name}]: {why}")
                continue
            before = snapshot(c.watch)
            secrets = secrets_in(c.watch, c.env) | secrets_in(d, base_env(d))
            where = f"hostile[{name}]"
            try:
                res = run(c.env, args, prefix=c.prefix, timeout=60)
            except subprocess.TimeoutExpired:
                t.check(False, f"{where}: finishes (it blocked for 60 s)")
                continue
            t.check(res.code == code, f"{where}: exit {code}", f"got {res.code}: {res.stderr[-3000:]}")
            missing = [n for n in needles if not n.startswith("NOT ") and n not in res.stderr]
            blamed = [n[4:] for n in needles if n.startswith("NOT ") and n[4:] in res.stderr]
            t.check(not missing and not blamed, f"{where}: the message names {needles}",
                    f"missing {missing}, wrongly named {blamed} in: {res.stderr[-3000:]}")
            after = snapshot(c.watch)
            t.check(after == before, f"{where}: no byte, mode, owner or mtime changed",
                    diff(before, after))
            t.check(not leaks(res.output, secrets), f"{where}: no secret in the output", str(leaks(res.output, secrets)))
        finally:
            for f in reversed(c.cleanup):
                f()
    return f"{len(CASES)} cases" + (f", {len(skipped)} skipped" if skipped else "")


def diff(before, after):
    if before is None or after is None:
        return f"before={before} after={after}"
    keys = sorted(set(before) | set(after))
    return "; ".join(f"{k}: {before.get(k)} -> {after.get(k)}" for k in keys if before.get(k) != after.get(k))
