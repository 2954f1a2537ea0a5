# The balancer of the HA example: Debian's haproxy on a Debian bookworm image. It runs
# examples/ha/haproxy.cfg as it is (mounted read-only), in the foreground.
#
# BASE is a Debian bookworm image. Where no registry is reachable, make one that has
# haproxy already: scripts/docker-base.sh saprouter-rs-base:bookworm-haproxy haproxy
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN command -v haproxy >/dev/null \
 || { apt-get update \
      && apt-get install -y --no-install-recommends haproxy \
      && rm -rf /var/lib/apt/lists/*; }
# -W: master-worker, so SIGTERM (docker stop) ends it cleanly; -db: foreground, no daemon.
ENTRYPOINT ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
