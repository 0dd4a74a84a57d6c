"""Wrong clocks, with the real binary under libfaketime (issue 16, class 8): a run whose
clock is ahead, one whose clock reads 1970 (a board without a real-time clock), and one
whose clock went back. Then runs with the right clock: `check` reports what verifiers would
refuse, `init` repairs the minted tokens with a warning, and the directory ends checked and
stable."""

import json
import os
import time

from lib import base_env, leaks, run, secrets_in, snapshot

# FAKETIME_DONT_FAKE_MONOTONIC: the lock timeout measures with the monotonic clock.
FAKE = {"FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def faked(spec):
    return ["faketime", "-f", spec] if spec.startswith(("+", "-")) else ["faketime", spec]


def state(d):
    with open(os.path.join(d, "state.json")) as f:
        return json.load(f)


def main(t, work):
    scenarios = 0
    for name, spec, expect_fake, then in [
        # Ten days ahead: minted tokens PostgREST refuses for ten days once the clock is right.
        ("ten-days-ahead", "+10d", lambda s, now: s["minted"]["iat"] > now + 9 * 86400,
         ["its iat is", "PostgREST refuses it until then"]),
        # 1970: tokens minted expired long ago; the run says the clock is wrong.
        ("1970", "1970-01-02 00:00:00", lambda s, now: s["minted"]["iat"] < 2 * 86400,
         ["expired on 1975"]),
    ]:
        scenarios += 1
        d = os.path.join(work, name)
        os.mkdir(d)
        env = dict(base_env(d), **FAKE)
        secrets = secrets_in(d, env)
        now = int(time.time())
        first = run(env, prefix=faked(spec))
        t.check(first.code == 0, f"clock[{name}]: init under a wrong clock exits 0", first.stderr)
        t.check(expect_fake(state(d), now), f"clock[{name}]: faketime set the clock of the run",
                json.dumps(state(d)["minted"]))
        if name == "1970":
            t.check("before this supakeys was released" in first.stderr,
                    f"clock[{name}]: the run says the clock is wrong", first.stderr)
            # doctor signs its tokens at its own clock: it says so too (nothing listens on
            # port 9, so every line fails; the warning comes before the requests).
            doc = run(env, ["doctor", "--url", "http://127.0.0.1:9", "--timeout", "1"], prefix=faked(spec))
            t.check(doc.code == 7 and "before this supakeys was released" in doc.stderr,
                    f"clock[{name}]: doctor says the clock is wrong", f"exit {doc.code}: {doc.stderr}")
        chk = run(env, ["check"])
        t.check(chk.code == 6 and all(n in chk.stderr for n in then),
                f"clock[{name}]: check with the right clock reports the tokens", chk.stderr)
        again = run(env)
        t.check(again.code == 0, f"clock[{name}]: init with the right clock exits 0", again.stderr)
        if name == "ten-days-ahead":
            t.check("re-minted the API tokens" in again.stderr and "after this clock" in again.stderr,
                    f"clock[{name}]: init re-mints the tokens and says the state's times are ahead",
                    again.stderr)
        t.check(state(d)["minted"]["iat"] <= int(time.time()),
                f"clock[{name}]: the minted tokens are issued at or before now", json.dumps(state(d)["minted"]))
        chk = run(env, ["check"])
        t.check(chk.code == 0, f"clock[{name}]: check passes after init", chk.stderr)
        before = snapshot(d)
        stable = run(env)
        t.check(stable.code == 0 and snapshot(d) == before,
                f"clock[{name}]: a further init changes nothing", stable.stderr)
        secrets |= secrets_in(d, env)
        for r in (first, again, stable):
            t.check(not leaks(r.stdout + r.stderr, secrets), f"clock[{name}]: no secret in the output")

    # A clock that went back two days after a run: said, and the minted tokens it would see
    # as issued in the future are minted again (at its time: a past iat verifies everywhere).
    scenarios += 1
    d = os.path.join(work, "went-back")
    os.mkdir(d)
    env = dict(base_env(d), **FAKE)
    t.check(run(env).code == 0, "clock[went-back]: init")
    back = run(env, prefix=faked("-2d"))
    t.check(back.code == 0 and "after this clock" in back.stderr,
            "clock[went-back]: a run whose clock went back says the state's times are ahead of it", back.stderr)
    chk = run(env, ["check"])
    t.check(chk.code == 0, "clock[went-back]: check passes with the right clock", chk.stderr)
    return f"{scenarios} scenarios"
