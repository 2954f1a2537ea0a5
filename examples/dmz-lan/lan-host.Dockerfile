# The LAN machine of the DMZ/LAN example: a network namespace that accepts no inbound TCP
# connection (lan-firewall.nft), for the LAN router and the dispatcher to run in. The
# routers themselves run the project's image unchanged.
#
# BASE is a Debian bookworm image. Where no registry is reachable, make one that has
# nftables already: scripts/docker-base.sh saprouter-rs-base:bookworm-nftables nftables
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN command -v nft >/dev/null \
 || { apt-get update \
      && apt-get install -y --no-install-recommends nftables \
      && rm -rf /var/lib/apt/lists/*; }
