# syntax=docker/dockerfile:1
# CPU image: docker build -t tessera .
#            docker run -p 8080:8080 -v tessera-data:/data tessera
# Build stage: the official Rust image; dependency builds are cached by
# BuildKit cache mounts (the cargo registry and target/ survive rebuilds).
# dynamic-backends: ggml's CPU kernels for every x86-64 generation (SSE4.2
# to AVX-512 and AMX), the best for the host chosen at start-up.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    docker/build.sh --features dynamic-backends

# Runtime stage: Debian slim, a non-root user, the model cache on /data.
FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tessera" \
      org.opencontainers.image.description="OpenAI-compatible vision-language inference server on llama.cpp (CPU)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.source="https://github.com/tessera/tessera"
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libgomp1 ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/tessera tessera \
 && mkdir -p /data \
 && chown tessera:tessera /data
# The binary with llama.cpp's shared libraries and the CPU variants beside
# it (its rpath is $ORIGIN; symlinks resolve to /opt/tessera).
COPY --from=build /src/dist/ /opt/tessera/
RUN ln -s /opt/tessera/tessera /usr/local/bin/tessera
COPY docker/entrypoint.sh /usr/local/bin/tessera-entrypoint
ENV HF_HOME=/data \
    TESSERA_HOST=0.0.0.0 \
    TESSERA_PORT=8080
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8080/health"]
ENTRYPOINT ["/usr/local/bin/tessera-entrypoint"]
