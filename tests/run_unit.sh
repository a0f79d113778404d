#!/usr/bin/env bash
# Runs every unit test binary (build/test_*) and sums their "N passed, M failed" lines.
set -u
BUILD=${1:-build}
total_p=0; total_f=0; bad=0
for t in "$BUILD"/test_*; do
  [ -x "$t" ] || continue
  out=$("$t" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/'); f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  [ -n "$line" ] || { p=0; f=1; }
  total_p=$((total_p + p)); total_f=$((total_f + f))
  if [ $rc -ne 0 ] || [ "$f" != 0 ]; then
    bad=1; echo "FAIL $(basename "$t") (exit $rc)"; printf '%s\n' "$out" | tail -20
  else
    echo "ok   $(basename "$t"): $line"
  fi
done
echo "unit: $total_p passed, $total_f failed"
exit $bad
