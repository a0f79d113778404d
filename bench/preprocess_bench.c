/* preprocess_bench.c — times kiln's letterbox + normalize (fused and two-step) and the
 * warp-to-tensor path on one image; driven by bench/preprocess_vs_opencv.py.
 *
 * usage: preprocess_bench IMAGE ITERS OUT_W OUT_H [TENSOR_OUT [WARP_TENSOR_OUT]]
 * The image is loaded as RGB and swapped to BGR so that kiln does the same job as the
 * OpenCV pipeline (BGR pixels in, RGB planes out). Prints one line per method:
 *   <method> <t1_us> <t2_us> ...
 * and writes the fused letterbox / warp tensors (float32, 3 x H x W) where asked. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include "kiln.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, kiln_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s IMAGE ITERS OUT_W OUT_H [TENSOR_OUT [WARP_TENSOR_OUT]]\n", argv[0]);
        return 2;
    }
    int iters = atoi(argv[2]), ow = atoi(argv[3]), oh = atoi(argv[4]);
    kiln_image img;
    if (kiln_image_load(argv[1], 3, &img)) return fail("load");
    kiln_image_swap_rb(&img); /* BGR in memory, as cv2.imdecode gives */

    kiln_letterbox_options opt = kiln_letterbox_default(ow, oh);
    kiln_normalize norm = kiln_normalize_default();
    norm.swap_rb = 1;
    kiln_letterbox_info info;
    if (kiln_letterbox_to_tensor(&img, &opt, &norm, NULL, 0, &info)) return fail("query");
    size_t n = (size_t)3 * info.out_width * info.out_height;
    float *t = malloc(n * sizeof *t);
    double *times = malloc(sizeof(double) * (size_t)iters);
    if (!t || !times) return 1;

    /* fused letterbox + normalize */
    for (int w = 0; w < 3; w++)
        if (kiln_letterbox_to_tensor(&img, &opt, &norm, t, n, NULL)) return fail("letterbox_to_tensor");
    for (int i = 0; i < iters; i++) {
        double t0 = now_us();
        kiln_letterbox_to_tensor(&img, &opt, &norm, t, n, NULL);
        times[i] = now_us() - t0;
    }
    printf("kiln_fused");
    for (int i = 0; i < iters; i++) printf(" %.1f", times[i]);
    printf("\n");
    if (argc > 5) {
        FILE *f = fopen(argv[5], "wb");
        if (!f || fwrite(t, sizeof *t, n, f) != n) return fail("write tensor");
        fclose(f);
    }

    /* two steps: 8-bit letterbox, then to_tensor */
    for (int i = 0; i < iters; i++) {
        double t0 = now_us();
        kiln_image boxed;
        if (kiln_letterbox(&img, &opt, &boxed, NULL)) return fail("letterbox");
        kiln_image_to_tensor(&boxed, &norm, t, n);
        kiln_image_free(&boxed);
        times[i] = now_us() - t0;
    }
    printf("kiln_two_step");
    for (int i = 0; i < iters; i++) printf(" %.1f", times[i]);
    printf("\n");

    /* warp-affine letterbox (tensorRT_Pro style) into float planes */
    kiln_affine a = kiln_affine_fit(img.width, img.height, ow, oh);
    size_t nw = (size_t)3 * ow * oh;
    float *tw = malloc(nw * sizeof *tw);
    if (!tw) return 1;
    for (int i = 0; i < iters; i++) {
        double t0 = now_us();
        if (kiln_warp_affine_to_tensor(&img, &a, ow, oh, 114, &norm, tw, nw)) return fail("warp");
        times[i] = now_us() - t0;
    }
    printf("kiln_warp");
    for (int i = 0; i < iters; i++) printf(" %.1f", times[i]);
    printf("\n");
    if (argc > 6) {
        FILE *f = fopen(argv[6], "wb");
        if (!f || fwrite(tw, sizeof *tw, nw, f) != nw) return fail("write warp tensor");
        fclose(f);
    }

    free(tw);
    free(t);
    free(times);
    kiln_image_free(&img);
    return 0;
}
