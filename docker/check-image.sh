#!/usr/bin/env bash
# Tests a supakeys image, not only the binary in it:
#
#   docker/check-image.sh supakeys:local                                   # after build-local.sh
#   PLATFORM=linux/arm64 docker/check-image.sh ghcr.io/supakeys/supakeys@sha256:…   # a release
#
# - `--version` and `--help` run inside the image (a dynamic binary fails here);
# - the image runs as 1000:1000 and /keys is owned by 1000:1000 with mode 0755;
# - `init` on a fresh named volume (which copies /keys' owner and mode) exits 0 and the
#   result passes `supakeys check`: randomness, writes and modes work in the empty image.
# PLATFORM (optional) picks one platform of a multi-platform image (QEMU for a foreign one).
set -euo pipefail

image=${1:?usage: check-image.sh IMAGE}
platform=()
[ -z "${PLATFORM:-}" ] || platform=(--platform "$PLATFORM")

log() { printf '[check-image] %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

docker run --rm "${platform[@]}" "$image" --version
docker run --rm "${platform[@]}" "$image" --help >/dev/null

user=$(docker image inspect -f '{{.Config.User}}' "$image")
[ "$user" = "1000:1000" ] || fail "image user is '$user', want 1000:1000"

# The mount point must be owned by 1000 with mode 0755: a fresh named volume copies it.
cid=$(docker create "${platform[@]}" "$image")
keys=$(docker export "$cid" | tar -tvf - | awk '$NF == "keys/" { print $1, $2 }')
docker rm "$cid" >/dev/null
[ "$keys" = "drwxr-xr-x 1000/1000" ] || fail "/keys in the image is '$keys', want drwxr-xr-x 1000/1000"

volume=supakeys-check-image-$$
trap 'docker volume rm -f "$volume" >/dev/null 2>&1 || true' EXIT
docker volume create "$volume" >/dev/null
# Throwaway inputs: only this test's volume ever sees them.
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
env=(-e "JWT_SECRET=$secret" -e DASHBOARD_USERNAME=check -e DASHBOARD_PASSWORD=check-image)
docker run --rm "${platform[@]}" "${env[@]}" -v "$volume:/keys" "$image" init >/dev/null 2>&1 \
  || fail "init on a fresh volume failed: $(docker run --rm "${platform[@]}" "${env[@]}" -v "$volume:/keys" "$image" init 2>&1 | tail -n 3)"
docker run --rm "${platform[@]}" "${env[@]}" -v "$volume:/keys" "$image" check >/dev/null 2>&1 \
  || fail "check after init failed: $(docker run --rm "${platform[@]}" "${env[@]}" -v "$volume:/keys" "$image" check 2>&1 | tail -n 5)"

size=$(docker image inspect -f '{{.Size}}' "$image")
log "ok: $image${PLATFORM:+ ($PLATFORM)}: $size bytes ($(( (size + 1023) / 1024 )) KiB), user 1000:1000, /keys 1000:1000 0755, init and check pass"
