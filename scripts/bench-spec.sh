#!/usr/bin/env bash
# Issue 23's speculation figures: decode tokens per second with and without
# prompt-lookup speculation, on a copy-heavy prompt and a free-writing one,
# Tessera (`--spec-type ngram`) and llama.cpp's llama-server
# (`--spec-type ngram-simple`), same GGUF (the bench-size text model), same
# threads, one client, one server at a time. Prints markdown rows.
#
#   scripts/bench-spec.sh LLAMA_SERVER_BIN [WORKDIR]
set -euo pipefail
LLAMA_SERVER=${1:?path to llama-server}
WORK=${2:-/tmp/tessera-bench-spec}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
MAX_TOKENS=${MAX_TOKENS:-128}
TESSERA=${TESSERA:-./target/release/tessera}
mkdir -p "$WORK"
"$TESSERA" fixtures --bench "$WORK" >/dev/null
MODEL=$WORK/bench-text.gguf
PY="python3 $(dirname "$0")/bench_spec.py"

wait_up() { for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return; sleep 0.2; done; }
run() { # label port command...
  local label=$1 port=$2; shift 2
  "$@" >"$WORK/server.log" 2>&1 &
  local pid=$!
  wait_up "$port"
  $PY "$label" "http://127.0.0.1:$port" "$ROUNDS" "$MAX_TOKENS" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "| server | prompt | decode |"
echo "| --- | --- | --- |"
for spec in none ngram; do
  run "Tessera --spec-type $spec" 18190 "$TESSERA" --model "$MODEL" --port 18190 -t "$THREADS" -p 1 -c 4096 --spec-type "$spec"
done
for spec in none ngram-simple; do
  run "llama-server --spec-type $spec" 18191 "$LLAMA_SERVER" -m "$MODEL" --port 18191 -t "$THREADS" -tb "$THREADS" -np 1 -c 4096 --no-webui --spec-type "$spec"
done
