#!/usr/bin/env bash
# Issue 19's photo comparison: what one 640x480 and one 1024x768 photo cost
# on Tessera and on llama.cpp's llama-server, same GGUFs (the bench-size
# Qwen2-VL pair), same threads, one client. Runs Tessera twice: `native`
# (the default) and `fit` (before issue 19; set TILINGS to choose). Only
# the first pass is a fair baseline: llama-server caches the photos it saw.
# Prints markdown.
#
#   scripts/bench-photos.sh LLAMA_SERVER_BIN [WORKDIR]
set -euo pipefail
LLAMA_SERVER=${1:?path to llama-server}
WORK=${2:-/tmp/tessera-bench}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
TESSERA=${TESSERA:-./target/release/tessera}
mkdir -p "$WORK"
"$TESSERA" fixtures --bench "$WORK" >/dev/null
MODEL=$WORK/bench-text-qwen2vl.gguf
MMPROJ=$WORK/bench-mmproj-qwen2vl.gguf

wait_up() { for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return; sleep 0.2; done; }

"$LLAMA_SERVER" -m "$MODEL" --mmproj "$MMPROJ" --port 18181 -t "$THREADS" -tb "$THREADS" -np 1 -c 8192 \
  --no-webui >"$WORK/llama-server.log" 2>&1 &
lp=$!
for tiling in ${TILINGS:-native fit}; do
  "$TESSERA" --model "$MODEL" --mmproj "$MMPROJ" --port 18180 -t "$THREADS" -p 1 -c 8192 \
    --tiling "$tiling" >"$WORK/tessera-$tiling.log" 2>&1 &
  tp=$!
  wait_up 18180; wait_up 18181
  echo "## Tessera --tiling $tiling vs llama-server"
  "$TESSERA" bench --url http://127.0.0.1:18180 --baseline-url http://127.0.0.1:18181 \
    --photos 640x480,1024x768 --rounds "$ROUNDS" --max-tokens 8 || true
  kill "$tp"; wait "$tp" 2>/dev/null || true
done
kill "$lp"; wait "$lp" 2>/dev/null || true
