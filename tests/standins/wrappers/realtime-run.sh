#!/bin/sh
# Stand-in for Realtime's /app/run.sh: runs the self-host seed (which reads API_JWT_SECRET
# and API_JWT_JWKS from the environment this script inherits, see standin/realtime.py)
# and then runs its arguments, the image's CMD /app/bin/server.
set -e
/usr/bin/python3 /opt/standin/standin/run.py realtime-seed "$@"
exec "$@"
