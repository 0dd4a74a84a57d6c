"""Crash and I/O-fault injection with strace: SIGKILL (or an error) at the N-th call of each
syscall that matters to durability, for every N a run reaches, in three `init` scenarios;
and in the three key lifecycle transitions (`keys standby`, `keys rotate`, `keys revoke`),
every N of the commit syscalls and a sample of the others."""

import copy
import json
import os
import re
import shutil
import subprocess
import time

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
    snapshot,
    temp_files,
    validate_dir,
)

KILL_SYSCALLS = ["rename", "renameat", "renameat2", "fsync", "fdatasync", "write", "openat"]
# supakeys renames with renameat (relative to the directory's descriptor); rename is kept for
# binaries built otherwise.
FAULTS = [("rename", "EIO"), ("renameat", "EIO"), ("fsync", "EIO"), ("write", "ENOSPC"), ("fchmod", "EPERM"),
          ("fchown", "EPERM")]
# Calls made only before the first rename (issue 10, class 5: every fchmod and fchown is on a
# staged file): a failure there must leave the directory exactly as it was.
PRE_RENAME = {"fchmod", "fchown", "write"}


def count_calls(env, d, args=()):
    """How many times one uninterrupted run makes each syscall (the crash points)."""
    p = subprocess.run(
        ["strace", "-f", "-qq", "-c", "-e", "trace=" + ",".join(KILL_SYSCALLS + ["fchmod", "fchown"]),
         "--", os.environ["SUPAKEYS_BIN"], *args],
        env=env, capture_output=True, text=True,
    )
    assert p.returncode == 0, p.stderr
    counts = {}
    for line in p.stderr.splitlines():
        cols = line.split()
        if len(cols) >= 5 and cols[-1] != "total" and cols[3].isdigit():
            counts[cols[-1]] = int(cols[3])
    return counts


def copy_dir(src, dst, owner=None):
    """A copy of `src` (an empty directory for None); with `owner`, the copy and everything in
    it belong to that uid (copytree does not keep owners)."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    if src is None:
        os.mkdir(dst)
    else:
        shutil.copytree(src, dst, symlinks=True)
    if owner is not None:
        for p in [dst] + [os.path.join(dst, n) for n in os.listdir(dst)]:
            os.lchown(p, owner, owner)


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


def inject(syscall, n, how):
    """The strace prefix that kills supakeys at (or fails) the n-th `syscall`."""
    action = "signal=SIGKILL" if how == "kill" else f"error={how}"
    return ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
            "-e", f"inject={syscall}:{action}:when={n}", "--"]


def check_crashed_run(t, where, res, how, d, secrets):
    """What every crashed or failed run must show: no secret in its output, the kill happened
    or the error was reported, no partial file."""
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


def scenario(t, work, name, initial_env, crash_env, owner=None, seed=None):
    """Crash every reachable point of a run of `crash_env` on the directory `initial_env` left
    (or holding the files of the directory `seed`). With `owner`, the directory belongs to that
    uid (root runs then fchown every file)."""
    base = os.path.join(work, f"{name}-initial")
    copy_dir(seed, base, owner)
    if seed:
        # As the version that wrote it left it: git keeps no 0600 mode for the fixture.
        os.chmod(os.path.join(base, "state.json"), 0o600)
    committed = keypair(base) if seed else None
    if initial_env is not None:
        e = dict(initial_env, SUPAKEYS_DIR=base)
        r = run(e)
        assert r.code == 0, r.stderr
        committed = keypair(base)
    # The uninterrupted run: its files are the only other acceptable version of each file.
    ref = os.path.join(work, f"{name}-ref")
    copy_dir(base, ref, owner)
    counts = count_calls(dict(crash_env, SUPAKEYS_DIR=ref), ref)
    if seed:
        with open(os.path.join(ref, "jwt_jwks.json")) as f:
            kinds = [k.get("kty") for k in json.load(f)["keys"]]
        t.check("oct" not in kinds, f"crash[{name}]: the upgrade keeps HS256 retired", str(kinds))
    old = file_hashes(base)
    new = file_hashes(ref) if initial_env is not None or seed else None
    tried = 0
    d = os.path.join(work, f"{name}-crash")
    points = [(s, n, "kill") for s in KILL_SYSCALLS for n in range(1, counts.get(s, 0) + 1)]
    points += [(s, n, err) for s, err in FAULTS for n in range(1, counts.get(s, 0) + 1)]
    for syscall, n, how in points:
        copy_dir(base, d, owner)
        pre = snapshot(d)
        env = dict(crash_env, SUPAKEYS_DIR=d)
        where = f"crash[{name}] {syscall}#{n} {how}"
        res = run(env, prefix=inject(syscall, n, how))
        tried += 1
        secrets = secrets_in(d, env) | secrets_in(base, env)
        check_crashed_run(t, where, res, how, d, secrets)
        # The last fsync is the directory's, after the renames; every other one is a staged file's.
        before_renames = (syscall in PRE_RENAME or (syscall == "fsync" and n < counts.get("fsync", 0))
                          or (syscall.startswith("rename") and n == 1))
        if how != "kill" and res.code == 4 and before_renames:
            t.check(snapshot(d) == pre, f"{where}: a failure before the first rename changed nothing",
                    f"{pre} -> {snapshot(d)}")
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


# --- key lifecycle transitions ------------------------------------------------------------
#
# Issue 5: every transition is one atomic state change; a crash at any point leaves the old or
# the new state, and a rerun converges. A transition renames state.json first, then the
# files derived from it: a kill at rename #1 leaves the old state, at rename #2 the new state
# with every other file old. Those commit syscalls (rename, fsync) are tried at every N; the
# others (write: log lines, stdout, staged bytes; openat) at a sample of N, and each fault at a
# sample too, to keep the whole harness well under 90 s on 2 cores.
TRANSITION_EVERY_N = {"rename", "renameat", "renameat2", "fsync", "fdatasync"}
TRANSITION_SAMPLE_KILL = 10
TRANSITION_SAMPLE_FAULT = 6
TIME_FIELDS = ("created_at", "changed_at")


def sample(count, limit):
    """1..count if that is at most `limit` values; else 1, 2 (for renames: right after the
    state.json commit), count, and values spread evenly between (`limit` in all)."""
    if count <= limit:
        return list(range(1, count + 1))
    picks = {1, 2, count}
    k = limit - len(picks)
    for i in range(1, k + 1):
        picks.add(2 + round(i * (count - 2) / (k + 1)))
    return sorted(picks)


def transition_points(counts):
    """The (syscall, n, how) points of a transition scenario, and a note of what was sampled."""
    points, sampled = [], []
    for s in KILL_SYSCALLS:
        c = counts.get(s, 0)
        ns = list(range(1, c + 1)) if s in TRANSITION_EVERY_N else sample(c, TRANSITION_SAMPLE_KILL)
        if len(ns) < c:
            sampled.append(f"{s}/kill {len(ns)} of {c}")
        points += [(s, n, "kill") for n in ns]
    for s, err in FAULTS:
        c = counts.get(s, 0)
        ns = sample(c, TRANSITION_SAMPLE_FAULT)
        if len(ns) < c:
            sampled.append(f"{s}/{err} {len(ns)} of {c}")
        points += [(s, n, err) for n in ns]
    return points, sampled


def read_state(d):
    try:
        with open(os.path.join(d, "state.json"), "rb") as f:
            data = f.read()
        return data, json.loads(data)
    except (OSError, ValueError):
        return None, None


def without_times(state):
    """The state without its clock fields. `keys rotate` and `keys revoke` set `changed_at`
    of the keys they move to the current second (and `keys standby` stamps its new key), so
    two uninterrupted runs give the same state.json bytes only within the same second: a
    byte comparison with the reference run would fail whenever a crashed run lands in the
    next second. Everything else in the state is a function of the previous state and the
    inputs (the harness checks that on two reference runs), so the state is compared without
    these fields, and the fields themselves are checked by `time_problems`."""
    s = copy.deepcopy(state)
    for key in s.get("keys", []):
        for f in TIME_FIELDS:
            key.pop(f, None)
    return s


def time_problems(old, got, window):
    """The clock fields of `got`, a state a transition wrote within `window` (unix seconds,
    inclusive) from `old`: a key that existed keeps `created_at`, and keeps `changed_at`
    unless its status changed, in which case `changed_at` lies in the window; a new key has
    both in the window."""
    lo, hi = window
    before = {k["kid"]: k for k in old["keys"]}
    problems = []
    for k in got["keys"]:
        o = before.get(k["kid"])
        if o is None:
            if not (lo <= k["created_at"] == k["changed_at"] <= hi):
                problems.append(f"new key {k['kid']}: times {k['created_at']},{k['changed_at']} not in {window}")
        elif k["created_at"] != o["created_at"]:
            problems.append(f"key {k['kid']}: created_at changed")
        elif k["status"] != o["status"] and not lo <= k["changed_at"] <= hi:
            problems.append(f"key {k['kid']}: changed_at {k['changed_at']} not in {window}")
        elif k["status"] == o["status"] and k["changed_at"] != o["changed_at"]:
            problems.append(f"key {k['kid']}: changed_at moved without a status change")
    return problems


def standby_problems(old, got, window):
    """`got` is `old` plus exactly one standby key, every other key and field untouched."""
    if got is None:
        return ["state.json unreadable"]
    problems = []
    kids = {k["kid"] for k in old["keys"]}
    kept = [k for k in got["keys"] if k["kid"] in kids]
    added = [k for k in got["keys"] if k["kid"] not in kids]
    if kept != old["keys"]:
        problems.append("the existing keys changed")
    if len(added) != 1 or added[0]["status"] != "standby" or "jwk" not in added[0]:
        problems.append(f"not exactly one new standby key: {[(k['kid'], k['status']) for k in added]}")
    if sum(k["status"] == "standby" for k in got["keys"]) != 1:
        problems.append("not exactly one standby key")
    if {k: v for k, v in got.items() if k != "keys"} != {k: v for k, v in old.items() if k != "keys"}:
        problems.append("a field other than the keys changed")
    if not problems:
        problems += time_problems(old, got, window)
    return problems


def key_list(env):
    """`keys list --format json` as (kid, alg, status, files) per key, or the error."""
    r = run(env, ["keys", "list", "--format", "json"])
    if r.code != 0:
        return f"keys list exited {r.code}: {r.stderr}"
    return [(k["kid"], k["alg"], k["status"], k["files"]) for k in json.loads(r.stdout)["keys"]]


def transition_scenario(t, work, name, prepare, command, rerun_committed):
    """Crash `command` (a `keys` transition) on the directory the `prepare` runs leave.

    `rerun_committed`: (exit code, stderr text or None) of rerunning the same command once
    the crashed run had committed the new state; before that, the rerun must exit 0."""
    env0 = base_env("")
    base = os.path.join(work, f"{name}-initial")
    copy_dir(None, base)
    for args in prepare:
        r = run(dict(env0, SUPAKEYS_DIR=base), args)
        assert r.code == 0, (args, r.stderr)
    args = command(base)
    old_bytes, old_state = read_state(base)
    old = file_hashes(base)
    old_list = key_list(dict(env0, SUPAKEYS_DIR=base))
    standby = args[:2] == ["keys", "standby"]

    # Two uninterrupted runs. For rotate and revoke they must agree on every file, state.json
    # up to its clock fields: that makes them the one acceptable "new" version.
    ref, ref2 = os.path.join(work, f"{name}-ref"), os.path.join(work, f"{name}-ref2")
    copy_dir(base, ref)
    copy_dir(base, ref2)
    lo = int(time.time())
    counts = count_calls(dict(env0, SUPAKEYS_DIR=ref), ref, args)
    r = run(dict(env0, SUPAKEYS_DIR=ref2), args)
    assert r.code == 0, r.stderr
    ref_window = (lo, int(time.time()))
    _, ref_state = read_state(ref)
    _, ref2_state = read_state(ref2)
    new = file_hashes(ref)
    if standby:
        for s in (ref_state, ref2_state):
            t.check(not standby_problems(old_state, s, ref_window),
                    f"crash[{name}]: an uninterrupted run adds one standby key",
                    "; ".join(standby_problems(old_state, s, ref_window)))
    else:
        same = without_times(ref_state) == without_times(ref2_state) and all(
            new.get(f) == file_hashes(ref2).get(f) for f in MANAGED if f != "state.json")
        t.check(same, f"crash[{name}]: two uninterrupted runs agree on every file (state.json up to its clock fields)")
        t.check(not time_problems(old_state, ref_state, ref_window),
                f"crash[{name}]: the uninterrupted run's clock fields", "; ".join(time_problems(old_state, ref_state, ref_window)))
        expected_list = key_list(dict(env0, SUPAKEYS_DIR=ref))

    points, sampled = transition_points(counts)
    outcomes = {"old": 0, "new": 0}
    d = os.path.join(work, f"{name}-crash")
    for syscall, n, how in points:
        copy_dir(base, d)
        env = dict(env0, SUPAKEYS_DIR=d)
        where = f"crash[{name}] {syscall}#{n} {how}"
        lo = int(time.time())
        res = run(env, args, prefix=inject(syscall, n, how))
        window = (lo, int(time.time()))
        secrets = secrets_in(d, env) | secrets_in(base, env)
        check_crashed_run(t, where, res, how, d, secrets)

        # state.json is exactly the old state or the new one.
        got_bytes, got = read_state(d)
        crashed = file_hashes(d)
        committed = got_bytes != old_bytes
        outcomes["new" if committed else "old"] += 1
        new_kid = None
        if not committed:
            # state.json is renamed first: nothing else can have moved yet.
            t.check(crashed == old, f"{where}: the old state and every file still old",
                    str([f for f in MANAGED if crashed.get(f) != old.get(f)]))
        elif standby:
            problems = standby_problems(old_state, got, window)
            t.check(not problems, f"{where}: state.json is the old state or has exactly one new standby key",
                    "; ".join(problems))
            new_kid = next((k["kid"] for k in (got or {}).get("keys", []) if k["status"] == "standby"), None)
        else:
            ok = got is not None and without_times(got) == without_times(ref_state)
            problems = time_problems(old_state, got, window) if ok else ["differs from the new state"]
            t.check(not problems, f"{where}: state.json is exactly the old or the new state", "; ".join(problems))
            mixed = [f for f in MANAGED if f != "state.json" and crashed.get(f) not in (old.get(f), new.get(f))]
            t.check(not mixed, f"{where}: every file is the old or the new version", str(mixed))
        chk = run(env, ["check"])
        ok, detail = check_names_what_is_missing(chk, d)
        t.check(ok, f"{where}: check passes or names what is missing", detail)
        t.check(not leaks(chk.output, secrets), f"{where}: no secret in check's output")

        # The operator reruns the same command (then `init`, for rotate and revoke).
        again = run(env, args)
        secrets |= secrets_in(d, env)
        code, text = rerun_committed if committed else (0, None)
        t.check(again.code == code and (text is None or text in again.stderr),
                f"{where}: rerunning `{' '.join(args[:2])}` exits {code}" + (f" ({text})" if text else ""),
                f"rc={again.code} {again.stderr}")
        t.check(not leaks(again.output, secrets), f"{where}: no secret in the rerun's output")
        if not standby:
            init = run(env)
            t.check(init.code == 0, f"{where}: init after the rerun succeeds", init.stderr)
            t.check(not leaks(init.output, secrets), f"{where}: no secret in init's output")
        t.check(not temp_files(d), f"{where}: the rerun removed the temp files", str(temp_files(d)))
        chk = run(env, ["check"])
        t.check(chk.code == 0, f"{where}: check passes after the rerun", chk.stderr)
        final_window = (window[0], int(time.time()))
        _, final = read_state(d)
        listed = key_list(env)
        if standby:
            problems = standby_problems(old_state, final, final_window)
            t.check(not problems, f"{where}: the rerun leaves exactly one standby key", "; ".join(problems))
            if new_kid is not None:
                t.check(any(k["kid"] == new_kid and k["status"] == "standby" for k in (final or {}).get("keys", [])),
                        f"{where}: the rerun kept the committed standby key")
                now = file_hashes(d)
                mixed = [f for f in MANAGED if crashed.get(f) not in (old.get(f), now.get(f))]
                t.check(not mixed, f"{where}: every file was the old or the new version", str(mixed))
            # Expected statuses: the old keys unchanged, plus one standby published in the
            # same files as the current key.
            ok = isinstance(listed, list) and isinstance(old_list, list)
            if ok:
                kept = [k for k in listed if k[0] in {o[0] for o in old_list}]
                added = [k for k in listed if k not in kept]
                current_files = [k[3] for k in listed if k[2] == "current"]
                ok = (kept == old_list and len(added) == 1 and added[0][2] == "standby"
                      and [added[0][3]] == current_files)
            t.check(ok, f"{where}: keys list shows the old keys and one published standby key", str(listed))
            # Converged: a second `keys standby` (and an `init`) change nothing at all.
            before = snapshot(d)
            second = run(env, args)
            t.check(second.code == 0 and "already exists" in second.stderr and snapshot(d) == before,
                    f"{where}: a second `keys standby` changes nothing", f"rc={second.code} {second.stderr}")
            init = run(env)
            t.check(init.code == 0 and snapshot(d) == before, f"{where}: init then changes nothing", init.stderr)
            t.check(not leaks(second.output + init.output, secrets), f"{where}: no secret in the last runs' output")
        else:
            ok = final is not None and without_times(final) == without_times(ref_state)
            problems = time_problems(old_state, final, final_window) if ok else ["differs from the new state"]
            t.check(not problems, f"{where}: the rerun converged to the new state", "; ".join(problems))
            now = file_hashes(d)
            differ = [f for f in MANAGED if f != "state.json" and now.get(f) != new.get(f)]
            t.check(not differ, f"{where}: the rerun converged to the uninterrupted result", str(differ))
            t.check(listed == expected_list, f"{where}: keys list shows the expected statuses", str(listed))
    t.check(outcomes["old"] and outcomes["new"], f"crash[{name}]: crash points left both the old and the new state",
            str(outcomes))
    return len(points), counts, sampled, outcomes


def previous_kid(d):
    _, state = read_state(d)
    return next(k["kid"] for k in state["keys"] if k["status"] == "previous")


def main(t, work):
    plain = base_env("")
    with_legacy = dict(plain, ANON_KEY=legacy_key("anon"), SERVICE_ROLE_KEY=legacy_key("service_role"))
    # Same JWT_SECRET, different legacy keys (re-issued a second later, other iat/exp).
    changed_legacy = dict(plain, ANON_KEY=legacy_key("anon", exp_in=9 * 365 * 86400),
                          SERVICE_ROLE_KEY=legacy_key("service_role", exp_in=9 * 365 * 86400))
    total = 0
    # A directory supakeys 0.1.0 left with HS256 retired (state schema 2: the files are the only
    # record of the mode), upgraded by a run without SUPAKEYS_LEGACY_HS256 (issue 16, class 7).
    v2 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "state-v2-reject")
    v2_env = dict(plain, JWT_SECRET="your-super-secret-jwt-token-with-at-least-32-characters-long")
    for name, initial, crash, seed in [
        ("first-run", None, plain, None),
        ("jwt-secret-changed", plain, dict(plain, JWT_SECRET=SECRET_B), None),
        ("legacy-keys-changed", with_legacy, changed_legacy, None),
        # A directory of uid 1000 (the image's volume): a root run gives every file to it.
        ("first-run-uid-1000-directory", None, plain, None),
        ("upgrade-from-schema-2-hs256-retired", None, v2_env, v2),
    ]:
        owner = 1000 if "uid-1000" in name else None
        tried, counts = scenario(t, work, name, initial, crash, owner, seed)
        print(f"crash[{name}]: {tried} crash/fault points (syscalls per run: {counts})", flush=True)
        total += tried
    standby, rotate = ["keys", "standby"], ["keys", "rotate"]
    for name, prepare, command, rerun_committed in [
        ("keys-standby", [[]], lambda d: standby, (0, None)),
        # After a committed rotation there is no standby key left: the rerun is refused with
        # exit 2 and changes nothing; `init` then completes the files.
        ("keys-rotate", [[], standby], lambda d: rotate, (2, "there is no standby key")),
        ("keys-revoke", [[], standby, rotate], lambda d: ["keys", "revoke", previous_kid(d)], (0, None)),
    ]:
        tried, counts, sampled, outcomes = transition_scenario(t, work, name, prepare, command, rerun_committed)
        print(f"crash[{name}]: {tried} crash/fault points, {outcomes['old']} left the old state and "
              f"{outcomes['new']} the new one (syscalls per run: {counts}; every N of the rename and "
              f"fsync kills, sampled N: {', '.join(sampled) or 'none'})", flush=True)
        total += tried
    return f"{total} crash/fault points"
