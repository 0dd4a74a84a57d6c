"""Crash and I/O-fault injection with strace: SIGKILL (or an error) at the N-th call of each
syscall that matters to durability, for every N a run reaches, in three scenarios."""

import os
import re
import shutil
import subprocess

from lib import (
    MANAGED,
    SECRET_B,
    base_env,
    file_hashes,
    keypair,
    leaks,
    legacy_key,
    run,
    secrets_in,
    temp_files,
    validate_dir,
)

KILL_SYSCALLS = ["rename", "renameat", "renameat2", "fsync", "fdatasync", "write", "openat"]
FAULTS = [("rename", "EIO"), ("fsync", "EIO"), ("write", "ENOSPC"), ("fchmod", "EPERM")]


def count_calls(env, d):
    """How many times one uninterrupted run makes each syscall (the crash points)."""
    p = subprocess.run(
        ["strace", "-f", "-qq", "-c", "-e", "trace=" + ",".join(KILL_SYSCALLS + ["fchmod"]),
         "--", os.environ["SUPAKEYS_BIN"]],
        env=env, capture_output=True, text=True,
    )
    assert p.returncode == 0, p.stderr
    counts = {}
    for line in p.stderr.splitlines():
        cols = line.split()
        if len(cols) >= 5 and cols[-1] != "total" and cols[3].isdigit():
            counts[cols[-1]] = int(cols[3])
    return counts


def copy_dir(src, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    if src is None:
        os.mkdir(dst)
    else:
        shutil.copytree(src, dst, symlinks=True)


def check_names_what_is_missing(res, d):
    """`check` passes, or fails with code 6 listing problems that each name a managed file,
    or (no state yet) fails with code 3 naming state.json."""
    if res.code == 0:
        return True, ""
    if res.code == 3:
        ok = not os.path.exists(os.path.join(d, "state.json")) and "state.json" in res.stderr
        return ok, res.stderr
    if res.code == 6:
        problems = [l for l in res.stderr.splitlines() if " ERROR " in l and "check found" not in l]
        ok = bool(problems) and all(any(n in l for n in MANAGED) for l in problems)
        return ok, res.stderr
    return False, res.stderr


def scenario(t, work, name, initial_env, crash_env):
    """Crash every reachable point of a run of `crash_env` on the directory `initial_env` left."""
    base = os.path.join(work, f"{name}-initial")
    copy_dir(None, base)
    committed = None
    if initial_env is not None:
        e = dict(initial_env, SUPAKEYS_DIR=base)
        r = run(e)
        assert r.code == 0, r.stderr
        committed = keypair(base)
    # The uninterrupted run: its files are the only other acceptable version of each file.
    ref = os.path.join(work, f"{name}-ref")
    copy_dir(base, ref)
    counts = count_calls(dict(crash_env, SUPAKEYS_DIR=ref), ref)
    old = file_hashes(base)
    new = file_hashes(ref) if initial_env is not None else None
    tried = 0
    d = os.path.join(work, f"{name}-crash")
    points = [(s, n, "kill") for s in KILL_SYSCALLS for n in range(1, counts.get(s, 0) + 1)]
    points += [(s, n, err) for s, err in FAULTS for n in range(1, counts.get(s, 0) + 1)]
    for syscall, n, how in points:
        copy_dir(base, d)
        env = dict(crash_env, SUPAKEYS_DIR=d)
        action = "signal=SIGKILL" if how == "kill" else f"error={how}"
        where = f"crash[{name}] {syscall}#{n} {how}"
        res = run(env, prefix=["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
                               "-e", f"inject={syscall}:{action}:when={n}", "--"])
        tried += 1
        secrets = secrets_in(d, env) | secrets_in(base, env)
        t.check(not leaks(res.output, secrets), f"{where}: no secret in the output", res.stderr)
        if how == "kill":
            t.check(res.code in (137, -9), f"{where}: the kill happened", f"rc={res.code}")
        else:
            # An I/O error is reported with exit 4 and the path, unless it hit a log line.
            t.check(res.code == 4 and "cannot " in res.stderr or res.code == 0,
                    f"{where}: exit 4 naming the failed action", f"rc={res.code} {res.stderr}")
            t.check(not temp_files(d), f"{where}: the failed write removed its temp file", str(temp_files(d)))
        problems = validate_dir(d)
        t.check(not problems, f"{where}: no partial file visible", "; ".join(problems))
        if new is not None:
            now = file_hashes(d)
            mixed = [f for f in MANAGED if now.get(f) not in (old.get(f), new.get(f))]
            t.check(not mixed, f"{where}: every file is the old or the new version", str(mixed))
        if committed is not None:
            t.check(keypair(d) == committed, f"{where}: the committed keypair survived")
        after_crash = keypair(d)
        chk = run(env, ["check"])
        ok, detail = check_names_what_is_missing(chk, d)
        t.check(ok, f"{where}: check passes or names what is missing", detail)
        t.check(not leaks(chk.output, secrets), f"{where}: no secret in check's output")
        again = run(env)
        t.check(again.code == 0, f"{where}: the rerun succeeds", again.stderr)
        t.check(not leaks(again.output, secrets_in(d, env) | secrets), f"{where}: no secret in the rerun's output")
        t.check(not temp_files(d), f"{where}: the rerun removed the temp files", str(temp_files(d)))
        chk = run(env, ["check"])
        t.check(chk.code == 0, f"{where}: check passes after the rerun", chk.stderr)
        if after_crash is not None:
            t.check(keypair(d) == after_crash, f"{where}: the rerun kept the committed keypair")
        if new is not None:
            t.check(file_hashes(d) == new, f"{where}: the rerun converged to the uninterrupted result")
    return tried, counts


def main(t, work):
    plain = base_env("")
    with_legacy = dict(plain, ANON_KEY=legacy_key("anon"), SERVICE_ROLE_KEY=legacy_key("service_role"))
    # Same JWT_SECRET, different legacy keys (re-issued a second later, other iat/exp).
    changed_legacy = dict(plain, ANON_KEY=legacy_key("anon", exp_in=9 * 365 * 86400),
                          SERVICE_ROLE_KEY=legacy_key("service_role", exp_in=9 * 365 * 86400))
    total = 0
    for name, initial, crash in [
        ("first-run", None, plain),
        ("jwt-secret-changed", plain, dict(plain, JWT_SECRET=SECRET_B)),
        ("legacy-keys-changed", with_legacy, changed_legacy),
    ]:
        tried, counts = scenario(t, work, name, initial, crash)
        print(f"crash[{name}]: {tried} crash/fault points (syscalls per run: {counts})", flush=True)
        total += tried
    return f"{total} crash/fault points"
