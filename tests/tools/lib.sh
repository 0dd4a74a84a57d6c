#!/usr/bin/env bash
# Helpers shared by the container test scripts (tests/e2e/run, tests/doctor/run,
# tests/e2e/upstream-real, tests/podman/run): TAP-like check lines, legacy keys, and compose
# projects made in $work/<project>/. Sourced, not run; the caller sets `passed`, `failed`,
# `work` and `DC` (the compose command: Docker Compose v2 from tests/tools/compose-v2, or
# podman-compose), and may set ENGINE (the engine's command or a function wrapping it;
# default docker) and BASE_IMAGE (the image volume copies run in; default the stand-ins' base).
# shellcheck shell=bash disable=SC2154

log() { printf '# %s\n' "$*"; }
pass() { passed=$((passed + 1)); printf 'ok - %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL - %s\n' "$1"; [ -z "${2-}" ] || printf '%s\n' "$2" | sed 's/^/    /'; }
# fails CMD...: succeeds when CMD fails.
fails() { ! "$@" >/dev/null 2>&1; }
# check NAME CMD...: one check; CMD's output is shown only when it fails.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
# mint SECRET ROLE: a legacy HS256 API key valid for a year.
mint() {
  local h p s now
  now=$(date +%s)
  h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  p=$(printf '{"role":"%s","iss":"supabase","iat":%d,"exp":%d}' "$2" "$now" $((now + 31536000)) | b64url)
  s=$(printf '%s' "$h.$p" | openssl dgst -sha256 -hmac "$1" -binary | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}
# setenv PROJECT NAME VALUE: sets (or replaces) a line of the project's .env.
setenv() {
  local f=$work/$1/.env
  grep -v "^$2=" "$f" > "$f.tmp" || true
  printf '%s=%s\n' "$2" "$3" >> "$f.tmp"
  mv "$f.tmp" "$f"
}
# dc PROJECT ARGS...: compose in the project folder, reading its .env like a self-hoster.
dc() {
  local p=$1
  shift
  (cd "$work/$p" && "${DC[@]}" -p "$p" "$@")
}
engine() { "${ENGINE:-docker}" "$@"; }
container() { # container PROJECT SERVICE -> newest container id
  engine ps -aq --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2" | head -n1
}
# volume_of PROJECT: the project's `supakeys` volume. Compose v2 and podman-compose both name
# it PROJECT_supakeys and label it with the project (podman-compose sets no volume label).
volume_of() {
  engine volume ls -q --filter "label=com.docker.compose.project=$1" | grep -x "$1_supakeys"
}
# in_volume PROJECT CMD...: CMD in a throwaway container with the keys volume at /keys, read-only.
in_volume() {
  local p=$1
  shift
  engine run --rm -v "$(volume_of "$p"):/keys:ro" "${BASE_IMAGE:-supakeys-standin-base:local}" "$@"
}
# run_images FILE...: compose files name the stand-in images of this run (tag $STANDIN_TAG,
# made by tests/standins/build) instead of the shared :local ones.
run_images() {
  sed -i "s/\(supakeys-standin-[a-z]*\):local/\1:$STANDIN_TAG/" "$@"
}
# untag_run_images: removes the tags of this run ($STANDIN_TAG); the images stay under :local.
untag_run_images() {
  docker images --format '{{.Repository}}:{{.Tag}}' |
    grep -E "^supakeys-(standin-[a-z]+|envoy):(.*-)?$STANDIN_TAG\$" | xargs -r docker rmi >/dev/null 2>&1 || true
}
# snapshot PROJECT DIR: the keys volume's files, modes kept.
snapshot() {
  rm -rf "$2" && mkdir -p "$2"
  in_volume "$1" tar -C /keys -cf - . | tar -C "$2" -xpf -
}
# fingerprint PROJECT: sha256, mtime (ns), mode, owner of every file of the volume.
fingerprint() {
  # shellcheck disable=SC2016 # the script runs in the container, with its own variables
  in_volume "$1" sh -c 'cd /keys && for f in *; do [ -f "$f" ] || continue; printf "%s %s\n" "$(sha256sum "$f")" "$(stat -c "%y %a %u" "$f")"; done'
}
# modes_ok PROJECT: owner and modes of the volume as the output contract says (as the
# containers see them: inside a user namespace, uid 1000 of the namespace).
modes_ok() {
  local got want f files="state.json auth.env supabase.env jwks.json jwt_jwks.json realtime.env storage.env functions.env studio.env gateway.env kong.yml"
  got=$(in_volume "$1" sh -c "cd /keys && stat -c '%n %a %u' . $files")
  want=". 755 1000"
  for f in $files; do
    case $f in state.json | auth.env | supabase.env) want+=$'\n'"$f 600 1000" ;; *) want+=$'\n'"$f 644 1000" ;; esac
  done
  [ "$got" = "$want" ] || { printf 'got:\n%s\nwant:\n%s\n' "$got" "$want"; return 1; }
}
# record_envoy PROJECT: what the real Envoy of api-gw runs with, in the stand-ins' record
# format (results/envoy/loaded.json) for verify.py: the arguments and environment of the
# container's process 1, which the entrypoints exec into Envoy.
record_envoy() {
  local dir=$work/$1/results/envoy cid
  cid=$(container "$1" api-gw)
  mkdir -p "$dir"
  { engine exec "$cid" cat /proc/1/cmdline; printf '\n--\n'; engine exec "$cid" cat /proc/1/environ; } | python3 -c '
import json, sys
cmdline, environ = sys.stdin.buffer.read().decode().split("\n--\n", 1)
argv = cmdline.rstrip("\0").split("\0")
env = dict(v.split("=", 1) for v in environ.split("\0") if "=" in v)
print(json.dumps({"service": "envoy", "program": argv[0], "argv": argv[1:], "env": env}))' > "$dir/loaded.json"
}

# api_gw_is_envoy PROJECT: the project's api-gw runs Envoy (not Kong).
api_gw_is_envoy() {
  engine exec "$(container "$1" api-gw)" sh -c 'command -v envoy' >/dev/null 2>&1
}
# envoy_current PROJECT: waits (20 s at most) until api-gw's Envoy sends each of its clusters
# to the address the compose service has now; fails naming the clusters that differ. Envoy
# resolves its STRICT_DNS clusters (upstream's cds.yaml) at start and then every 5 s: right
# after services restart, it can still hold an address that is gone, or that another service
# took. Read from Envoy's admin interface (/clusters on port 9901, upstream's envoy.yaml)
# with bash's /dev/tcp, inside the container.
envoy_current() {
  local gw svc cid want got _
  gw=$(container "$1" api-gw)
  want=$(for svc in auth rest realtime storage functions meta studio; do
    cid=$(engine ps -q --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$svc")
    [ -z "$cid" ] || printf '%s %s\n' "$svc" "$(engine inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$cid")"
  done | sort)
  for _ in $(seq 1 100); do
    got=$(engine exec "$gw" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9901 &&
      printf "GET /clusters?format=json HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n" >&3 && cat <&3' 2>/dev/null |
      python3 -c '
import json, re, sys
raw = sys.stdin.buffer.read()
head, _, body = raw.partition(b"\r\n\r\n")
if b"chunked" in head.lower():
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out, body = out + rest[:n], rest[n + 2:]
    body = out
for c in json.loads(body or b"{}").get("cluster_statuses", []):
    for h in c.get("host_statuses", []):
        print(c["name"], h["address"]["socket_address"]["address"])' 2>/dev/null |
      grep -E '^(auth|rest|realtime|storage|functions|meta|studio) ' | sort -u)
    [ "$got" != "$want" ] || return 0
    sleep 0.2
  done
  printf 'after 20 s, Envoy sends to:\n%s\nthe services are at:\n%s\n' "$got" "$want"
  return 1
}
