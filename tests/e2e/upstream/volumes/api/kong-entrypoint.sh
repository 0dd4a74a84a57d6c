#!/bin/sh
# The LUA_* values are Lua text for Kong, not shell words.
# shellcheck disable=SC2089,SC2090
# Stand-in for upstream's volumes/api/kong-entrypoint.sh (supabase/supabase docker/, September
# 2026), restated: build the Lua request-transformer expressions from the environment (the
# opaque-key translation only when both opaque keys are set), derive WELL_KNOWN_OAUTH_PATH
# from JWT_ISSUER, replace every $NAME of the template that is set in the environment
# (unset names stay as they are), drop empty `- key:` credentials, start Kong. The e2e test
# runs it only where supakeys' layer is missing or listed before the Kong layer.
set -eu
if [ -n "${SUPABASE_SECRET_KEY:-}" ] && [ -n "${SUPABASE_PUBLISHABLE_KEY:-}" ]; then
  LUA_AUTH_EXPR="\$((headers.authorization ~= nil and headers.authorization:sub(1, 10) ~= 'Bearer sb_' and headers.authorization) or (headers.apikey == '$SUPABASE_SECRET_KEY' and 'Bearer ${SERVICE_ROLE_KEY_ASYMMETRIC:-}') or (headers.apikey == '$SUPABASE_PUBLISHABLE_KEY' and 'Bearer ${ANON_KEY_ASYMMETRIC:-}') or headers.apikey)"
  LUA_RT_WS_EXPR="\$((query_params.apikey == '$SUPABASE_SECRET_KEY' and '${SERVICE_ROLE_KEY_ASYMMETRIC:-}') or (query_params.apikey == '$SUPABASE_PUBLISHABLE_KEY' and '${ANON_KEY_ASYMMETRIC:-}') or query_params.apikey)"
  LUA_FUNCTIONS_EXPR="\$((headers.apikey == '$SUPABASE_SECRET_KEY' and '${SERVICE_ROLE_KEY_ASYMMETRIC:-}') or (headers.apikey == '$SUPABASE_PUBLISHABLE_KEY' and '${ANON_KEY_ASYMMETRIC:-}') or (headers.authorization == 'Bearer $SUPABASE_SECRET_KEY' and '${SERVICE_ROLE_KEY_ASYMMETRIC:-}') or (headers.authorization == 'Bearer $SUPABASE_PUBLISHABLE_KEY' and '${ANON_KEY_ASYMMETRIC:-}') or nil)"
else
  LUA_AUTH_EXPR="\$((headers.authorization ~= nil and headers.authorization:sub(1, 10) ~= 'Bearer sb_' and headers.authorization) or headers.apikey)"
  LUA_RT_WS_EXPR="\$(query_params.apikey)"
  LUA_FUNCTIONS_EXPR="\$(nil)"
fi
WELL_KNOWN_OAUTH_PATH=/.well-known/oauth-authorization-server
if [ -n "${JWT_ISSUER:-}" ]; then
  issuer=$JWT_ISSUER
  while [ "${issuer%/}" != "$issuer" ]; do issuer=${issuer%/}; done
  case $issuer in
    http://* | https://*) ;;
    *) echo "ERROR: JWT_ISSUER must start with http:// or https:// (got: $JWT_ISSUER)"; exit 1 ;;
  esac
  rest=${issuer#*://}
  case $rest in */*) WELL_KNOWN_OAUTH_PATH="$WELL_KNOWN_OAUTH_PATH/${rest#*/}" ;; esac
fi
export LUA_AUTH_EXPR LUA_RT_WS_EXPR LUA_FUNCTIONS_EXPR WELL_KNOWN_OAUTH_PATH
awk '{
  out = ""; line = $0
  while (match(line, /\$[A-Za-z_][A-Za-z_0-9]*/)) {
    name = substr(line, RSTART + 1, RLENGTH - 1)
    value = (name in ENVIRON) ? ENVIRON[name] : substr(line, RSTART, RLENGTH)
    out = out substr(line, 1, RSTART - 1) value
    line = substr(line, RSTART + RLENGTH)
  }
  print out line
}' /home/kong/temp.yml > "$KONG_DECLARATIVE_CONFIG"
sed -i '/^[[:space:]]*- key:[[:space:]]*$/d' "$KONG_DECLARATIVE_CONFIG"
exec /entrypoint.sh kong docker-start
