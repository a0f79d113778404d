#!/usr/bin/env bash
# tests/apps/test_upscale.sh KILN: end-to-end checks of `kiln upscale` on models/srcnn (an
# SRCNN whose upscale factor is a runtime input): output sizes for --scale 2/3/4, clear errors
# for a missing --scale and a bad image path, and pixels vs onnxruntime references stored in
# models/srcnn/samples/low_x{2,3}_ref.png (max per-channel difference <= 2, for rounding).
# Needs only bash, od and python3's standard library. Prints "N passed, M failed" last.
set -u
KILN=${1:?usage: tests/apps/test_upscale.sh KILN_BINARY}
case $KILN in /*) ;; *) KILN=$PWD/$KILN ;; esac
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
MODEL=models/srcnn/srcnn.onnx
LOW=models/srcnn/samples/low.png
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS  $1"; }
bad() { fail=$((fail + 1)); echo "FAIL  $1"; [ $# -gt 1 ] && sed 's/^/      /' "$2" | head -n 5; return 0; }

# "WIDTH HEIGHT" from a PNG's IHDR (bytes 16..23, big-endian), or nothing if not a PNG
png_size() {
    [ -f "$1" ] || return 1
    local sig
    sig=$(od -An -tx1 -N8 "$1" | tr -d ' \n')
    [ "$sig" = 89504e470d0a1a0a ] || return 1
    od -An -tu1 -j16 -N8 "$1" | awk '{ print ($1*16777216 + $2*65536 + $3*256 + $4), ($5*16777216 + $6*65536 + $7*256 + $8) }'
}

read -r LW LH < <(png_size "$LOW") || { echo "cannot read $LOW"; echo "0 passed, 1 failed"; exit 1; }

for s in 2 3 4; do
    name="--scale $s: ${LW}x${LH} -> $((LW * s))x$((LH * s))"
    if "$KILN" upscale "$MODEL" "$LOW" --scale "$s" -o "$TMP/x$s.png" >"$TMP/log$s" 2>&1; then
        size=$(png_size "$TMP/x$s.png")
        if [ "$size" = "$((LW * s)) $((LH * s))" ]; then ok "$name"; else bad "$name (got '${size:-no PNG}')" "$TMP/log$s"; fi
    else
        bad "$name (exit $?)" "$TMP/log$s"
    fi
done

# no --scale: the model needs its factor input, so kiln must refuse, naming the option
"$KILN" upscale "$MODEL" "$LOW" -o "$TMP/noscale.png" >"$TMP/log_ns" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q -- "--scale" "$TMP/log_ns" && [ ! -e "$TMP/noscale.png" ]; then
    ok "missing --scale: exit $rc, '$(head -n 1 "$TMP/log_ns")'"
else
    bad "missing --scale: exit $rc (want a non-zero exit, no crash, a message naming --scale, no output)" "$TMP/log_ns"
fi

# an image path that does not exist: clean failure (no crash, a message, no output file)
"$KILN" upscale "$MODEL" "$TMP/no_such_image.png" --scale 2 -o "$TMP/bad.png" >"$TMP/log_bad" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ -s "$TMP/log_bad" ] && [ ! -e "$TMP/bad.png" ]; then
    ok "bad image path: exit $rc, '$(head -n 1 "$TMP/log_bad")'"
else
    bad "bad image path: exit $rc (want a non-zero exit, no crash, a message, no output)" "$TMP/log_bad"
fi

# a file that is not an image
printf 'not a png at all' >"$TMP/garbage.png"
"$KILN" upscale "$MODEL" "$TMP/garbage.png" --scale 2 -o "$TMP/garbage_out.png" >"$TMP/log_gb" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ -s "$TMP/log_gb" ] && [ ! -e "$TMP/garbage_out.png" ]; then
    ok "corrupt image: exit $rc, '$(head -n 1 "$TMP/log_gb")'"
else
    bad "corrupt image: exit $rc (want a non-zero exit, no crash, a message, no output)" "$TMP/log_gb"
fi

# pixels vs the onnxruntime references (same pre/post: pixel/255 RGB planar in, output*255
# rounded and clamped out)
for s in 2 3; do
    ref=models/srcnn/samples/low_x${s}_ref.png
    [ -f "$ref" ] || continue
    name="x$s pixels vs onnxruntime ($ref)"
    if [ ! -f "$TMP/x$s.png" ]; then bad "$name: no kiln output"; continue; fi
    if "$PY" - "$TMP/x$s.png" "$ref" 2 >"$TMP/cmp$s" 2>&1 <<'PYEOF'
# Minimal PNG reader (8-bit gray/RGB/RGBA, non-interlaced) + comparison; stdlib only.
import struct, sys, zlib

def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = ihdr
    chans = {0: 1, 2: 3, 6: 4}.get(ctype)
    if depth != 8 or chans is None or interlace:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, color type {ctype}, interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    stride = w * chans
    out, prev, p = bytearray(), bytearray(stride), 0
    for _ in range(h):
        f, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for i in range(stride):
            a = line[i - chans] if i >= chans else 0
            b = prev[i]
            c = prev[i - chans] if i >= chans else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            elif f != 0:
                raise ValueError(f"{path}: bad filter {f}")
        out += line
        prev = line
    if chans == 1:  # gray -> RGB
        out = bytes(v for v in out for _ in range(3))
    elif chans == 4:  # drop alpha
        out = bytes(v for i, v in enumerate(out) if i % 4 != 3)
    return w, h, bytes(out)

(w1, h1, a), (w2, h2, b) = read_png(sys.argv[1]), read_png(sys.argv[2])
tol = int(sys.argv[3])
if (w1, h1) != (w2, h2):
    print(f"size {w1}x{h1}, reference {w2}x{h2}")
    sys.exit(1)
d = [abs(x - y) for x, y in zip(a, b)]
mx, mean = max(d), sum(d) / len(d)
over = sum(1 for v in d if v > tol)
print(f"max |diff| {mx}, mean |diff| {mean:.5f}, {over} of {len(d)} values > {tol}, "
      f"{sum(1 for v in d if v):d} differ")
sys.exit(0 if mx <= tol else 1)
PYEOF
    then ok "$name: $(cat "$TMP/cmp$s")"; else bad "$name" "$TMP/cmp$s"; fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
