#!/usr/bin/env python3
"""Run a case's key-lifecycle commands (`supakeys keys ...`) on a keys directory after `init`.

Usage: lifecycle.py SUPAKEYS_BIN KEYS_DIR CASE_DIR, with the case's inputs in the environment;
COMPAT_STEPS is a JSON list of argument lists, e.g. [["keys","standby"],["keys","rotate"]].
`@previous` in a step stands for the kid of the key whose status is `previous`.
Before the first `rotate`, the asymmetric API tokens are saved to CASE_DIR/old-tokens.txt, so
the checkers can verify that tokens signed with the old key still verify (or, once revoked,
no longer do). Prints `ok -`/`not ok -` lines and, when tokens were saved, `old-tokens: PATH`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dotenv import dotenv_values


def main() -> int:
    binary, keys, case_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    steps = json.loads(os.environ["COMPAT_STEPS"])
    saved = None
    for n, step in enumerate(steps, 1):
        if "rotate" in step and saved is None:
            env = dotenv_values(keys / "supabase.env")
            saved = case_dir / "old-tokens.txt"
            saved.write_text("".join(env[v] + "\n" for v in ("ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC")))
        if "@previous" in step:
            state = json.loads((keys / "state.json").read_text())
            previous = [k["kid"] for k in state["keys"] if k.get("status") == "previous"]
            if len(previous) != 1:
                print(f"not ok - supakeys/lifecycle: {len(previous)} previous keys before step {n}, want 1")
                return 1
            step = [previous[0] if a == "@previous" else a for a in step]
        label = " ".join(a if len(a) < 20 else "KID" for a in step)
        log = case_dir / f"step-{n}.log"
        p = subprocess.run([binary, *step, "--dir", str(keys)], capture_output=True)
        log.write_bytes(p.stdout + p.stderr)
        if p.returncode != 0:
            print(f"not ok - supakeys/{label}: exit {p.returncode}; log: {log}")
            return 1
        print(f"ok - supakeys/{label}")
    if saved:
        print(f"old-tokens: {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
