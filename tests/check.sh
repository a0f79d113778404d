#!/usr/bin/env bash
# make check: unit tests, conformance (baseline enforced), golden models, a bounded fuzz
# run, and the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -u
cd "$(dirname "$0")/.."
ROOT=${KILN_ONNX_TESTS:-../shared/onnx-tests}
fail=0
step() { echo; echo "=== $* ==="; }

step "unit tests"
bash tests/run_unit.sh build || fail=1

step "conformance (baseline: tests/conformance-baseline.txt)"
build/kiln_conformance --root "$ROOT" --jobs "$(nproc)" --baseline tests/conformance-baseline.txt \
  --failures build/conformance-failures.txt || fail=1

step "golden models vs ONNX Runtime outputs"
bash tests/golden/check.sh build/kiln || fail=1

step "fuzz: ONNX loader (60 s)"
bash tests/fuzz/run.sh "${KILN_FUZZ_SECONDS:-60}" || fail=1

step "sanitizers: ASan + UBSan build"
bash tests/run_sanitized.sh "$ROOT" || fail=1

echo
if [ $fail -ne 0 ]; then echo "make check: FAILED"; echo "0 passed, 1 failed"; exit 1; fi
echo "make check: all steps passed"
