#!/bin/sh
# Container entrypoint: serves on all interfaces inside the container only
# (TESSERA_HOST defaults to 127.0.0.1 elsewhere), with the model cache on the
# /data volume. Arguments are passed to tessera, so
#   docker run IMAGE --hf-repo ggml-org/gemma-3-4b-it-GGUF
# works as `tessera --hf-repo ...` does. CI runs this script on the host.
set -eu
export TESSERA_HOST="${TESSERA_HOST:-0.0.0.0}"
export HF_HOME="${HF_HOME:-/data}"
bin="${ENTRYPOINT_BIN:-/usr/local/bin/tessera}"
exec "$bin" "$@"
