# saprouter-rs image: saprouter and niping on Debian bookworm, run as a non-root user.
#
# Two ways to build it, one runtime stage:
#   docker build -t saprouter-rs .     compiles in a rust image (needs an image registry and
#                                      the BuildKit builder: the default since Docker 23;
#                                      DOCKER_BUILDKIT=1 with Debian 12's docker.io 20.10,
#                                      whose classic builder would build every stage)
#   scripts/docker-image.sh            no registry needed: makes the Debian base with
#                                      debootstrap and builds the target "host" from the
#                                      binaries `cargo build --release` made on this machine
#
# The container runs the router itself as PID 1: "docker stop" sends SIGTERM, which stops it
# like "saprouter -s" (every NI session is told -98, exit code 0); "docker kill -s HUP"
# re-reads the table. It works with a read-only root filesystem: the table and -i files
# are read from /usr/sap/saprouter (mount them read-only), the trace and the -G log go to
# /var/log/saprouter (a tmpfs or a volume).
ARG BASE=debian:bookworm-slim

# The runtime stage, without the binaries (the two targets below add them).
FROM ${BASE} AS runtime
RUN groupadd --system --gid 3299 saprouter \
 && useradd --system --uid 3299 --gid saprouter --home-dir /usr/sap/saprouter \
      --no-create-home --shell /usr/sbin/nologin saprouter \
 && mkdir -p /usr/sap/saprouter /var/log/saprouter \
 && chown saprouter:saprouter /var/log/saprouter
# The bundled default table; owned by root, so the router cannot change its own table.
COPY routtab-samples/saprouttab /usr/sap/saprouter/saprouttab
LABEL org.opencontainers.image.title="saprouter-rs" \
      org.opencontainers.image.description="SAProuter-compatible router and niping" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 3299:3299
WORKDIR /usr/sap/saprouter
EXPOSE 3299
# The router answers its own admin client: "-l" over the route port. A router started on
# another port needs the same check with "-S <port>" (docker run --health-cmd, or
# healthcheck: in a compose file).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["saprouter", "-l"]
ENTRYPOINT ["/usr/local/bin/saprouter"]
CMD ["-r", "-S", "3299", "-R", "/usr/sap/saprouter/saprouttab", "-T", "/var/log/saprouter/dev_rout"]

# Binaries built on the host (scripts/docker-image.sh puts them in host-bin/ of its build
# context). Comes before the compiling stage: the classic builder then never needs the rust
# image for this target.
FROM runtime AS host
COPY host-bin/saprouter host-bin/niping /usr/local/bin/

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin saprouter --bin niping

# The default target: the same runtime stage with the binaries compiled above.
FROM runtime AS compiled
COPY --from=build /src/target/release/saprouter /src/target/release/niping /usr/local/bin/
