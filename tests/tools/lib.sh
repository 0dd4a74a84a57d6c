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
# snapshot PROJECT DIR: the keys volume's files, modes kept.
snapshot() {
  rm -rf "$2" && mkdir -p "$2"
  docker run --rm -v "$(volume_of "$1"):/keys:ro" supakeys-standin-base:local tar -C /keys -cf - . | tar -C "$2" -xpf -
}
