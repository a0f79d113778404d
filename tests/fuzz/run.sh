#!/usr/bin/env bash
# Bounded libFuzzer runs of the ONNX loader and the plan reader: seconds as $1 (default 60,
# split evenly between the two), seeded with small models from the conformance data and plans
# built from them. Fails on any crash, leak or sanitizer report.
set -u
cd "$(dirname "$0")/../.."
SECS=${1:-60}
ROOT=${KILN_ONNX_TESTS:-../shared/onnx-tests}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_FUZZ=ON -DKILN_SANITIZE=ON >/dev/null || exit 1
cmake --build build-fuzz --target fuzz_onnx fuzz_plan -j"$(nproc)" >/dev/null || { cmake --build build-fuzz --target fuzz_onnx fuzz_plan 2>&1 | tail -30; exit 1; }
SECS_ONNX=$(( (SECS + 1) / 2 )); SECS_PLAN=$(( SECS - SECS_ONNX )); [ "$SECS_PLAN" -ge 1 ] || SECS_PLAN=1
corpus=build-fuzz/corpus; mkdir -p "$corpus"
for t in abs add conv_with_strides_padding if loop11 scan9_sum sequence_insert_at_back cast_FLOAT_to_STRING gather_0; do
  [ -f "$ROOT/node/test_$t/model.onnx" ] && cp "$ROOT/node/test_$t/model.onnx" "$corpus/$t.onnx"
  [ -f "$ROOT/node/test_$t/test_data_set_0/input_0.pb" ] && cp "$ROOT/node/test_$t/test_data_set_0/input_0.pb" "$corpus/$t.in0.pb"
done
build-fuzz/fuzz_onnx -max_total_time="$SECS_ONNX" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 "$corpus" 2>&1 | tail -15
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then echo "fuzz: ONNX loader FAILED (exit $rc)"; exit 1; fi

# plan reader: seeds are plans of small models with subgraphs and convs, rebuilt each run
# (a plan from an older kiln build would only exercise the build-id refusal)
pcorpus=build-fuzz/corpus_plan; mkdir -p "$pcorpus"
seeds=""
for t in if loop11 scan9_sum gather_0 conv_with_strides_padding; do
  [ -f "$ROOT/node/test_$t/model.onnx" ] && seeds="$seeds $ROOT/node/test_$t/model.onnx"
done
for m in tests/data/opt/conv_act.onnx tests/data/opt/attention.onnx tests/data/opt/layernorm.onnx; do
  [ -f "$m" ] && seeds="$seeds $m"
done
KILN_PLAN_SEEDS="$pcorpus$seeds" build-fuzz/fuzz_plan -runs=0 "$pcorpus" >/dev/null 2>&1
build-fuzz/fuzz_plan -max_total_time="$SECS_PLAN" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 "$pcorpus" 2>&1 | tail -15
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then echo "fuzz: plan reader FAILED (exit $rc)"; exit 1; fi
echo "fuzz: no crash in $SECS s (ONNX loader $SECS_ONNX s, plan reader $SECS_PLAN s)"
