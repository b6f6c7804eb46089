#!/usr/bin/env bash
# The image's build step, also run by CI on the host so that a broken step
# fails CI even though no Docker daemon runs there.
#   docker/build.sh [cargo build args...]     e.g. --features cuda
# CARGO_PROFILE picks the profile (default release; CI uses dev to reuse its
# test build). Builds are portable: llama.cpp is built without -march=native
# (GGML_NATIVE=OFF). With --features dynamic-backends (the CPU image), ggml's
# CPU kernels are one library per CPU generation, the best chosen at run
# time; they and llama.cpp's shared libraries go into dist/ beside the
# binary, whose rpath is $ORIGIN.
set -euo pipefail
cd "$(dirname "$0")/.."
export GGML_NATIVE="${GGML_NATIVE:-OFF}"
profile="${CARGO_PROFILE:-release}"
cargo build --locked --profile "$profile" --bin tessera "$@"
dir="${CARGO_TARGET_DIR:-target}/$([ "$profile" = dev ] && echo debug || echo "$profile")"
rm -rf dist
mkdir -p dist
cp "$dir/tessera" dist/tessera
if [[ " $* " == *dynamic-backends* ]]; then
  # The llama-cpp-sys-2 build that made the backends (the newest, if stale
  # ones remain).
  backends=$(ls -dt "$dir"/build/llama-cpp-sys-2-*/out/backends | head -n 1)
  cp -a "$(dirname "$backends")"/lib/*.so* dist/
  cp -a "$backends"/libggml-cpu-*.so dist/
  echo "with $(ls dist/libggml-cpu-*.so | wc -l) CPU backend variants"
fi
echo "built dist/tessera ($profile)"
