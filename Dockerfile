# The controller image the Helm chart runs: `docker build -t REGISTRY/disasterpiece:0.1.0 .`
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin disasterpiece

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/disasterpiece /usr/local/bin/disasterpiece
# Non-root, as the chart's securityContext requires; nothing is written to the file system.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/disasterpiece"]
