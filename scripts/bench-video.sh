#!/usr/bin/env bash
# Issue 22's video figures: a 10 s 720p clip (ffmpeg's test pattern, H.264)
# at 1 and 2 fps on Tessera and on llama.cpp's llama-server (whose pinned
# build decodes video with ffmpeg too), same GGUFs (the bench-size Qwen2-VL
# pair), same threads, one client, the two servers asked in turn. Frames
# are capped at 256 tokens on both (Tessera's default --video-max-pixels,
# llama-server's --image-max-tokens 256), so both do the same work.
# Prints markdown rows (scripts/bench_video.py).
#
#   scripts/bench-video.sh LLAMA_SERVER_BIN [WORKDIR]
set -euo pipefail
LLAMA_SERVER=${1:?path to llama-server}
WORK=${2:-/tmp/tessera-bench-video}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
TESSERA=${TESSERA:-./target/release/tessera}
mkdir -p "$WORK"
"$TESSERA" fixtures --bench "$WORK" >/dev/null
MODEL=$WORK/bench-text-qwen2vl.gguf
MMPROJ=$WORK/bench-mmproj-qwen2vl.gguf
CLIP=$WORK/clip-720p-10s.mp4
[ -f "$CLIP" ] || ffmpeg -v error -f lavfi -i testsrc2=size=1280x720:rate=30:duration=10 \
  -c:v libx264 -pix_fmt yuv420p -preset veryfast "$CLIP"

wait_up() { for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return; sleep 0.2; done; }

echo "| rate | frames | prompt tokens (Tessera / llama-server) | Tessera decode | Tessera first token | llama-server first token | ratio |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for fps in 1 2; do
  "$LLAMA_SERVER" -m "$MODEL" --mmproj "$MMPROJ" --port 18191 -t "$THREADS" -tb "$THREADS" -np 1 -c 4096 \
    --no-webui --video-fps "$fps" --image-max-tokens 256 >"$WORK/llama-server.log" 2>&1 &
  lp=$!
  "$TESSERA" --model "$MODEL" --mmproj "$MMPROJ" --port 18190 -t "$THREADS" -p 1 -c 4096 \
    --image-cache-mb 0 >"$WORK/tessera.log" 2>&1 &
  tp=$!
  wait_up 18190; wait_up 18191
  python3 "$(dirname "$0")/bench_video.py" "$CLIP" "$fps" http://127.0.0.1:18190 http://127.0.0.1:18191 "$ROUNDS" || true
  kill "$tp" "$lp"; wait "$tp" "$lp" 2>/dev/null || true
done
