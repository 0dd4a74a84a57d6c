"""Runs the evidence checks (crash, concurrency, hostile input, symlink swaps, wrong clocks;
secret hygiene in all of them) and prints `N passed, M failed` last.
Usage: harness.py [crash|concurrency|hostile|swap|clock ...]."""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import clock  # noqa: E402
import concurrency  # noqa: E402
import crash  # noqa: E402
import hostile  # noqa: E402
import swap  # noqa: E402
from lib import Tally  # noqa: E402


def main():
    parts = sys.argv[1:] or ["crash", "concurrency", "hostile", "swap", "clock"]
    t = Tally()
    work = tempfile.mkdtemp(prefix="supakeys-evidence-")
    os.chmod(work, 0o755)  # the read-only and wrong-owner cases run as nobody
    summary = []
    for part in parts:
        start = time.monotonic()
        before = (t.passed, t.failed)
        sub = os.path.join(work, part)
        os.mkdir(sub)
        os.chmod(sub, 0o755)
        parts_by_name = {"crash": crash, "concurrency": concurrency, "hostile": hostile, "swap": swap, "clock": clock}
        detail = parts_by_name[part].main(t, sub)
        summary.append(
            f"{part}: {t.passed - before[0]} checks passed, {t.failed - before[1]} failed, "
            f"{detail}, {time.monotonic() - start:.1f}s"
        )
    for line in summary:
        print(line)
    if os.environ.get("KEEP_WORK") is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory kept: {work}")
    print(f"{t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
