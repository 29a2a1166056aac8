#!/usr/bin/env bash
# One call on the lent GPU, in parts that each fit a 10-minute device call; a short table last.
# Binaries come prebuilt in BIN (the device has no sqlite3.h to build with).
#   tools/bench/device_check.sh BIN [BASE] [SEED]
# BASE: a directory with an earlier build's rnnjit-bench, timed beside BIN's on the same card.
# SEED: the seed's seed_triton_rnn.py for the side-by-side. PARTS (comma-separated, default
# tests,bench): tests (GPU tests, compute-sanitizer, tools, cold and warm first calls), start (the
# start-up table of start_times.py, each case in a fresh process), bench (the bench, BASE beside
# it, the side-by-side), bf16 (the bench and the side-by-side with bf16 tensors), tc (the portable
# tensor-core family pinned at the anchors), multi (two GPUs or more: gpu_multi_test,
# rnnjit-data-parallel), racecheck (compute-sanitizer racecheck on SANITIZE, default "[sanitize]"),
# python (the package from a carried wheel: pytest, the KernelBench example, host overhead), soak
# (rnnjit-soak for SOAK_S seconds), sweep (side_by_side.py --sweep SWEEP_N), pins (rnnjit-bench on
# each entry of PINS, SHAPE/PRECISION/CONFIG, CONFIG "tuned" for the tuner's pick beside pinned ones).
# Logs come back as one file, $OUT/logs.tgz ($OUT or /tmp/rnnjit-out): a device call returns at most
# 8 files.
set -u
PARTS=${PARTS:-tests,bench}
BIN=$(cd "${1:?usage: device_check.sh BIN [BASE] [SEED]}" && pwd)
BASE=${2:-}
SEED=${3:-}
OUT=${OUT:-/tmp/rnnjit-out}
LOGS=$(mktemp -d)/logs
mkdir -p "$OUT" "$LOGS"
export PATH=$PATH:/usr/local/cuda/bin PYTHONUNBUFFERED=1
summary=()
note() { summary+=("$1"); echo "== $1"; }
part() { [[ ",$PARTS," == *",$1,"* ]]; }

if part racecheck; then
  RNNJIT_CACHE=off timeout ${RACECHECK_S:-300} compute-sanitizer --tool racecheck --error-exitcode 3 "$BIN/gpu_families_test" \
    "${SANITIZE:-[sanitize]}" > "$LOGS/sanitizer_racecheck.log" 2>&1
  note "compute-sanitizer racecheck: rc=$? $(grep -E 'RACECHECK SUMMARY' "$LOGS/sanitizer_racecheck.log")"
fi

if part soak; then
  RNNJIT_CACHE=off timeout $(( ${SOAK_S:-60} + 60 )) "$BIN/rnnjit-soak" --seconds "${SOAK_S:-60}" > "$LOGS/soak.log" 2>&1
  note "soak rc=$?: $(grep '^soak:' "$LOGS/soak.log")"
fi

if part python; then
  # The Python package from a carried wheel (WHEELS), installed beside the image's python3 and
  # its PyTorch (a venv would hide them).
  WHEELS=${WHEELS:-build/wheels}
  python3 -m pip install -q --no-deps --no-index --target /tmp/rnnjit-py "$WHEELS"/rnnjit-*.whl
  export PYTHONPATH=/tmp/rnnjit-py
  repo=$(pwd)
  (cd /tmp && RNNJIT_CACHE=/tmp/rnnjit-pytest.sqlite timeout ${PYTEST_S:-300} python3 -m pytest -q -rs -p no:cacheprovider \
    "$repo/tests/python" > "$LOGS/pytest.log" 2>&1)
  note "pytest rc=$?: $(tail -n 1 "$LOGS/pytest.log")"
  for args in "--shape kb-large --timing-trials 5" "--shape kb-v0 --precision tf32" "--shape kb-v0 --precision fp32"; do
    RNNJIT_CACHE=/tmp/rnnjit-example.sqlite timeout 120 python3 examples/kernelbench_model_new.py $args \
      >> "$LOGS/kernelbench.log" 2>&1
    note "kernelbench_model_new $args rc=$?: $(tail -n 2 "$LOGS/kernelbench.log" | tr -s '\n' ' ')"
  done
  timeout 90 python3 tools/bench/python_overhead.py > "$LOGS/python_overhead.log" 2>&1
  note "python_overhead rc=$?: $(tail -n 3 "$LOGS/python_overhead.log" | tr -s '\n' ' ')"
  unset PYTHONPATH
fi

if part tests; then
  # gpu_bf16_test runs rnnjit-tune from the path of the build that made it.
  tune_path=$(grep -a -o -m 1 '/[[:graph:]]*/tools/tune/rnnjit-tune' "$BIN/gpu_bf16_test" | head -n 1)
  [ -n "$tune_path" ] && mkdir -p "$(dirname "$tune_path")" && cp "$BIN/rnnjit-tune" "$tune_path"
  # The tests in one chain and compute-sanitizer in another, side by side: run one after the other
  # they passed 10 minutes (H100; gpu_families_test's streaming case alone ~110 s). -d yes: each
  # case's seconds in its log.
  (for t in families engine cache background sequence bf16; do
     RNNJIT_CACHE=off timeout ${TEST_S:-450} "$BIN/gpu_${t}_test" -d yes > "$LOGS/gpu_${t}_test.log" 2>&1
     echo "gpu_${t}_test rc=$?: $(grep -E 'All tests passed|test cases:' "$LOGS/gpu_${t}_test.log" | tr -s '\n' ' ')"
   done > "$LOGS/tests.sum") &
  tests_pid=$!
  (for t in families bf16; do
     for tool in memcheck racecheck; do
       RNNJIT_CACHE=off timeout 300 compute-sanitizer --tool $tool --error-exitcode 3 "$BIN/gpu_${t}_test" "[sanitize]" \
         > "$LOGS/sanitizer_${tool}_$t.log" 2>&1
       echo "compute-sanitizer $tool gpu_${t}_test: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$LOGS/sanitizer_${tool}_$t.log")"
     done
   done > "$LOGS/sanitizers.sum") &
  wait $tests_pid $!
  while read -r line; do note "$line"; done < <(cat "$LOGS/tests.sum" "$LOGS/sanitizers.sum")
  work=$(mktemp -d)
  export RNNJIT_CACHE=$work/cache.sqlite
  for shape in kb-v0 mid; do
    for prec in tf32 fp32; do
      cold=$("$BIN/rnnjit-example" $shape $prec | grep "first call" | sed 's/ (tuning.*//')
      warm=$("$BIN/rnnjit-example" $shape $prec | grep "first call" | sed 's/ (tuning.*//')
      note "$shape $prec: empty cache $cold; warm cache (new process) $warm"
    done
  done
  "$BIN/rnnjit-cache" list > "$LOGS/rnnjit-cache-list.txt" 2>&1
  note "rnnjit-cache list rc=$?, verify: $("$BIN/rnnjit-cache" verify 2>&1)"
  unset RNNJIT_CACHE
fi

if part multi; then
  # Issue 25 on a machine of two GPUs or more: the two-GPU tests, the data-parallel example.
  RNNJIT_CACHE=off timeout 300 "$BIN/gpu_multi_test" > "$LOGS/gpu_multi_test.log" 2>&1
  note "gpu_multi_test rc=$?: $(tail -n 2 "$LOGS/gpu_multi_test.log" | tr -s '\n' ' ')"
  for shape in mid kb-large; do
    for prec in tf32 fp32; do
      RNNJIT_CACHE=/tmp/rnnjit-dp.sqlite timeout 120 "$BIN/rnnjit-data-parallel" $shape $prec > "$LOGS/data_parallel.log" 2>&1
      note "data-parallel $shape $prec rc=$?: $(tail -n 2 "$LOGS/data_parallel.log" | tr -s '\n' ' ')"
    done
  done
fi

if part tc; then
  # The portable tensor-core family pinned where Hopper runs wgmma, and at the odd shape.
  for cfg in "kb-large i2h_tc256x128x32w4x2s3.h2o_tc256x128x32w4x2s3" "kb-large i2h_tc128x128x32w2x2s3.h2o_tc128x128x32w2x2s3" \
             "mid i2h_tc64x64x32w2x2s4.h2o_tc64x16x64w4x1s6" "mid i2h_tc64x32x64w2x2s4.h2o_tc64x16x64w4x1s6"; do
    set -- $cfg
    RNNJIT_CACHE=off timeout 200 "$BIN/rnnjit-bench" --precision tf32 --shape "$1" --config "$2" 2>&1 | tail -n 1 | tee -a "$LOGS/tc.txt"
  done
  for cfg in "kb-large i2h_tc128x128x32w2x4s3.h2o_tc128x128x32w2x4s3" "mid i2h_tc64x64x32w2x2s4.h2o_tc64x16x64w4x1s4"; do
    set -- $cfg
    RNNJIT_CACHE=off timeout 200 "$BIN/rnnjit-bench" --precision fp32 --shape "$1" --config "$2" 2>&1 | tail -n 1 | tee -a "$LOGS/tc.txt"
  done
  RNNJIT_CACHE=off timeout 200 "$BIN/rnnjit-bench" --precision all --shape 257,17,4097,33 2>&1 | tail -n 2 | tee -a "$LOGS/tc.txt"
  python3 - <<'PY' 2>&1 | tee -a "$LOGS/tc.txt"
import torch, triton
torch.backends.cuda.matmul.allow_tf32 = True
for name, m, n, k in (("kb-large i2h", 256, 16384, 32768), ("kb-large h2o", 256, 8192, 16384), ("mid i2h", 64, 2048, 4096), ("mid h2o", 64, 1024, 2048)):
    a, w = torch.randn(m, k, device="cuda"), torch.randn(n, k, device="cuda")
    t = triton.testing.do_bench(lambda: torch.nn.functional.linear(a, w), warmup=50, rep=300, return_mode="median") * 1000
    print(f"cuBLAS tf32 {name} {m}x{n}x{k}: {t:.1f} us, {2 * m * n * k / t / 1e6:.1f} TFLOP/s")
PY
fi

if part start; then
  # Issue 23's start-up table: each case in a fresh process (tools/bench/start_times.py).
  for shapes in kb-v0,b1-4k mid,kb-large; do
    timeout ${START_S:-280} python3 "$(dirname "$0")/start_times.py" --lib "$BIN/librnnjit_c.so" --shapes $shapes --phases \
      >> "$LOGS/start_times.txt" 2>&1
    note "start_times $shapes rc=$?"
  done
fi

if part sweep; then
  # Issue 19's sweep: SWEEP_N random shapes, PyTorch / rnnjit in both precisions (SWEEP_DTYPE=bf16:
  # issue 21's, bf16 tensors against eager bf16 in a CUDA graph).
  RNNJIT_CACHE=off timeout ${SWEEP_S:-540} python3 "$(dirname "$0")/side_by_side.py" --lib "$BIN/librnnjit_c.so" \
    --sweep "${SWEEP_N:-60}" --seed-sweep "${SWEEP_SEED:-7}" --bench "$BIN/rnnjit-bench" --dtype "${SWEEP_DTYPE:-f32}" \
    > "$LOGS/sweep.txt" 2>&1
  note "sweep ${SWEEP_DTYPE:-f32} rc=$?: $(grep -E 'ratios over' "$LOGS/sweep.txt")"
fi

if part pins; then
  # Configs pinned beside the tuned plan at one shape, each on an empty cache: "755,1108,7156,5420/
  # tf32/tuned" logs the tuner's candidates and its pick, ".../i2h_…h2o_…" times that config alone.
  for entry in ${PINS:-}; do
    IFS=/ read -r shape prec cfg <<< "$entry"
    args=(--shape "$shape" --precision "$prec" --dtype "$([ "$prec" = bf16 ] && echo bf16 || echo f32)")
    [ "$cfg" != tuned ] && args+=(--config "$cfg")
    echo "-- $entry" >> "$LOGS/pins.txt"
    RNNJIT_CACHE=off timeout 120 "$BIN/rnnjit-bench" "${args[@]}" >> "$LOGS/pins.txt" 2>&1
    note "pin $entry rc=$?: $(tail -n 1 "$LOGS/pins.txt" | awk '{print $1, $2, $4, $5, $9, $NF}')"
  done
fi

if part bench; then
  # Each build twice, alternating, on a cache file of its own: the second run of each times the
  # same winners without tuning again, and the spread between a build's two runs is the noise.
  bench_cache=$(mktemp -d)
  for run in 1 2; do
    for b in ${BASE:+"$BASE"} "$BIN"; do
      tag=$([ "$b" = "$BIN" ] && echo new || echo base)
      RNNJIT_CACHE=$bench_cache/$tag.sqlite timeout 280 "$b/rnnjit-bench" > "$LOGS/bench_${tag}_$run.txt" 2>&1
      note "bench $tag run $run rc=$?"
    done
  done
  if [ -n "$SEED" ] && [ -f "$BIN/librnnjit_c.so" ]; then
    RNNJIT_CACHE=off timeout 400 python3 "$(dirname "$0")/side_by_side.py" --lib "$BIN/librnnjit_c.so" --seed "$SEED" \
      > "$LOGS/side_by_side.txt" 2>&1
    note "side_by_side rc=$?"
  fi
fi

if part bf16; then
  # Issue 21's bf16 storage: the bench, then the side-by-side against PyTorch bf16.
  RNNJIT_CACHE=off timeout 280 "$BIN/rnnjit-bench" --dtype bf16 > "$LOGS/bench_bf16.txt" 2>&1
  note "bench bf16 rc=$?"
  RNNJIT_CACHE=off timeout 280 python3 "$(dirname "$0")/side_by_side.py" --lib "$BIN/librnnjit_c.so" --dtype bf16 \
    --shapes kb-v0,b1-4k,mid > "$LOGS/side_by_side_bf16.txt" 2>&1
  note "side_by_side bf16 rc=$?"
fi

echo
echo "==================== summary ===================="
printf '%s\n' "${summary[@]}"
[ -f "$LOGS/tc.txt" ] && cat "$LOGS/tc.txt"
for f in "$LOGS"/bench_*.txt; do [ -f "$f" ] && echo "-- $f" && tail -n 8 "$f" | awk '{print $1, $2, $4, $5, $9, $NF}'; done
for f in "$LOGS"/side_by_side.txt "$LOGS"/side_by_side_bf16.txt; do [ -f "$f" ] && sed -n '/^shape     method/,$p' "$f"; done
tar czf "$OUT/logs.tgz" -C "$(dirname "$LOGS")" logs
exit 0
