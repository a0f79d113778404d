/* test_vision_post.c — unit tests of vision post-processing and drawing: YOLO decode + NMS
 * edge cases, agreement with the NumPy reference on real model outputs (tests/vision/data,
 * written by tests/vision/check_yolo_decode.py), box mapping, top-k, clipped drawing. */
#include "kiln.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                         \
        if (cond) {                                                                              \
            n_pass++;                                                                            \
        } else {                                                                                 \
            n_fail++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                          \
            printf(__VA_ARGS__);                                                                 \
            printf("\n");                                                                        \
        }                                                                                        \
    } while (0)

static unsigned rng_state = 12345u;
static float frand(void) /* [0, 1) */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 16777216.0f;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* ---- synthetic outputs -------------------------------------------------------------- */

/* A box in both layouts. V5 row: cx cy w h obj cls[nc]; V8 column: cx cy w h cls[nc]. */
static void put_v5(float *out, int attrs, int i, float cx, float cy, float w, float h, float obj, int cls, float p)
{
    float *r = out + (size_t)i * attrs;
    r[0] = cx, r[1] = cy, r[2] = w, r[3] = h, r[4] = obj;
    for (int k = 5; k < attrs; k++) r[k] = 0.0f;
    r[5 + cls] = p;
}

static void put_v8(float *out, int attrs, int boxes, int i, float cx, float cy, float w, float h, int cls, float p)
{
    out[i] = cx, out[boxes + i] = cy, out[2 * boxes + i] = w, out[3 * boxes + i] = h;
    for (int k = 4; k < attrs; k++) out[(size_t)k * boxes + i] = 0.0f;
    out[(size_t)(4 + cls) * boxes + i] = p;
}

static kiln_detect_options opts(float conf, float iou, int agnostic, int max_det)
{
    kiln_detect_options o = kiln_detect_default();
    o.conf_threshold = conf;
    o.iou_threshold = iou;
    o.agnostic = agnostic;
    o.max_detections = max_det;
    return o;
}

static void test_defaults(void)
{
    kiln_detect_options o = kiln_detect_default();
    CHECK(o.conf_threshold == 0.25f && o.iou_threshold == 0.45f && o.max_detections == 300 && o.agnostic == 0 &&
              o.max_candidates == 30000,
          "defaults");
}

static void test_no_detections(void)
{
    enum { B = 100, A = 5 + 3 };
    float out[B * A];
    memset(out, 0, sizeof out);
    kiln_detect_options o = kiln_detect_default();
    kiln_detection *d = (kiln_detection *)&o; /* must be overwritten */
    int n = -1;
    CHECK(kiln_yolo_detect(out, B, A, KILN_YOLO_V5, &o, &d, &n) == KILN_OK && n == 0 && d == NULL, "v5 zeros: n %d", n);
    n = -1;
    CHECK(kiln_yolo_detect(out, A - 1, B, KILN_YOLO_V8, &o, &d, &n) == KILN_OK && n == 0 && d == NULL, "v8 zeros");
    n = -1;
    CHECK(kiln_yolo_detect(NULL, 0, A, KILN_YOLO_V5, &o, &d, &n) == KILN_OK && n == 0 && d == NULL, "0 boxes");
    n = -1;
    CHECK(kiln_yolo_detect(NULL, A, 0, KILN_YOLO_V8, NULL, &d, &n) == KILN_OK && n == 0, "0 boxes v8, NULL opts");
    int nk = -1;
    CHECK(kiln_nms(NULL, 0, 0.5f, 0, 10, &nk) == KILN_OK && nk == 0, "nms of nothing");
}

static void test_all_overlapping(void)
{
    enum { B = 60, NC = 3, A = 5 + NC };
    float out[B * A];
    for (int i = 0; i < B; i++) /* jittered copies of one box, classes 0 and 2 */
        put_v5(out, A, i, 100 + frand(), 100 + frand(), 50 + frand(), 40 + frand(), 0.9f, (i % 2) * 2,
               0.5f + 0.4f * frand());
    kiln_detect_options o = opts(0.25f, 0.45f, 0, 300);
    kiln_detection *d = NULL;
    int n = 0;
    CHECK(kiln_yolo_detect(out, B, A, KILN_YOLO_V5, &o, &d, &n) == KILN_OK && n == 2, "aware: %d survivors", n);
    if (n == 2) {
        CHECK(d[0].class_id != d[1].class_id && d[0].score >= d[1].score, "one per class, sorted");
        /* The survivor of each class is that class's best box. */
        for (int c = 0; c <= 2; c += 2) {
            float best = 0;
            for (int i = 0; i < B; i++)
                if (out[i * A + 5 + c] * 0.9f > best) best = out[i * A + 5 + c] * 0.9f;
            int found = (d[0].class_id == c && d[0].score == best) || (d[1].class_id == c && d[1].score == best);
            CHECK(found, "class %d survivor is its best box", c);
        }
    }
    free(d);
    o.agnostic = 1;
    CHECK(kiln_yolo_detect(out, B, A, KILN_YOLO_V5, &o, &d, &n) == KILN_OK && n == 1, "agnostic: %d survivors", n);
    free(d);
    /* iou_threshold 1: nothing can exceed it, every box survives. */
    o = opts(0.25f, 1.0f, 1, 300);
    CHECK(kiln_yolo_detect(out, B, A, KILN_YOLO_V5, &o, &d, &n) == KILN_OK && n == B, "iou 1: %d", n);
    free(d);
}

static void test_aware_vs_agnostic(void)
{
    enum { B = 3, NC = 4, A = 4 + NC };
    float out[A * B];
    put_v8(out, A, B, 0, 50, 50, 20, 20, 1, 0.9f);
    put_v8(out, A, B, 1, 51, 50, 20, 20, 3, 0.8f); /* overlaps box 0, other class */
    put_v8(out, A, B, 2, 52, 51, 20, 20, 1, 0.7f); /* overlaps box 0, same class */
    kiln_detection *d = NULL;
    int n = 0;
    kiln_detect_options o = opts(0.25f, 0.45f, 0, 300);
    CHECK(kiln_yolo_detect(out, A, B, KILN_YOLO_V8, &o, &d, &n) == KILN_OK && n == 2, "aware n %d", n);
    if (n == 2) CHECK(d[0].class_id == 1 && d[1].class_id == 3 && d[1].score == 0.8f, "aware classes");
    free(d);
    o.agnostic = 1;
    CHECK(kiln_yolo_detect(out, A, B, KILN_YOLO_V8, &o, &d, &n) == KILN_OK && n == 1, "agnostic n %d", n);
    if (n == 1) CHECK(d[0].class_id == 1 && d[0].score == 0.9f, "agnostic keeps the best");
    free(d);
    /* The xyxy conversion. */
    o = opts(0.85f, 0.45f, 0, 300);
    CHECK(kiln_yolo_detect(out, A, B, KILN_YOLO_V8, &o, &d, &n) == KILN_OK && n == 1, "n %d", n);
    if (n == 1) CHECK(d[0].x1 == 40 && d[0].y1 == 40 && d[0].x2 == 60 && d[0].y2 == 60, "xywh -> xyxy");
    free(d);
}

static void test_max_detections(void)
{
    enum { B = 100, A = 5 + 2 };
    float out[B * A];
    for (int i = 0; i < B; i++) put_v5(out, A, i, 10.0f + 30 * (i % 10), 10.0f + 30 * (i / 10), 20, 20, 1.0f, i % 2,
                                       0.3f + 0.005f * i);
    kiln_detection *d = NULL;
    int n = 0;
    kiln_detect_options o = opts(0.25f, 0.45f, 0, 10);
    CHECK(kiln_yolo_detect(out, B, A, KILN_YOLO_V5, &o, &d, &n) == KILN_OK && n == 10, "cap: n %d", n);
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= d[i].score == 0.3f + 0.005f * (B - 1 - i);
    CHECK(ok, "cap keeps the 10 best, best first");
    free(d);
    /* max_candidates keeps only the best candidates for NMS. */
    o = opts(0.25f, 0.45f, 0, 300);
    o.max_candidates = 5;
    CHECK(kiln_yolo_detect(out, B, A, KILN_YOLO_V5, &o, &d, &n) == KILN_OK && n == 5 && d[4].score == 0.3f + 0.005f * 95,
          "max_candidates: n %d", n);
    free(d);
}

static void test_threshold_boundary(void)
{
    enum { B = 4, A = 5 + 1 };
    float out[B * A];
    put_v5(out, A, 0, 10, 10, 5, 5, 1.0f, 0, 0.5f);        /* score == conf: dropped */
    put_v5(out, A, 1, 30, 10, 5, 5, 1.0f, 0, 0.50000006f); /* just above: kept */
    put_v5(out, A, 2, 50, 10, 5, 5, 0.5f, 0, 1.0f);        /* obj == conf: dropped before scoring */
    put_v5(out, A, 3, 70, 10, 5, 5, 0.6f, 0, 0.8f);        /* obj > conf but obj*cls = 0.48 <= conf */
    kiln_detection *d = NULL;
    int n = 0;
    kiln_detect_options o = opts(0.5f, 0.45f, 0, 300);
    CHECK(kiln_yolo_detect(out, B, A, KILN_YOLO_V5, &o, &d, &n) == KILN_OK && n == 1, "boundary v5: n %d", n);
    if (n == 1) CHECK(d[0].x1 == 27.5f, "the kept one is box 1");
    free(d);
    float v8[(4 + 1) * 2];
    put_v8(v8, 5, 2, 0, 10, 10, 5, 5, 0, 0.5f);
    put_v8(v8, 5, 2, 1, 30, 10, 5, 5, 0, 0.50000006f);
    CHECK(kiln_yolo_detect(v8, 5, 2, KILN_YOLO_V8, &o, &d, &n) == KILN_OK && n == 1 && d[0].x1 == 27.5f,
          "boundary v8: n %d", n);
    free(d);
    /* conf 0 keeps every positive score but not a zero one. */
    put_v8(v8, 5, 2, 0, 10, 10, 5, 5, 0, 0.0f);
    o = opts(0.0f, 0.45f, 0, 300);
    CHECK(kiln_yolo_detect(v8, 5, 2, KILN_YOLO_V8, &o, &d, &n) == KILN_OK && n == 1, "conf 0: n %d", n);
    free(d);
}

static void test_ties(void)
{
    enum { B = 6, A = 4 + 2 };
    float out[A * B];
    /* Three disjoint boxes with equal scores: input order. */
    for (int i = 0; i < 3; i++) put_v8(out, A, B, i, 20.0f + 50 * i, 20, 10, 10, 0, 0.7f);
    /* Three identical-score boxes on one spot: the first survives. */
    for (int i = 3; i < 6; i++) put_v8(out, A, B, i, 300.0f + (float)i, 300, 40, 40, 1, 0.6f);
    kiln_detection *d = NULL;
    int n = 0;
    kiln_detect_options o = opts(0.25f, 0.45f, 0, 300);
    CHECK(kiln_yolo_detect(out, A, B, KILN_YOLO_V8, &o, &d, &n) == KILN_OK && n == 4, "ties n %d", n);
    if (n == 4) {
        CHECK(d[0].x1 == 15 && d[1].x1 == 65 && d[2].x1 == 115, "equal scores keep input order");
        CHECK(d[3].x1 == 283, "first of identical overlapping boxes survives (x1 %g)", (double)d[3].x1);
    }
    free(d);
    /* Class ties within a box: the lower class wins. */
    float v5[1 * 8] = {10, 10, 4, 4, 1.0f, 0.6f, 0.9f, 0.9f};
    CHECK(kiln_yolo_detect(v5, 1, 8, KILN_YOLO_V5, &o, &d, &n) == KILN_OK && n == 1 && d[0].class_id == 1,
          "class tie -> lower class");
    free(d);
}

static void test_degenerate(void)
{
    enum { B = 8, A = 5 + 2 };
    float out[B * A];
    put_v5(out, A, 0, 10, 10, 0, 0, 0.9f, 0, 0.9f);   /* zero area */
    put_v5(out, A, 1, 10, 10, 0, 0, 0.9f, 0, 0.8f);   /* same zero-area box: no IoU, kept */
    put_v5(out, A, 2, 50, 50, 10, 10, 0.9f, 0, NAN);  /* NaN class score: skipped */
    put_v5(out, A, 3, 50, 50, 10, 10, NAN, 0, 0.9f);  /* NaN objectness: skipped */
    put_v5(out, A, 4, NAN, 50, 10, 10, 0.9f, 1, 0.9f); /* NaN coordinate: skipped */
    put_v5(out, A, 5, 50, 50, INFINITY, 10, 0.9f, 1, 0.9f);
    put_v5(out, A, 6, 90, 90, -5, 10, 0.9f, 1, 0.7f); /* inverted: empty, kept */
    put_v5(out, A, 7, 90, 90, 10, 10, 0.9f, 1, 0.6f); /* not suppressed by the empty box */
    out[2 * A + 6] = 0.95f;                            /* NaN in class 0 of row 2 still poisons it */
    kiln_detection *d = NULL;
    int n = 0;
    kiln_detect_options o = opts(0.25f, 0.45f, 0, 300);
    CHECK(kiln_yolo_detect(out, B, A, KILN_YOLO_V5, &o, &d, &n) == KILN_OK && n == 4, "degenerate: n %d", n);
    free(d);
    /* Same in V8 layout: a NaN class score anywhere drops the box. */
    float v8[(4 + 3) * 2];
    put_v8(v8, 7, 2, 0, 10, 10, 5, 5, 0, 0.9f);
    v8[6 * 2 + 0] = NAN;
    put_v8(v8, 7, 2, 1, 30, 10, 5, 5, 2, 0.9f);
    v8[4 * 2 + 1] = NAN;
    CHECK(kiln_yolo_detect(v8, 7, 2, KILN_YOLO_V8, &o, &d, &n) == KILN_OK && n == 0, "v8 NaN: n %d", n);
    free(d);
}

static void test_bad_args(void)
{
    float out[12] = {0};
    kiln_detection *d = NULL;
    int n = 0;
    kiln_detect_options o = kiln_detect_default();
    CHECK(kiln_yolo_detect(out, 2, 5, KILN_YOLO_V5, &o, &d, &n) == KILN_ERR_SHAPE, "v5 needs >= 6 attrs");
    CHECK(strstr(kiln_last_error(), "5 attributes") != NULL, "message names the count: %s", kiln_last_error());
    CHECK(kiln_yolo_detect(out, 4, 3, KILN_YOLO_V8, &o, &d, &n) == KILN_ERR_SHAPE, "v8 needs >= 5 attrs");
    CHECK(kiln_yolo_detect(out, -1, 6, KILN_YOLO_V5, &o, &d, &n) == KILN_ERR_SHAPE, "negative dim");
    CHECK(kiln_yolo_detect(NULL, 2, 6, KILN_YOLO_V5, &o, &d, &n) == KILN_ERR_INVALID_ARGUMENT, "NULL output");
    CHECK(kiln_yolo_detect(out, 2, 6, KILN_YOLO_V5, &o, NULL, &n) == KILN_ERR_INVALID_ARGUMENT, "NULL dets");
    CHECK(kiln_yolo_detect(out, 2, 6, (kiln_yolo_format)7, &o, &d, &n) == KILN_ERR_INVALID_ARGUMENT, "format");
    CHECK(kiln_yolo_detect(out, (int64_t)1 << 40, 6, KILN_YOLO_V5, &o, &d, &n) == KILN_ERR_SHAPE, "huge dims");
    o.conf_threshold = NAN;
    CHECK(kiln_yolo_detect(out, 2, 6, KILN_YOLO_V5, &o, &d, &n) == KILN_ERR_INVALID_ARGUMENT, "NaN conf");
    o = kiln_detect_default();
    o.iou_threshold = 1.5f;
    CHECK(kiln_yolo_detect(out, 2, 6, KILN_YOLO_V5, &o, &d, &n) == KILN_ERR_INVALID_ARGUMENT, "iou 1.5");
    o = kiln_detect_default();
    o.max_detections = 0;
    CHECK(kiln_yolo_detect(out, 2, 6, KILN_YOLO_V5, &o, &d, &n) == KILN_ERR_INVALID_ARGUMENT, "max_det 0");
    o = kiln_detect_default();
    o.max_candidates = -3;
    CHECK(kiln_yolo_detect(out, 2, 6, KILN_YOLO_V5, &o, &d, &n) == KILN_ERR_INVALID_ARGUMENT, "max_cand < 0");
    int nk;
    CHECK(kiln_nms(NULL, 3, 0.5f, 0, 0, &nk) == KILN_ERR_INVALID_ARGUMENT, "nms NULL dets");
    CHECK(kiln_nms(NULL, -1, 0.5f, 0, 0, &nk) == KILN_ERR_INVALID_ARGUMENT, "nms n < 0");
    kiln_detection one = {0, 0, 1, 1, 0.5f, 0};
    CHECK(kiln_nms(&one, 1, -0.1f, 0, 0, &nk) == KILN_ERR_INVALID_ARGUMENT, "nms iou < 0");
    CHECK(kiln_nms(&one, 1, 0.5f, 0, 0, NULL) == KILN_ERR_INVALID_ARGUMENT, "nms NULL n_keep");
}

/* Same boxes written in both layouts give the same detections (obj = 1 makes the V5
 * score obj * cls equal to the V8 class score exactly). */
static void test_v5_v8_equivalence(void)
{
    enum { B = 700, NC = 5 };
    float *v5 = malloc(sizeof(float) * B * (5 + NC)), *v8 = malloc(sizeof(float) * B * (4 + NC));
    for (int i = 0; i < B; i++) {
        float cx = 320 * frand(), cy = 320 * frand(), w = 10 + 60 * frand(), h = 10 + 60 * frand();
        float *r = v5 + (size_t)i * (5 + NC);
        r[0] = cx, r[1] = cy, r[2] = w, r[3] = h, r[4] = 1.0f;
        v8[i] = cx, v8[B + i] = cy, v8[2 * B + i] = w, v8[3 * B + i] = h;
        for (int k = 0; k < NC; k++) {
            float p = frand();
            r[5 + k] = p;
            v8[(4 + k) * B + i] = p;
        }
    }
    for (int agn = 0; agn <= 1; agn++) {
        kiln_detection *a = NULL, *b = NULL;
        int na = 0, nb = 0;
        kiln_detect_options o = opts(0.5f, 0.45f, agn, 300);
        kiln_status s1 = kiln_yolo_detect(v5, B, 5 + NC, KILN_YOLO_V5, &o, &a, &na);
        kiln_status s2 = kiln_yolo_detect(v8, 4 + NC, B, KILN_YOLO_V8, &o, &b, &nb);
        CHECK(s1 == KILN_OK && s2 == KILN_OK && na == nb && na > 20, "agnostic %d: %d vs %d", agn, na, nb);
        CHECK(na == nb && !memcmp(a, b, sizeof *a * (size_t)na), "agnostic %d: same detections", agn);
        /* NMS invariants: sorted, and no two kept boxes (same class unless agnostic) overlap. */
        int ok = 1;
        for (int i = 0; i < na; i++) {
            if (i && a[i].score > a[i - 1].score) ok = 0;
            for (int j = 0; j < i; j++) {
                if (!agn && a[i].class_id != a[j].class_id) continue;
                float iw = fminf(a[i].x2, a[j].x2) - fmaxf(a[i].x1, a[j].x1);
                float ih = fminf(a[i].y2, a[j].y2) - fmaxf(a[i].y1, a[j].y1);
                if (iw <= 0 || ih <= 0) continue;
                float in = iw * ih, ua = (a[i].x2 - a[i].x1) * (a[i].y2 - a[i].y1) +
                                         (a[j].x2 - a[j].x1) * (a[j].y2 - a[j].y1) - in;
                if (in / ua > 0.45f + 1e-6f) ok = 0;
            }
        }
        CHECK(ok, "agnostic %d: sorted and no kept pair overlaps above the threshold", agn);
        /* kiln_nms on the raw candidates gives the same result. */
        kiln_detection *c = malloc(sizeof *c * B);
        int nc = 0;
        for (int i = 0; i < B; i++) {
            const float *r = v5 + (size_t)i * (5 + NC);
            int best = 0;
            for (int k = 1; k < NC; k++)
                if (r[5 + k] > r[5 + best]) best = k;
            if (!(r[5 + best] > 0.5f)) continue;
            kiln_detection t = {r[0] - r[2] / 2, r[1] - r[3] / 2, r[0] + r[2] / 2, r[1] + r[3] / 2, r[5 + best],
                                best * 7 - 3}; /* class ids need not be dense */
            c[nc++] = t;
        }
        int nk = 0;
        CHECK(kiln_nms(c, nc, 0.45f, agn, 300, &nk) == KILN_OK && nk == na, "kiln_nms: %d vs %d", nk, na);
        int same = nk == na;
        for (int i = 0; same && i < nk; i++)
            same = c[i].x1 == a[i].x1 && c[i].y2 == a[i].y2 && c[i].score == a[i].score &&
                   c[i].class_id == a[i].class_id * 7 - 3;
        CHECK(same, "kiln_nms agrees with kiln_yolo_detect (agnostic %d)", agn);
        free(c);
        free(a);
        free(b);
    }
    free(v5);
    free(v8);
}

static void test_nms_direct(void)
{
    kiln_detection d[6] = {
        {0, 0, 10, 10, 0.5f, -1000000}, {1, 0, 11, 10, 0.6f, -1000000}, /* overlap, class -1e6 */
        {0, 0, 10, 10, NAN, 5},          {0, 0, 10, 10, 0.4f, 2000000000},
        {100, 100, 110, 110, 0.9f, 5},   {101, 100, 111, 110, 0.2f, 5},
    };
    int nk = 0;
    CHECK(kiln_nms(d, 6, 0.5f, 0, 0, &nk) == KILN_OK && nk == 3, "nms: n %d", nk);
    if (nk == 3)
        CHECK(d[0].score == 0.9f && d[1].score == 0.6f && d[2].score == 0.4f && d[2].class_id == 2000000000,
              "nms result order");
    kiln_detection e[3] = {{0, 0, 10, 10, 0.3f, 0}, {50, 0, 60, 10, 0.2f, 1}, {80, 0, 90, 10, 0.1f, 0}};
    CHECK(kiln_nms(e, 3, 0.5f, 1, 2, &nk) == KILN_OK && nk == 2 && e[1].score == 0.2f, "max_keep 2");
}

/* Brute force: the obvious O(n^2) greedy NMS over V8-layout data, against the fast path
 * on random outputs with clustered boxes, quantized (tied) scores and random settings. */
static void test_random_vs_bruteforce(void)
{
    int mismatches = 0, total_dets = 0;
    for (int trial = 0; trial < 60; trial++) {
        int B = (int)(frand() * 400), NC = 1 + (int)(frand() * 6), A = 4 + NC;
        float *out = malloc(sizeof(float) * (size_t)(B ? B : 1) * A);
        for (int i = 0; i < B; i++) {
            float cx = 20.0f * (int)(frand() * 8) + 6 * frand(), cy = 20.0f * (int)(frand() * 8) + 6 * frand();
            out[i] = cx, out[B + i] = cy, out[2 * B + i] = 5 + 30 * frand(), out[3 * B + i] = 5 + 30 * frand();
            for (int k = 0; k < NC; k++) out[(4 + k) * B + i] = (float)(int)(frand() * 16) / 16.0f;
        }
        static const float ious[5] = {0.0f, 0.3f, 0.45f, 0.7f, 1.0f};
        kiln_detect_options o = opts((float)(int)(frand() * 8) / 16.0f, ious[(int)(frand() * 5)], frand() < 0.5f,
                                     1 + (int)(frand() * 60));
        o.max_candidates = frand() < 0.3f ? 1 + (int)(frand() * 100) : 30000;
        kiln_detection *d = NULL;
        int n = 0;
        kiln_status st = kiln_yolo_detect(out, A, B, KILN_YOLO_V8, &o, &d, &n);
        /* reference */
        kiln_detection *c = malloc(sizeof *c * (size_t)(B ? B : 1));
        int nc = 0;
        for (int i = 0; i < B; i++) {
            int best = 0;
            for (int k = 1; k < NC; k++)
                if (out[(4 + k) * B + i] > out[(4 + best) * B + i]) best = k;
            float sc = out[(4 + best) * B + i];
            if (!(sc > o.conf_threshold)) continue;
            float cx = out[i], cy = out[B + i], w = out[2 * B + i], h = out[3 * B + i];
            kiln_detection t = {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, sc, best};
            int j = nc++; /* stable insertion by score, descending */
            while (j > 0 && c[j - 1].score < sc) {
                c[j] = c[j - 1];
                j--;
            }
            c[j] = t;
        }
        if (nc > o.max_candidates) nc = o.max_candidates;
        kiln_detection *keep = malloc(sizeof *keep * (size_t)(nc > 0 ? (unsigned)nc : 1u));
        int nk = 0;
        for (int i = 0; i < nc && nk < o.max_detections; i++) {
            int sup = 0;
            for (int j = 0; j < nk && !sup; j++) {
                if (!o.agnostic && keep[j].class_id != c[i].class_id) continue;
                float w = fminf(c[i].x2, keep[j].x2) - fmaxf(c[i].x1, keep[j].x1);
                float h = fminf(c[i].y2, keep[j].y2) - fmaxf(c[i].y1, keep[j].y1);
                if (w <= 0 || h <= 0) continue;
                float in = w * h;
                float un = (c[i].x2 - c[i].x1) * (c[i].y2 - c[i].y1) + (keep[j].x2 - keep[j].x1) * (keep[j].y2 - keep[j].y1) - in;
                sup = in / un > o.iou_threshold;
            }
            if (!sup) keep[nk++] = c[i];
        }
        if (st != KILN_OK || n != nk || (n && memcmp(d, keep, sizeof *d * (size_t)n))) {
            mismatches++;
            if (mismatches < 4)
                printf("trial %d: B %d NC %d conf %g iou %g agn %d max_det %d max_cand %d: kiln %d, brute force %d\n",
                       trial, B, NC, (double)o.conf_threshold, (double)o.iou_threshold, o.agnostic, o.max_detections,
                       o.max_candidates, n, nk);
        }
        total_dets += nk;
        free(keep);
        free(c);
        free(d);
        free(out);
    }
    CHECK(mismatches == 0 && total_dets > 200, "random vs brute force: %d mismatching trials (%d detections)",
          mismatches, total_dets);
}

/* ---- reference data (tests/vision/data) ---------------------------------------------- */

/* Minimal .npy reader: little-endian float32, C order. Returns malloc'd data. */
static float *npy_read_f32(const char *path, int64_t *dims, int *ndim)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[10];
    float *data = NULL;
    char *hdr = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) goto out;
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) goto out;
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)b[0] << 16 | (size_t)b[1] << 24;
    }
    hdr = calloc(1, hlen + 1);
    if (!hdr || fread(hdr, 1, hlen, f) != hlen) goto out;
    if (!strstr(hdr, "'<f4'") || !strstr(hdr, "'fortran_order': False")) goto out;
    const char *s = strstr(hdr, "'shape': (");
    if (!s) goto out;
    s += 10;
    int64_t numel = 1;
    *ndim = 0;
    while (*s && *s != ')') {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s) break;
        dims[(*ndim)++] = v;
        numel *= v;
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
    data = malloc(sizeof(float) * (size_t)(numel ? numel : 1));
    if (data && fread(data, sizeof(float), (size_t)numel, f) != (size_t)numel) {
        free(data);
        data = NULL;
    }
out:
    free(hdr);
    fclose(f);
    return data;
}

/* The data directory: relative to the repo root (the usual working directory), else
 * found from this file's path. */
static void data_dir(char *buf, size_t n)
{
    snprintf(buf, n, "tests/vision/data");
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/cases.txt", buf);
    FILE *f = fopen(probe, "r");
    if (f) {
        fclose(f);
        return;
    }
    const char *me = __FILE__, *cut = strstr(me, "tests/unit/test_vision_post.c");
    if (cut) snprintf(buf, n, "%.*stests/vision/data", (int)(cut - me), me);
}

static void test_reference_data(void)
{
    char dir[1024], path[1400];
    data_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s (run from the repo root)", path);
    if (!f) return;
    char line[512];
    int n_cases = 0, n_v5 = 0, n_v8 = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char name[128], fmt[8], outf[256], reff[256];
        float conf, iou;
        int agn, max_det, max_nms;
        if (sscanf(line, "%127s %7s %255s %f %f %d %d %d %255s", name, fmt, outf, &conf, &iou, &agn, &max_det,
                   &max_nms, reff) != 9) {
            CHECK(0, "bad line in cases.txt: %s", line);
            continue;
        }
        int64_t od[8], rd[8];
        int ond = 0, rnd = 0;
        snprintf(path, sizeof path, "%s/%s", dir, outf);
        float *out = npy_read_f32(path, od, &ond);
        snprintf(path, sizeof path, "%s/%s", dir, reff);
        float *ref = npy_read_f32(path, rd, &rnd);
        CHECK(out && ref && ond == 3 && rnd == 2 && rd[1] == 6, "%s: cannot read its .npy files", name);
        if (!out || !ref || ond != 3 || rnd != 2 || rd[1] != 6) {
            free(out);
            free(ref);
            continue;
        }
        kiln_yolo_format yf = strcmp(fmt, "v5") == 0 ? KILN_YOLO_V5 : KILN_YOLO_V8;
        n_v5 += yf == KILN_YOLO_V5;
        n_v8 += yf == KILN_YOLO_V8;
        kiln_detect_options o = opts(conf, iou, agn, max_det);
        o.max_candidates = max_nms;
        kiln_detection *d = NULL;
        int n = 0;
        kiln_status st = kiln_yolo_detect(out, od[1], od[2], yf, &o, &d, &n);
        CHECK(st == KILN_OK && n == (int)rd[0], "%s: %d detections, reference %lld (%s)", name, n, (long long)rd[0],
              st ? kiln_last_error() : "ok");
        float max_err = 0;
        int cls_ok = 1;
        for (int i = 0; st == KILN_OK && i < n && i < (int)rd[0]; i++) {
            const float *r = ref + 6 * i;
            const float got[5] = {d[i].x1, d[i].y1, d[i].x2, d[i].y2, d[i].score};
            for (int k = 0; k < 5; k++) max_err = fmaxf(max_err, fabsf(got[k] - r[k]));
            cls_ok &= d[i].class_id == (int)r[5];
        }
        CHECK(max_err <= 1e-4f && cls_ok, "%s: max |kiln - ref| %g, classes %s", name, (double)max_err,
              cls_ok ? "equal" : "differ");
        n_cases++;
        free(d);
        free(out);
        free(ref);
    }
    fclose(f);
    CHECK(n_cases >= 8 && n_v5 > 0 && n_v8 > 0, "reference cases: %d (v5 %d, v8 %d)", n_cases, n_v5, n_v8);
}

/* ---- timing --------------------------------------------------------------------------- */

/* A YOLOv5s-640-like output: 25200 rows of 85, background objectness low, ~20 objects each
 * seen by a cluster of ~15 rows with obj > conf. */
static void make_v5_640(float *out, int boxes, int nc, int objects)
{
    int attrs = 5 + nc;
    for (int i = 0; i < boxes; i++) {
        float *r = out + (size_t)i * attrs;
        r[0] = 640 * frand(), r[1] = 640 * frand(), r[2] = 5 + 100 * frand(), r[3] = 5 + 100 * frand();
        r[4] = 0.02f * frand();
        for (int k = 0; k < nc; k++) r[5 + k] = 0.05f * frand();
    }
    for (int o = 0; o < objects; o++) {
        float cx = 640 * frand(), cy = 640 * frand(), w = 30 + 200 * frand(), h = 30 + 200 * frand();
        int cls = (int)(frand() * nc);
        for (int j = 0; j < 15; j++) {
            float *r = out + (size_t)(int)(frand() * boxes) * attrs;
            r[0] = cx + 8 * frand(), r[1] = cy + 8 * frand(), r[2] = w * (0.9f + 0.2f * frand());
            r[3] = h * (0.9f + 0.2f * frand()), r[4] = 0.5f + 0.5f * frand();
            r[5 + cls] = 0.6f + 0.4f * frand();
        }
    }
}

static double time_detect(const float *out, int64_t d1, int64_t d2, kiln_yolo_format fmt, const kiln_detect_options *o,
                          int reps, int *n_out)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        kiln_detection *d = NULL;
        double t0 = now_ms();
        kiln_yolo_detect(out, d1, d2, fmt, o, &d, n_out);
        double t = now_ms() - t0;
        if (t < best) best = t;
        free(d);
    }
    return best;
}

static void test_timing(void)
{
    enum { B5 = 25200, NC = 80, B8 = 8400 };
    float *v5 = malloc(sizeof(float) * B5 * (5 + NC));
    float *v8 = malloc(sizeof(float) * B8 * (4 + NC));
    make_v5_640(v5, B5, NC, 20);
    /* V8 from the first 8400 V5 rows: class score = obj * cls, transposed. */
    for (int i = 0; i < B8; i++) {
        const float *r = v5 + (size_t)i * (5 + NC);
        for (int k = 0; k < 4; k++) v8[(size_t)k * B8 + i] = r[k];
        for (int k = 0; k < NC; k++) v8[(size_t)(4 + k) * B8 + i] = r[4] * r[5 + k];
    }
    kiln_detect_options o = kiln_detect_default();
    int n5 = 0, n8 = 0, nw = 0, nw2 = 0;
    double t5 = time_detect(v5, B5, 5 + NC, KILN_YOLO_V5, &o, 20, &n5);
    double t8 = time_detect(v8, 4 + NC, B8, KILN_YOLO_V8, &o, 20, &n8);
    /* Worst case: conf 0, every row a candidate; boxes tiny and disjoint on a grid so that
     * NMS keeps max_detections after comparing each with up to 300 kept boxes. */
    for (int i = 0; i < B5; i++) {
        float *r = v5 + (size_t)i * (5 + NC);
        r[0] = 4.0f * (i % 160), r[1] = 4.0f * (i / 160), r[2] = r[3] = 2.0f, r[4] = 0.5f + 0.5f * frand();
        for (int k = 0; k < NC; k++) r[5 + k] = frand();
    }
    o.conf_threshold = 0.0f;
    o.agnostic = 1;
    double tw = time_detect(v5, B5, 5 + NC, KILN_YOLO_V5, &o, 3, &nw);
    o.agnostic = 0;
    double tw2 = time_detect(v5, B5, 5 + NC, KILN_YOLO_V5, &o, 3, &nw2);
    /* NMS worst case: 299 separate clusters of overlapping boxes, every row a candidate: the
     * kept count never reaches max_detections (300), so every suppressed box is compared
     * with up to 299 kept ones (n * k). */
    for (int i = 0; i < B5; i++) {
        float *r = v5 + (size_t)i * (5 + NC);
        int cl = i % 299;
        r[0] = 40.0f * (cl % 20) + 4 * frand(), r[1] = 40.0f * (cl / 20) + 4 * frand(), r[2] = r[3] = 30.0f;
    }
    int nc1 = 0, nc2 = 0;
    o.agnostic = 1;
    double tc = time_detect(v5, B5, 5 + NC, KILN_YOLO_V5, &o, 3, &nc1);
    o.agnostic = 0;
    double tc2 = time_detect(v5, B5, 5 + NC, KILN_YOLO_V5, &o, 3, &nc2);
    printf("timing (best of runs): v5 25200x85 typical %.3f ms (%d dets), v8 84x8400 typical %.3f ms (%d dets); "
           "conf 0 (25200 candidates): disjoint %.2f ms agnostic (%d) / %.2f ms per class (%d), "
           "299 clusters %.2f ms agnostic (%d) / %.2f ms per class (%d)\n",
           t5, n5, t8, n8, tw, nw, tw2, nw2, tc, nc1, tc2, nc2);
    CHECK(nc1 == 299 && nc2 >= 299, "clusters: %d / %d", nc1, nc2);
    CHECK(n5 > 5 && n8 > 5 && nw == 300 && nw2 == 300, "timing runs found detections");
    CHECK(t5 < 50 && t8 < 50, "typical decode + NMS is fast (%.3f / %.3f ms)", t5, t8);
    free(v5);
    free(v8);
}

/* ---- boxes back to the image ------------------------------------------------------------ */

static void test_unletterbox(void)
{
    /* 1280x720 letterboxed into 640x640: ratio 0.5, pad_y 140. */
    kiln_letterbox_info info = {0.5f, 0.5f, 0.0f, 140.0f, 640, 640};
    kiln_detection d[3] = {{100, 200, 300, 400, 0.9f, 0}, {-10, 100, 700, 150, 0.5f, 1}, {0, 0, 640, 640, 0.1f, 2}};
    kiln_detections_unletterbox(d, 3, &info, 1280, 720);
    CHECK(d[0].x1 == 200 && d[0].y1 == 120 && d[0].x2 == 600 && d[0].y2 == 520, "unletterbox math (%g %g %g %g)",
          (double)d[0].x1, (double)d[0].y1, (double)d[0].x2, (double)d[0].y2);
    CHECK(d[1].x1 == 0 && d[1].x2 == 1280 && d[1].y1 == 0 && d[1].y2 == 20, "clipped to the image");
    CHECK(d[2].y1 == 0 && d[2].y2 == 720 && d[2].score == 0.1f && d[2].class_id == 2, "pad area clips, rest kept");
    kiln_letterbox_info bad = {0, 0, 0, 0, 0, 0};
    kiln_detection e = {1, 2, 3, 4, 0.5f, 0};
    kiln_detections_unletterbox(&e, 1, &bad, 100, 100);
    kiln_detections_unletterbox(&e, 1, NULL, 100, 100);
    CHECK(e.x1 == 1 && e.y2 == 4, "zero ratio / NULL info leave boxes alone");

    /* Affine matrices act on pixel indices (centres at i + 0.5): dst_i = 0.5 * src_i +
     * (10, 20), so continuous corners map as src = 2 * (dst - 0.5) - (20, 40) + 0.5. */
    kiln_affine a = {{0.5f, 0, 10, 0, 0.5f, 20}, {2.0f, 0, -20, 0, 2.0f, -40}};
    kiln_detection g = {30, 40, 60, 80, 0.7f, 3};
    kiln_detections_unwarp(&g, 1, &a, 1000, 1000);
    CHECK(g.x1 == 39.5f && g.y1 == 39.5f && g.x2 == 99.5f && g.y2 == 119.5f, "unwarp scale + translate (%g %g %g %g)",
          (double)g.x1, (double)g.y1, (double)g.x2, (double)g.y2);
    kiln_detection h = {-100, 0, 10000, 50, 0.7f, 3};
    kiln_detections_unwarp(&h, 1, &a, 1000, 1000);
    CHECK(h.x1 == 0 && h.x2 == 1000 && h.y1 == 0 && h.y2 == 59.5f, "unwarp clips");
    /* 90-degree rotation on indices: src = (y, 100 - x); continuous: (y, 101 - x). The box's
     * image is its rotated bounding box. */
    kiln_affine r = {{0, -1, 100, 1, 0, 0}, {0, 1, 0, -1, 0, 100}};
    kiln_detection q = {10, 20, 30, 60, 0.7f, 3};
    kiln_detections_unwarp(&q, 1, &r, 1000, 1000);
    CHECK(q.x1 == 20 && q.x2 == 60 && q.y1 == 71 && q.y2 == 91, "unwarp rotation -> bounding box (%g %g %g %g)",
          (double)q.x1, (double)q.y1, (double)q.x2, (double)q.y2);
    /* The letterbox as an affine (kiln_affine_fit) undoes like the letterbox info. */
    kiln_affine fit = kiln_affine_fit(1280, 720, 640, 640);
    kiln_detection u[2] = {{100, 200, 300, 400, 0.9f, 0}, {-10, 100, 700, 150, 0.5f, 1}};
    kiln_detection w[2];
    memcpy(w, u, sizeof u);
    kiln_detections_unwarp(u, 2, &fit, 1280, 720);
    kiln_detections_unletterbox(w, 2, &info, 1280, 720);
    float err = 0;
    for (int i = 0; i < 2; i++)
        err = fmaxf(err, fmaxf(fmaxf(fabsf(u[i].x1 - w[i].x1), fabsf(u[i].x2 - w[i].x2)),
                               fmaxf(fabsf(u[i].y1 - w[i].y1), fabsf(u[i].y2 - w[i].y2))));
    CHECK(err < 1e-3f, "unwarp(affine_fit) == unletterbox (max diff %g)", (double)err);
}

/* ---- top-k ---------------------------------------------------------------------------- */

static void test_topk(void)
{
    float logits[6] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f};
    int idx[8];
    float prob[8];
    CHECK(kiln_classify_topk(logits, 6, 3, 0, idx, prob) == KILN_OK, "topk raw");
    CHECK(idx[0] == 1 && idx[1] == 3 && idx[2] == 2 && prob[0] == 3.0f && prob[2] == 2.0f, "order, ties lower first");
    CHECK(kiln_classify_topk(logits, 6, 8, 1, idx, prob) == KILN_OK, "topk k > n");
    double sum = 0;
    for (int i = 0; i < 6; i++) sum += prob[i];
    CHECK(fabs(sum - 1.0) < 1e-6 && idx[5] == 4 && idx[6] == -1 && idx[7] == -1 && prob[6] == 0,
          "k clamped, softmax sums to 1 (%g)", sum);
    CHECK(fabsf(prob[0] - prob[1]) < 1e-7f && prob[0] > prob[2], "equal logits, equal probabilities");
    double e = 0;
    for (int i = 0; i < 6; i++) e += exp(logits[i] - 3.0);
    CHECK(fabs(prob[2] - exp(-1.0) / e) < 1e-6, "softmax value");
    float big[3] = {1000.0f, 1001.0f, -1000.0f};
    CHECK(kiln_classify_topk(big, 3, 2, 1, idx, prob) == KILN_OK && idx[0] == 1 && isfinite(prob[0]) &&
              fabsf(prob[0] - 0.7310586f) < 1e-6f,
          "stable softmax on large logits (%g)", (double)prob[0]);
    float inf[3] = {INFINITY, 2.0f, INFINITY};
    CHECK(kiln_classify_topk(inf, 3, 3, 1, idx, prob) == KILN_OK && idx[0] == 0 && idx[1] == 2 && prob[0] == 0.5f &&
              prob[2] == 0.0f,
          "+inf logits share the mass");
    float withnan[4] = {0.5f, NAN, 2.0f, 1.0f};
    CHECK(kiln_classify_topk(withnan, 4, 4, 0, idx, prob) == KILN_OK && idx[0] == 2 && idx[3] == 1, "NaN ranks last");
    /* Large k takes the sort path: compare with a brute force. */
    enum { N = 1000, K = 100 };
    float *l = malloc(sizeof(float) * N);
    int *ix = malloc(sizeof(int) * K);
    float *p = malloc(sizeof(float) * K);
    for (int i = 0; i < N; i++) l[i] = (float)(int)(frand() * 50); /* many ties */
    CHECK(kiln_classify_topk(l, N, K, 1, ix, p) == KILN_OK, "large k");
    int ok = 1;
    for (int i = 1; i < K; i++) ok &= l[ix[i - 1]] > l[ix[i]] || (l[ix[i - 1]] == l[ix[i]] && ix[i - 1] < ix[i]);
    int cnt_above = 0;
    for (int i = 0; i < N; i++) cnt_above += l[i] > l[ix[K - 1]];
    CHECK(ok && cnt_above < K && p[0] >= p[K - 1], "large k: sorted with index tie-break, true top-k");
    int ix5[5];
    float p5[5];
    CHECK(kiln_classify_topk(l, N, 5, 1, ix5, p5) == KILN_OK && !memcmp(ix5, ix, sizeof ix5),
          "small-k path agrees with the sort path");
    free(l);
    free(ix);
    free(p);
    CHECK(kiln_classify_topk(NULL, 3, 1, 0, idx, prob) == KILN_ERR_INVALID_ARGUMENT, "NULL logits");
    CHECK(kiln_classify_topk(logits, 0, 1, 0, idx, prob) == KILN_ERR_INVALID_ARGUMENT, "n = 0");
    CHECK(kiln_classify_topk(logits, -2, 1, 0, idx, prob) == KILN_ERR_INVALID_ARGUMENT, "n < 0");
    CHECK(kiln_classify_topk(logits, 6, 0, 0, idx, prob) == KILN_ERR_INVALID_ARGUMENT, "k = 0");
    CHECK(kiln_classify_topk(logits, 6, 2, 0, NULL, prob) == KILN_ERR_INVALID_ARGUMENT, "NULL idx");
}

/* ---- drawing ---------------------------------------------------------------------------- */

enum { GUARD = 64 };

/* An image inside a buffer with guard bytes before and after, and padding at each row's
 * end (stride > width * channels): drawing must touch neither. */
typedef struct guarded {
    uint8_t *buf;
    size_t size;
    kiln_image img;
} guarded;

static guarded guarded_make(int w, int h, int c, int row_pad)
{
    guarded g;
    int stride = w * c + row_pad;
    g.size = (size_t)stride * h + 2 * GUARD;
    g.buf = malloc(g.size);
    memset(g.buf, 0xA5, g.size);
    g.img.width = w, g.img.height = h, g.img.channels = c, g.img.stride = stride;
    g.img.data = g.buf + GUARD, g.img.owned = 0;
    for (int y = 0; y < h; y++) memset(g.img.data + (size_t)y * stride, 0, (size_t)w * c);
    return g;
}

static int guarded_intact(const guarded *g)
{
    for (size_t i = 0; i < GUARD; i++)
        if (g->buf[i] != 0xA5 || g->buf[g->size - 1 - i] != 0xA5) return 0;
    const kiln_image *m = &g->img;
    for (int y = 0; y < m->height; y++)
        for (int x = m->width * m->channels; x < m->stride; x++)
            if (m->data[(size_t)y * m->stride + x] != 0xA5) return 0;
    return 1;
}

static long count_nonzero(const kiln_image *m, int x0, int y0, int x1, int y1)
{
    long n = 0;
    for (int y = y0; y <= y1 && y < m->height; y++)
        for (int x = x0; x <= x1 && x < m->width; x++)
            for (int c = 0; c < m->channels; c++) n += m->data[(size_t)y * m->stride + (size_t)x * m->channels + c] != 0;
    return n;
}

static void test_draw(void)
{
    static const uint8_t red[3] = {255, 0, 0};
    const int chans[3] = {1, 3, 4};
    for (int ci = 0; ci < 3; ci++) {
        int c = chans[ci];
        guarded g = guarded_make(37, 23, c, 3);
        kiln_image *m = &g.img;
        /* Boxes partly and fully outside, huge coordinates, odd thickness. */
        kiln_draw_rect(m, -10, -10, 50, 50, red, 3);
        kiln_draw_rect(m, 30, 20, 100, 100, red, 1);
        kiln_draw_rect(m, -2147483647 - 1, -2147483647 - 1, 2147483647, 2147483647, red, 2147483647);
        kiln_draw_rect(m, 1000, 1000, 2000, 2000, red, 5);
        kiln_draw_rect(m, 5, 5, 2, 2, red, 0);
        kiln_draw_fill_rect(m, -5, 10, 8, 1000, red);
        kiln_draw_fill_rect(m, 2147483647, 0, 2147483647, 10, red);
        kiln_draw_text(m, -20, -3, "Hello, kiln! 0123", red, 1);
        kiln_draw_text(m, 30, 18, "overflow\nlines", red, 3);
        kiln_draw_text(m, 2147483000, 2147483000, "far", red, 2147483647);
        kiln_draw_text(m, -2147483647 - 1, 5, "left", red, 1000000);
        kiln_draw_text(m, 0, 0, "\x01\xff\xc3\xa9", red, 1);
        kiln_detection dets[5] = {{-50, -50, 500, 500, 0.9f, 0},
                                  {30, 2, 36, 22, 0.5f, 7},
                                  {NAN, 1, 2, 3, 0.5f, 1},
                                  {1e30f, -1e30f, INFINITY, 3, 0.5f, -4},
                                  {10, 10, 12, 12, NAN, 2147483647}};
        const char *labels[3] = {"person", NULL, "a rather long label that runs off the image"};
        kiln_draw_detections(m, dets, 5, labels, 3);
        kiln_draw_detections(m, dets, 5, NULL, 0);
        CHECK(guarded_intact(&g), "%d channels: nothing written outside the image", c);
        free(g.buf);
    }
    /* A rectangle's outline: exact pixels. */
    guarded g = guarded_make(20, 20, 3, 0);
    kiln_draw_rect(&g.img, 2, 3, 12, 10, red, 2);
    long n = count_nonzero(&g.img, 0, 0, 19, 19) / 1; /* only R is non-zero */
    CHECK(n == 11 * 8 - 7 * 4, "outline pixel count %ld", n);
    CHECK(g.img.data[(3 * 20 + 2) * 3] == 255 && g.img.data[(3 * 20 + 2) * 3 + 1] == 0 &&
              g.img.data[(6 * 20 + 6) * 3] == 0,
          "outline corner set, inside clear");
    kiln_draw_fill_rect(&g.img, 0, 0, 19, 19, (const uint8_t[3]){0, 0, 0});
    CHECK(count_nonzero(&g.img, 0, 0, 19, 19) == 0, "fill clears");
    free(g.buf);

    /* Text changes pixels, only inside its cells, and different strings differ. */
    g = guarded_make(64, 16, 1, 0);
    static const uint8_t white[3] = {255, 255, 255};
    kiln_draw_text(&g.img, 4, 4, "Ag", white, 1);
    long inside = count_nonzero(&g.img, 4, 4, 19, 11), total = count_nonzero(&g.img, 0, 0, 63, 15);
    CHECK(inside > 10 && inside == total, "text pixels: %ld inside, %ld total", inside, total);
    CHECK(g.img.data[4 * 64 + 4 + 7] == 0 && g.img.data[4 * 64 + 4 + 15] == 0, "column 7 of each cell is the gap");
    uint8_t snap[64 * 16];
    memcpy(snap, g.img.data, sizeof snap);
    kiln_draw_fill_rect(&g.img, 0, 0, 63, 15, (const uint8_t[3]){0, 0, 0});
    kiln_draw_text(&g.img, 4, 4, "Ab", white, 1);
    CHECK(memcmp(snap, g.img.data, sizeof snap) != 0, "different text, different pixels");
    kiln_draw_fill_rect(&g.img, 0, 0, 63, 15, (const uint8_t[3]){0, 0, 0});
    kiln_draw_text(&g.img, 0, 0, "A", white, 1);
    long a1 = count_nonzero(&g.img, 0, 0, 63, 15);
    kiln_draw_fill_rect(&g.img, 0, 0, 63, 15, (const uint8_t[3]){0, 0, 0});
    kiln_draw_text(&g.img, 0, 0, "A", white, 2);
    long a2 = count_nonzero(&g.img, 0, 0, 63, 15);
    CHECK(a1 > 0 && a2 == 4 * a1 && count_nonzero(&g.img, 0, 0, 15, 15) == a2, "scale 2: %ld pixels vs %ld", a2, a1);
    free(g.buf);
    /* Every printable glyph except space draws something. */
    g = guarded_make(8, 8, 1, 0);
    int blank = 0;
    for (int ch = 33; ch <= 126; ch++) {
        memset(g.img.data, 0, 64);
        char s[2] = {(char)ch, 0};
        kiln_draw_text(&g.img, 0, 0, s, white, 1);
        if (count_nonzero(&g.img, 0, 0, 7, 7) == 0) blank++;
    }
    CHECK(blank == 0, "%d printable glyphs are blank", blank);
    free(g.buf);
    /* Gray images get the colour's luma. */
    g = guarded_make(4, 4, 1, 0);
    kiln_draw_fill_rect(&g.img, 0, 0, 3, 3, red);
    CHECK(g.img.data[0] == 76, "gray luma of red = %d", g.img.data[0]);
    free(g.buf);
    /* RGBA: alpha set opaque. */
    g = guarded_make(4, 4, 4, 0);
    kiln_draw_fill_rect(&g.img, 1, 1, 1, 1, red);
    CHECK(g.img.data[(1 * 4 + 1) * 4 + 3] == 255 && g.img.data[(1 * 4 + 1) * 4] == 255, "rgba pixel");
    free(g.buf);
    /* Detections: box and caption appear in the class colour. */
    g = guarded_make(200, 120, 3, 0);
    kiln_detection d = {40, 50, 150, 110, 0.87f, 0};
    const char *names[1] = {"cat"};
    kiln_draw_detections(&g.img, &d, 1, names, 1);
    long cap = count_nonzero(&g.img, 40, 30, 150, 49), box = count_nonzero(&g.img, 40, 50, 150, 110);
    CHECK(cap > 50 && box > 100 && guarded_intact(&g), "detection drawn (caption %ld, box %ld)", cap, box);
    free(g.buf);
    /* Invalid images are ignored. */
    kiln_image bad = {10, 10, 2, 20, NULL, 0};
    kiln_draw_rect(&bad, 0, 0, 5, 5, red, 1);
    kiln_draw_text(NULL, 0, 0, "x", red, 1);
    uint8_t tiny[4] = {0};
    kiln_image short_stride = {4, 1, 3, 4, tiny, 0};
    kiln_draw_fill_rect(&short_stride, 0, 0, 3, 0, red);
    CHECK(tiny[0] == 0, "stride < width * channels is refused");
}

int main(void)
{
    test_defaults();
    test_no_detections();
    test_all_overlapping();
    test_aware_vs_agnostic();
    test_max_detections();
    test_threshold_boundary();
    test_ties();
    test_degenerate();
    test_bad_args();
    test_v5_v8_equivalence();
    test_nms_direct();
    test_random_vs_bruteforce();
    test_reference_data();
    test_unletterbox();
    test_topk();
    test_draw();
    test_timing();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
