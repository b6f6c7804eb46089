#!/usr/bin/env bash
# Issue 20's hop cost: the same model served by one Tessera process and by a
# router (one runner process behind a front), same flags, one machine.
#   1. the hop alone: p50/p90 latency of the price preview
#      (/v1/chat/completions/input_tokens: parse + tokenize, no generation),
#      200 sequential requests to each, alternating;
#   2. `tessera bench` (router vs single): text and one-image TTFT and the
#      8-client aggregate;
#   3. model load time through the router (first request to an unloaded
#      model) and resident memory of the front, the runner and the single
#      process.
#   scripts/bench-router.sh [WORKDIR]
set -euo pipefail
WORK=${1:-/tmp/tessera-router-bench}
TESSERA=${TESSERA:-./target/release/tessera}
THREADS=${THREADS:-2}
N=${N:-200}
mkdir -p "$WORK"
"$TESSERA" fixtures --bench "$WORK" >/dev/null
cat > "$WORK/models.toml" <<TOML
[[models]]
id = "bench"
model = "$WORK/bench-text.gguf"
mmproj = "$WORK/bench-mmproj-mlp.gguf"
TOML
FLAGS=(-t "$THREADS" -p 8 -c 16384)
wait_up() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null && return; sleep 0.2; done; echo "not up: $1"; exit 1; }
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status"; }

"$TESSERA" --model "$WORK/bench-text.gguf" --mmproj "$WORK/bench-mmproj-mlp.gguf" --port 18190 "${FLAGS[@]}" \
  >"$WORK/single.log" 2>&1 &
single=$!
"$TESSERA" --models-config "$WORK/models.toml" --port 18191 "${FLAGS[@]}" >"$WORK/router.log" 2>&1 &
router=$!
trap 'kill $single $router 2>/dev/null || true' EXIT
wait_up http://127.0.0.1:18190/health
wait_up http://127.0.0.1:18191/health
body='{"model":"bench","messages":[{"role":"user","content":"How far is the moon from the earth?"}]}'
start=$(date +%s.%N)
curl -sf http://127.0.0.1:18191/v1/chat/completions/input_tokens -H 'content-type: application/json' -d "$body" >/dev/null
load=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
echo "## Model load through the router (first request, runner start + load): ${load} s"
runner=$(pgrep -P "$router" | head -1)
echo "## Resident memory: single $(rss $single), router front $(rss $router), runner $(rss "$runner")"

once() { curl -s -o /dev/null -w '%{time_total}\n' "$1/v1/chat/completions/input_tokens" \
  -H 'content-type: application/json' -d "$body"; }
: >"$WORK/single.t"; : >"$WORK/router.t"
for i in $(seq 1 "$N"); do
  once http://127.0.0.1:18190 >>"$WORK/single.t"
  once http://127.0.0.1:18191 >>"$WORK/router.t"
done
pct() { sort -n "$1" | awk -v p="$2" '{a[NR]=$1} END {printf "%.2f", a[int(NR*p+0.5)]*1000}'; }
echo "## The hop alone: price preview latency, $N requests each (ms)"
echo "| | p50 | p90 |"
echo "| --- | --- | --- |"
echo "| single process | $(pct "$WORK/single.t" 0.5) | $(pct "$WORK/single.t" 0.9) |"
echo "| router | $(pct "$WORK/router.t" 0.5) | $(pct "$WORK/router.t" 0.9) |"
echo
echo "## tessera bench: router (url) vs single process (baseline)"
"$TESSERA" bench --url http://127.0.0.1:18191 --baseline-url http://127.0.0.1:18190 \
  --concurrency "${CONCURRENCY:-1,8}" --rounds "${ROUNDS:-3}" --max-tokens 64
