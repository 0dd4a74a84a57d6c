#!/bin/sh
# Stand-in for realtime's /app/run.sh: the seed reads API_JWT_JWKS from the environment
# it inherits, then the script execs its arguments (CMD /app/bin/server).
set -eu
mkdir -p /results/$SVC
printf '%s\n' "$@" > /results/$SVC/run-sh-argv
exec "$@"
