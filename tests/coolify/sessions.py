#!/usr/bin/env python3
"""Users' sessions across a move to supakeys and a new SERVICE_PASSWORD_JWT, asked of the
running services through Kong.

usage: sessions.py mint SECRET          an access token as Auth signs it with only the
                                        HS256 secret (before supakeys): alg HS256, no kid
       sessions.py sign-in URL APIKEY   an anonymous sign-in through Kong; prints the token
       sessions.py accepted URL APIKEY TOKEN   PostgREST, Storage and Realtime accept TOKEN
       sessions.py refused URL APIKEY TOKEN    all three refuse it
       sessions.py key-refused URL KEY         Kong refuses KEY as an API key

The answers that tell acceptance apart are the stand-ins' restatement of each service
(tests/standins/README.md): PostgREST's 404 PGRST205 for a missing table once the token is
accepted, 401 PGRST30x when it is not; Storage 200 or 400 {"statusCode":"403"}; Realtime's
422 for an empty broadcast or 401 {"message":"Unauthorized"}.
"""
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

import jwt


def request(url, method, path, headers, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def verdicts(url, apikey, token):
    h = {"apikey": apikey, "Authorization": f"Bearer {token}"}
    rest = request(url, "GET", "/rest/v1/session_probe", h)
    storage = request(url, "GET", "/storage/v1/bucket", h)
    realtime = request(url, "POST", "/realtime/v1/api/broadcast", h, {"messages": []})
    return {
        "rest": (rest[0] == 404 and "PGRST205" in rest[1], rest),
        "storage": (storage[0] == 200, storage),
        "realtime": (realtime[0] in (202, 422), realtime),
    }


def main(argv):
    cmd = argv[1]
    if cmd == "mint":
        now = int(time.time())
        claims = {"aud": "authenticated", "exp": now + 3600, "iat": now, "sub": str(uuid.uuid4()),
                  "role": "authenticated", "aal": "aal1", "session_id": str(uuid.uuid4()), "is_anonymous": True}
        print(jwt.encode(claims, argv[2], algorithm="HS256", headers={"typ": "JWT"}))
        return 0
    if cmd == "sign-in":
        status, body = request(argv[2], "POST", "/auth/v1/signup", {"apikey": argv[3]}, {})
        if status != 200:
            print(f"sign-in: {status} {body[:200]}", file=sys.stderr)
            return 1
        print(json.loads(body)["access_token"])
        return 0
    if cmd in ("accepted", "refused"):
        want = cmd == "accepted"
        wrong = [f"{svc} {'refused' if want else 'accepted'} it: {got[0]} {got[1][:120]}"
                 for svc, (ok, got) in verdicts(argv[2], argv[3], argv[4]).items() if ok != want]
        print("\n".join(wrong))
        return 1 if wrong else 0
    if cmd == "key-refused":
        status, body = request(argv[2], "GET", "/rest/v1/session_probe",
                               {"apikey": argv[3], "Authorization": f"Bearer {argv[3]}"})
        if status == 401 and "PGRST" not in body:
            return 0
        print(f"Kong let it through: {status} {body[:120]}")
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
