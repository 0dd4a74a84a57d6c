#!/bin/sh
# Entrypoint of the Envoy gateway (service api-gw) in the test copy of upstream's docker/
# folder. Our own restatement of what supabase/supabase docker/volumes/api/envoy/
# docker-entrypoint.sh does (September 2026):
#   1. Studio's basic-auth user becomes an htpasswd {SHA} line: the user name, then the
#      base64 of the raw SHA-1 digest of DASHBOARD_PASSWORD.
#   2. The OAuth 2.0 authorization-server metadata route (RFC 8414 section 3.1) is
#      /.well-known/oauth-authorization-server followed by the path of JWT_ISSUER
#      (trailing slashes dropped); JWT_ISSUER must be an http:// or https:// URL.
#   3. Every ${NAME} placeholder of lds.template.yaml is replaced with sed, one s|||g
#      expression a name, in the order below, into lds.yaml (so a value holding `|`, `&`,
#      `\` or a newline breaks or bends the config exactly as upstream's does).
#   4. One line says whether opaque-key translation is on (all four of the publishable
#      and secret keys and their two asymmetric tokens set), then Envoy replaces the shell.
set -e

sha1_b64=$(printf '%s' "${DASHBOARD_PASSWORD-}" | openssl dgst -sha1 -binary | openssl base64 -A)
# shellcheck disable=SC2034 # read through eval below
DASHBOARD_BASIC_AUTH="${DASHBOARD_USERNAME-}:{SHA}${sha1_b64}"

# shellcheck disable=SC2034 # read through eval below
WELL_KNOWN_OAUTH_PATH=/.well-known/oauth-authorization-server
if [ -n "${JWT_ISSUER-}" ]; then
  trimmed=$(printf '%s' "$JWT_ISSUER" | sed -e 's|/*$||')
  case $trimmed in
    http://* | https://*) ;;
    *)
      echo "ERROR: JWT_ISSUER must start with http:// or https:// (got: $JWT_ISSUER)"
      exit 1
      ;;
  esac
  # What follows scheme and authority, if anything ("" or "/auth/v1").
  issuer_path=$(printf '%s' "$trimmed" | sed -e 's|^https\{0,1\}://[^/]*||')
  WELL_KNOWN_OAUTH_PATH="$WELL_KNOWN_OAUTH_PATH$issuer_path"
fi

echo "Rendering /etc/envoy/lds.yaml from lds.template.yaml"
script=
for name in ANON_KEY ANON_KEY_ASYMMETRIC SERVICE_ROLE_KEY SERVICE_ROLE_KEY_ASYMMETRIC \
  SUPABASE_PUBLISHABLE_KEY SUPABASE_SECRET_KEY SUPABASE_PUBLIC_URL DASHBOARD_BASIC_AUTH \
  WELL_KNOWN_OAUTH_PATH; do
  eval "value=\${$name-}"
  # `|` as the delimiter: JWTs and base64 hashes contain `/`.
  # shellcheck disable=SC2154 # set by the eval above
  script="${script}s|\${$name}|$value|g
"
done
sed -e "$script" /etc/envoy/lds.template.yaml >/etc/envoy/lds.yaml

if [ -n "${SUPABASE_PUBLISHABLE_KEY-}" ] && [ -n "${SUPABASE_SECRET_KEY-}" ] &&
  [ -n "${ANON_KEY_ASYMMETRIC-}" ] && [ -n "${SERVICE_ROLE_KEY_ASYMMETRIC-}" ]; then
  echo "Envoy sb_ key translation enabled"
else
  echo "Envoy running in legacy API key mode (sb_ keys disabled)"
fi

exec envoy -c /etc/envoy/envoy.yaml "$@"
