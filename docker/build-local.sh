#!/usr/bin/env bash
# Builds the supakeys runtime image without any base image: the binary is built on
# the host as a fully static glibc executable and copied into a FROM scratch image
# (docker/Dockerfile.local, whose runtime stage is the same text as docker/Dockerfile's).
#
#   docker/build-local.sh            # builds and tags supakeys:local
#   IMAGE=supakeys:dev docker/build-local.sh
#
# Why the flags: +crt-static links glibc statically; getrandom_backend="linux_getrandom"
# makes the getrandom crate call the getrandom(2) syscall directly, because its
# default probing of /dev/urandom fails in an empty root filesystem.
# A separate target dir keeps this build from invalidating the normal debug/release builds.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
image=${IMAGE:-supakeys:local}
triple=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/static}

log() { printf '[build-local] %s\n' "$*" >&2; }

log "cargo build (static glibc, $triple) into $CARGO_TARGET_DIR"
(
  cd "$repo"
  RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"' \
    cargo build --locked --release --target "$triple"
)
bin=$CARGO_TARGET_DIR/$triple/release/supakeys

# A dynamically linked binary has a program interpreter; it would fail in the
# empty image with a confusing "no such file or directory".
if LC_ALL=C readelf -l "$bin" 2>/dev/null | grep -q 'INTERP'; then
  log "error: $bin is dynamically linked"
  exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
install -m 0755 "$bin" "$ctx/supakeys"
mkdir -p "$ctx/rootfs/keys"
chmod 0755 "$ctx/rootfs/keys"
cp "$repo/docker/Dockerfile.local" "$ctx/Dockerfile"

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
log "docker build -> $image (version ${version:-unknown})"
# The legacy builder is enough (and is what docker 20.10 without buildx has).
if ! DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build -q --build-arg "VERSION=${version:-0.0.0}" \
    -t "$image" "$ctx" >/dev/null 2>"$ctx/build.err"; then
  cat "$ctx/build.err" >&2
  exit 1
fi

# Test the image, not only the binary (the release workflow runs the same checks).
"$repo/docker/check-image.sh" "$image"
size=$(docker image inspect -f '{{.Size}}' "$image")
log "built $image: $size bytes ($(( (size + 1023) / 1024 )) KiB)"
