"""Reading a copy of the keys volume, for probe.py and verify.py."""
import os


def env_file(snap, name):
    """The variables of one of supakeys' env files (its NAME='value' lines)."""
    out = {}
    with open(os.path.join(snap, name), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                key, _, val = line.partition("=")
                out[key] = val[1:-1] if len(val) >= 2 and val[0] == val[-1] == "'" else val
    return out
