#!/usr/bin/env bash
# KV-cache types against f16 on the bench-size fixture, one run: for each
# type, a server with that cache beside an f16 one (same threads, context
# and parallelism), `tessera bench` with the f16 server as the baseline
# (ratios: type / f16), and the cache's size from /v1/models. Prints
# markdown; writes nothing into the repository.
#
#   TESSERA=target/release/tessera scripts/bench-kv.sh [WORKDIR]
set -euo pipefail
WORK=${1:-/tmp/tessera-bench}
THREADS=${THREADS:-2}
PARALLEL=${PARALLEL:-4}
CTX=${CTX:-16384}
TYPES=${TYPES:-q8_0 q4_0}
TESSERA=${TESSERA:-./target/release/tessera}
mkdir -p "$WORK"
"$TESSERA" fixtures --bench "$WORK" >/dev/null
MODEL=(--model "$WORK/bench-text.gguf" --mmproj "$WORK/bench-mmproj-mlp.gguf")
COMMON=(-t "$THREADS" -p "$PARALLEL" -c "$CTX" --flash-attn on)

wait_up() {
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0
    sleep 0.2
  done
  return 1
}
kv_bytes() {
  curl -sf "http://127.0.0.1:$1/v1/models" | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["data"][0]["capabilities"]["kv_cache"]["bytes"])'
}

"$TESSERA" "${MODEL[@]}" "${COMMON[@]}" --port 18190 >"$WORK/kv-f16.log" 2>&1 &
BASE=$!
trap 'kill $BASE 2>/dev/null || true' EXIT
wait_up 18190
F16=$(kv_bytes 18190)
echo "f16: $F16 bytes for $CTX cells ($((F16 / CTX)) per cell); 4k-cell sequences per GiB: $(( (1 << 30) / (F16 / CTX * 4096) ))"
for t in $TYPES; do
  "$TESSERA" "${MODEL[@]}" "${COMMON[@]}" --cache-type-k "$t" --cache-type-v "$t" --port 18191 \
    >"$WORK/kv-$t.log" 2>&1 &
  P=$!
  wait_up 18191
  B=$(kv_bytes 18191)
  echo "## $t: $B bytes ($((B / CTX)) per cell); 4k-cell sequences per GiB: $(( (1 << 30) / (B / CTX * 4096) ))"
  "$TESSERA" bench --url http://127.0.0.1:18191 --baseline-url http://127.0.0.1:18190 \
    --concurrency 1,4 --rounds 3 --max-tokens 64 || true
  kill "$P"; wait "$P" 2>/dev/null || true
done
