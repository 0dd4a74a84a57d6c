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
