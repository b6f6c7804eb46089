#!/usr/bin/env bash
# Issue 23: one photo at a time on the realistic shapes (random weights, a
# real model's dimensions: `tessera fixtures --shape`), Tessera against
# llama.cpp's llama-server on the same GGUFs, same threads, one client, the
# two servers taking turns (ABBA). Prints markdown.
#
#   scripts/bench-shapes.sh LLAMA_SERVER_BIN [WORKDIR]
#   SHAPES="smolvlm-256m qwen2-vl-2b" QUANT=q8_0 PHOTOS=640x480,1024x768 ROUNDS=3
set -euo pipefail
LLAMA_SERVER=${1:?path to llama-server}
WORK=${2:-/tmp/tessera-shapes}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
QUANT=${QUANT:-q8_0}
PHOTOS=${PHOTOS:-640x480,1024x768}
TESSERA=${TESSERA:-./target/release/tessera}
mkdir -p "$WORK"

wait_up() { for _ in $(seq 1 3000); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return; sleep 0.2; done; }

for shape in ${SHAPES:-smolvlm-256m qwen2-vl-2b gemma3-4b-vision}; do
  "$TESSERA" fixtures "$WORK" --shape "$shape" --quant "$QUANT" >/dev/null 2>&1
  MODEL=$WORK/$shape-text-$QUANT.gguf
  MMPROJ=$WORK/$shape-mmproj-f16.gguf
  "$LLAMA_SERVER" -m "$MODEL" --mmproj "$MMPROJ" --port 18181 -t "$THREADS" -tb "$THREADS" -np 1 -c 8192 \
    --no-webui >"$WORK/llama-server-$shape.log" 2>&1 &
  lp=$!
  "$TESSERA" --model "$MODEL" --mmproj "$MMPROJ" --port 18180 -t "$THREADS" -p 1 -c 8192 \
    >"$WORK/tessera-$shape.log" 2>&1 &
  tp=$!
  wait_up 18180; wait_up 18181
  echo "## $shape ($QUANT text, F16 projector): Tessera vs llama-server"
  "$TESSERA" bench --url http://127.0.0.1:18180 --baseline-url http://127.0.0.1:18181 \
    --photos "$PHOTOS" --rounds "$ROUNDS" --max-tokens 8 || true
  kill "$tp" "$lp"; wait "$tp" "$lp" 2>/dev/null || true
done
