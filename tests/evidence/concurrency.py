"""16 processes started together, on a fresh directory and on an existing one."""

import os
import subprocess
import threading

from lib import BIN, base_env, keypair, leaks, secrets_in, snapshot, validate_dir

N = 16


def race(env, args=()):
    """Starts N processes behind a barrier so that they really start together."""
    barrier = threading.Barrier(N)
    results = [None] * N

    def one(i):
        barrier.wait()
        p = subprocess.run([BIN, *args], env=env, capture_output=True)
        results[i] = (p.returncode, p.stdout.decode(), p.stderr.decode())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


def main(t, work):
    d = os.path.join(work, "keys")
    os.mkdir(d)
    env = base_env(d)
    for label in ("fresh directory", "existing directory"):
        before = snapshot(d) if label == "existing directory" else None
        results = race(env)
        secrets = secrets_in(d, env)
        t.check(all(r[0] == 0 for r in results), f"concurrency[{label}]: all {N} exit 0",
                "\n".join(r[2] for r in results if r[0] != 0))
        kids = {line.split("kid=")[1].split()[0] for r in results for line in r[2].splitlines()
                if "keys directory is ready" in line}
        state_kids = [k for k, _ in keypair(d) or []]
        t.check(len(kids) == 1 and sorted(kids) == state_kids,
                f"concurrency[{label}]: every process used the one keypair", f"{kids} vs {state_kids}")
        generated = sum("generated a new signing key" in r[2] for r in results)
        t.check(generated == (1 if label == "fresh directory" else 0),
                f"concurrency[{label}]: the key was generated {generated} time(s)")
        t.check(not validate_dir(d), f"concurrency[{label}]: every file is complete", str(validate_dir(d)))
        t.check(not any(n.startswith(".supakeys-tmp-") for n in os.listdir(d)),
                f"concurrency[{label}]: no temp file left")
        chk = subprocess.run([BIN, "check"], env=env, capture_output=True, text=True)
        t.check(chk.returncode == 0, f"concurrency[{label}]: check passes", chk.stderr)
        if before is not None:
            t.check(snapshot(d) == before, f"concurrency[{label}]: no byte or mtime changed")
        t.check(not any(leaks(r[1] + r[2], secrets) for r in results),
                f"concurrency[{label}]: no secret in any output")
    # print-env --init from 16 processes: every one prints the same bytes, equal to the file.
    d2 = os.path.join(work, "keys-print-env")
    os.mkdir(d2)
    env2 = base_env(d2)
    results = race(env2, ["print-env", "--init"])
    outs = {r[1] for r in results}
    t.check(all(r[0] == 0 for r in results) and len(outs) == 1
            and outs == {open(os.path.join(d2, "supabase.env")).read()},
            "concurrency[print-env --init]: 16 identical outputs equal to supabase.env")
    # print-env prints secrets to stdout by design; stderr must not.
    t.check(not any(leaks(r[2], secrets_in(d2, env2)) for r in results),
            "concurrency[print-env --init]: no secret on stderr")
    return f"{N} processes x 3 races"
