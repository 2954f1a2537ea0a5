#!/usr/bin/env bash
# Installs the outside programs the test suite drives (Debian packages), when missing:
# haproxy (PROXY protocol and the high-availability scenario), nmap (service detection),
# openssl (certificate recipes), docker.io, docker-compose (Compose v1) and debootstrap (the
# container tests).
set -euo pipefail
want=()
command -v haproxy >/dev/null || want+=(haproxy)
command -v nmap >/dev/null || want+=(nmap)
command -v openssl >/dev/null || want+=(openssl)
command -v dockerd >/dev/null || want+=(docker.io)
command -v debootstrap >/dev/null || want+=(debootstrap)
command -v docker-compose >/dev/null || want+=(docker-compose)
if [ "${#want[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
