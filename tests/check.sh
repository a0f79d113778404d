#!/usr/bin/env bash
# make check: unit tests, conformance (baseline enforced), golden models, a bounded fuzz
# run, and the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -u
cd "$(dirname "$0")/.."
ROOT=${KILN_ONNX_TESTS:-../shared/onnx-tests}
fail=0
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
step() { echo; echo "=== $* ===" | tee -a "$LOG"; }

step "unit tests"
bash tests/run_unit.sh build 2>&1 | tee -a "$LOG"; [ "${PIPESTATUS[0]}" = 0 ] || fail=1

step "conformance (baseline: tests/conformance-baseline.txt)"
build/kiln_conformance --root "$ROOT" --jobs "$(nproc)" --baseline tests/conformance-baseline.txt \
  --failures build/conformance-failures.txt 2>&1 | tee -a "$LOG"; [ "${PIPESTATUS[0]}" = 0 ] || fail=1

step "golden models vs ONNX Runtime outputs"
bash tests/golden/check.sh build/kiln 2>&1 | tee -a "$LOG"; [ "${PIPESTATUS[0]}" = 0 ] || fail=1

step "apps: kiln upscale with a runtime factor"
bash tests/apps/test_upscale.sh build/kiln 2>&1 | tee -a "$LOG"; [ "${PIPESTATUS[0]}" = 0 ] || fail=1

step "ThreadSanitizer: contexts on one engine from several threads"
bash tests/run_tsan.sh || fail=1

step "fuzz: ONNX loader and plan reader (60 s)"
bash tests/fuzz/run.sh "${KILN_FUZZ_SECONDS:-60}" || fail=1

step "sanitizers: ASan + UBSan build"
bash tests/run_sanitized.sh "$ROOT" 2>&1 | tee -a "$LOG"; [ "${PIPESTATUS[0]}" = 0 ] || fail=1

# Totals of the gating checks, from the steps' own lines: unit tests, conformance tests
# in the baseline (a failing test outside the baseline is a known gap, listed in
# docs/conformance.md, and is not counted), golden models; the sanitizer rerun included.
P=$(awk '/^unit: [0-9]+ passed/ {p+=$2} /^[0-9]+ passed, [0-9]+ failed$/ {p+=$1} END {print p+0}' "$LOG")
F=$(awk '/^unit: [0-9]+ passed/ {f+=$4} /^REGRESSION:/ {f++} /^FAIL / {f++} END {print f+0}' "$LOG")
K=$(awk '/^[0-9]+ passed, [0-9]+ failed$/ && prev ~ /^light:/ {k+=$3} {prev=$0} END {print k+0}' "$LOG")
echo
echo "known conformance gaps outside the baseline, summed over the plain and sanitizer runs: $K; see docs/conformance.md"
if [ $fail -ne 0 ]; then
  echo "make check: FAILED"
  echo "check: $((P > F ? P - F : 0)) passed, $((F > 0 ? F : 1)) failed"
  exit 1
fi
echo "make check: all steps passed"
echo "check: $P passed, 0 failed"
