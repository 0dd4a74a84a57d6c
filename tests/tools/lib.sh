#!/usr/bin/env bash
# Helpers shared by the Docker test scripts (tests/e2e/run, tests/doctor/run,
# tests/e2e/upstream-real): TAP-like check lines, legacy keys, and compose projects made in
# $work/<project>/. Sourced, not run; the caller sets `passed`, `failed`, `work` and `DC`
# (the Docker Compose v2 command, from tests/tools/compose-v2).
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
container() { # container PROJECT SERVICE -> newest container id
  docker ps -aq --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2" | head -n1
}
volume_of() {
  docker volume ls -q --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.volume=supakeys"
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
  docker run --rm -v "$(volume_of "$1"):/keys:ro" supakeys-standin-base:local tar -C /keys -cf - . | tar -C "$2" -xpf -
}
# api_gw_is_envoy PROJECT: the project's api-gw runs Envoy (not Kong).
api_gw_is_envoy() {
  docker exec "$(container "$1" api-gw)" sh -c 'command -v envoy' >/dev/null 2>&1
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
    cid=$(docker ps -q --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$svc")
    [ -z "$cid" ] || printf '%s %s\n' "$svc" "$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$cid")"
  done | sort)
  for _ in $(seq 1 100); do
    got=$(docker exec "$gw" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9901 &&
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
