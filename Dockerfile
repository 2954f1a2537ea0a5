# A small image with saprouter and niping.
#   docker build -t saprouter-rs .
#   docker run -d -p 3299:3299 -v $PWD/saprouttab:/usr/sap/saprouter/saprouttab saprouter-rs
# The container runs the router in the foreground; "docker stop" sends SIGTERM, which stops
# it like "saprouter -s". Reload the table with "docker kill -s HUP <container>".
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin saprouter --bin niping

FROM debian:bookworm-slim
RUN useradd --system --home /usr/sap/saprouter saprouter \
 && mkdir -p /usr/sap/saprouter && chown saprouter /usr/sap/saprouter
COPY --from=build /src/target/release/saprouter /src/target/release/niping /usr/local/bin/
COPY routtab-samples/saprouttab /usr/sap/saprouter/saprouttab
USER saprouter
WORKDIR /usr/sap/saprouter
EXPOSE 3299
ENTRYPOINT ["/usr/local/bin/saprouter"]
CMD ["-r", "-S", "3299", "-R", "/usr/sap/saprouter/saprouttab"]
