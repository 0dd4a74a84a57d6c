#!/usr/bin/env python3
"""The consumers' rules re-stated in Python from the contract document (not from supakeys).

Usage: check_contract.py KEYS_DIR, with the case's inputs in the environment (see matrix.py).
Sections refer to ../shared/reference/supabase-jwt-contract.md:
state and token shape (2, 4), GoTrue startup rules, PostgREST's JWKS rules, Storage, Realtime,
Edge Functions and Studio (3), opaque key format (2), and agreement between every file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time

from compat_lib import (
    Inputs,
    KeysDir,
    Reporter,
    b64u_decode,
    decode_jwt,
    expect,
    fail,
    private_members,
    public_of,
)

NOW = int(time.time())
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([Tt ]|$)")
EC_PRIVATE_FIELDS = {"kty", "kid", "use", "key_ops", "alg", "ext", "crv", "x", "y", "d"}
RSA_PRIVATE_FIELDS = {"kty", "kid", "use", "key_ops", "alg", "ext", "n", "e", "d", "p", "q", "dp", "dq", "qi"}
GOTRUE_SIGNING_ALGS = {"RS256", "ES256", "RS512", "ES512", "EdDSA"}
KNOWN_ALGS = GOTRUE_SIGNING_ALGS | {"HS256", "HS384", "HS512", "RS384", "ES384", "PS256", "PS384", "PS512"}
FIVE_YEARS = 5 * 365 * 86400


def kty_for_alg(alg: str) -> str:
    return {"ES": "EC", "RS": "RSA", "PS": "RSA", "Ed": "OKP", "HS": "oct"}.get(alg[:2], "?")


def canon(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def check_jwk_shape(jwk: dict, what: str, private: bool, inputs: Inputs, alg: str | None = None) -> None:
    """Upstream's field set (contract 2) plus GoTrue's member rules (contract 3, Auth)."""
    expect(isinstance(jwk, dict), f"{what}: not an object")
    kty = jwk.get("kty")
    expect(kty in ("EC", "RSA"), f"{what}: kty {kty!r}, want EC or RSA")
    fields = EC_PRIVATE_FIELDS if kty == "EC" else RSA_PRIVATE_FIELDS
    if not private:
        fields = fields - ({"d"} if kty == "EC" else {"d", "p", "q", "dp", "dq", "qi"})
    expect(set(jwk) == fields, f"{what}: members {sorted(jwk)}, want {sorted(fields)}")
    expect(isinstance(jwk["kid"], str) and jwk["kid"], f"{what}: kid missing or empty")
    expect(jwk["use"] == "sig", f"{what}: use {jwk['use']!r}, want 'sig'")
    want_ops = ["sign", "verify"] if private else ["verify"]
    expect(jwk["key_ops"] == want_ops, f"{what}: key_ops {jwk['key_ops']!r}, want {want_ops!r}")
    expect(jwk["ext"] is True, f"{what}: ext must be true")
    expect(jwk["alg"] in ("ES256", "RS256"), f"{what}: alg {jwk['alg']!r}, want ES256 or RS256")
    if alg:
        expect(jwk["alg"] == alg, f"{what}: alg {jwk['alg']!r}, want {alg}")
    expect(kty_for_alg(jwk["alg"]) == kty, f"{what}: alg {jwk['alg']} does not fit kty {kty}")
    if kty == "EC":
        expect(jwk["crv"] == "P-256", f"{what}: crv {jwk['crv']!r}, want P-256")
        for m in ("x", "y", "d") if private else ("x", "y"):
            n = len(b64u_decode(jwk[m], f"{what}.{m}"))
            expect(n == 32, f"{what}: {m} is {n} bytes, GoTrue needs exactly 32")
    else:
        for m in ("n", "e", "d", "p", "q", "dp", "dq", "qi") if private else ("n", "e"):
            raw = b64u_decode(jwk[m], f"{what}.{m}")
            expect(raw and raw[0] != 0, f"{what}: {m} not minimal Base64urlUInt (RFC 7518 2)")
        bits = int.from_bytes(b64u_decode(jwk["n"], "n"), "big").bit_length()
        expect(bits >= 2048, f"{what}: RSA modulus {bits} bits < 2048")
        if not os.environ.get("COMPAT_ADOPTED"):
            expect(bits == inputs.rsa_bits, f"{what}: modulus {bits} bits, want {inputs.rsa_bits}")


def check_oct(jwk: dict, what: str, inputs: Inputs) -> None:
    """Upstream's oct JWK: exactly {kty, k, alg}, k = base64url(JWT_SECRET) (contract 2)."""
    expect(set(jwk) == {"kty", "k", "alg"}, f"{what}: members {sorted(jwk)}, want ['alg','k','kty']")
    expect(jwk["alg"] == "HS256", f"{what}: alg {jwk['alg']!r}, want HS256")
    expect(b64u_decode(jwk["k"], f"{what}.k") == inputs.secret.encode(), f"{what}: k is not JWT_SECRET")


def check_state(d: KeysDir, inputs: Inputs) -> None:
    s = d.state()
    expect(s.get("version") == 3, "state.json: version is not 3")
    record = s.get("legacy_hs256") or {}
    expect(record.get("mode") == ("accept" if inputs.hs256 else "reject"),
           f"state.json: legacy_hs256.mode {record.get('mode')!r} and SUPAKEYS_LEGACY_HS256 disagree")
    keys = s.get("keys")
    expect(isinstance(keys, list) and keys, "state.json: keys missing or empty")
    key = d.current_key()
    expect(key.get("alg") == inputs.alg, f"state.json: alg {key.get('alg')!r}, want {inputs.alg}")
    created = key.get("created_at")
    expect(isinstance(created, int) and NOW - 86400 < created <= NOW + 60, "state.json: created_at not a fresh unix time")
    check_jwk_shape(key.get("jwk"), "state.json current jwk", True, inputs, inputs.alg)
    expect(key.get("kid") == key["jwk"]["kid"], "state.json: kid differs from jwk.kid")
    for i, k in enumerate(keys):
        status = k.get("status")
        expect(status in ("standby", "current", "previous", "revoked"), f"state.json: keys[{i}] status {status!r}")
        expect(isinstance(k.get("kid"), str) and k["kid"], f"state.json: keys[{i}] has no kid")
        if status == "revoked":
            expect(not private_members(k.get("jwk") or {}), f"state.json: revoked keys[{i}] kept its private part")
        else:
            expect(k.get("jwk", {}).get("kid") == k["kid"], f"state.json: keys[{i}] kid differs from jwk.kid")
            expect(private_members(k["jwk"]), f"state.json: keys[{i}] ({status}) has no private part")
    expect(len({k["kid"] for k in keys}) == len(keys), "state.json: duplicate kids")
    for name in ("publishable_key", "secret_key"):
        expect(isinstance(s.get(name), str) and s[name], f"state.json: {name} missing")


def check_kid(d: KeysDir, inputs: Inputs) -> None:
    kid = d.current_key()["kid"]
    expect(not RFC3339_RE.match(kid), "kid looks like an RFC 3339 date (PostgREST parses those specially)")
    if os.environ.get("COMPAT_EXPECT_KID"):
        expect(kid == os.environ["COMPAT_EXPECT_KID"], "kid changed since the earlier run (the keypair must stay)")
    elif inputs.kid:
        expect(kid == inputs.kid, "kid differs from SUPAKEYS_KID")
    elif inputs.jwt_keys:
        adopted = next(k for k in inputs.jwt_keys if k.get("kty") != "oct")
        expect(kid == adopted["kid"], "kid differs from the adopted JWT_KEYS kid")
    else:
        expect(UUID4_RE.match(kid), "generated kid is not a lowercase UUID v4")


def check_adoption(d: KeysDir, inputs: Inputs) -> None:
    adopted = next(k for k in inputs.jwt_keys if k.get("kty") != "oct")
    unpadded = os.environ.get("COMPAT_UNPADDED")
    if unpadded:
        # The input lost a leading zero byte; accepted only if emitted padded to 32 bytes.
        got = dict(d.current_key()["jwk"])
        raw = b64u_decode(got[unpadded], unpadded)
        expect(len(raw) == 32, f"state.json: adopted {unpadded} not padded to 32 bytes")
        expect(raw.lstrip(b"\0") == b64u_decode(adopted[unpadded], unpadded).lstrip(b"\0"), f"state.json: adopted {unpadded} changed value")
        got[unpadded] = adopted[unpadded]
        expect(got == adopted, "state.json: current jwk is not the adopted JWT_KEYS key")
        return
    expect(d.current_key()["jwk"] == adopted, "state.json: current jwk is not the adopted JWT_KEYS key")
    expect(d.json_var("auth.env", "GOTRUE_JWT_KEYS") == inputs.jwt_keys, "auth.env: GOTRUE_JWT_KEYS differs from the adopted JWT_KEYS")


def check_gotrue(d: KeysDir, inputs: Inputs) -> None:
    """GoTrue's startup rules for GOTRUE_JWT_KEYS (contract 3, Auth)."""
    text = d.var("auth.env", "GOTRUE_JWT_KEYS")
    expect(text.strip() != "", "auth.env: GOTRUE_JWT_KEYS is empty (fatal at startup)")
    keys = d.json_var("auth.env", "GOTRUE_JWT_KEYS")
    expect(isinstance(keys, list), "auth.env: GOTRUE_JWT_KEYS is not a JSON array")
    expect(all(isinstance(k, dict) and "kty" in k for k in keys), "auth.env: an element is not a JWK")
    signers = [k for k in keys if "sign" in (k.get("key_ops") or [])]
    expect(len(signers) == 1, f"auth.env: {len(signers)} keys with 'sign' in key_ops, want exactly 1")
    signer = signers[0]
    expect(signer.get("alg") in GOTRUE_SIGNING_ALGS, f"auth.env: signer alg {signer.get('alg')!r} unknown to GoTrue")
    check_jwk_shape(signer, "auth.env signing key", True, inputs, inputs.alg)
    expect(signer == d.current_key()["jwk"], "auth.env: signing key differs from state.json's current key")
    asym = [k for k in keys if k.get("kty") != "oct"]
    for k in asym:
        expect(isinstance(k.get("kid"), str) and k["kid"], "auth.env: an asymmetric key has no kid")
    published = {k["kid"] for k in d.published_keys()}
    expect({k.get("kid") for k in asym} == published, "auth.env: asymmetric kids differ from state.json's standby/current/previous keys")
    kids = [k.get("kid", "") for k in keys]
    expect(len(set(kids)) == len(kids), "auth.env: two keys share a kid (GoTrue indexes keys by kid)")
    octs = [k for k in keys if k.get("kty") == "oct"]
    if inputs.hs256:
        expect(len(octs) == 1, f"auth.env: {len(octs)} oct keys, want 1 (keeps legacy HS256 tokens valid)")
        check_oct(octs[0], "auth.env oct key", inputs)
    else:
        expect(not octs, "auth.env: oct key present with SUPAKEYS_LEGACY_HS256=reject")
    for k in keys:
        if k.get("kty") == "EC" and "d" in k:
            for m in ("x", "y", "d"):
                expect(len(b64u_decode(k[m], m)) == 32, f"auth.env: EC {m} not 32 bytes")
        if k.get("kty") == "RSA" and "d" in k:
            missing = {"n", "e", "d", "p", "q", "dp", "dq", "qi"} - set(k)
            expect(not missing, f"auth.env: RSA key lacks {sorted(missing)}")
    methods = {n: d.env["auth.env"].get(n) for n in ("GOTRUE_JWT_VALID_METHODS", "GOTRUE_JWT_VALIDMETHODS")}
    expect(all(v is not None for v in methods.values()), "auth.env: set both GOTRUE_JWT_VALID_METHODS and GOTRUE_JWT_VALIDMETHODS")
    a, b = methods.values()
    expect(a == b, "auth.env: GOTRUE_JWT_VALID_METHODS and GOTRUE_JWT_VALIDMETHODS differ")
    expect(a.strip() != "", "auth.env: valid methods empty (GoTrue would reject every token)")
    algs = [x.strip() for x in a.split(",")]
    expect(all(x in KNOWN_ALGS for x in algs), f"auth.env: unknown alg in valid methods {algs}")
    for k in d.published_keys():
        expect(k["alg"] in algs, f"auth.env: valid methods {algs} lack {k['alg']} of a {k['status']} key")
    expect(("HS256" in algs) == inputs.hs256, f"auth.env: valid methods {algs} and SUPAKEYS_LEGACY_HS256 disagree about HS256")


def parse_pgrst_secret(text: str, what: str) -> dict:
    """What PostgREST makes of PGRST_JWT_SECRET: a JWKS, or else silently a raw HMAC secret."""
    if text.endswith("\n"):
        text = text[:-1]  # @file drops one trailing newline
    try:
        value = json.loads(text)
    except ValueError:
        fail(f"{what}: not JSON, PostgREST would use it as a raw HS256 secret")
    expect(isinstance(value, dict) and isinstance(value.get("keys"), list), f"{what}: not a JWKS object")
    expect("kty" not in value, f"{what}: has a top-level kty")
    for i, k in enumerate(value["keys"]):
        expect(isinstance(k, dict), f"{what}: keys[{i}] not an object")
        kty = k.get("kty")
        need = {"EC": ("crv", "x", "y"), "RSA": ("n", "e"), "oct": ("k",)}.get(kty)
        expect(need is not None, f"{what}: keys[{i}] kty {kty!r} not parseable")
        for m in need:
            expect(isinstance(k.get(m), str), f"{what}: keys[{i}] lacks {m}")
            if m != "crv":
                b64u_decode(k[m], f"{what}.keys[{i}].{m}")
        expect(k.get("use") in (None, "sig"), f"{what}: keys[{i}] use {k.get('use')!r} (enc excludes the key)")
        if "kid" in k:
            expect(isinstance(k["kid"], str), f"{what}: keys[{i}] kid not a string")
            expect(not RFC3339_RE.match(k["kid"]), f"{what}: keys[{i}] kid looks like an RFC 3339 date")
        if "alg" in k:
            expect(k["alg"] in KNOWN_ALGS, f"{what}: keys[{i}] alg {k['alg']!r} unknown")
    return value


def check_postgrest(d: KeysDir, inputs: Inputs) -> None:
    """PostgREST's JWKS rules (contract 3) on PGRST_JWT_SECRET=@jwt_jwks.json."""
    jwks = parse_pgrst_secret((d.path / "jwt_jwks.json").read_text(), "jwt_jwks.json")
    octs = [k for k in jwks["keys"] if k["kty"] == "oct"]
    if inputs.hs256:
        expect(len(octs) == 1, f"jwt_jwks.json: {len(octs)} oct keys, want 1")
        check_oct(octs[0], "jwt_jwks.json oct key", inputs)
    else:
        expect(not octs, "jwt_jwks.json: oct key present with SUPAKEYS_LEGACY_HS256=reject")
        expect(not d.hs_tokens(), "env files carry HS256 tokens with SUPAKEYS_LEGACY_HS256=reject")
    for where, t in d.asymmetric_tokens().items():
        kid = t.header.get("kid")
        expect(isinstance(kid, str), f"{where}: asymmetric token without kid")
        match = [k for k in jwks["keys"] if k.get("kid") == kid]
        expect(len(match) == 1, f"{where}: {len(match)} jwt_jwks.json keys with the token's kid, want 1")
        expect(match[0]["kty"] == kty_for_alg(t.alg), f"{where}: kid matches a key of another kty")
    for where, t in d.hs_tokens().items():
        expect("kid" not in t.header, f"{where}: HS256 token has a kid (PostgREST would need a matching oct kid)")


def check_public_jwks(d: KeysDir, inputs: Inputs) -> None:
    """jwks.json: public asymmetric keys only, each the public part of a state key (contract 2, 3)."""
    jwks = d.json.get("jwks.json")
    expect(isinstance(jwks, dict) and isinstance(jwks.get("keys"), list), "jwks.json: not a JWKS object")
    want = sorted(canon(public_of(k["jwk"])) for k in d.published_keys())
    got = sorted(canon(k) for k in jwks["keys"])
    for k in jwks["keys"]:
        expect(k.get("kty") != "oct", "jwks.json: contains an oct key (secret published)")
        expect(not private_members(k), f"jwks.json: key {k.get('kid')} has private members")
        check_jwk_shape(k, f"jwks.json key {k.get('kid')}", False, inputs)
    expect(got == want, "jwks.json: keys are not exactly the public parts of state.json's standby/current/previous keys")
    jwt_jwks = d.json.get("jwt_jwks.json")
    expect(isinstance(jwt_jwks, dict), "jwt_jwks.json: not an object")
    asym = sorted(canon(k) for k in jwt_jwks["keys"] if k.get("kty") != "oct")
    expect(asym == want, "jwt_jwks.json: asymmetric keys differ from jwks.json")


def check_storage(d: KeysDir, inputs: Inputs) -> None:
    """Storage: JWT_JWKS parses, is an object, public key_ops absent or ["verify"] (contract 3)."""
    v = d.json_var("storage.env", "JWT_JWKS")
    expect(isinstance(v, dict), "storage.env: JWT_JWKS is not a JSON object (an array is silently ignored)")
    expect(isinstance(v.get("keys"), list), "storage.env: JWT_JWKS has no keys array")
    for k in v["keys"]:
        if k.get("kty") == "oct":
            continue
        expect(k.get("key_ops") in (None, ["verify"]), "storage.env: a public key's key_ops is not absent or ['verify']")
        expect(not private_members(k), "storage.env: JWT_JWKS holds private members")
    for where, t in d.asymmetric_tokens().items():
        match = [k for k in v["keys"] if k.get("kid") == t.header.get("kid") and k.get("kty") == kty_for_alg(t.alg)]
        expect(len(match) == 1, f"storage.env: JWT_JWKS has no key for {where}")
    expect(v == d.json.get("jwt_jwks.json"), "storage.env: JWT_JWKS differs from jwt_jwks.json")


def check_realtime(d: KeysDir, inputs: Inputs) -> None:
    """Realtime: API_JWT_JWKS is an object with keys; tokens need kid+kty match, role, exp, typ."""
    v = d.json_var("realtime.env", "API_JWT_JWKS")
    expect(isinstance(v, dict), "realtime.env: API_JWT_JWKS is not a JSON object (an array crashes the seed)")
    expect(isinstance(v.get("keys"), list) and v["keys"], "realtime.env: API_JWT_JWKS has no keys")
    expect(v in (d.json.get("jwt_jwks.json"), d.json.get("jwks.json")), "realtime.env: API_JWT_JWKS differs from jwt_jwks.json and jwks.json")
    for where, t in d.asymmetric_tokens().items():
        kid = t.header.get("kid")
        expect(isinstance(kid, str), f"{where}: kid not a string")
        match = [k for k in v["keys"] if k.get("kid") == kid and k.get("kty") == kty_for_alg(t.alg)]
        expect(match, f"realtime.env: no key with {where}'s kid and kty")
        expect("role" in t.payload and isinstance(t.payload.get("exp"), (int, float)), f"{where}: role/exp missing")
    for where, t in d.hs_tokens().items():
        expect("kid" not in t.header, f"{where}: HS token with kid would not use API_JWT_SECRET")
    for where, t in {**d.asymmetric_tokens(), **d.hs_tokens()}.items():
        expect(t.header.get("typ") == "JWT", f"{where}: header typ is not 'JWT'")


def check_functions(d: KeysDir, inputs: Inputs) -> None:
    """Edge Functions: SUPABASE_JWKS is an object of public keys only (contract 3)."""
    v = d.json_var("functions.env", "SUPABASE_JWKS")
    expect(isinstance(v, dict) and isinstance(v.get("keys"), list) and v["keys"], "functions.env: SUPABASE_JWKS not a JWKS object")
    for k in v["keys"]:
        expect(k.get("kty") in ("EC", "RSA"), f"functions.env: SUPABASE_JWKS holds a {k.get('kty')} key (public keys only)")
        expect(not private_members(k), "functions.env: SUPABASE_JWKS holds private members")
    expect(v == d.json.get("jwks.json"), "functions.env: SUPABASE_JWKS differs from jwks.json")
    for where, t in d.asymmetric_tokens().items():
        expect(t.alg in ("ES256", "RS256"), f"{where}: alg {t.alg} would get 401 from the router")


def check_tokens(d: KeysDir, inputs: Inputs) -> None:
    """The asymmetric API tokens (contract 4, issue 2 behaviour 4)."""
    key = d.current_key()
    modulus = None
    if key["jwk"].get("kty") == "RSA":
        modulus = len(b64u_decode(key["jwk"]["n"], "n"))
    for name, role, legacy in (
        ("ANON_KEY_ASYMMETRIC", "anon", inputs.anon),
        ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role", inputs.service),
    ):
        t = decode_jwt(d.var("supabase.env", name), f"supabase.env:{name}")
        want_header = {"alg": key["alg"], "typ": "JWT", "kid": key["kid"]}
        expect(t.header == want_header, f"{name}: header {sorted(t.header)} != {{alg, typ:JWT, kid}} of the current key")
        if key["alg"] == "ES256":
            expect(len(t.signature) == 64, f"{name}: ES256 signature is {len(t.signature)} bytes, want raw 64-byte r||s")
        else:
            expect(len(t.signature) == modulus, f"{name}: RS256 signature length != modulus length")
        p = t.payload
        expect(p.get("role") == role, f"{name}: role {p.get('role')!r}, want {role}")
        expect(p.get("iss") == "supabase", f"{name}: iss is not 'supabase'")
        expect("aud" not in p, f"{name}: has aud")
        expect(isinstance(p.get("iat"), int) and p["iat"] <= NOW + 60, f"{name}: iat missing or in the future")
        expect(isinstance(p.get("exp"), int) and p["exp"] > NOW, f"{name}: exp missing or past")
        if legacy:
            expect(p == decode_jwt(legacy, "legacy").payload, f"{name}: payload is not the legacy token's payload")
        else:
            expect(set(p) == {"role", "iss", "iat", "exp"}, f"{name}: claims {sorted(p)}, want role, iss, iat, exp")
            life = p["exp"] - p["iat"]
            ttl = os.environ.get("SUPAKEYS_TOKEN_TTL", "")
            if ttl.endswith("d"):
                expect(life == int(ttl[:-1]) * 86400, f"{name}: lifetime {life}s is not SUPAKEYS_TOKEN_TTL={ttl}")
            else:
                expect(abs(life - FIVE_YEARS) <= 3 * 86400, f"{name}: lifetime {life}s is not about 5 years")


def opaque_ok(value: str, prefix: str, what: str) -> None:
    m = re.match(r"^" + prefix + r"([A-Za-z0-9_-]{22})_([A-Za-z0-9_-]{8})$", value or "")
    expect(m, f"{what}: not {prefix}<22 chars>_<8 chars>")
    digest = hashlib.sha256(f"supabase-self-hosted|{prefix}{m.group(1)}".encode()).digest()
    check = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()[:8]
    expect(m.group(2) == check, f"{what}: checksum does not match")


def check_opaque(d: KeysDir, inputs: Inputs) -> None:
    """Opaque keys: format, checksum, adopted when given, equal in every file (contract 2)."""
    s = d.state()
    for var, prefix, state_name, given in (
        ("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_", "publishable_key", inputs.publishable),
        ("SUPABASE_SECRET_KEY", "sb_secret_", "secret_key", inputs.secret_key),
    ):
        values = {f"{f}:{var}": d.var(f, var) for f in ("functions.env", "studio.env", "supabase.env")}
        values[f"state.json:{state_name}"] = s.get(state_name)
        expect(len(set(values.values())) == 1, f"{var}: differs between {sorted(values)}")
        value = values[f"supabase.env:{var}"]
        opaque_ok(value, prefix, var)
        if given:
            expect(value == given, f"{var}: the given key was not adopted")
    pub = d.var("supabase.env", "SUPABASE_PUBLISHABLE_KEY")[len("sb_publishable_"):]
    sec = d.var("supabase.env", "SUPABASE_SECRET_KEY")[len("sb_secret_"):]
    expect(pub[:22] != sec[:22], "publishable and secret keys share their random part")


def check_effective_keys(d: KeysDir, inputs: Inputs) -> None:
    """keep: services carry the legacy keys; resign: the asymmetric ones (issue 2 output table)."""
    asym = {r: d.var("supabase.env", n) for r, n in (("anon", "ANON_KEY_ASYMMETRIC"), ("service_role", "SERVICE_ROLE_KEY_ASYMMETRIC"))}
    legacy = {"anon": inputs.anon, "service_role": inputs.service}
    for role, places in (
        ("anon", [("storage.env", "ANON_KEY"), ("studio.env", "SUPABASE_ANON_KEY"), ("supabase.env", "ANON_KEY")]),
        ("service_role", [("storage.env", "SERVICE_KEY"), ("studio.env", "SUPABASE_SERVICE_KEY"), ("supabase.env", "SERVICE_ROLE_KEY")]),
    ):
        want = legacy[role] if (inputs.mode == "keep" and inputs.legacy and inputs.hs256) else asym[role]
        label = "legacy" if want == legacy[role] else "asymmetric"
        for f, n in places:
            expect(d.var(f, n) == want, f"{f}: {n} is not the {label} {role} key ({inputs.mode} mode)")
    expect(asym["anon"] != asym["service_role"], "anon and service_role asymmetric tokens are identical")


def check_gateway(d: KeysDir, inputs: Inputs) -> None:
    """Envoy's entrypoint (upstream volumes/api/envoy/docker-entrypoint.sh, contract 3 Envoy):
    the opaque keys are accepted and translated only when all four of publishable, secret and
    both asymmetric values are non-empty; ANON_KEY/SERVICE_ROLE_KEY are what it accepts as
    legacy-form apikeys: the legacy keys while HS256 is accepted, else the asymmetric tokens.
    The gateway gets no private key."""
    g = {n: d.var("gateway.env", n) for n in (
        "ANON_KEY", "SERVICE_ROLE_KEY", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY",
        "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC")}
    expect(all(g.values()), "gateway.env: an empty value would put Envoy in legacy API key mode")
    for n in ("SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC"):
        expect(g[n] == d.var("supabase.env", n), f"gateway.env: {n} differs from supabase.env")
    for n, legacy, asym in (("ANON_KEY", inputs.anon, "ANON_KEY_ASYMMETRIC"),
                            ("SERVICE_ROLE_KEY", inputs.service, "SERVICE_ROLE_KEY_ASYMMETRIC")):
        want = legacy if (inputs.legacy and inputs.hs256) else g[asym]
        expect(g[n] == want, f"gateway.env: {n} is not the {'legacy' if want == legacy else 'asymmetric'} key")
    # No key material: the file names exactly these six values, and each is a compact JWT or
    # an opaque key, never JSON. (A substring test such as "kty" not in the text fails by
    # chance: base64url signatures spell any three letters now and then.)
    expect(set(d.env["gateway.env"]) == set(g), f"gateway.env: names {sorted(d.env['gateway.env'])}, want exactly {sorted(g)}")
    for n, value in g.items():
        is_jwt = re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", value) is not None
        expect(is_jwt or value.startswith(("sb_publishable_", "sb_secret_")), f"gateway.env: {n} is neither a JWT nor an opaque key")
    for value in g.values():
        # sed with `|` as delimiter, single-quoted YAML and Lua double-quoted strings.
        expect(not set(value) & set("|&\\'\"\n"), "gateway.env: a value Envoy's sed or YAML would break on")


def check_hs256_replacement(d: KeysDir, inputs: Inputs) -> None:
    """With HS256 rejected, the raw secrets Storage (AUTH_JWT_SECRET), Realtime (API_JWT_SECRET)
    and Edge Functions (JWT_SECRET) verify kid-less tokens with are replaced by one random
    secret from state.json; while HS256 is accepted they are left to upstream's environment."""
    places = (("storage.env", "AUTH_JWT_SECRET"), ("realtime.env", "API_JWT_SECRET"), ("functions.env", "JWT_SECRET"))
    internal = d.state().get("internal_jwt_secret")
    expect(isinstance(internal, str) and len(b64u_decode(internal, "internal_jwt_secret")) == 32,
           "state.json: internal_jwt_secret is not 32 random bytes in base64url")
    for f, n in places:
        if inputs.hs256:
            expect(n not in d.env.get(f, {}), f"{f}: sets {n} although HS256 is accepted")
        else:
            expect(d.var(f, n) == internal, f"{f}: {n} is not state.json's internal secret")
            expect(d.var(f, n) != inputs.secret, f"{f}: {n} is still JWT_SECRET")
    for where, t in d.hs_tokens().items():
        if not inputs.hs256:
            mac = hmac.new(internal.encode(), t.signing_input, hashlib.sha256).digest()
            expect(mac != t.signature, f"{where}: verifies with the replacement secret")


def check_functions_keys(d: KeysDir, inputs: Inputs) -> None:
    """Edge Functions get the mode's effective API keys under upstream's names."""
    for n, storage in (("SUPABASE_ANON_KEY", "ANON_KEY"), ("SUPABASE_SERVICE_ROLE_KEY", "SERVICE_KEY")):
        expect(d.var("functions.env", n) == d.var("storage.env", storage), f"functions.env: {n} is not the effective key")


def check_upstream_names(d: KeysDir, inputs: Inputs) -> None:
    """supabase.env carries upstream's names with upstream's shapes (contract 2)."""
    keys = d.json_var("supabase.env", "JWT_KEYS")
    expect(isinstance(keys, list), "supabase.env: JWT_KEYS is not an array")
    expect(keys == d.json_var("auth.env", "GOTRUE_JWT_KEYS"), "supabase.env: JWT_KEYS differs from GOTRUE_JWT_KEYS")
    kinds = [k.get("kty") == "oct" for k in keys]
    want = [False] * len(d.published_keys()) + ([True] if inputs.hs256 else [])
    expect(kinds == want, "supabase.env: JWT_KEYS is not [private JWKs..., oct JWK] (oct only with HS256 accepted)")
    jwks = d.json_var("supabase.env", "JWT_JWKS")
    expect(isinstance(jwks, dict), "supabase.env: JWT_JWKS is not an object")
    expect(jwks == d.json.get("jwt_jwks.json"), "supabase.env: JWT_JWKS differs from jwt_jwks.json")
    kinds = [k.get("kty") == "oct" for k in jwks["keys"]]
    expect(kinds == want, "supabase.env: JWT_JWKS is not {keys:[public JWKs..., oct JWK]} (oct only with HS256 accepted)")


def main() -> None:
    d = KeysDir.load(sys.argv[1])
    inputs = Inputs(dict(os.environ))
    r = Reporter("contract")
    if d.missing:
        r.check("files.present", fail, f"missing: {', '.join(d.missing)}")
    r.check("state.schema", check_state, d, inputs)
    r.check("state.kid", check_kid, d, inputs)
    if inputs.jwt_keys:
        r.check("state.adopted_jwt_keys", check_adoption, d, inputs)
    r.check("gotrue.jwt_keys", check_gotrue, d, inputs)
    r.check("postgrest.jwks", check_postgrest, d, inputs)
    r.check("jwks.public_only", check_public_jwks, d, inputs)
    r.check("storage.jwt_jwks", check_storage, d, inputs)
    r.check("realtime.api_jwt_jwks", check_realtime, d, inputs)
    r.check("functions.supabase_jwks", check_functions, d, inputs)
    r.check("tokens.asymmetric", check_tokens, d, inputs)
    r.check("tokens.effective_keys", check_effective_keys, d, inputs)
    r.check("opaque.keys", check_opaque, d, inputs)
    r.check("supabase_env.upstream_names", check_upstream_names, d, inputs)
    r.check("gateway.envoy_values", check_gateway, d, inputs)
    r.check("functions.api_keys", check_functions_keys, d, inputs)
    r.check("hs256.replacement_secret", check_hs256_replacement, d, inputs)
    r.exit()


if __name__ == "__main__":
    main()
