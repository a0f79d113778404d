#!/usr/bin/env bash
# Builds kiln with ASan+UBSan (clang) and reruns unit tests, the conformance baseline and
# the golden models under the sanitizers.
set -u
cd "$(dirname "$0")/.."
ROOT=${1:-../shared/onnx-tests}
CC=${SAN_CC:-clang} cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=ON >/dev/null || exit 1
cmake --build build-asan -j"$(nproc)" >/dev/null || { cmake --build build-asan 2>&1 | tail -30; exit 1; }
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fail=0
bash tests/run_unit.sh build-asan || fail=1
build-asan/kiln_conformance --root "$ROOT" --jobs "$(nproc)" --baseline tests/conformance-baseline.txt \
  --failures build-asan/conformance-failures.txt || fail=1
bash tests/golden/check.sh build-asan/kiln || fail=1
exit $fail
