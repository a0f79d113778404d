#!/usr/bin/env bash
# Bounded libFuzzer run of the ONNX loader: seconds as $1 (default 60), seeded with small
# models from the conformance data. Fails on any crash, leak or sanitizer report.
set -u
cd "$(dirname "$0")/../.."
SECS=${1:-60}
ROOT=${KILN_ONNX_TESTS:-../shared/onnx-tests}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_FUZZ=ON -DKILN_SANITIZE=ON >/dev/null || exit 1
cmake --build build-fuzz --target fuzz_onnx -j"$(nproc)" >/dev/null || { cmake --build build-fuzz --target fuzz_onnx 2>&1 | tail -30; exit 1; }
corpus=build-fuzz/corpus; mkdir -p "$corpus"
for t in abs add conv_with_strides_padding if loop11 scan9_sum sequence_insert_at_back cast_FLOAT_to_STRING gather_0; do
  [ -f "$ROOT/node/test_$t/model.onnx" ] && cp "$ROOT/node/test_$t/model.onnx" "$corpus/$t.onnx"
  [ -f "$ROOT/node/test_$t/test_data_set_0/input_0.pb" ] && cp "$ROOT/node/test_$t/test_data_set_0/input_0.pb" "$corpus/$t.in0.pb"
done
build-fuzz/fuzz_onnx -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 "$corpus" 2>&1 | tail -15
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then echo "fuzz: FAILED (exit $rc)"; exit 1; fi
echo "fuzz: no crash in $SECS s"
