#!/bin/sh
# Entrypoint of the Envoy test image (supakeys-envoy:VERSION), our restatement of what the
# entrypoint of Envoy's own image does (envoyproxy/envoy ci/docker-entrypoint.sh):
#   - a first argument starting with `-` is a flag of Envoy: `envoy` is put before it;
#   - for `envoy`, a non-empty $loglevel adds `--log-level $loglevel`;
#   - started as root, unless ENVOY_UID is 0: the `envoy` user is renumbered to ENVOY_UID /
#     ENVOY_GID when given, gets the container's stdout and stderr, and the command runs as
#     that user (Envoy's image uses su-exec; setpriv does the same here);
#   - otherwise the command runs as it is.
# Upstream's compose file mounts its own /docker-entrypoint.sh over this one.
set -e

case $1 in
  -*) set -- envoy "$@" ;;
esac
if [ "$1" = envoy ] && [ -n "${loglevel:-}" ]; then
  set -- "$@" --log-level "$loglevel"
fi

if [ "$(id -u)" = 0 ] && [ "${ENVOY_UID:-}" != 0 ]; then
  if [ -n "${ENVOY_UID:-}" ]; then usermod -u "$ENVOY_UID" envoy; fi
  if [ -n "${ENVOY_GID:-}" ]; then groupmod -g "$ENVOY_GID" envoy; fi
  chown envoy:envoy /dev/stdout /dev/stderr
  exec setpriv --reuid envoy --regid envoy --init-groups "$@"
fi
exec "$@"
