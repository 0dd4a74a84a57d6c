#!/usr/bin/env python3
"""Checks one `supakeys doctor --format json` report against a scenario's expectations.

    expect.py REPORT.json EXIT_CODE [--fail ID TEXT FIX]... [--skip ID]... [--all-fail TEXT]

ID is `service/check` or `service/check/key_status` (e.g. `storage/accepts-key/standby`).
Every listed failure must be in the report as a failed line whose problem or cause contains
TEXT and whose fix contains FIX; every other line must pass, except the `--skip` ones, which
must be skipped (`--all-fail`: every line must fail with TEXT). The exit code must be 7 when
something failed, else 0. Prints what differs and exits 1 on any difference.
"""

import json
import sys


def ident(check):
    parts = [check["service"], check["check"]]
    if "key_status" in check:
        parts.append(check["key_status"])
    return "/".join(parts)


def matches(pattern, check):
    have = ident(check)
    return have == pattern or have.startswith(pattern + "/")


def main(argv):
    report_path, exit_code = argv[1], int(argv[2])
    args = argv[3:]
    fails, skips, all_fail = [], [], None
    while args:
        flag = args.pop(0)
        if flag == "--fail":
            fails.append((args.pop(0), args.pop(0), args.pop(0)))
        elif flag == "--skip":
            skips.append(args.pop(0))
        elif flag == "--all-fail":
            all_fail = args.pop(0)
        else:
            raise SystemExit(f"unknown argument {flag}")
    with open(report_path, encoding="utf-8") as f:
        report = json.load(f)
    problems = []
    seen = set()
    for check in report["checks"]:
        name = ident(check)
        expected_fail = [f for f in fails if matches(f[0], check)]
        expected_skip = any(matches(s, check) for s in skips)
        result = check["result"]
        if all_fail is not None:
            text = check.get("problem", "") + " " + check.get("cause", "")
            if result != "fail" and not expected_skip:
                problems.append(f"{name}: expected to fail, got {result}")
            elif result == "fail" and all_fail not in text:
                problems.append(f"{name}: {text!r} lacks {all_fail!r}")
        elif expected_fail:
            pattern, cause, fix = expected_fail[0]
            seen.add(pattern)
            if result != "fail":
                problems.append(f"{name}: expected to fail, got {result}: {check.get('detail') or check.get('reason')}")
                continue
            text = check["problem"] + " / " + check["cause"]
            if cause not in text:
                problems.append(f"{name}: {text!r} lacks {cause!r}")
            if fix not in check["fix"]:
                problems.append(f"{name}: fix {check['fix']!r} lacks {fix!r}")
        elif expected_skip:
            if result != "skip":
                problems.append(f"{name}: expected to be skipped, got {result}")
        elif result != "pass":
            detail = check.get("problem") or check.get("reason")
            cause = check.get("cause", "")
            problems.append(f"{name}: expected to pass, got {result}: {detail} / {cause}")
    for pattern, _, _ in fails:
        if pattern not in seen:
            problems.append(f"{pattern}: no such line in the report")
    want_code = 7 if fails or all_fail is not None else 0
    if exit_code != want_code:
        problems.append(f"exit code {exit_code}, expected {want_code}")
    if report["failed"] != sum(1 for c in report["checks"] if c["result"] == "fail"):
        problems.append("the failed count does not match the lines")
    if problems:
        print("\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
