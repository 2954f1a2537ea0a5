#!/usr/bin/env bash
# Builds the saprouter-rs image where no image registry is reachable: the Debian base comes
# from debootstrap (scripts/docker-base.sh, once per machine), the binaries from cargo on
# this machine, and the Dockerfile's target "host" puts them into the same runtime stage
# that `docker build .` uses. Nothing is compiled inside docker.
#
#   scripts/docker-image.sh [TAG]
#
# TAG defaults to saprouter-rs. Binaries: $SAPROUTER_BIN and $NIPING_BIN when both are set,
# else target/release/ after `cargo build --release --locked --bin saprouter --bin niping`.
# Base image: $DOCKER_BASE_IMAGE, else saprouter-rs-base:bookworm (made when missing).
# The binaries link against glibc: build them on Debian bookworm or a system as old.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TAG="${1:-saprouter-rs}"

if [ -z "${SAPROUTER_BIN:-}" ] || [ -z "${NIPING_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked --quiet --bin saprouter --bin niping)
  SAPROUTER_BIN="$ROOT/target/release/saprouter"
  NIPING_BIN="$ROOT/target/release/niping"
fi
for bin in "$SAPROUTER_BIN" "$NIPING_BIN"; do
  if [ ! -x "$bin" ]; then
    printf 'docker-image: %s is not an executable\n' "$bin" >&2
    exit 2
  fi
done

BASE="${DOCKER_BASE_IMAGE:-}"
if [ -z "$BASE" ]; then
  BASE="$("$ROOT/scripts/docker-base.sh" saprouter-rs-base:bookworm | tail -1)"
fi

# A build context of its own: the two binaries and the default table, nothing else.
CONTEXT="$(mktemp -d /tmp/docker-image.XXXXXX)"
trap 'rm -rf "$CONTEXT"' EXIT
mkdir -p "$CONTEXT/host-bin" "$CONTEXT/routtab-samples"
cp "$SAPROUTER_BIN" "$CONTEXT/host-bin/saprouter"
cp "$NIPING_BIN" "$CONTEXT/host-bin/niping"
cp "$ROOT/routtab-samples/saprouttab" "$CONTEXT/routtab-samples/"

start=$(date +%s)
if ! docker build --quiet --target host --build-arg "BASE=$BASE" -t "$TAG" \
  -f "$ROOT/Dockerfile" "$CONTEXT" >"$CONTEXT/build.log" 2>&1; then
  cat "$CONTEXT/build.log" >&2
  exit 1
fi
# The image this build replaced under the same tag, now untagged.
docker image prune --force --filter "label=org.opencontainers.image.title=saprouter-rs" >/dev/null
printf 'docker-image: %s built on %s in %d s\n' "$TAG" "$BASE" "$(($(date +%s) - start))" >&2
printf '%s\n' "$TAG"
