/* test_vision_pre.c — image I/O and pre-processing: decode fixtures, round trips, corrupt
 * input, resize against naive references, YOLOv5 letterbox math, fused letterbox, warps. */
#include "kiln.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            n_pass++;                                                                                                  \
        } else {                                                                                                       \
            n_fail++;                                                                                                  \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

#define IMG_DIR "tests/data/images/"

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* the fixtures' formula (make_images.py) */
static int fv(int x, int y, int c) { return (x * 37 + y * 11 + c * 71) & 255; }

static uint8_t px(const kiln_image *im, int x, int y, int c) { return im->data[(size_t)y * im->stride + (size_t)x * im->channels + c]; }

static kiln_image random_image(int w, int h, int cn, int smooth)
{
    kiln_image im;
    if (kiln_image_create(w, h, cn, &im)) {
        printf("cannot create %dx%dx%d: %s\n", w, h, cn, kiln_last_error());
        exit(2);
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < cn; c++)
                im.data[(size_t)y * im.stride + (size_t)x * cn + c] =
                    smooth ? (uint8_t)(x * 150 / (w > 1 ? w - 1 : 1) + y * 100 / (h > 1 ? h - 1 : 1) + c) : (uint8_t)(rnd() >> 24);
    return im;
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n + 1);
    *len = fread(*buf, 1, (size_t)n, f);
    fclose(f);
    return 0;
}

/* ---- decoding fixtures ------------------------------------------------------------- */

static void test_png_fixtures(void)
{
    kiln_image im;
    kiln_status st = kiln_image_load(IMG_DIR "rgb8.png", 0, &im);
    CHECK(st == KILN_OK && im.width == 7 && im.height == 5 && im.channels == 3, "rgb8: %s", kiln_last_error());
    int bad = 0;
    for (int y = 0; !st && y < 5; y++)
        for (int x = 0; x < 7; x++)
            for (int c = 0; c < 3; c++) bad += px(&im, x, y, c) != fv(x, y, c);
    CHECK(!st && bad == 0, "rgb8 pixels: %d wrong", bad);
    kiln_image_free(&im);

    st = kiln_image_load(IMG_DIR "rgba8.png", 0, &im);
    CHECK(st == KILN_OK && im.channels == 4, "rgba8: %s", kiln_last_error());
    bad = 0;
    for (int y = 0; !st && y < 5; y++)
        for (int x = 0; x < 7; x++)
            for (int c = 0; c < 4; c++) bad += px(&im, x, y, c) != fv(x, y, c);
    CHECK(!st && bad == 0, "rgba8 pixels: %d wrong", bad);
    kiln_image_free(&im);

    /* want 3 from RGBA drops alpha; want 1 gives OpenCV's luma */
    st = kiln_image_load(IMG_DIR "rgba8.png", 3, &im);
    CHECK(!st && im.channels == 3 && px(&im, 2, 3, 1) == fv(2, 3, 1), "rgba8 -> 3");
    kiln_image_free(&im);
    st = kiln_image_load(IMG_DIR "rgb8.png", 1, &im);
    bad = 0;
    for (int y = 0; !st && y < 5; y++)
        for (int x = 0; x < 7; x++) {
            double g = 0.299 * fv(x, y, 0) + 0.587 * fv(x, y, 1) + 0.114 * fv(x, y, 2);
            bad += fabs(px(&im, x, y, 0) - g) > 0.51;
        }
    CHECK(!st && im.channels == 1 && bad == 0, "rgb8 -> gray: %d off", bad);
    kiln_image_free(&im);

    st = kiln_image_load(IMG_DIR "gray8.png", 0, &im);
    CHECK(!st && im.channels == 1 && px(&im, 4, 2, 0) == fv(4, 2, 0), "gray8");
    kiln_image_free(&im);
    st = kiln_image_load(IMG_DIR "gray8.png", 4, &im);
    CHECK(!st && im.channels == 4 && px(&im, 4, 2, 0) == fv(4, 2, 0) && px(&im, 4, 2, 2) == fv(4, 2, 0) &&
              px(&im, 4, 2, 3) == 255,
          "gray8 -> 4");
    kiln_image_free(&im);

    st = kiln_image_load(IMG_DIR "gray_alpha8.png", 0, &im);
    CHECK(!st && im.channels == 4 && px(&im, 3, 1, 0) == fv(3, 1, 0) && px(&im, 3, 1, 1) == fv(3, 1, 0) &&
              px(&im, 3, 1, 3) == fv(3, 1, 3),
          "gray+alpha -> RGBA: %s", st ? kiln_last_error() : "values");
    kiln_image_free(&im);
    st = kiln_image_load(IMG_DIR "gray_alpha8.png", 1, &im);
    CHECK(!st && im.channels == 1 && px(&im, 3, 1, 0) == fv(3, 1, 0), "gray+alpha -> gray");
    kiln_image_free(&im);

    st = kiln_image_load(IMG_DIR "rgb16.png", 0, &im);
    bad = 0;
    for (int y = 0; !st && y < 5; y++)
        for (int x = 0; x < 7; x++)
            for (int c = 0; c < 3; c++) bad += px(&im, x, y, c) != fv(x, y, c);
    CHECK(!st && im.channels == 3 && bad == 0, "rgb16 stripped to 8 bits: %d wrong (%s)", bad,
          st ? kiln_last_error() : "");
    kiln_image_free(&im);

    st = kiln_image_load(IMG_DIR "gray1.png", 0, &im);
    bad = 0;
    for (int y = 0; !st && y < 5; y++)
        for (int x = 0; x < 7; x++) bad += px(&im, x, y, 0) != (((x + y) & 1) ? 255 : 0);
    CHECK(!st && im.channels == 1 && bad == 0, "1-bit gray: %d wrong", bad);
    kiln_image_free(&im);

    st = kiln_image_load(IMG_DIR "rgb8_interlaced.png", 0, &im);
    bad = 0;
    for (int y = 0; !st && y < 11; y++)
        for (int x = 0; x < 13; x++)
            for (int c = 0; c < 3; c++) bad += px(&im, x, y, c) != fv(x, y, c);
    CHECK(!st && im.width == 13 && im.height == 11 && bad == 0, "interlaced: %d wrong (%s)", bad,
          st ? kiln_last_error() : "");
    kiln_image_free(&im);

    static const uint8_t pal[4][4] = {{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 128}, {10, 20, 30, 0}};
    st = kiln_image_load(IMG_DIR "palette_trns.png", 0, &im);
    bad = 0;
    for (int y = 0; !st && y < 5; y++)
        for (int x = 0; x < 7; x++)
            for (int c = 0; c < 4; c++) bad += px(&im, x, y, c) != pal[(x + y) % 4][c];
    CHECK(!st && im.channels == 4 && bad == 0, "palette + tRNS: %d wrong (%s)", bad, st ? kiln_last_error() : "");
    kiln_image_free(&im);
    st = kiln_image_load(IMG_DIR "palette_trns.png", 3, &im);
    CHECK(!st && im.channels == 3 && px(&im, 1, 0, 1) == 255, "palette -> RGB");
    kiln_image_free(&im);
}

static void test_jpeg_fixtures(void)
{
    kiln_image im;
    kiln_status st = kiln_image_load(IMG_DIR "gradient.jpg", 0, &im);
    CHECK(!st && im.width == 32 && im.height == 24 && im.channels == 3, "gradient.jpg: %s", kiln_last_error());
    int worst = 0;
    for (int y = 0; !st && y < 24; y++)
        for (int x = 0; x < 32; x++) {
            int want[3] = {x * 8, y * 10, 128};
            for (int c = 0; c < 3; c++) {
                int d = abs(px(&im, x, y, c) - want[c]);
                if (d > worst) worst = d;
            }
        }
    CHECK(!st && worst <= 12, "gradient.jpg max error %d", worst);
    kiln_image_free(&im);
    st = kiln_image_load(IMG_DIR "gradient_gray.jpg", 0, &im);
    CHECK(!st && im.channels == 1 && abs(px(&im, 10, 5, 0) - 80) <= 6, "gradient_gray.jpg");
    kiln_image_free(&im);
    st = kiln_image_load(IMG_DIR "gradient_gray.jpg", 3, &im);
    CHECK(!st && im.channels == 3 && px(&im, 10, 5, 0) == px(&im, 10, 5, 2), "gray jpeg -> RGB");
    kiln_image_free(&im);
}

/* ---- saving -------------------------------------------------------------------------- */

static void test_roundtrip(const char *dir)
{
    char path[512];
    for (int cn = 1; cn <= 4; cn++) {
        if (cn == 2) continue;
        kiln_image a = random_image(37, 19, cn, 0), b;
        snprintf(path, sizeof path, "%s/rt%d.png", dir, cn);
        kiln_status st = kiln_image_save(path, &a, 0);
        CHECK(!st, "save %s: %s", path, kiln_last_error());
        st = kiln_image_load(path, 0, &b);
        CHECK(!st && b.width == 37 && b.height == 19 && b.channels == cn &&
                  !memcmp(a.data, b.data, (size_t)37 * 19 * cn),
              "PNG round trip %d channels", cn);
        kiln_image_free(&b);

        kiln_image s = random_image(40, 30, cn, 1);
        snprintf(path, sizeof path, "%s/rt%d.JPEG", dir, cn);
        st = kiln_image_save(path, &s, 95);
        CHECK(!st, "save %s: %s", path, kiln_last_error());
        st = kiln_image_load(path, 0, &b);
        int worst = 0, ccmp = cn == 4 ? 3 : cn;
        for (int y = 0; !st && y < 30; y++)
            for (int x = 0; x < 40; x++)
                for (int c = 0; c < ccmp; c++) {
                    int d = abs(px(&s, x, y, c) - px(&b, x, y, c));
                    if (d > worst) worst = d;
                }
        CHECK(!st && b.channels == (cn == 1 ? 1 : 3) && worst <= 12, "JPEG round trip %d channels: max err %d (%s)",
              cn, worst, st ? kiln_last_error() : "");
        kiln_image_free(&b);
        kiln_image_free(&a);
        kiln_image_free(&s);
    }
    /* a wrapped image with padding in its rows */
    uint8_t buf[5 * 16];
    for (int i = 0; i < (int)sizeof buf; i++) buf[i] = (uint8_t)(i * 7);
    kiln_image w = kiln_image_wrap(buf, 4, 5, 3, 16), b;
    snprintf(path, sizeof path, "%s/strided.png", dir);
    kiln_status st = kiln_image_save(path, &w, 0);
    st = st ? st : kiln_image_load(path, 0, &b);
    CHECK(!st && b.data[3 * 4 * 2 + 5] == buf[16 * 2 + 5], "strided save");
    if (!st) kiln_image_free(&b);
    kiln_image_free(&w);
    CHECK(w.data == NULL, "free of wrapped image clears it");

    kiln_image a = random_image(4, 4, 3, 0);
    snprintf(path, sizeof path, "%s/x.bmp", dir);
    st = kiln_image_save(path, &a, 0);
    CHECK(st == KILN_ERR_UNSUPPORTED && strstr(kiln_last_error(), "x.bmp"), "unknown extension: %d %s", st,
          kiln_last_error());
    snprintf(path, sizeof path, "%s/q.jpg", dir);
    CHECK(kiln_image_save(path, &a, 101) == KILN_ERR_INVALID_ARGUMENT, "quality 101 rejected");
    CHECK(kiln_image_save("/nonexistent-dir/x.png", &a, 0) == KILN_ERR_IO, "unwritable path");
    kiln_image_free(&a);
}

/* ---- corrupt input --------------------------------------------------------------------- */

static void test_corrupt(const char *dir)
{
    kiln_image im;
    kiln_status st = kiln_image_load(IMG_DIR "does-not-exist.png", 0, &im);
    CHECK(st == KILN_ERR_IO && strstr(kiln_last_error(), "does-not-exist.png"), "missing file: %s", kiln_last_error());
    st = kiln_image_decode("GIF89a....", 10, 0, &im);
    CHECK(st == KILN_ERR_UNSUPPORTED && strstr(kiln_last_error(), "unknown image format"), "unknown format: %s",
          kiln_last_error());
    CHECK(kiln_image_decode("", 0, 0, &im) != KILN_OK, "empty buffer");
    CHECK(kiln_image_decode(NULL, 0, 0, &im) != KILN_OK, "NULL buffer");
    CHECK(kiln_image_decode("\xff\xd8\xff", 3, 7, &im) == KILN_ERR_INVALID_ARGUMENT, "bad want_channels");

    const char *files[] = {"rgb8.png", "rgb8_interlaced.png", "palette_trns.png", "rgb16.png", "gradient.jpg",
                           "gradient_gray.jpg"};
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        char path[512];
        snprintf(path, sizeof path, IMG_DIR "%s", files[f]);
        uint8_t *buf;
        size_t len;
        if (read_file(path, &buf, &len)) {
            CHECK(0, "cannot read fixture %s", path);
            continue;
        }
        /* every truncation must fail cleanly (the last chunk/marker may be missing) */
        int ok_trunc = 0, crashed_msg = 0;
        for (size_t n = 0; n + 2 < len; n += (len > 400 ? 7 : 1)) {
            st = kiln_image_decode(buf, n, 0, &im);
            if (!st) {
                ok_trunc++;
                kiln_image_free(&im);
            } else if (!kiln_last_error()[0]) {
                crashed_msg++;
            }
        }
        CHECK(ok_trunc == 0 && crashed_msg == 0, "%s: %d truncations accepted, %d without a message", files[f],
              ok_trunc, crashed_msg);
        /* the file name is in load's error text */
        char tpath[600];
        snprintf(tpath, sizeof tpath, "%s/trunc_%s", dir, files[f]);
        FILE *t = fopen(tpath, "wb");
        fwrite(buf, 1, len / 2, t);
        fclose(t);
        st = kiln_image_load(tpath, 0, &im);
        CHECK(st == KILN_ERR_PARSE && strstr(kiln_last_error(), tpath) &&
                  (strstr(kiln_last_error(), "truncated") || strstr(kiln_last_error(), "corrupt")),
              "truncated %s: %d %s", files[f], st, kiln_last_error());
        /* bit flips: anything may happen except a crash (run under ASan) */
        uint8_t *mut = malloc(len);
        int decoded = 0;
        for (int it = 0; it < 300; it++) {
            memcpy(mut, buf, len);
            int flips = 1 + (int)(rnd() % 4);
            for (int k = 0; k < flips; k++) mut[8 + rnd() % (len - 8)] ^= (uint8_t)(1u << (rnd() % 8));
            st = kiln_image_decode(mut, len, (int)(rnd() % 5 == 2 ? 0 : rnd() % 5), &im);
            if (!st) {
                decoded++;
                volatile unsigned sum = 0;
                for (int y = 0; y < im.height; y++) sum += im.data[(size_t)y * im.stride + (size_t)(im.width - 1) * im.channels];
                (void)sum;
                kiln_image_free(&im);
            }
        }
        CHECK(1, "fuzz");
        free(mut);
        free(buf);
    }

    /* a corrupt JPEG header */
    uint8_t *buf;
    size_t len;
    if (!read_file(IMG_DIR "gradient.jpg", &buf, &len)) {
        memset(buf + 4, 0x55, 40);
        st = kiln_image_decode(buf, len, 0, &im);
        CHECK(st == KILN_ERR_PARSE && strstr(kiln_last_error(), "JPEG"), "garbled JPEG header: %d %s", st,
              kiln_last_error());
        if (!st) kiln_image_free(&im);
        free(buf);
    }
    /* decompression bombs: patch the frame header / IHDR to claim a huge size */
    if (!read_file(IMG_DIR "gradient.jpg", &buf, &len)) {
        for (size_t i = 2; i + 9 < len; i++)
            if (buf[i] == 0xff && (buf[i + 1] == 0xc0 || buf[i + 1] == 0xc2)) {
                buf[i + 5] = 0xea, buf[i + 6] = 0x60; /* height 60000 */
                buf[i + 7] = 0xea, buf[i + 8] = 0x60; /* width 60000 */
                break;
            }
        st = kiln_image_decode(buf, len, 0, &im);
        CHECK(st == KILN_ERR_UNSUPPORTED && strstr(kiln_last_error(), "exceeds"), "JPEG bomb: %d %s", st,
              kiln_last_error());
        if (!st) kiln_image_free(&im);
        free(buf);
    }
    if (!read_file(IMG_DIR "rgb8.png", &buf, &len)) {
        /* IHDR at offset 16: width/height big-endian; the CRC is now wrong too, so both
         * a CRC error and a size refusal are acceptable, never success */
        buf[16] = 0, buf[17] = 0, buf[18] = 0x9c, buf[19] = 0x40; /* 40000 */
        st = kiln_image_decode(buf, len, 0, &im);
        CHECK(st != KILN_OK && kiln_last_error()[0], "PNG bomb (bad CRC): %d %s", st, kiln_last_error());
        free(buf);
    }
}

/* A PNG with a valid CRC that claims 40000 x 40000 pixels. */
static uint32_t crc_table[256];
static uint32_t crc32_calc(const uint8_t *p, size_t n)
{
    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 255] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static size_t put_chunk(uint8_t *p, const char *tag, const uint8_t *data, uint32_t n)
{
    p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
    memcpy(p + 4, tag, 4);
    if (n) memcpy(p + 8, data, n);
    uint32_t crc = crc32_calc(p + 4, 4 + (size_t)n);
    p[8 + n] = (uint8_t)(crc >> 24), p[9 + n] = (uint8_t)(crc >> 16), p[10 + n] = (uint8_t)(crc >> 8);
    p[11 + n] = (uint8_t)crc;
    return 12 + (size_t)n;
}

static void test_png_bomb(void)
{
    uint8_t buf[128];
    size_t n = 8;
    memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
    const uint8_t ihdr[13] = {0, 0, 0x9c, 0x40, 0, 0, 0x9c, 0x40, 8, 2, 0, 0, 0}; /* 40000 x 40000 RGB */
    n += put_chunk(buf + n, "IHDR", ihdr, 13);
    n += put_chunk(buf + n, "IDAT", NULL, 0);
    n += put_chunk(buf + n, "IEND", NULL, 0);
    kiln_image im;
    kiln_status st = kiln_image_decode(buf, n, 0, &im);
    CHECK(st == KILN_ERR_UNSUPPORTED && strstr(kiln_last_error(), "exceeds"), "PNG bomb: %d %s", st,
          kiln_last_error());
}

/* ---- resize against naive references --------------------------------------------------- */

/* OpenCV INTER_LINEAR coordinate, in double */
static void ref_lin(int d, int src, int dst, int *i0, int *i1, double *f)
{
    double x = (d + 0.5) * src / dst - 0.5;
    int s = (int)floor(x);
    double t = x - s;
    if (s < 0) s = 0, t = 0;
    if (s >= src - 1) s = src - 1, t = 0;
    *i0 = s;
    *i1 = s + 1 < src ? s + 1 : src - 1;
    *f = t;
}

/* Area weight of source pixel i for output d (overlap of [d*s, (d+1)*s] with [i, i+1]). */
static double ref_area_w(int d, int i, int src, int dst)
{
    double s = (double)src / dst, a = d * s, b = fmin(a + s, src);
    double lo = fmax(a, i), hi = fmin(b, i + 1.0);
    return hi > lo ? (hi - lo) / (b - a) : 0.0;
}

static double ref_axis_w(kiln_resize_mode m, int d, int i, int src, int dst)
{
    if (m == KILN_RESIZE_AREA && src > dst) return ref_area_w(d, i, src, dst);
    int i0, i1;
    double f;
    ref_lin(d, src, dst, &i0, &i1, &f);
    return (i == i0 ? 1.0 - f : 0.0) + (i == i1 ? f : 0.0);
}

static int resize_ref_diff(const kiln_image *s, const kiln_image *o, kiln_resize_mode m)
{
    int worst = 0;
    for (int y = 0; y < o->height; y++)
        for (int x = 0; x < o->width; x++)
            for (int c = 0; c < s->channels; c++) {
                double v;
                if (m == KILN_RESIZE_NEAREST) {
                    int sx = (int)floor(x * (double)s->width / o->width), sy = (int)floor(y * (double)s->height / o->height);
                    if (sx > s->width - 1) sx = s->width - 1;
                    if (sy > s->height - 1) sy = s->height - 1;
                    v = px(s, sx, sy, c);
                } else {
                    v = 0;
                    kiln_resize_mode mm = m;
                    if (m == KILN_RESIZE_AREA && o->width >= s->width && o->height >= s->height) mm = KILN_RESIZE_BILINEAR;
                    for (int sy = 0; sy < s->height; sy++) {
                        double wy = ref_axis_w(mm, y, sy, s->height, o->height);
                        if (wy == 0) continue;
                        for (int sx = 0; sx < s->width; sx++) {
                            double wx = ref_axis_w(mm, x, sx, s->width, o->width);
                            if (wx != 0) v += wx * wy * px(s, sx, sy, c);
                        }
                    }
                }
                int d = abs((int)lrint(v) - px(o, x, y, c));
                if (d > worst) worst = d;
            }
    return worst;
}

static void test_resize(void)
{
    static const int sizes[][4] = {{1, 1, 5, 3},   {1, 7, 3, 2},  {7, 1, 2, 9},   {13, 11, 5, 4},  {13, 11, 26, 22},
                                   {16, 16, 8, 8}, {17, 9, 6, 20}, {40, 3, 7, 7},  {3, 40, 9, 13},  {100, 2, 10, 50},
                                   {9, 9, 9, 9},   {31, 17, 10, 6}, {10, 6, 31, 17}, {64, 48, 21, 16}, {5, 5, 1, 1}};
    const char *names[] = {"nearest", "bilinear", "area"};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (int cn = 1; cn <= 4; cn++) {
            if (cn == 2) continue;
            kiln_image s = random_image(sizes[i][0], sizes[i][1], cn, 0);
            for (int m = 0; m < 3; m++) {
                kiln_image o;
                kiln_status st = kiln_image_resize(&s, sizes[i][2], sizes[i][3], (kiln_resize_mode)m, &o);
                int worst = st ? 999 : resize_ref_diff(&s, &o, (kiln_resize_mode)m);
                CHECK(!st && o.width == sizes[i][2] && o.height == sizes[i][3] && worst <= (m == 0 ? 0 : 1),
                      "resize %s %dx%dx%d -> %dx%d: max diff %d (%s)", names[m], sizes[i][0], sizes[i][1], cn,
                      sizes[i][2], sizes[i][3], worst, st ? kiln_last_error() : "");
                if (!st) kiln_image_free(&o);
            }
            kiln_image_free(&s);
        }
    /* same size is the identity for every mode */
    kiln_image s = random_image(23, 19, 3, 0), o;
    for (int m = 0; m < 3; m++) {
        kiln_status st = kiln_image_resize(&s, 23, 19, (kiln_resize_mode)m, &o);
        CHECK(!st && !memcmp(s.data, o.data, (size_t)23 * 19 * 3), "identity resize mode %d", m);
        if (!st) kiln_image_free(&o);
    }
    CHECK(kiln_image_resize(&s, 0, 5, KILN_RESIZE_BILINEAR, &o) == KILN_ERR_INVALID_ARGUMENT, "zero width rejected");
    CHECK(kiln_image_resize(&s, 5, 5, (kiln_resize_mode)9, &o) == KILN_ERR_INVALID_ARGUMENT, "bad mode rejected");
    CHECK(kiln_image_resize(NULL, 5, 5, KILN_RESIZE_BILINEAR, &o) == KILN_ERR_INVALID_ARGUMENT, "NULL src rejected");
    kiln_image_free(&s);
}

/* ---- letterbox ----------------------------------------------------------------------- */

typedef struct lb_case {
    int w, h, tw, th, auto_pad, fill, up, stride;
    int uw, uh, left, top, ow, oh;
    double rx, ry;
} lb_case;

static void test_letterbox_math(void)
{
    /* expected values computed by hand from YOLOv5's letterbox() (Python round = half even) */
    static const lb_case cases[] = {
        {1920, 1080, 640, 640, 0, 0, 1, 32, 640, 360, 0, 140, 640, 640, 1 / 3.0, 1 / 3.0},
        {1920, 1080, 640, 640, 1, 0, 1, 32, 640, 360, 0, 12, 640, 384, 1 / 3.0, 1 / 3.0},
        {1920, 1080, 640, 640, 0, 1, 1, 32, 640, 640, 0, 0, 640, 640, 1 / 3.0, 640 / 1080.0},
        {320, 240, 640, 640, 0, 0, 0, 32, 320, 240, 160, 200, 640, 640, 1.0, 1.0},
        {320, 240, 640, 640, 0, 0, 1, 32, 640, 480, 0, 80, 640, 640, 2.0, 2.0},
        {1000, 667, 640, 640, 0, 0, 1, 32, 640, 427, 0, 106, 640, 640, 0.64, 0.64},
        {1000, 667, 640, 640, 1, 0, 1, 32, 640, 427, 0, 10, 640, 448, 0.64, 0.64},
        {10, 5, 5, 5, 0, 0, 1, 32, 5, 2, 0, 1, 5, 5, 0.5, 0.5}, /* round(2.5) = 2 */
        {1920, 1080, 640, 480, 0, 0, 1, 32, 640, 360, 0, 60, 640, 480, 1 / 3.0, 1 / 3.0},
        {333, 999, 320, 320, 1, 0, 1, 32, 107, 320, 10, 0, 128, 320, 320 / 999.0, 320 / 999.0},
        {1, 1, 640, 640, 0, 0, 1, 32, 640, 640, 0, 0, 640, 640, 640.0, 640.0},
        {1, 1, 640, 640, 0, 0, 0, 32, 1, 1, 319, 319, 640, 640, 1.0, 1.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const lb_case *c = &cases[i];
        kiln_image s = random_image(c->w, c->h, 3, 1);
        kiln_letterbox_options o = kiln_letterbox_default(c->tw, c->th);
        o.auto_pad = c->auto_pad, o.scale_fill = c->fill, o.scale_up = c->up, o.stride = c->stride;
        kiln_letterbox_info info;
        memset(&info, 0, sizeof info);
        kiln_status st = kiln_letterbox_to_tensor(&s, &o, NULL, NULL, 0, &info);
        CHECK(!st && info.out_width == c->ow && info.out_height == c->oh && info.pad_x == c->left &&
                  info.pad_y == c->top && fabs(info.ratio_x - c->rx) < 1e-6 && fabs(info.ratio_y - c->ry) < 1e-6,
              "letterbox info case %zu (%dx%d -> %dx%d auto %d fill %d up %d): got out %dx%d pad %g,%g ratio %g,%g",
              i, c->w, c->h, c->tw, c->th, c->auto_pad, c->fill, c->up, info.out_width, info.out_height,
              (double)info.pad_x, (double)info.pad_y, (double)info.ratio_x, (double)info.ratio_y);
        /* the 8-bit letterbox agrees and has the content where info says */
        kiln_image lb;
        kiln_letterbox_info info2;
        st = kiln_letterbox(&s, &o, &lb, &info2);
        CHECK(!st && !memcmp(&info, &info2, sizeof info) && lb.width == c->ow && lb.height == c->oh,
              "letterbox image case %zu", i);
        if (!st) {
            int pad_ok = 1;
            if (c->top > 0) pad_ok &= px(&lb, lb.width / 2, c->top - 1, 1) == 114;
            if (c->left > 0) pad_ok &= px(&lb, c->left - 1, lb.height / 2, 0) == 114;
            if (c->oh > c->top + c->uh) pad_ok &= px(&lb, lb.width / 2, c->top + c->uh, 2) == 114;
            CHECK(pad_ok, "letterbox padding case %zu", i);
            kiln_image_free(&lb);
        }
        kiln_image_free(&s);
    }
    kiln_image s = random_image(8, 8, 3, 0), lb;
    kiln_letterbox_options o = kiln_letterbox_default(0, 640);
    CHECK(kiln_letterbox(&s, &o, &lb, NULL) == KILN_ERR_INVALID_ARGUMENT, "zero target rejected");
    o = kiln_letterbox_default(64, 64);
    o.auto_pad = 1, o.stride = 0;
    CHECK(kiln_letterbox(&s, &o, &lb, NULL) == KILN_ERR_INVALID_ARGUMENT, "stride 0 with auto rejected");
    CHECK(kiln_letterbox(&s, NULL, &lb, NULL) == KILN_ERR_INVALID_ARGUMENT, "NULL options rejected");
    kiln_image_free(&s);
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* Reference: 8-bit letterbox, then planes with gray replicated / alpha dropped. */
static void ref_planes3(const kiln_image *img, const kiln_normalize *n, float *dst)
{
    size_t plane = (size_t)img->width * img->height;
    for (int c = 0; c < 3; c++) {
        int sc = img->channels == 1 ? 0 : (n->swap_rb ? 2 - c : c);
        for (int y = 0; y < img->height; y++)
            for (int x = 0; x < img->width; x++)
                dst[c * plane + (size_t)y * img->width + x] = (px(img, x, y, sc) * n->scale - n->mean[c]) / n->std[c];
    }
}

static void test_letterbox_fused(void)
{
    static const int sizes[][4] = {{1920 / 4, 1080 / 4, 640 / 4, 640 / 4}, {97, 61, 64, 64}, {61, 97, 64, 48},
                                   {13, 7, 64, 64},  {1, 1, 32, 32},   {1, 50, 32, 32},  {50, 1, 32, 32},
                                   {300, 7, 64, 64}, {64, 64, 64, 64}, {33, 65, 31, 17}};
    kiln_normalize norms[3];
    norms[0] = kiln_normalize_default();
    norms[1] = kiln_normalize_default();
    norms[1].swap_rb = 1;
    norms[2].scale = 1.0f / 255;
    norms[2].swap_rb = 1;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; c++) norms[2].mean[c] = mean[c], norms[2].std[c] = sd[c];
    norms[2].mean[3] = 0, norms[2].std[3] = 1;
    int opt_sets = 4;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (int cn = 1; cn <= 4; cn++) {
            if (cn == 2) continue;
            kiln_image s = random_image(sizes[i][0], sizes[i][1], cn, 0);
            for (int os = 0; os < opt_sets; os++)
                for (int ni = 0; ni < 3; ni++) {
                    kiln_letterbox_options o = kiln_letterbox_default(sizes[i][2], sizes[i][3]);
                    if (os == 1) o.auto_pad = 1;
                    if (os == 2) o.scale_fill = 1;
                    if (os == 3) o.scale_up = 0, o.pad_value = 7;
                    kiln_letterbox_info info, info2;
                    kiln_status st = kiln_letterbox_to_tensor(&s, &o, &norms[ni], NULL, 0, &info);
                    size_t n = (size_t)3 * info.out_width * info.out_height;
                    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
                    st = st ? st : kiln_letterbox_to_tensor(&s, &o, &norms[ni], a, n, &info2);
                    kiln_image lb;
                    st = st ? st : kiln_letterbox(&s, &o, &lb, NULL);
                    float d = 1e9f;
                    if (!st) {
                        if (cn == 3) {
                            st = kiln_image_to_tensor(&lb, &norms[ni], b, n);
                        } else {
                            ref_planes3(&lb, &norms[ni], b);
                        }
                        kiln_image_free(&lb);
                        if (!st) d = max_abs_diff(a, b, n);
                    }
                    CHECK(!st && d <= 1e-6f, "fused letterbox %dx%dx%d -> %dx%d opts %d norm %d: max diff %g (%s)",
                          sizes[i][0], sizes[i][1], cn, sizes[i][2], sizes[i][3], os, ni, (double)d,
                          st ? kiln_last_error() : "");
                    free(a);
                    free(b);
                }
            /* the non-fused modes go through the 8-bit path and must agree as well */
            for (int m = 0; m < 3; m += 2) {
                kiln_letterbox_options o = kiln_letterbox_default(sizes[i][2], sizes[i][3]);
                o.mode = (kiln_resize_mode)m;
                kiln_letterbox_info info;
                kiln_letterbox_to_tensor(&s, &o, NULL, NULL, 0, &info);
                size_t n = (size_t)3 * info.out_width * info.out_height;
                float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
                kiln_image lb;
                kiln_status st = kiln_letterbox_to_tensor(&s, &o, NULL, a, n, NULL);
                st = st ? st : kiln_letterbox(&s, &o, &lb, NULL);
                float d = 1e9f;
                if (!st) {
                    kiln_normalize def = kiln_normalize_default();
                    ref_planes3(&lb, &def, b);
                    kiln_image_free(&lb);
                    d = max_abs_diff(a, b, n);
                }
                CHECK(!st && d <= 1e-6f, "letterbox_to_tensor mode %d %dx%dx%d: diff %g", m, sizes[i][0], sizes[i][1],
                      cn, (double)d);
                free(a);
                free(b);
            }
            kiln_image_free(&s);
        }
    /* the fused output against the exact YOLOv5 pipeline on a smooth image: resize 3x down */
    kiln_image s = random_image(1920 / 2, 1080 / 2, 3, 1);
    kiln_letterbox_options o = kiln_letterbox_default(320, 320);
    size_t n = (size_t)3 * 320 * 320;
    float *a = malloc(n * sizeof(float));
    CHECK(kiln_letterbox_to_tensor(&s, &o, NULL, a, n - 1, NULL) == KILN_ERR_INVALID_ARGUMENT, "short dst rejected");
    kiln_normalize bad = kiln_normalize_default();
    bad.std[1] = 0;
    CHECK(kiln_letterbox_to_tensor(&s, &o, &bad, a, n, NULL) == KILN_ERR_INVALID_ARGUMENT, "std 0 rejected");
    kiln_status st = kiln_letterbox_to_tensor(&s, &o, NULL, a, n, NULL);
    CHECK(!st && fabsf(a[0] - 114 / 255.f) < 1e-7f && fabsf(a[n - 1] - 114 / 255.f) < 1e-7f, "pad value in planes");
    free(a);
    kiln_image_free(&s);
}

/* Random sizes, options and row strides: fused == two-step, bit for bit. */
static void test_letterbox_sweep(void)
{
    int bad = 0, runs = 0;
    for (int it = 0; it < 120; it++) {
        int w = 1 + (int)(rnd() % 220), h = 1 + (int)(rnd() % 160), cn = (int[]){1, 3, 4}[rnd() % 3];
        int pad = (int)(rnd() % 9), stride = w * cn + pad;
        uint8_t *buf = malloc((size_t)stride * h);
        for (size_t i = 0; i < (size_t)stride * h; i++) buf[i] = (uint8_t)(rnd() >> 24);
        kiln_image s = kiln_image_wrap(buf, w, h, cn, stride);
        kiln_letterbox_options o = kiln_letterbox_default(1 + (int)(rnd() % 130), 1 + (int)(rnd() % 130));
        o.auto_pad = rnd() % 4 == 0;
        o.scale_fill = rnd() % 5 == 0;
        o.scale_up = rnd() % 3 != 0;
        o.stride = 1 + (int)(rnd() % 40);
        o.pad_value = (uint8_t)rnd();
        kiln_normalize n = kiln_normalize_default();
        n.swap_rb = (int)(rnd() & 1);
        n.mean[1] = 0.25f, n.std[2] = 0.5f;
        kiln_letterbox_info info;
        kiln_status st = kiln_letterbox_to_tensor(&s, &o, &n, NULL, 0, &info);
        size_t len = st ? 1 : (size_t)3 * info.out_width * info.out_height;
        float *a = malloc(len * sizeof(float)), *b = malloc(len * sizeof(float));
        kiln_image lb;
        st = st ? st : kiln_letterbox_to_tensor(&s, &o, &n, a, len, NULL);
        st = st ? st : kiln_letterbox(&s, &o, &lb, NULL);
        if (!st) {
            ref_planes3(&lb, &n, b);
            kiln_image_free(&lb);
            if (max_abs_diff(a, b, len) > 1e-6f) bad++;
        } else {
            bad++;
            printf("sweep %d: %s\n", it, kiln_last_error());
        }
        runs++;
        free(a), free(b), free(buf);
    }
    CHECK(bad == 0, "letterbox sweep: %d of %d differ", bad, runs);
}

static void test_to_tensor(void)
{
    kiln_image s = random_image(5, 3, 3, 0);
    kiln_normalize n = kiln_normalize_default();
    n.swap_rb = 1;
    n.mean[0] = 0.5f, n.std[0] = 0.25f;
    float t[45];
    kiln_status st = kiln_image_to_tensor(&s, &n, t, 45);
    float e = (px(&s, 4, 2, 2) / 255.f - 0.5f) / 0.25f, g = px(&s, 1, 1, 1) / 255.f;
    CHECK(!st && fabsf(t[2 * 5 + 4] - e) < 1e-6f && fabsf(t[15 + 5 + 1] - g) < 1e-6f &&
              fabsf(t[30] - px(&s, 0, 0, 0) / 255.f) < 1e-6f,
          "to_tensor values");
    CHECK(kiln_image_to_tensor(&s, &n, t, 44) == KILN_ERR_INVALID_ARGUMENT, "to_tensor short dst");
    kiln_image_free(&s);
    s = random_image(4, 2, 4, 0);
    float t4[32];
    n = kiln_normalize_default();
    st = kiln_image_to_tensor(&s, &n, t4, 32);
    CHECK(!st && fabsf(t4[3 * 8 + 5] - px(&s, 1, 1, 3) / 255.f) < 1e-6f, "to_tensor RGBA keeps alpha plane");
    kiln_image_free(&s);
}

/* ---- warp ------------------------------------------------------------------------------ */

static void apply(const float m[6], double x, double y, double *ox, double *oy)
{
    *ox = m[0] * x + m[1] * y + m[2];
    *oy = m[3] * x + m[4] * y + m[5];
}

static void test_warp(void)
{
    kiln_affine a;
    int bad = 0;
    const float id[6] = {1, 0, 0, 0, 1, 0};
    kiln_status st = kiln_affine_from_matrix(id, &a);
    kiln_image s = random_image(31, 17, 3, 0), o;
    st = st ? st : kiln_warp_affine(&s, &a, 31, 17, 0, &o);
    CHECK(!st && !memcmp(o.data, s.data, (size_t)31 * 17 * 3), "identity warp");
    if (!st) kiln_image_free(&o);
    /* translation by whole pixels moves the image and brings in the border */
    const float tr[6] = {1, 0, 2, 0, 1, 1};
    st = kiln_affine_from_matrix(tr, &a);
    st = st ? st : kiln_warp_affine(&s, &a, 31, 17, 9, &o);
    CHECK(!st && px(&o, 5, 4, 1) == px(&s, 3, 3, 1) && px(&o, 1, 4, 0) == 9 && px(&o, 5, 0, 2) == 9,
          "translation warp");
    if (!st) kiln_image_free(&o);
    kiln_image_free(&s);

    /* pure scale (fit with matching aspect) equals the bilinear resize where no border
     * pixel is involved */
    static const int sc[][4] = {{20, 10, 60, 30}, {40, 30, 20, 15}, {33, 21, 66, 42}, {64, 32, 16, 8}};
    for (size_t i = 0; i < sizeof sc / sizeof *sc; i++) {
        s = random_image(sc[i][0], sc[i][1], 3, 0);
        a = kiln_affine_fit(sc[i][0], sc[i][1], sc[i][2], sc[i][3]);
        kiln_image r;
        st = kiln_warp_affine(&s, &a, sc[i][2], sc[i][3], 0, &o);
        st = st ? st : kiln_image_resize(&s, sc[i][2], sc[i][3], KILN_RESIZE_BILINEAR, &r);
        int worst = 0, compared = 0;
        for (int y = 0; !st && y < o.height; y++)
            for (int x = 0; x < o.width; x++) {
                double sx, sy;
                apply(a.inv, x, y, &sx, &sy);
                if (sx < 0 || sy < 0 || sx > sc[i][0] - 1 || sy > sc[i][1] - 1) continue;
                compared++;
                for (int c = 0; c < 3; c++) {
                    int d = abs(px(&o, x, y, c) - px(&r, x, y, c));
                    if (d > worst) worst = d;
                }
            }
        CHECK(!st && compared > o.width * o.height / 2 && worst <= 1, "scale warp %dx%d -> %dx%d vs resize: max %d",
              sc[i][0], sc[i][1], sc[i][2], sc[i][3], worst);
        if (!st) {
            /* warp_to_tensor == warp + to_tensor */
            size_t n = (size_t)3 * o.width * o.height;
            float *t1 = malloc(n * sizeof(float)), *t2 = malloc(n * sizeof(float));
            kiln_normalize nn = kiln_normalize_default();
            nn.swap_rb = 1;
            kiln_status s2 = kiln_warp_affine_to_tensor(&s, &a, o.width, o.height, 0, &nn, t1, n);
            s2 = s2 ? s2 : kiln_image_to_tensor(&o, &nn, t2, n);
            CHECK(!s2 && max_abs_diff(t1, t2, n) <= 1e-6f, "warp_to_tensor == warp + to_tensor");
            CHECK(kiln_warp_affine_to_tensor(&s, &a, o.width, o.height, 0, &nn, t1, n - 1) == KILN_ERR_INVALID_ARGUMENT,
                  "warp_to_tensor short dst");
            free(t1), free(t2);
            kiln_image_free(&o);
            kiln_image_free(&r);
        }
        kiln_image_free(&s);
    }

    /* the separable path (axis-aligned) equals the general per-pixel path, borders included:
     * a shear too small to move any sample forces the general one */
    for (int cn = 1; cn <= 4; cn++) {
        if (cn == 2) continue;
        s = random_image(45, 29, cn, 0);
        kiln_affine fit = kiln_affine_fit(45, 29, 64, 64), sheared;
        float m[6];
        memcpy(m, fit.fwd, sizeof m);
        kiln_image o2;
        st = kiln_affine_from_matrix(m, &a);
        m[1] = 1e-12f;
        st = st ? st : kiln_affine_from_matrix(m, &sheared);
        st = st ? st : kiln_warp_affine(&s, &a, 64, 64, 77, &o);
        st = st ? st : kiln_warp_affine(&s, &sheared, 64, 64, 77, &o2);
        CHECK(!st && sheared.inv[1] != 0 && !memcmp(o.data, o2.data, (size_t)64 * 64 * cn),
              "separable warp == general warp (%d channels)", cn);
        if (!st) kiln_image_free(&o), kiln_image_free(&o2);
        kiln_image_free(&s);
    }
    /* a 90 degree rotation is an exact pixel permutation: dst(x, y) = src(y, h - 1 - x) */
    s = random_image(6, 4, 3, 0);
    const float rot[6] = {0, -1, 3, 1, 0, 0};
    st = kiln_affine_from_matrix(rot, &a);
    st = st ? st : kiln_warp_affine(&s, &a, 4, 6, 0, &o);
    bad = 0;
    for (int y = 0; !st && y < 6; y++)
        for (int x = 0; x < 4; x++) bad += px(&o, x, y, 1) != px(&s, y, 3 - x, 1);
    CHECK(!st && bad == 0, "rotation warp: %d wrong", bad);
    if (!st) kiln_image_free(&o);
    kiln_image_free(&s);

    /* fit geometry: source centre -> destination centre, inverse consistent */
    a = kiln_affine_fit(1920, 1080, 640, 640);
    double x, y, bx, by;
    apply(a.fwd, 959.5, 539.5, &x, &y);
    CHECK(fabs(x - 319.5) < 1e-3 && fabs(y - 319.5) < 1e-3, "fit maps centre to centre: %g %g", x, y);
    apply(a.fwd, -0.5, -0.5, &x, &y); /* the top-left corner of the source */
    CHECK(fabs(x + 0.5) < 1e-3 && fabs(y - (320 - 180 - 0.5)) < 1e-3, "fit corner: %g %g", x, y);
    bad = 0;
    for (int i = 0; i < 200; i++) {
        float m[6];
        for (int k = 0; k < 6; k++) m[k] = (float)((int)(rnd() % 2001) - 1000) / 100.f;
        if (fabsf(m[0] * m[4] - m[1] * m[3]) < 0.5f) continue;
        st = kiln_affine_from_matrix(m, &a);
        if (st) {
            bad++;
            continue;
        }
        double px0 = (double)(rnd() % 1000), py0 = (double)(rnd() % 1000);
        apply(a.fwd, px0, py0, &x, &y);
        apply(a.inv, x, y, &bx, &by);
        if (fabs(bx - px0) > 1e-2 * (1 + fabs(px0)) || fabs(by - py0) > 1e-2 * (1 + fabs(py0))) bad++;
    }
    CHECK(bad == 0, "inverse round trips: %d bad", bad);
    const float sing[6] = {1, 2, 3, 2, 4, 6};
    CHECK(kiln_affine_from_matrix(sing, &a) == KILN_ERR_INVALID_ARGUMENT, "singular matrix rejected");
    const float nanm[6] = {NAN, 0, 0, 0, 1, 0};
    CHECK(kiln_affine_from_matrix(nanm, &a) == KILN_ERR_INVALID_ARGUMENT, "NaN matrix rejected");
    /* a matrix sending everything far away gives a border-only image, no crash */
    const float far[6] = {1e-30f, 0, 0, 0, 1e-30f, 0};
    s = random_image(4, 4, 1, 0);
    if (!kiln_affine_from_matrix(far, &a) && !kiln_warp_affine(&s, &a, 8, 8, 3, &o)) {
        CHECK(px(&o, 7, 7, 0) == 3, "far warp gives border");
        kiln_image_free(&o);
    } else {
        CHECK(1, "far matrix rejected");
    }
    kiln_image_free(&s);
}

/* ---- crop / swap ------------------------------------------------------------------------ */

static void test_crop_swap(void)
{
    kiln_image s = random_image(10, 7, 3, 0), o;
    kiln_status st = kiln_image_center_crop(&s, 5, 4, &o);
    /* offsets: round(5 / 2) = 2 (half even), round(3 / 2) = 2 */
    CHECK(!st && px(&o, 0, 0, 0) == px(&s, 2, 2, 0) && px(&o, 4, 3, 2) == px(&s, 6, 5, 2), "center crop smaller");
    if (!st) kiln_image_free(&o);
    st = kiln_image_center_crop(&s, 15, 10, &o); /* pads (15-10)//2 = 2 left, (10-7)//2 = 1 top */
    CHECK(!st && px(&o, 0, 0, 0) == 0 && px(&o, 1, 5, 1) == 0 && px(&o, 2, 1, 1) == px(&s, 0, 0, 1) &&
              px(&o, 11, 7, 2) == px(&s, 9, 6, 2) && px(&o, 12, 7, 2) == 0 && px(&o, 11, 8, 0) == 0,
          "center crop larger pads with zeros");
    if (!st) kiln_image_free(&o);
    st = kiln_image_center_crop(&s, 20, 3, &o); /* wider but shorter */
    CHECK(!st && px(&o, 5, 1, 0) == px(&s, 0, 3, 0) && px(&o, 4, 1, 0) == 0, "center crop mixed");
    if (!st) kiln_image_free(&o);
    CHECK(kiln_image_center_crop(&s, 0, 3, &o) == KILN_ERR_INVALID_ARGUMENT, "crop 0 rejected");

    kiln_image c;
    kiln_image_create(10, 7, 3, &c);
    memcpy(c.data, s.data, (size_t)10 * 7 * 3);
    kiln_image_swap_rb(&c);
    CHECK(px(&c, 3, 4, 0) == px(&s, 3, 4, 2) && px(&c, 3, 4, 2) == px(&s, 3, 4, 0) && px(&c, 3, 4, 1) == px(&s, 3, 4, 1),
          "swap_rb");
    kiln_image_swap_rb(&c);
    CHECK(!memcmp(c.data, s.data, (size_t)10 * 7 * 3), "swap_rb twice");
    kiln_image_free(&c);
    kiln_image_free(&s);
    CHECK(kiln_image_create(0, 3, 3, &c) == KILN_ERR_INVALID_ARGUMENT, "create 0 width rejected");
    CHECK(kiln_image_create(3, 3, 2, &c) == KILN_ERR_INVALID_ARGUMENT, "create 2 channels rejected");
    CHECK(kiln_image_create(1 << 30, 1 << 30, 3, &c) != KILN_OK, "create huge rejected");
}

int main(void)
{
    char tmpl[] = "/tmp/kiln_vision_XXXXXX";
    const char *dir = mkdtemp(tmpl);
    if (!dir) {
        printf("mkdtemp failed\n0 passed, 1 failed\n");
        return 1;
    }
    test_png_fixtures();
    test_jpeg_fixtures();
    test_roundtrip(dir);
    test_corrupt(dir);
    test_png_bomb();
    test_resize();
    test_letterbox_math();
    test_letterbox_fused();
    test_letterbox_sweep();
    test_to_tensor();
    test_warp();
    test_crop_swap();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
