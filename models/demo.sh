#!/usr/bin/env bash
# make demo: offline, on the models kiln trained itself (models/): detect shapes in the
# sample photos (annotated PNGs in build/demo/) and classify sample digits.
set -eu
cd "$(dirname "$0")/.."
KILN=${1:-build/kiln}
OUT=build/demo
mkdir -p "$OUT"

echo "== kiln detect: synthetic shapes detector (models/shapes) =="
python3 - <<'PY' 2>/dev/null || true
import json; m = json.load(open("models/shapes/metrics.json"))
print(f"   held-out mAP@0.5 = {m.get('mAP50', m.get('map50', '?'))} on {m.get('eval_images', m.get('n_eval', '?'))} images")
PY
"$KILN" detect models/shapes/shapes.onnx models/shapes/samples/*.png \
    --labels models/shapes/labels.txt --conf 0.25 --iou 0.45 --out-dir "$OUT"
echo
echo "== kiln classify: digit classifier (models/digits) =="
python3 - <<'PY' 2>/dev/null || true
import json; m = json.load(open("models/digits/accuracy.json"))
print(f"   held-out accuracy = {100 * m['accuracy']:.2f}% on {m['n_test']} digits (scikit-learn digits)")
PY
"$KILN" classify models/digits/digits.onnx models/digits/samples/*.png \
    --labels models/digits/labels.txt --top 1 --ascii
echo
echo "annotated detections: $(ls "$OUT"/*.png | tr '\n' ' ')"
