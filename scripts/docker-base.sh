#!/usr/bin/env bash
# Makes a Debian bookworm base image without an image registry: debootstrap --variant=minbase
# into a temporary directory, then `docker import`. Nothing is done when the tag exists, so
# the (slow) debootstrap runs once per machine and tag.
#
#   scripts/docker-base.sh [TAG [PACKAGE...]]
#
# TAG defaults to saprouter-rs-base:bookworm; PACKAGEs are added to the minimal system
# (the DMZ/LAN example's LAN image wants nftables). The Debian mirror is $DEBIAN_MIRROR, else
# the first Debian mirror in apt's sources, else deb.debian.org. Needs root and debootstrap.
# Prints the tag as its last line.
set -euo pipefail

TAG="${1:-saprouter-rs-base:bookworm}"
shift || true
PACKAGES=("$@")

if docker image inspect "$TAG" >/dev/null 2>&1; then
  printf '%s\n' "$TAG"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  printf 'docker-base: debootstrap needs root to make %s\n' "$TAG" >&2
  exit 2
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  printf 'docker-base: debootstrap is not installed (apt-get install debootstrap)\n' >&2
  exit 2
fi

# The mirror apt uses here: deb822 "URIs:" lines and one-line "deb URI suite" entries.
mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "$DEBIAN_MIRROR"
    return
  fi
  local found
  found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    sed -n -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?//p' |
    awk '{print $1}' | grep -E '/debian/?$' | head -1 || true)
  printf '%s\n' "${found:-http://deb.debian.org/debian}"
}

MIRROR="$(mirror)"
ROOTFS="$(mktemp -d /tmp/docker-base.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT

INCLUDE=()
if [ "${#PACKAGES[@]}" -gt 0 ]; then
  INCLUDE=("--include=$(IFS=,; printf '%s' "${PACKAGES[*]}")")
fi
printf 'docker-base: debootstrap --variant=minbase %s bookworm from %s\n' "${INCLUDE[*]:-}" "$MIRROR" >&2
start=$(date +%s)
if ! debootstrap --variant=minbase "${INCLUDE[@]}" bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1; then
  tail -20 "$ROOTFS.log" >&2
  rm -f "$ROOTFS.log"
  exit 1
fi
rm -f "$ROOTFS.log"

# What a container never needs: package caches and lists, documentation, man pages.
rm -rf "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
  "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* \
  "$ROOTFS"/usr/share/info/* "$ROOTFS"/var/log/*.log "$ROOTFS"/debootstrap

tar -C "$ROOTFS" --numeric-owner -c . |
  docker import --change 'CMD ["bash"]' --message "debootstrap --variant=minbase bookworm" - "$TAG" >/dev/null
printf 'docker-base: %s made in %d s\n' "$TAG" "$(($(date +%s) - start))" >&2
printf '%s\n' "$TAG"
