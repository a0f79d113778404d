/* classify.c — `kiln classify`: resize (optionally crop) and normalise each image, run a
 * classifier, print the top-k classes with probabilities (and the image as ASCII art). */
#include "apps.h"
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_classify_help(FILE *f)
{
    fprintf(f,
            "usage: kiln classify MODEL IMAGE... [--labels FILE] [--top 5] [--size N]\n"
            "                     [--mean a,b,c --std a,b,c] [--scale S] [--bgr] [--crop]\n"
            "                     [--no-softmax] [--ascii] [--threads N]\n\n"
            "Classifies images with a model taking float [N, C, H, W] (C = 1: grayscale, 3: RGB).\n"
            "Each image is resized to the model's H x W (--size N when dynamic, default 224;\n"
            "--crop: resize the short side to N*256/224 and centre-crop, the ImageNet way), then\n"
            "value = (pixel * scale - mean) / std per channel (defaults: scale 1/255, mean 0,\n"
            "std 1; ImageNet: --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225).\n"
            "Prints the --top classes with softmax probabilities (--no-softmax if the model\n"
            "already outputs probabilities). --ascii also draws the input as ASCII art.\n");
}

static void print_ascii(const kiln_image *img)
{
    static const char ramp[] = " .:-=+*#%@";
    int w = img->width, h = img->height, step = 1;
    while (w / step > 64) step++;
    for (int y = 0; y < h; y += step) {
        printf("    ");
        for (int x = 0; x < w; x += step) {
            const uint8_t *p = img->data + (size_t)y * img->stride + (size_t)x * img->channels;
            int v = img->channels >= 3 ? (p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8 : p[0];
            char ch = ramp[v * 9 / 255];
            putchar(ch);
            putchar(ch);
        }
        putchar('\n');
    }
}

/* "a" or "a,b,c[,d]" into 4 channel values (one value applies to all). */
static bool parse_channels(const char *v, float *dst, const char *opt)
{
    int k = v ? app_parse_floats(v, dst, 4) : -1;
    if (k < 1) { fprintf(stderr, "kiln classify: bad value list for %s\n", opt); return false; }
    if (k == 1) dst[1] = dst[2] = dst[3] = dst[0];
    return true;
}

int cli_classify_main(int argc, char **argv)
{
    const char *model_path = NULL, *labels_path = NULL, *v;
    const char *images[1024];
    int n_images = 0, top = 5, size = 224, threads = 0, crop = 0, softmax = 1, ascii = 0;
    kiln_normalize norm = kiln_normalize_default();
    for (int i = 1; i < argc; i++) {
        if (app_opt(argc, argv, &i, "--labels", &v)) labels_path = v;
        else if (app_opt(argc, argv, &i, "--top", &v)) top = v ? atoi(v) : 0;
        else if (app_opt(argc, argv, &i, "--size", &v)) size = v ? atoi(v) : 0;
        else if (app_opt(argc, argv, &i, "--threads", &v)) threads = v ? atoi(v) : 0;
        else if (app_opt(argc, argv, &i, "--scale", &v)) norm.scale = v ? strtof(v, NULL) : 0;
        else if (app_opt(argc, argv, &i, "--mean", &v)) {
            if (!parse_channels(v, norm.mean, "--mean")) return 2;
        } else if (app_opt(argc, argv, &i, "--std", &v)) {
            if (!parse_channels(v, norm.std, "--std")) return 2;
        } else if (!strcmp(argv[i], "--bgr")) norm.swap_rb = 1;
        else if (!strcmp(argv[i], "--crop")) crop = 1;
        else if (!strcmp(argv[i], "--no-softmax")) softmax = 0;
        else if (!strcmp(argv[i], "--ascii")) ascii = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { cli_classify_help(stdout); return 0; }
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "kiln classify: unknown option '%s'\n", argv[i]); return 2; }
        else if (!model_path) model_path = argv[i];
        else if (n_images < 1024) images[n_images++] = argv[i];
    }
    if (!model_path || n_images == 0) { cli_classify_help(stderr); return 2; }
    if (top < 1 || size < 1 || size > 8192 || norm.scale == 0) { fprintf(stderr, "kiln classify: bad --top/--size/--scale\n"); return 2; }
    for (int c = 0; c < 4; c++)
        if (norm.std[c] == 0) { fprintf(stderr, "kiln classify: --std must not be 0\n"); return 2; }
    char **labels = NULL;
    int n_labels = 0;
    if (labels_path && kiln_labels_load(labels_path, &labels, &n_labels)) {
        fprintf(stderr, "kiln classify: %s\n", kiln_last_error());
        return 1;
    }
    app_model m;
    if (!app_model_open("classify", model_path, threads, &m)) { kiln_labels_free(labels, n_labels); return 1; }
    int rc = 0;
    int ch = m.in.ndim == 4 && m.in.dims[1] > 0 ? (int)m.in.dims[1] : 3;
    if (m.in.ndim != 4 || (ch != 1 && ch != 3) || m.in.dtype != KILN_DTYPE_FLOAT) {
        fprintf(stderr, "kiln classify: input '%s' must be float [N,1|3,H,W]\n", m.in.name);
        app_model_close(&m);
        kiln_labels_free(labels, n_labels);
        return 1;
    }
    int h = m.in.dims[2] > 0 ? (int)m.in.dims[2] : size, w = m.in.dims[3] > 0 ? (int)m.in.dims[3] : size;
    size_t numel = (size_t)ch * h * w;
    float *tensor = malloc(sizeof(float) * numel);
    int *idx = malloc(sizeof(int) * (size_t)top);
    float *prob = malloc(sizeof(float) * (size_t)top);
    for (int ii = 0; tensor && idx && prob && ii < n_images; ii++) {
        kiln_image img = {0}, rs = {0}, cr = {0};
        const kiln_image *src = &img;
        if (kiln_image_load(images[ii], ch, &img)) { fprintf(stderr, "kiln classify: %s\n", kiln_last_error()); rc = 1; continue; }
        kiln_status st = KILN_OK;
        if (crop) {
            double s = (double)size * 256.0 / 224.0 / (img.width < img.height ? img.width : img.height);
            int rw = (int)lround(img.width * s), rh = (int)lround(img.height * s);
            st = kiln_image_resize(&img, rw < w ? w : rw, rh < h ? h : rh, s < 1 ? KILN_RESIZE_AREA : KILN_RESIZE_BILINEAR, &rs);
            if (!st) st = kiln_image_center_crop(&rs, w, h, &cr);
            src = &cr;
        } else if (img.width != w || img.height != h) {
            bool down = img.width > w && img.height > h;
            st = kiln_image_resize(&img, w, h, down ? KILN_RESIZE_AREA : KILN_RESIZE_BILINEAR, &rs);
            src = &rs;
        }
        int64_t dims[4] = {1, ch, h, w};
        kiln_tensor_view out;
        if (!st) st = kiln_image_to_tensor(src, &norm, tensor, numel);
        if (!st) st = kiln_context_set_input(m.ctx, m.in.name, KILN_DTYPE_FLOAT, 4, dims, tensor, sizeof(float) * numel);
        if (!st) st = kiln_context_run(m.ctx);
        if (!st) st = kiln_context_get_output(m.ctx, m.out.name, &out);
        if (!st && (out.dtype != KILN_DTYPE_FLOAT || out.nbytes < sizeof(float))) {
            fprintf(stderr, "kiln classify: output '%s' must be float scores\n", m.out.name);
            rc = 1;
        } else if (!st) {
            int n_classes = (int)(out.nbytes / sizeof(float)), k = top < n_classes ? top : n_classes;
            st = kiln_classify_topk(out.data, n_classes, k, softmax, idx, prob);
            if (!st) {
                printf("%s:\n", images[ii]);
                if (ascii) print_ascii(src);
                for (int j = 0; j < k; j++) {
                    char cls[32];
                    snprintf(cls, sizeof cls, "class %d", idx[j]);
                    printf("  %d. %-20s %.4f\n", j + 1, idx[j] < n_labels ? labels[idx[j]] : cls, prob[j]);
                }
            }
        }
        if (st) { fprintf(stderr, "kiln classify: %s: %s\n", images[ii], kiln_last_error()); rc = 1; }
        kiln_image_free(&img);
        kiln_image_free(&rs);
        kiln_image_free(&cr);
    }
    if (!tensor || !idx || !prob) { fprintf(stderr, "kiln classify: out of memory\n"); rc = 1; }
    free(tensor);
    free(idx);
    free(prob);
    app_model_close(&m);
    kiln_labels_free(labels, n_labels);
    return rc;
}
