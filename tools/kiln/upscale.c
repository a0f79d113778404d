/* upscale.c — `kiln upscale`: run a super-resolution model on an image. Handles RGB models
 * (C = 3), luminance models (C = 1: Y of YCbCr goes through the model, Cb/Cr are resized
 * bilinearly) and models whose upscale factor is a runtime input. */
#include "apps.h"
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_upscale_help(FILE *f)
{
    fprintf(f,
            "usage: kiln upscale MODEL IMAGE -o OUT.png [--scale S] [--range 1|255] [--bgr]\n"
            "                    [--threads N]\n\n"
            "Super-resolution with a model taking float [1, C, H, W] (C = 3: RGB; C = 1: the Y\n"
            "channel of YCbCr, with Cb/Cr resized bilinearly) and returning [1, C, H*s, W*s].\n"
            "Pixels are fed as value/255 (--range 1, default) or raw 0..255 (--range 255).\n"
            "If the model has a second input, it is the upscale factor: --scale S is bound to\n"
            "it as [1, 1, S, S] (4 values), S (1 value) or an integer, per its declared type.\n");
}

static uint8_t clamp_u8(float v) { return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)lrintf(v); }

int cli_upscale_main(int argc, char **argv)
{
    const char *model_path = NULL, *image_path = NULL, *out_path = NULL, *v;
    float scale = 0, range = 1;
    int threads = 0, bgr = 0;
    for (int i = 1; i < argc; i++) {
        if (app_opt(argc, argv, &i, "-o", &v)) out_path = v;
        else if (app_opt(argc, argv, &i, "--scale", &v)) scale = v ? strtof(v, NULL) : -1;
        else if (app_opt(argc, argv, &i, "--range", &v)) range = v ? strtof(v, NULL) : -1;
        else if (app_opt(argc, argv, &i, "--threads", &v)) threads = v ? atoi(v) : 0;
        else if (!strcmp(argv[i], "--bgr")) bgr = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { cli_upscale_help(stdout); return 0; }
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "kiln upscale: unknown option '%s'\n", argv[i]); return 2; }
        else if (!model_path) model_path = argv[i];
        else if (!image_path) image_path = argv[i];
        else { fprintf(stderr, "kiln upscale: one image at a time\n"); return 2; }
    }
    if (!model_path || !image_path || !out_path) { cli_upscale_help(stderr); return 2; }
    if (range != 1 && range != 255) { fprintf(stderr, "kiln upscale: --range must be 1 or 255\n"); return 2; }
    if (scale < 0 || scale > 64) { fprintf(stderr, "kiln upscale: --scale must be in (0, 64]\n"); return 2; }
    app_model m;
    if (!app_model_open("upscale", model_path, threads, &m)) return 1;
    int rc = 1;
    kiln_image img = {0}, up = {0}, chroma = {0};
    float *x = NULL;
    int ch = m.in.ndim == 4 && m.in.dims[1] > 0 ? (int)m.in.dims[1] : 3;
    if (m.in.ndim != 4 || (ch != 1 && ch != 3) || m.in.dtype != KILN_DTYPE_FLOAT) {
        fprintf(stderr, "kiln upscale: input '%s' must be float [1,1|3,H,W]\n", m.in.name);
        goto out;
    }
    if (kiln_image_load(image_path, 3, &img)) { fprintf(stderr, "kiln upscale: %s\n", kiln_last_error()); goto out; }
    if ((m.in.dims[2] > 0 && m.in.dims[2] != img.height) || (m.in.dims[3] > 0 && m.in.dims[3] != img.width)) {
        fprintf(stderr, "kiln upscale: the model takes %lldx%lld images, '%s' is %dx%d\n", (long long)m.in.dims[3],
                (long long)m.in.dims[2], image_path, img.width, img.height);
        goto out;
    }
    size_t hw = (size_t)img.width * img.height;
    x = malloc(sizeof(float) * 3 * hw);
    if (!x) { fprintf(stderr, "kiln upscale: out of memory\n"); goto out; }
    float k = range == 1 ? 1.0f / 255.0f : 1.0f;
    for (int y = 0; y < img.height; y++)
        for (int xx = 0; xx < img.width; xx++) {
            const uint8_t *p = img.data + (size_t)y * img.stride + (size_t)xx * 3;
            size_t o = (size_t)y * img.width + xx;
            float r = p[bgr ? 2 : 0], g = p[1], b = p[bgr ? 0 : 2];
            if (ch == 3) { x[o] = r * k; x[hw + o] = g * k; x[2 * hw + o] = b * k; }
            else x[o] = (0.299f * r + 0.587f * g + 0.114f * b) * k;
        }
    int64_t dims[4] = {1, ch, img.height, img.width};
    if (kiln_context_set_input(m.ctx, m.in.name, KILN_DTYPE_FLOAT, 4, dims, x, sizeof(float) * ch * hw)) {
        fprintf(stderr, "kiln upscale: %s\n", kiln_last_error());
        goto out;
    }
    float sv[4] = {1, 1, scale, scale};
    int64_t si = (int64_t)lrintf(scale);
    if (kiln_model_input_count(m.model) > 1) {
        kiln_tensor_info s;
        kiln_model_input_info(m.model, 1, &s);
        if (scale <= 0) { fprintf(stderr, "kiln upscale: the model takes its factor as input '%s': give --scale\n", s.name); goto out; }
        int64_t n = 1;
        for (int i = 0; i < s.ndim; i++) n *= s.dims[i] > 0 ? s.dims[i] : 1;
        int64_t sd[KILN_MAX_DIMS];
        for (int i = 0; i < s.ndim; i++) sd[i] = s.dims[i] > 0 ? s.dims[i] : 1;
        kiln_status st;
        if (s.dtype == KILN_DTYPE_FLOAT && n == 4) st = kiln_context_set_input(m.ctx, s.name, s.dtype, s.ndim, sd, sv, sizeof sv);
        else if (s.dtype == KILN_DTYPE_FLOAT && n == 1) st = kiln_context_set_input(m.ctx, s.name, s.dtype, s.ndim < 0 ? 0 : s.ndim, sd, &scale, sizeof scale);
        else if (s.dtype == KILN_DTYPE_INT64 && n == 1) st = kiln_context_set_input(m.ctx, s.name, s.dtype, s.ndim < 0 ? 0 : s.ndim, sd, &si, sizeof si);
        else { fprintf(stderr, "kiln upscale: cannot bind the factor input '%s' (%s, %lld values)\n", s.name, kiln_dtype_name(s.dtype), (long long)n); goto out; }
        if (st) { fprintf(stderr, "kiln upscale: %s\n", kiln_last_error()); goto out; }
    }
    kiln_tensor_view o;
    double t0 = app_now_ms();
    if (kiln_context_run(m.ctx) || kiln_context_get_output(m.ctx, m.out.name, &o)) {
        fprintf(stderr, "kiln upscale: %s\n", kiln_last_error());
        goto out;
    }
    double t1 = app_now_ms();
    if (o.dtype != KILN_DTYPE_FLOAT || o.ndim != 4 || o.dims[0] != 1 || o.dims[1] != ch) {
        fprintf(stderr, "kiln upscale: output '%s' must be float [1,%d,H,W]\n", m.out.name, ch);
        goto out;
    }
    int ow = (int)o.dims[3], oh = (int)o.dims[2];
    if (kiln_image_create(ow, oh, 3, &up)) { fprintf(stderr, "kiln upscale: %s\n", kiln_last_error()); goto out; }
    if (ch == 1 && kiln_image_resize(&img, ow, oh, KILN_RESIZE_BILINEAR, &chroma)) { fprintf(stderr, "kiln upscale: %s\n", kiln_last_error()); goto out; }
    const float *od = o.data;
    size_t ohw = (size_t)ow * oh;
    float inv = range == 1 ? 255.0f : 1.0f;
    for (int y = 0; y < oh; y++)
        for (int xx = 0; xx < ow; xx++) {
            uint8_t *p = up.data + (size_t)y * up.stride + (size_t)xx * 3;
            size_t i = (size_t)y * ow + xx;
            float r, g, b;
            if (ch == 3) { r = od[i] * inv; g = od[ohw + i] * inv; b = od[2 * ohw + i] * inv; }
            else { /* new luminance, chroma from the resized image */
                const uint8_t *c = chroma.data + (size_t)y * chroma.stride + (size_t)xx * 3;
                float yy = od[i] * inv;
                float cb = -0.168736f * c[0] - 0.331264f * c[1] + 0.5f * c[2];
                float cr = 0.5f * c[0] - 0.418688f * c[1] - 0.081312f * c[2];
                r = yy + 1.402f * cr; g = yy - 0.344136f * cb - 0.714136f * cr; b = yy + 1.772f * cb;
            }
            p[bgr ? 2 : 0] = clamp_u8(r); p[1] = clamp_u8(g); p[bgr ? 0 : 2] = clamp_u8(b);
        }
    if (kiln_image_save(out_path, &up, 95)) { fprintf(stderr, "kiln upscale: %s\n", kiln_last_error()); goto out; }
    printf("%s: %dx%d -> %dx%d (%.1f ms), wrote %s\n", image_path, img.width, img.height, ow, oh, t1 - t0, out_path);
    rc = 0;
out:
    free(x);
    kiln_image_free(&img);
    kiln_image_free(&up);
    kiln_image_free(&chroma);
    app_model_close(&m);
    return rc;
}
