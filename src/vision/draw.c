/* draw.c — in-place drawing on 8-bit images for visualising results: rectangles, bitmap
 * text (font8x8.h) and detections with captions. Everything is clipped to the image. */
#include "core/core.h"
#include "vision/font8x8.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Twenty well-separated colours, indexed by class id modulo 20. */
static const uint8_t vision_palette[20][3] = {
    {230, 25, 75},   {60, 180, 75},   {255, 200, 25},  {0, 130, 200},  {245, 130, 48},
    {145, 30, 180},  {70, 220, 220},  {240, 50, 230},  {170, 210, 60}, {250, 150, 170},
    {0, 128, 128},   {200, 150, 255}, {150, 90, 40},   {255, 240, 150}, {128, 0, 0},
    {120, 255, 180}, {128, 128, 0},   {255, 180, 130}, {0, 0, 128},    {128, 128, 128},
};

static int draw_image_ok(const kiln_image *img)
{
    if (!img || !img->data || img->width <= 0 || img->height <= 0) return 0;
    if (img->channels != 1 && img->channels != 3 && img->channels != 4) return 0;
    return (int64_t)img->stride >= (int64_t)img->width * img->channels;
}

/* The pixel value for a colour: gray images get its luma (BT.601), RGBA full alpha. */
static void draw_pixel_value(const kiln_image *img, const uint8_t rgb[3], uint8_t px[4])
{
    if (img->channels == 1) {
        px[0] = (uint8_t)((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] + 500) / 1000);
    } else {
        px[0] = rgb[0];
        px[1] = rgb[1];
        px[2] = rgb[2];
        px[3] = 255;
    }
}

/* Fill the inclusive rectangle [x1, x2] x [y1, y2] after clipping; corners in any order.
 * int64 so that huge or extreme coordinates cannot overflow. */
static void draw_fill(kiln_image *img, int64_t x1, int64_t y1, int64_t x2, int64_t y2, const uint8_t px[4])
{
    if (x1 > x2) { int64_t t = x1; x1 = x2; x2 = t; }
    if (y1 > y2) { int64_t t = y1; y1 = y2; y2 = t; }
    if (x2 < 0 || y2 < 0 || x1 >= img->width || y1 >= img->height) return;
    if (x1 < 0) x1 = 0;
    if (y1 < 0) y1 = 0;
    if (x2 >= img->width) x2 = img->width - 1;
    if (y2 >= img->height) y2 = img->height - 1;
    int ch = img->channels;
    for (int64_t y = y1; y <= y2; y++) {
        uint8_t *p = img->data + (size_t)y * (size_t)img->stride + (size_t)x1 * (size_t)ch;
        for (int64_t x = x1; x <= x2; x++, p += ch) memcpy(p, px, (size_t)ch);
    }
}

/* Outline of the inclusive box, `t` pixels thick, growing inwards. */
static void draw_outline(kiln_image *img, int64_t x1, int64_t y1, int64_t x2, int64_t y2, const uint8_t px[4],
                         int64_t t)
{
    if (x1 > x2) { int64_t s = x1; x1 = x2; x2 = s; }
    if (y1 > y2) { int64_t s = y1; y1 = y2; y2 = s; }
    if (t < 1) t = 1;
    if (2 * t >= x2 - x1 + 1 || 2 * t >= y2 - y1 + 1) { /* the borders meet: solid */
        draw_fill(img, x1, y1, x2, y2, px);
        return;
    }
    draw_fill(img, x1, y1, x2, y1 + t - 1, px);         /* top */
    draw_fill(img, x1, y2 - t + 1, x2, y2, px);         /* bottom */
    draw_fill(img, x1, y1 + t, x1 + t - 1, y2 - t, px); /* left */
    draw_fill(img, x2 - t + 1, y1 + t, x2, y2 - t, px); /* right */
}

KILN_API void kiln_draw_fill_rect(kiln_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3])
{
    if (!draw_image_ok(img) || !rgb) return;
    uint8_t px[4];
    draw_pixel_value(img, rgb, px);
    draw_fill(img, x1, y1, x2, y2, px);
}

KILN_API void kiln_draw_rect(kiln_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3], int thickness)
{
    if (!draw_image_ok(img) || !rgb) return;
    uint8_t px[4];
    draw_pixel_value(img, rgb, px);
    draw_outline(img, x1, y1, x2, y2, px, thickness);
}

/* Glyph for a byte: printable ASCII as itself, anything else (control, UTF-8) as '?'. */
static const uint8_t *draw_glyph(unsigned char c)
{
    if (c < VISION_FONT_FIRST || c > VISION_FONT_LAST) c = '?';
    return vision_font8x8[c - VISION_FONT_FIRST];
}

/* Text with its top-left corner at (x, y); '\n' starts a new line 8 * scale lower. */
static void draw_text(kiln_image *img, int64_t x, int64_t y, const char *text, const uint8_t px[4], int64_t scale)
{
    int64_t cx = x;
    for (const unsigned char *s = (const unsigned char *)text; *s && y < img->height; s++) {
        if (*s == '\n') {
            cx = x;
            y += 8 * scale;
            continue;
        }
        /* Skip whole glyphs outside the image (long captions running off an edge). */
        if (cx < img->width && cx + 8 * scale > 0 && y < img->height && y + 8 * scale > 0) {
            const uint8_t *g = draw_glyph(*s);
            for (int r = 0; r < 8; r++) {
                for (int col = 0; col < 8; col++) {
                    if (!(g[r] & (0x80 >> col))) continue;
                    int64_t px0 = cx + col * scale, py0 = y + r * scale;
                    draw_fill(img, px0, py0, px0 + scale - 1, py0 + scale - 1, px);
                }
            }
        }
        cx += 8 * scale;
    }
}

KILN_API void kiln_draw_text(kiln_image *img, int x, int y, const char *text, const uint8_t rgb[3], int scale)
{
    if (!draw_image_ok(img) || !text || !rgb) return;
    if (scale < 1) scale = 1;
    if (scale > 1024) scale = 1024; /* more is larger than any image; keeps sums in range */
    uint8_t px[4];
    draw_pixel_value(img, rgb, px);
    draw_text(img, x, y, text, px, scale);
}

/* Pixel coordinate of a box edge; NaN and far-away values are clamped before converting
 * so the cast is defined. */
static int64_t draw_coord(float v, int extent)
{
    float lo = -(float)extent - 16.0f, hi = 2.0f * (float)extent + 16.0f;
    if (!(v > lo)) return (int64_t)lo;
    if (v > hi) return (int64_t)hi;
    return (int64_t)floorf(v + 0.5f);
}

KILN_API void kiln_draw_detections(kiln_image *img, const kiln_detection *dets, int n, const char *const *labels,
                                   int n_labels)
{
    if (!draw_image_ok(img) || !dets || n <= 0) return;
    /* Line width grows with the image (~0.3% of its mean side, at least 2). */
    int64_t lw = (int64_t)lround((img->width + img->height) / 2.0 * 0.003);
    if (lw < 2) lw = 2;
    int64_t scale = lw / 2 < 1 ? 1 : lw / 2;
    int64_t pad = scale; /* caption box margin around the text */
    for (int i = 0; i < n; i++) {
        const kiln_detection *d = &dets[i];
        if (!isfinite(d->x1) || !isfinite(d->y1) || !isfinite(d->x2) || !isfinite(d->y2)) continue;
        int cls = d->class_id;
        const uint8_t *rgb = vision_palette[(unsigned)cls % 20u];
        uint8_t px[4];
        draw_pixel_value(img, rgb, px);
        int64_t x1 = draw_coord(d->x1, img->width), y1 = draw_coord(d->y1, img->height);
        int64_t x2 = draw_coord(d->x2, img->width), y2 = draw_coord(d->y2, img->height);
        if (x1 > x2) { int64_t t = x1; x1 = x2; x2 = t; }
        if (y1 > y2) { int64_t t = y1; y1 = y2; y2 = t; }
        draw_outline(img, x1, y1, x2, y2, px, lw);

        char caption[96];
        const char *name = labels && cls >= 0 && cls < n_labels && labels[cls] ? labels[cls] : NULL;
        float sc = d->score == d->score ? d->score : 0.0f;
        if (name)
            snprintf(caption, sizeof caption, "%s %.2f", name, (double)sc);
        else
            snprintf(caption, sizeof caption, "%d %.2f", cls, (double)sc);
        int64_t tw = (int64_t)strlen(caption) * 8 * scale, th = 8 * scale;
        int64_t bw = tw + 2 * pad, bh = th + 2 * pad;
        /* Caption above the box when it fits, else just inside its top edge. */
        int64_t by = y1 - bh >= 0 ? y1 - bh : y1;
        int64_t bx = x1;
        if (bx + bw > img->width) bx = img->width - bw;
        if (bx < 0) bx = 0;
        draw_fill(img, bx, by, bx + bw - 1, by + bh - 1, px);
        /* White or black text, whichever contrasts more with the caption colour. */
        int luma = (299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2]) / 1000;
        static const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
        uint8_t tp[4];
        draw_pixel_value(img, luma > 150 ? black : white, tp);
        draw_text(img, bx + pad, by + pad, caption, tp, scale);
    }
}
