#!/usr/bin/env bash
# ThreadSanitizer: several contexts on one engine from several threads (test_threads on an
# ONNX model, test_plan's multi-context case on a plan) must be race-free.
set -u
cd "$(dirname "$0")/.."
CC=${SAN_CC:-clang} cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_TSAN=ON >/dev/null || exit 1
cmake --build build-tsan -j"$(nproc)" --target test_threads test_plan test_threadpool >/dev/null || { cmake --build build-tsan --target test_threads test_plan test_threadpool 2>&1 | tail -30; exit 1; }
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
fail=0
for t in test_threads test_plan test_threadpool; do
  out=$(build-tsan/$t 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  if [ $rc -ne 0 ] || printf '%s\n' "$out" | grep -q "ThreadSanitizer"; then
    fail=1; echo "FAIL $t under TSan"; printf '%s\n' "$out" | grep -A30 "WARNING: ThreadSanitizer" | head -40
  else
    echo "ok   $t under TSan: $line"
  fi
done
exit $fail
