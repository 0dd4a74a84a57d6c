"""A uid that owns the keys directory swaps managed files for symlinks while a root run
works in it (issue 10, class 3): `renameat2(RENAME_EXCHANGE)` in a tight loop, run as that
uid, exchanges a managed file with a symlink to a file or FIFO outside the directory. A root
run must never act on or read through such a link: the file outside keeps its mode, owner
and bytes, nothing it holds reaches the output, no run blocks on the FIFO, and every run
exits 0 or with its documented code. The runs also check that a root run gives the files to
the directory's owner (class 4)."""

import ctypes
import os
import signal
import stat
import subprocess
import sys
import time

from lib import SECRET, SECRET_B, base_env, run

OWNER = 1000
ROUNDS = 60
AT_FDCWD = -100
RENAME_EXCHANGE = 2
LIBC = ctypes.CDLL(None, use_errno=True)

# Runs as the directory's owner; exchanges each pair of names until killed.
SWAPPER = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
pairs = [(a.encode(), b.encode()) for a, b in zip(sys.argv[1::2], sys.argv[2::2])]
for a, b in pairs:
    libc.renameat2(-100, a, -100, b, 2)
print("swapping", flush=True)
while True:
    for a, b in pairs:
        libc.renameat2(-100, a, -100, b, 2)
"""


def exchange(a, b):
    if LIBC.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), f"renameat2 {a} {b}")


def start_swapper(pairs):
    args = [p for pair in pairs for p in pair]
    return subprocess.Popen(
        ["setpriv", f"--reuid={OWNER}", f"--regid={OWNER}", "--clear-groups", "--",
         sys.executable, "-c", SWAPPER, *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )


def stop(p):
    p.send_signal(signal.SIGKILL)
    p.wait()


def repair(name, lure, target):
    """With the swapper stopped: `name` is the regular file again, `lure` a link to `target`."""
    if os.path.islink(name) and os.path.lexists(lure) and not os.path.islink(lure):
        exchange(name, lure)
    if os.path.lexists(lure) and not os.path.islink(lure):
        os.remove(lure)  # a run renamed its new file over the link: the old file ended here
    if not os.path.lexists(lure):
        os.symlink(target, lure)
        os.lchown(lure, OWNER, OWNER)


def fingerprint(path):
    st = os.lstat(path)
    data = open(path, "rb").read() if stat.S_ISREG(st.st_mode) else b""
    return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, data)


def main(t, work):
    d = os.path.join(work, "keys")
    os.mkdir(d)
    os.chown(d, OWNER, OWNER)
    env = base_env(d)
    env["SUPAKEYS_LOG_LEVEL"] = "info"
    r = run(env)
    assert r.code == 0, r.stderr
    owners = {n: os.lstat(os.path.join(d, n)).st_uid for n in os.listdir(d)}
    t.check(set(owners.values()) == {OWNER}, "swap: a root run gives every file to the directory's owner",
            str(owners))

    # Outside the directory: a root-only file and a FIFO nobody writes to.
    victim = os.path.join(work, "victim")
    with open(victim, "w") as f:
        f.write("precious-outside-content\n")
    os.chmod(victim, 0o600)
    fifo = os.path.join(work, "trap.fifo")
    os.mkfifo(fifo)
    before = fingerprint(victim)
    pairs = [
        (os.path.join(d, "kong.yml"), os.path.join(d, "lure-kong"), victim),
        (os.path.join(d, "supabase.env"), os.path.join(d, "lure-env"), victim),
        (os.path.join(d, "state.json"), os.path.join(d, "lure-state"), fifo),
        (os.path.join(d, "jwks.json"), os.path.join(d, "lure-jwks"), fifo),
    ]
    commands = [[], ["print-env"], ["check"], ["keys", "list"]]
    codes, blocked, leaked, changed = {}, [], [], []
    start = time.monotonic()
    for i in range(ROUNDS):
        for name, lure, target in pairs:
            repair(name, lure, target)
        # A reason to fix a mode (the old code chmodded by path, after an lstat) and, every
        # other round, a changed secret (renames of every file).
        fd = os.open(os.path.join(d, "kong.yml"), os.O_RDONLY | os.O_NOFOLLOW)
        os.fchmod(fd, 0o600)
        os.close(fd)
        env["JWT_SECRET"] = SECRET if i % 2 else SECRET_B
        args = commands[i % len(commands)]
        swapper = start_swapper([(n, lure) for n, lure, _ in pairs])
        swapper.stdout.readline()  # the swapping has begun
        try:
            res = run(env, args, timeout=15)
            codes[res.code] = codes.get(res.code, 0) + 1
            if "precious-outside-content" in res.output:
                leaked.append(args)
        except subprocess.TimeoutExpired:
            blocked.append(args)
            subprocess.run(["pkill", "-KILL", "-f", "--", os.environ["SUPAKEYS_BIN"]], check=False)
        finally:
            stop(swapper)
        if fingerprint(victim) != before:
            changed.append((i, args))
            break
    t.check(not changed, "swap: the file outside the directory kept its mode, owner and bytes",
            f"changed in round {changed}: {fingerprint(victim)[:4]} was {before[:4]}")
    t.check(not blocked, "swap: no run opened the FIFO behind a swapped link", f"blocked: {blocked}")
    t.check(not leaked, "swap: no output holds the content of the file behind a link", f"leaked by {leaked}")
    t.check(set(codes) <= {0, 4, 6}, "swap: every run exited 0, 4 (a link refused) or 6 (check)", str(codes))
    # Once the swapping stops, the owner's next run repairs everything.
    for name, lure, _ in pairs:
        repair(name, lure, victim)
        os.remove(lure)
    env["JWT_SECRET"] = SECRET
    r = run(env)
    chk = run(env, ["check"])
    t.check(r.code == 0 and chk.code == 0, "swap: afterwards a run and check pass", r.stderr + chk.stderr)
    return f"{ROUNDS} rounds in {time.monotonic() - start:.1f}s, exit codes {codes}"
