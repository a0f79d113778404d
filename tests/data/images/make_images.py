#!/usr/bin/env python3
"""Generates the tiny PNG/JPEG fixtures for tests/unit/test_vision_pre.c.

PNGs are written by hand (zlib + chunks) so every colour type / bit depth / interlace
variant is covered; pixel values follow formulas that the C test recomputes:
  v(x, y, c) = (x * 37 + y * 11 + c * 71) & 255
Run from anywhere: python3 tests/data/images/make_images.py
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 7, 5


def v(x, y, c):
    return (x * 37 + y * 11 + c * 71) & 255


def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """samples: list of ints for one row; depth 1/2/4/8/16."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(name, w, h, ctype, depth, pixel, extra=b"", interlace=0):
    """pixel(x, y) -> tuple of samples for that pixel."""
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        xs = list(range(x0, w, dx))
        if not xs:
            continue
        for y in range(y0, h, dy):
            samples = [s for x in xs for s in pixel(x, y)]
            raw += b"\x00" + pack_row(samples, depth)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    write_png("rgb8.png", W, H, 2, 8, lambda x, y: (v(x, y, 0), v(x, y, 1), v(x, y, 2)))
    write_png("rgba8.png", W, H, 6, 8, lambda x, y: (v(x, y, 0), v(x, y, 1), v(x, y, 2), v(x, y, 3)))
    write_png("gray8.png", W, H, 0, 8, lambda x, y: (v(x, y, 0),))
    write_png("gray_alpha8.png", W, H, 4, 8, lambda x, y: (v(x, y, 0), v(x, y, 3)))
    # 16-bit: high byte is the formula, low byte noise that stripping must drop
    write_png("rgb16.png", W, H, 2, 16, lambda x, y: tuple(v(x, y, c) * 256 + ((x * 7 + c) & 255) for c in range(3)))
    write_png("gray1.png", W, H, 0, 1, lambda x, y: ((x + y) & 1,))
    write_png("rgb8_interlaced.png", 13, 11, 2, 8, lambda x, y: (v(x, y, 0), v(x, y, 1), v(x, y, 2)), interlace=1)
    # palette: 4 entries, entry 3 fully transparent (tRNS), index (x + y) % 4
    pal = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]
    plte = chunk(b"PLTE", bytes(c for p in pal for c in p)) + chunk(b"tRNS", bytes([255, 255, 128, 0]))
    write_png("palette_trns.png", W, H, 3, 2, lambda x, y: ((x + y) % 4,), extra=plte)
    # JPEG: a smooth gradient (lossy, so the test checks it loosely); written with OpenCV
    # when available, otherwise skipped (the test then writes its own JPEG round trip).
    try:
        import cv2
        import numpy as np
        yy, xx = np.mgrid[0:24, 0:32]
        img = np.stack([xx * 8, yy * 10, np.full_like(xx, 128)], axis=-1).astype(np.uint8)  # RGB
        cv2.imwrite(os.path.join(HERE, "gradient.jpg"), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(os.path.join(HERE, "gradient_gray.jpg"), img[:, :, 0], [cv2.IMWRITE_JPEG_QUALITY, 95])
    except ImportError:
        pass


if __name__ == "__main__":
    main()
