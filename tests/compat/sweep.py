#!/usr/bin/env python3
"""Generate P-256 keys with supakeys itself until one has a leading zero byte in x, y or d.

Usage: sweep.py SUPAKEYS_BIN CASE_DIR, with the case's inputs in the environment.
Runs `supakeys init` into CASE_DIR/sweep-N (N = 1, 2, ...), checks that x, y and d of every
generated key are exactly 32 bytes (GoTrue refuses anything else), and stops at the first key
with a leading zero byte (about 1 key in 85). Prints `ok -`/`not ok -` lines; on success the
last line of stdout is `keys: <dir of that key>` for the full checker run. Other sweep dirs
are removed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from compat_lib import b64u_decode

MAX_RUNS = 800  # P(no hit) = (1 - 3/256)^800, about 1e-4


def main() -> int:
    binary, case_dir = sys.argv[1], Path(sys.argv[2])
    for n in range(1, MAX_RUNS + 1):
        d = case_dir / f"sweep-{n}"
        d.mkdir(parents=True)
        p = subprocess.run([binary, "init", "--dir", str(d)], capture_output=True)
        if p.returncode != 0:
            (case_dir / "init.log").write_bytes(p.stdout + p.stderr)
            print(f"not ok - supakeys/sweep: init run {n} exited {p.returncode}; log: {case_dir / 'init.log'}")
            return 1
        jwk = json.loads((d / "state.json").read_text())["keys"][0]["jwk"]
        sizes = {m: b64u_decode(jwk[m], m) for m in ("x", "y", "d")}
        short = [m for m, raw in sizes.items() if len(raw) != 32]
        if short:
            print(f"not ok - supakeys/sweep: run {n} emitted {short} not 32 bytes; kept {d}")
            return 1
        zero = [m for m, raw in sizes.items() if raw[0] == 0]
        if zero:
            (case_dir / "init.log").write_bytes(p.stdout + p.stderr)
            print(f"ok - supakeys/sweep: {n} generated keys all 32-byte; run {n} has a leading zero in {zero}")
            print(f"keys: {d}")
            return 0
        shutil.rmtree(d)
    print(f"not ok - supakeys/sweep: no leading-zero key in {MAX_RUNS} runs (expected about 1 in 85)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
