#!/usr/bin/env bash
# The image's build step, also run by CI on the host so that a broken step
# fails CI even though no Docker daemon runs there.
#   docker/build.sh [cargo build args...]     e.g. --features cuda
# CARGO_PROFILE picks the profile (default release; CI uses dev to reuse its
# test build). The CPU build is portable: llama.cpp is built without
# -march=native (GGML_NATIVE=OFF), so one image runs on any x86-64 CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export GGML_NATIVE="${GGML_NATIVE:-OFF}"
profile="${CARGO_PROFILE:-release}"
cargo build --locked --profile "$profile" --bin tessera "$@"
dir="${CARGO_TARGET_DIR:-target}/$([ "$profile" = dev ] && echo debug || echo "$profile")"
mkdir -p dist
cp "$dir/tessera" dist/tessera
echo "built dist/tessera ($profile)"
