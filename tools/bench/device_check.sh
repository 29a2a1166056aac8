#!/usr/bin/env bash
# One call on the lent GPU: GPU tests, compute-sanitizer, the tools over the anchor shapes,
# first calls cold and warm, the bench, and the side-by-side with the anchors; a short
# table last. Binaries come prebuilt in BIN (the device has no sqlite3.h to build with).
#   tools/bench/device_check.sh BIN [SEED]    logs go to $OUT (or /tmp/rnnjit-out)
# PARTS=tests or PARTS=bench runs half (each fits one 10-minute device call); default both.
set -u
PARTS=${PARTS:-all}
BIN=$(cd "${1:?usage: device_check.sh BIN [SEED]}" && pwd)
SEED=${2:-}
OUT=${OUT:-/tmp/rnnjit-out}
mkdir -p "$OUT"
export PATH=$PATH:/usr/local/cuda/bin PYTHONUNBUFFERED=1
summary=()
note() { summary+=("$1"); echo "== $1"; }

if [ "$PARTS" != bench ]; then
RNNJIT_CACHE=off "$BIN/gpu_step_test" > "$OUT/gpu_step_test.log" 2>&1
note "gpu_step_test: $(tail -n 2 "$OUT/gpu_step_test.log" | tr -s '\n' ' ')"
"$BIN/gpu_cache_test" > "$OUT/gpu_cache_test.log" 2>&1
note "gpu_cache_test: $(tail -n 2 "$OUT/gpu_cache_test.log" | tr -s '\n' ' ')"
for tool in memcheck racecheck; do
  RNNJIT_CACHE=off timeout 300 compute-sanitizer --tool $tool --error-exitcode 3 "$BIN/gpu_step_test" "[sanitize]" \
    > "$OUT/sanitizer_last.log" 2>&1
  note "compute-sanitizer $tool: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer_last.log")"
  cat "$OUT/sanitizer_last.log" >> "$OUT/sanitizer.log" && rm "$OUT/sanitizer_last.log"
done

work=$(mktemp -d)
export RNNJIT_CACHE=$work/cache.sqlite
for shape in kb-v0 mid kb-large; do
  for prec in tf32 fp32; do
    cold=$("$BIN/rnnjit-example" $shape $prec | grep "first call" | sed 's/ (tuning.*//')
    warm=$("$BIN/rnnjit-example" $shape $prec | grep "first call" | sed 's/ (tuning.*//')
    note "$shape $prec: empty cache $cold; warm cache (new process) $warm"
  done
done
rm -f "$RNNJIT_CACHE"*
"$BIN/rnnjit-tune" --shape 8,1024,256,128 --shape 1,4096,4096,4096 --shape 64,2048,2048,1024 \
  --shape 256,16384,16384,8192 --precision all --check 2>&1 | tee "$OUT/rnnjit-tune.txt"
"$BIN/rnnjit-cache" list 2>&1 | tee "$OUT/rnnjit-cache-list.txt"
"$BIN/rnnjit-cache" verify
unset RNNJIT_CACHE
fi

if [ "$PARTS" != tests ]; then
RNNJIT_CACHE=off "$BIN/rnnjit-bench" 2>&1 | tee "$OUT/bench.txt"
# Issue 6's small batches: weight streaming at batch 2 to 16, both precisions (from batch 4 the
# tensor-core candidates compute each its own way).
RNNJIT_CACHE=off "$BIN/rnnjit-bench" --precision all --shape 2,4096,4096,4096 --shape 4,4096,4096,4096 \
  --shape 8,4096,4096,4096 --shape 16,4096,4096,4096 2>&1 | tee "$OUT/bench_batches.txt"
if [ -n "$SEED" ] && [ -f "$BIN/librnnjit_c.so" ]; then
  RNNJIT_CACHE=off timeout 500 python3 "$(dirname "$0")/side_by_side.py" --lib "$BIN/librnnjit_c.so" --seed "$SEED" \
    --png "$OUT/side_by_side.png" > "$OUT/side_by_side.txt" 2>&1
  note "side_by_side rc=$?"
fi
fi
echo
echo "==================== summary ===================="
printf '%s\n' "${summary[@]}"
[ -f "$OUT/bench.txt" ] && tail -n 9 "$OUT/bench.txt" && tail -n 8 "$OUT/bench_batches.txt"
[ -f "$OUT/side_by_side.txt" ] && sed -n '/^shape     method/,$p' "$OUT/side_by_side.txt"
exit 0
