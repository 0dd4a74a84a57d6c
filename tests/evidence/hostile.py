"""A table of bad inputs run against the real binary: each must exit with its documented code,
name the culprit, leave every byte (and mode, owner, mtime) of the directory as it was, and
print no secret. Every run logs at trace level."""

import fcntl
import json
import os
import shutil
import subprocess

from lib import (
    OTHER_SECRET,
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
    ("env file bad variable name", False, envfile("OK=1\n\n1BAD=x\n"), [], 2, ["bad.env:3"]),
    ("env file text after the quote", False, envfile("A='x' y\n"), [], 2, ["bad.env:1"]),
    ("env file not UTF-8", False, envfile(b"A=\xff\xfe\n"), [], 2, ["bad.env"]),
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
]


def main(t, work):
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
            res = run(c.env, args, prefix=c.prefix)
            where = f"hostile[{name}]"
            t.check(res.code == code, f"{where}: exit {code}", f"got {res.code}: {res.stderr}")
            missing = [n for n in needles if n not in res.stderr]
            t.check(not missing, f"{where}: the message names {needles}", f"missing {missing} in: {res.stderr}")
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
