#!/usr/bin/env bash
# Golden-model check: runs every committed model in tests/golden/models through
# `kiln run` and compares its outputs with the stored ONNX Runtime outputs.
#
# usage: tests/golden/check.sh KILN_BINARY [FILTER]
#   FILTER (optional) keeps only cases whose "model/data_K" name contains it.
# Tolerance, relative to ORT: |kiln - ort| <= 1e-5 + 1e-3 * |ort| elementwise
# (override with GOLDEN_ATOL / GOLDEN_RTOL). Needs python3 with numpy only.
# One line per case (model x data set): PASS/FAIL, max abs/rel error, reason; then
# "N passed, M failed". Exit status 1 when anything failed or could not run.
# GOLDEN_KEEP=1 keeps the output directory (printed) for inspection.
set -u

if [ $# -lt 1 ]; then
    echo "usage: $0 KILN_BINARY [FILTER]" >&2
    exit 2
fi
KILN=$1
FILTER=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
MODELS=$HERE/models
PY=${PYTHON:-python3}
ATOL=${GOLDEN_ATOL:-1e-5}
RTOL=${GOLDEN_RTOL:-1e-3}
RUN_TIMEOUT=${GOLDEN_TIMEOUT:-300}

if [ ! -x "$KILN" ]; then
    echo "golden: kiln binary '$KILN' not found or not executable" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
if ! "$PY" -c "import numpy" 2>/dev/null; then
    echo "golden: $PY cannot import numpy (pip install numpy)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-golden.XXXXXX")
if [ "${GOLDEN_KEEP:-0}" = 1 ]; then
    echo "golden: outputs kept in $TMP"
else
    trap 'rm -rf "$TMP"' EXIT
fi
TO=()
command -v timeout >/dev/null 2>&1 && TO=(timeout "$RUN_TIMEOUT")

echo "golden: tolerance |kiln - ort| <= $ATOL + $RTOL * |ort| (reference: ONNX Runtime)"
pass=0
fail=0
for mdir in "$MODELS"/*/; do
    model=$(basename "$mdir")
    [ -f "$mdir/model.onnx" ] || continue
    for ddir in "$mdir"data_*/; do
        [ -d "$ddir" ] || continue
        ds=$(basename "$ddir")
        case_name=$model/$ds
        if [ -n "$FILTER" ] && [[ "$case_name" != *"$FILTER"* ]]; then
            continue
        fi
        out=$TMP/$model/$ds
        mkdir -p "$out"
        args=()
        for f in "$ddir"inputs/*.npy; do
            name=$(basename "$f" .npy)
            args+=(--input "$name=$f")
        done
        log=$TMP/$model/$ds.log
        "${TO[@]}" "$KILN" run "$mdir/model.onnx" "${args[@]}" --output-dir "$out" \
            >"$log" 2>&1
        rc=$?
        if [ $rc -ne 0 ]; then
            if [ $rc -eq 124 ]; then
                why="timed out after ${RUN_TIMEOUT}s"
            elif [ $rc -gt 128 ]; then
                why="crashed (signal $((rc - 128)))"
            else
                why="kiln run exited $rc"
            fi
            last=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)
            printf 'FAIL %-24s %s: %s\n' "$case_name" "$why" "${last:-no output}"
            fail=$((fail + 1))
            continue
        fi
        res=$("$PY" "$HERE/compare.py" --rtol "$RTOL" --atol "$ATOL" \
              "${ddir}outputs" "$out" 2>&1)
        crc=$?
        first=$(printf '%s\n' "$res" | head -n 1)
        if [ $crc -eq 0 ]; then
            printf 'PASS %-24s %s\n' "$case_name" "$first"
            pass=$((pass + 1))
        else
            printf 'FAIL %-24s %s\n' "$case_name" "$first"
            printf '%s\n' "$res" | tail -n +2 | sed 's/^/     /'
            fail=$((fail + 1))
        fi
    done
done

if [ $((pass + fail)) -eq 0 ]; then
    echo "golden: no cases matched" >&2
    fail=1
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
