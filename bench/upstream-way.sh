#!/usr/bin/env bash
# openssl makes the P-256 key, node converts it and signs the tokens (upstream's way).
set -euo pipefail
out=$1
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/key.pem" 2>/dev/null
node "$(dirname "$0")/upstream-way.mjs" "$out/key.pem" "$JWT_SECRET" > "$out/supabase.env"
