# pluvo-sync's image: a Rust builder, then a slim Debian runtime with CA certificates, running as
# a non-root user with its SQLite database on the /data volume and its config at
# /config/pluvo-sync.toml (secrets come from the environment).
#
#   podman build --format docker -t pluvo-sync .              # the runtime image (the last stage)
#   podman build --format docker --target sim -t pluvo-sim .  # the local Pluvo stand-in
#
# `docker build` works the same (without --format). podman needs `--format docker`, or its
# default OCI format drops the HEALTHCHECK. Plain RUN/COPY only, no BuildKit-only syntax.
#
# The binary is the one the tests exercise: the workspace's `pluvo-sync` package with its default
# features, built with --locked from the committed Cargo.lock.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- builder: dependencies first, as a cached layer, then the sources -----------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /build
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# Only the manifests, the lock file and what build.rs reads: this layer, and the dependency build
# below, are rebuilt only when dependencies change, not on every source edit.
COPY Cargo.toml Cargo.lock build.rs ./
COPY pluvo-sim/Cargo.toml pluvo-sim/Cargo.toml
COPY schema schema

# Cargo refuses a manifest whose named targets are missing: stand in an empty file for each.
# A script file and plain RUN, not a heredoc, so podman/buildah from Debian 12 and Ubuntu LTS
# build this too (heredocs need BuildKit's frontend image or buildah >= 1.35).
COPY scripts/stub-workspace.sh /usr/local/bin/stub-workspace
RUN stub-workspace .
RUN cargo build --release --locked --package pluvo-sync

# The real sources. COPY keeps their (older) modification times, so touch the crate roots, or
# cargo would take the stub build as up to date.
COPY . .
RUN touch src/main.rs src/lib.rs pluvo-sim/src/main.rs pluvo-sim/src/lib.rs \
 && cargo build --release --locked --package pluvo-sync \
 && install -D -m 0755 target/release/pluvo-sync /out/pluvo-sync

# --- sim-builder: pluvo-sim, only built for the `sim` target --------------------------------------
FROM builder AS sim-builder
RUN cargo build --release --locked --package pluvo-sim \
 && install -D -m 0755 target/release/pluvo-sim /out/pluvo-sim

# --- sim: the local Pluvo stand-in for compose.yaml -----------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS sim
COPY --from=sim-builder /out/pluvo-sim /usr/local/bin/pluvo-sim
USER 65534:65534
EXPOSE 4000
ENTRYPOINT ["pluvo-sim"]
CMD ["--listen", "0.0.0.0:4000"]

# --- runtime: pluvo-sync ---------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# CA certificates: reqwest's rustls verifies Pluvo's certificate against the system store.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 pluvo \
 && useradd --system --uid 10001 --gid pluvo --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin pluvo \
 && install -d -o pluvo -g pluvo -m 0750 /data \
 && install -d -m 0755 /config
COPY --from=builder /out/pluvo-sync /usr/local/bin/pluvo-sync

# Numeric, so an orchestrator's runAsNonRoot check can verify it.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
ENV PLUVO_SYNC_CONFIG=/config/pluvo-sync.toml
# The admin listener (server.listen); set it to 0.0.0.0:8080 to publish the port.
EXPOSE 8080
# `pluvo-sync healthcheck` GETs /healthz on server.listen (over loopback); the image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["pluvo-sync", "healthcheck"]
# SIGTERM stops scheduling and gives the run shutdown_grace_secs (default 10 s) to finish its
# requests; allow the orchestrator's stop timeout more than that (compose.yaml uses 20 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["pluvo-sync"]
CMD ["run"]
