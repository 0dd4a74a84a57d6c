// The work supakeys replaces, done the way upstream's self-hosting docs do it today: a P-256
// key from openssl (made by upstream-way.sh), converted to JWK and used to sign the anon and
// service_role ES256 tokens with node's built-in crypto (no npm packages).
import { createHash, createPrivateKey, randomBytes, randomUUID, sign } from "node:crypto";
import { readFileSync } from "node:fs";

const [pemPath, secret] = process.argv.slice(2);
const b64 = (buf) => Buffer.from(buf).toString("base64url");
const jwk = createPrivateKey(readFileSync(pemPath)).export({ format: "jwk" });
const kid = randomUUID();
const priv = { kty: "EC", kid, use: "sig", key_ops: ["sign", "verify"], alg: "ES256", ext: true,
  crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d };
const { d, ...rest } = priv;
const pub = { ...rest, key_ops: ["verify"] };
const oct = { kty: "oct", k: b64(secret), alg: "HS256" };
const key = createPrivateKey({ key: priv, format: "jwk" });
const iat = Math.floor(Date.now() / 1000);
const token = (role) => {
  const input = b64(JSON.stringify({ alg: "ES256", typ: "JWT", kid })) + "." +
    b64(JSON.stringify({ role, iss: "supabase", iat, exp: iat + 5 * 365 * 86400 }));
  return input + "." + b64(sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" }));
};
const opaque = (prefix) => {
  const r = b64(randomBytes(17)).slice(0, 22);
  const c = b64(createHash("sha256").update(`supabase-self-hosted|${prefix}${r}`).digest()).slice(0, 8);
  return `${prefix}${r}_${c}`;
};
process.stdout.write([
  `JWT_KEYS=${JSON.stringify([priv, oct])}`,
  `JWT_JWKS=${JSON.stringify({ keys: [pub, oct] })}`,
  `ANON_KEY_ASYMMETRIC=${token("anon")}`,
  `SERVICE_ROLE_KEY_ASYMMETRIC=${token("service_role")}`,
  `SUPABASE_PUBLISHABLE_KEY=${opaque("sb_publishable_")}`,
  `SUPABASE_SECRET_KEY=${opaque("sb_secret_")}`,
  "",
].join("\n"));
