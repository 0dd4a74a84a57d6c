// The outputs fed to panva's jose (Debian's node-jose) and to Node's WebCrypto.
//
// Usage: node check_node.mjs KEYS_DIR
// - Edge Functions / clients: createLocalJWKSet(jwks.json) + jwtVerify for every asymmetric token;
//   every key of SUPABASE_JWKS (functions.env) imports with importJWK as a public key, and the
//   router's createLocalJWKSet(SUPABASE_JWKS) verifies every token.
// - Storage: every asymmetric key of JWT_JWKS (storage.env) imports as a public KeyObject.
// - Env files: Node's util.parseEnv reads the same names and values as a NAME='value' parser.
// - supabase-js getClaims(): crypto.subtle.importKey('jwk', key, alg, true, ['verify']) of every
//   public key, then crypto.subtle.verify of each token's signature, as auth-js does.
// jose is found under JOSE_NODE_PATH (default /usr/share/nodejs, where Debian installs it).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { webcrypto } from 'node:crypto';
import util from 'node:util';

const require = createRequire(import.meta.url);
const josePaths = (process.env.JOSE_NODE_PATH || '/usr/share/nodejs').split(':');
// Debian installs packages as /usr/share/nodejs/<name>, not under node_modules.
const joseDir = josePaths.map((p) => join(p, 'jose')).find((p) => existsSync(join(p, 'package.json')));
if (!joseDir) throw new Error(`jose not found under ${josePaths.join(':')} (apt-get install node-jose)`);
const jose = require(joseDir);

const dir = process.argv[2];
let passed = 0;
let failed = 0;

class CheckFailed extends Error {}
function expect(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok - node/${name}`);
  } catch (e) {
    failed += 1;
    const text = e instanceof CheckFailed ? e.message : `${e.name || 'Error'}: ${e.code || ''} ${String(e.message).slice(0, 200)}`;
    console.log(`not ok - node/${name}: ${text}`);
  }
}

// NAME='value' lines, the form the output contract promises.
function readEnv(file) {
  const out = {};
  for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)='([^']*)'$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

const envFiles = ['auth.env', 'realtime.env', 'storage.env', 'functions.env', 'studio.env', 'supabase.env'];
const jwtRe = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

function asymmetricTokens() {
  const out = {};
  for (const f of envFiles) {
    for (const [k, v] of Object.entries(readEnv(f))) {
      if (!jwtRe.test(v)) continue;
      let header;
      try {
        header = jose.decodeProtectedHeader(v);
      } catch {
        continue;
      }
      if (header.alg !== 'HS256') out[`${f}:${k}`] = { token: v, header };
    }
  }
  expect(Object.keys(out).length > 0, 'no asymmetric token in the env files');
  return out;
}

function decodePayload(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

function sameJson(a, b) {
  const norm = (v) => JSON.stringify(v, Object.keys(v).sort());
  return norm(a) === norm(b);
}

async function verifyAll(jwks, label) {
  const set = jose.createLocalJWKSet(jwks);
  for (const [where, { token, header }] of Object.entries(asymmetricTokens())) {
    const { payload, protectedHeader } = await jose.jwtVerify(token, set, { algorithms: ['ES256', 'RS256'] });
    expect(protectedHeader.kid === header.kid, `${where}: kid`);
    expect(sameJson(payload, decodePayload(token)), `${where}: claims differ (${label})`);
  }
}

const PRIVATE = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];
async function importPublic(jwk, where) {
  expect(!PRIVATE.some((m) => m in jwk), `${where}: has private members`);
  const key = await jose.importJWK(jwk, jwk.alg);
  expect(key.type === 'public', `${where}: imported as ${key.type}, want public`);
  return key;
}

const webAlg = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256', hash: { name: 'SHA-256' } },
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-256' } },
};

// A third dotenv reader next to sh and python-dotenv: Node's own util.parseEnv (Node >= 20.12).
await check('env.util_parseEnv', async () => {
  expect(typeof util.parseEnv === 'function', 'this Node has no util.parseEnv');
  for (const f of envFiles) {
    const mine = readEnv(f);
    const node = util.parseEnv(readFileSync(join(dir, f), 'utf8'));
    expect(Object.keys(mine).length > 0, `${f}: no NAME='value' line`);
    expect(sameJson(node, mine), `${f}: util.parseEnv reads other names or values`);
  }
});

await check('jose.jwks_json.jwtVerify', async () => {
  await verifyAll(JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8')), 'jwks.json');
});

await check('jose.functions.SUPABASE_JWKS', async () => {
  const jwks = JSON.parse(readEnv('functions.env').SUPABASE_JWKS);
  expect(jwks && !Array.isArray(jwks) && Array.isArray(jwks.keys), 'functions.env: SUPABASE_JWKS is not a JWKS object');
  for (const [i, k] of jwks.keys.entries()) await importPublic(k, `functions.env:SUPABASE_JWKS.keys[${i}]`);
  await verifyAll(jwks, 'SUPABASE_JWKS');
});

await check('jose.storage.JWT_JWKS', async () => {
  const jwks = JSON.parse(readEnv('storage.env').JWT_JWKS);
  expect(jwks && !Array.isArray(jwks) && Array.isArray(jwks.keys), 'storage.env: JWT_JWKS is not a JWKS object');
  const asym = jwks.keys.filter((k) => k.kty !== 'oct');
  expect(asym.length > 0, 'storage.env: JWT_JWKS has no asymmetric key');
  for (const [i, k] of asym.entries()) await importPublic(k, `storage.env:JWT_JWKS.keys[${i}]`);
  for (const [where, { token, header }] of Object.entries(asymmetricTokens())) {
    const kty = header.alg.startsWith('ES') ? 'EC' : 'RSA';
    const match = asym.filter((k) => k.kid === header.kid && k.kty === kty);
    expect(match.length === 1, `${where}: no single storage key with its kid and kty`);
    await jose.compactVerify(token, await jose.importJWK(match[0], header.alg));
  }
});

await check('webcrypto.importKey_verify', async () => {
  const jwks = JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8'));
  for (const [where, { token, header }] of Object.entries(asymmetricTokens())) {
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    expect(jwk, `${where}: kid not in jwks.json`);
    const alg = webAlg[header.alg];
    expect(alg, `${where}: alg ${header.alg} unsupported by getClaims`);
    const key = await webcrypto.subtle.importKey('jwk', jwk, alg, true, ['verify']);
    const [h, p, s] = token.split('.');
    const ok = await webcrypto.subtle.verify(alg, key, Buffer.from(s, 'base64url'), new TextEncoder().encode(`${h}.${p}`));
    expect(ok, `${where}: WebCrypto signature check failed`);
    const bad = await webcrypto.subtle.verify(alg, key, Buffer.from(s, 'base64url'), new TextEncoder().encode(`${h}.${p}x`));
    expect(!bad, `${where}: control: tampered data verified`);
  }
  for (const [i, jwk] of jwks.keys.entries()) {
    await webcrypto.subtle.importKey('jwk', jwk, webAlg[jwk.alg], true, ['verify']);
    expect(jwk.use === undefined || jwk.use === 'sig', `jwks.json keys[${i}]: use must be absent or sig`);
    expect(jwk.ext !== false, `jwks.json keys[${i}]: ext false`);
  }
});

// Tokens signed before a rotation: valid while their key is `previous`, rejected once revoked.
if (process.env.COMPAT_OLD_TOKENS) {
  await check('jose.tokens_before_rotation', async () => {
    const set = jose.createLocalJWKSet(JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8')));
    const want = process.env.COMPAT_OLD_TOKENS_VALID === '1';
    const tokens = readFileSync(process.env.COMPAT_OLD_TOKENS, 'utf8').split('\n').filter(Boolean);
    expect(tokens.length > 0, 'no saved tokens');
    for (const [i, token] of tokens.entries()) {
      let ok = true;
      try {
        await jose.jwtVerify(token, set, { algorithms: ['ES256', 'RS256'] });
      } catch {
        ok = false;
      }
      expect(ok === want, `old token ${i} should ${want ? 'verify' : 'be rejected'} with jwks.json`);
    }
  });
}

console.log(`# node: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
