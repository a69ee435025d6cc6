# syntax=docker/dockerfile:1
# osartifact-webhook: a static (musl) binary on a distroless base with no shell and no package
# manager, running as uid/gid 65532. Build from the repository root:
#   docker build -f images/webhook.Dockerfile -t osartifact-webhook:dev .
# (or `just images`). Multi-arch works with buildx --platform: the builder stage runs on the
# target platform and builds for its own architecture.

# Any toolchain at or above the workspace rust-version (Cargo.toml) works.
ARG RUST_VERSION=1.95

# ---- build ------------------------------------------------------------------------------
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# musl-tools: the C parts of the TLS stack (ring) are compiled with musl-gcc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# The caches make rebuilds incremental; the binary is copied out of the cached target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
 && cargo build --release --locked --target "$target" -p osartifact-webhook --bin osartifact-webhook \
 && install -D -m 0755 "target/$target/release/osartifact-webhook" /out/osartifact-webhook

# ---- run --------------------------------------------------------------------------------
# distroless/static: CA certificates, /etc/passwd with nonroot (65532), tzdata; nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/osartifact-webhook /usr/local/bin/osartifact-webhook
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/osartifact-webhook"]
