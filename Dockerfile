# One image for every service: `portal serve --service <name>`.
FROM rust:1-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev libxml2-dev pkg-config && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin portal

FROM debian:bookworm-slim
# libengine-gost-openssl: ГОСТ Р 34.10-2012 XML signatures in the gateway,
# loaded by /etc/portal/openssl-gost.cnf (gateway.openssl_conf).
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 libxml2 libssl3 libengine-gost-openssl ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/portal portal
WORKDIR /opt/portal
COPY --from=build /src/target/release/portal /usr/local/bin/portal
COPY deploy /opt/portal/deploy
COPY deploy/openssl-gost.cnf /etc/portal/openssl-gost.cnf
USER portal
EXPOSE 8080
ENTRYPOINT ["portal"]
CMD ["serve"]
