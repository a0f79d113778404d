/* detect.c — `kiln detect`: letterbox each image, run a YOLOv5/YOLOv8-format detector,
 * decode + NMS, map boxes back, print them (text or JSON) and draw them into PNG/JPEG. */
#include "apps.h"
#include "cli.h"
#include <stdlib.h>
#include <string.h>

void cli_detect_help(FILE *f)
{
    fprintf(f,
            "usage: kiln detect MODEL IMAGE... [--labels FILE] [--conf 0.25] [--iou 0.45]\n"
            "                   [--size 640] [-o OUT.png | --out-dir DIR] [--json]\n"
            "                   [--format auto|v5|v8] [--agnostic] [--max-det 300] [--threads N]\n\n"
            "Detects objects with a YOLO-style model (.onnx or .kplan). Each image is letterboxed to the\n"
            "model's input size (--size when the model's is dynamic; pad 114), normalised to\n"
            "[0,1] RGB, run, decoded (v5: [1, boxes, 5+classes]; v8: [1, 4+classes, boxes];\n"
            "auto picks by shape), filtered by --conf, NMS'd per class (--agnostic: across\n"
            "classes) and mapped back to the image.\n"
            "  -o OUT          annotated image (one input image; .png or .jpg)\n"
            "  --out-dir DIR   annotated images as DIR/<image name>.png\n"
            "  --json          print JSON: for one image an array of\n"
            "                  {x1,y1,x2,y2,score,class,label}; for several, an array of\n"
            "                  {image, detections}\n");
}

static void json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

int cli_detect_main(int argc, char **argv)
{
    const char *model_path = NULL, *labels_path = NULL, *out_path = NULL, *out_dir = NULL, *v;
    const char *images[1024];
    int n_images = 0, size = 640, threads = 0, json = 0;
    kiln_yolo_format fmt = KILN_YOLO_V5;
    int fmt_auto = 1;
    kiln_detect_options dopt = kiln_detect_default();
    for (int i = 1; i < argc; i++) {
        if (app_opt(argc, argv, &i, "--labels", &v)) labels_path = v;
        else if (app_opt(argc, argv, &i, "--conf", &v)) dopt.conf_threshold = v ? strtof(v, NULL) : -1;
        else if (app_opt(argc, argv, &i, "--iou", &v)) dopt.iou_threshold = v ? strtof(v, NULL) : -1;
        else if (app_opt(argc, argv, &i, "--size", &v)) size = v ? atoi(v) : 0;
        else if (app_opt(argc, argv, &i, "--max-det", &v)) dopt.max_detections = v ? atoi(v) : 0;
        else if (app_opt(argc, argv, &i, "--threads", &v)) threads = v ? atoi(v) : 0;
        else if (app_opt(argc, argv, &i, "-o", &v)) out_path = v;
        else if (app_opt(argc, argv, &i, "--out-dir", &v)) out_dir = v;
        else if (app_opt(argc, argv, &i, "--format", &v)) {
            if (v && !strcmp(v, "v5")) { fmt = KILN_YOLO_V5; fmt_auto = 0; }
            else if (v && !strcmp(v, "v8")) { fmt = KILN_YOLO_V8; fmt_auto = 0; }
            else if (v && !strcmp(v, "auto")) fmt_auto = 1;
            else { fprintf(stderr, "kiln detect: --format must be auto, v5 or v8\n"); return 2; }
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--agnostic")) dopt.agnostic = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { cli_detect_help(stdout); return 0; }
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "kiln detect: unknown option '%s'\n", argv[i]); return 2; }
        else if (!model_path) model_path = argv[i];
        else if (n_images < 1024) images[n_images++] = argv[i];
    }
    if (!model_path || n_images == 0) { cli_detect_help(stderr); return 2; }
    if (dopt.conf_threshold < 0 || dopt.conf_threshold > 1 || dopt.iou_threshold < 0 || dopt.iou_threshold > 1) {
        fprintf(stderr, "kiln detect: --conf and --iou must be in [0, 1]\n");
        return 2;
    }
    if (size <= 0 || size > 8192) { fprintf(stderr, "kiln detect: --size must be in 1..8192\n"); return 2; }
    if (out_path && n_images > 1) { fprintf(stderr, "kiln detect: -o takes one image; use --out-dir for several\n"); return 2; }
    if (out_dir && !app_mkdirs(out_dir)) { fprintf(stderr, "kiln detect: cannot create '%s'\n", out_dir); return 1; }

    char **labels = NULL;
    int n_labels = 0;
    if (labels_path && kiln_labels_load(labels_path, &labels, &n_labels)) {
        fprintf(stderr, "kiln detect: %s\n", kiln_last_error());
        return 1;
    }
    app_model m;
    if (!app_model_open("detect", model_path, threads, &m)) { kiln_labels_free(labels, n_labels); return 1; }
    int rc = 0;
    if (m.in.ndim != 4 || (m.in.dims[1] >= 0 && m.in.dims[1] != 3) || m.in.dtype != KILN_DTYPE_FLOAT) {
        fprintf(stderr, "kiln detect: input '%s' must be float [N,3,H,W]\n", m.in.name);
        rc = 1;
        goto out;
    }
    int net_h = m.in.dims[2] > 0 ? (int)m.in.dims[2] : size, net_w = m.in.dims[3] > 0 ? (int)m.in.dims[3] : size;
    float *tensor = malloc(sizeof(float) * 3 * (size_t)net_h * (size_t)net_w);
    if (!tensor) { fprintf(stderr, "kiln detect: out of memory\n"); rc = 1; goto out; }
    kiln_normalize norm = kiln_normalize_default();
    kiln_letterbox_options lb = kiln_letterbox_default(net_w, net_h);
    if (json && n_images > 1) printf("[");
    for (int ii = 0; ii < n_images; ii++) {
        kiln_image img = {0};
        kiln_letterbox_info info;
        kiln_detection *dets = NULL;
        int n = 0;
        double td = app_now_ms(), t0, t1, t2, t3;
        if (kiln_image_load(images[ii], 3, &img)) {
            fprintf(stderr, "kiln detect: %s\n", kiln_last_error());
            rc = 1;
            continue;
        }
        int64_t dims[4] = {1, 3, net_h, net_w};
        t0 = app_now_ms();
        if (kiln_letterbox_to_tensor(&img, &lb, &norm, tensor, 3 * (size_t)net_h * net_w, &info) ||
            kiln_context_set_input(m.ctx, m.in.name, KILN_DTYPE_FLOAT, 4, dims, tensor,
                                   sizeof(float) * 3 * (size_t)net_h * net_w)) {
            fprintf(stderr, "kiln detect: %s: %s\n", images[ii], kiln_last_error());
            kiln_image_free(&img);
            rc = 1;
            continue;
        }
        t1 = app_now_ms();
        kiln_tensor_view out;
        if (kiln_context_run(m.ctx) || kiln_context_get_output(m.ctx, m.out.name, &out)) {
            fprintf(stderr, "kiln detect: %s: %s\n", images[ii], kiln_last_error());
            kiln_image_free(&img);
            rc = 1;
            continue;
        }
        t2 = app_now_ms();
        if (out.dtype != KILN_DTYPE_FLOAT || out.ndim != 3 || out.dims[0] != 1) {
            fprintf(stderr, "kiln detect: output '%s' must be float [1, A, B] (YOLO format)\n", m.out.name);
            kiln_image_free(&img);
            rc = 1;
            break;
        }
        kiln_yolo_format f = fmt;
        if (fmt_auto) f = out.dims[1] > out.dims[2] ? KILN_YOLO_V5 : KILN_YOLO_V8;
        if (kiln_yolo_detect(out.data, out.dims[1], out.dims[2], f, &dopt, &dets, &n)) {
            fprintf(stderr, "kiln detect: %s: %s\n", images[ii], kiln_last_error());
            kiln_image_free(&img);
            rc = 1;
            continue;
        }
        kiln_detections_unletterbox(dets, n, &info, img.width, img.height);
        t3 = app_now_ms();
        if (json) {
            if (n_images > 1) { printf("%s{\"image\":", ii ? "," : ""); json_str(images[ii]); printf(",\"detections\":"); }
            printf("[");
            for (int k = 0; k < n; k++) {
                const kiln_detection *d = &dets[k];
                printf("%s{\"x1\":%.2f,\"y1\":%.2f,\"x2\":%.2f,\"y2\":%.2f,\"score\":%.4f,\"class\":%d,\"label\":",
                       k ? "," : "", d->x1, d->y1, d->x2, d->y2, d->score, d->class_id);
                json_str(d->class_id >= 0 && d->class_id < n_labels ? labels[d->class_id] : "");
                printf("}");
            }
            printf("]%s", n_images > 1 ? "}" : "\n");
        } else {
            printf("%s: %d detection%s (%dx%d; decode %.1f ms, pre %.2f ms, inference %.1f ms, post %.2f ms)\n",
                   images[ii], n, n == 1 ? "" : "s", img.width, img.height, t0 - td, t1 - t0, t2 - t1, t3 - t2);
            for (int k = 0; k < n; k++) {
                const kiln_detection *d = &dets[k];
                char cls[32];
                snprintf(cls, sizeof cls, "class %d", d->class_id);
                printf("  %-12s %.3f  [%7.1f %7.1f %7.1f %7.1f]\n",
                       d->class_id >= 0 && d->class_id < n_labels ? labels[d->class_id] : cls, d->score,
                       d->x1, d->y1, d->x2, d->y2);
            }
        }
        if (out_path || out_dir) {
            char path[4096], stem[1024];
            if (out_path) snprintf(path, sizeof path, "%s", out_path);
            else snprintf(path, sizeof path, "%s/%s.png", out_dir, app_stem(images[ii], stem, sizeof stem));
            kiln_draw_detections(&img, dets, n, (const char *const *)labels, n_labels);
            if (kiln_image_save(path, &img, 90)) {
                fprintf(stderr, "kiln detect: %s\n", kiln_last_error());
                rc = 1;
            } else if (!json) printf("  wrote %s\n", path);
        }
        free(dets);
        kiln_image_free(&img);
    }
    if (json && n_images > 1) printf("]\n");
    free(tensor);
out:
    app_model_close(&m);
    kiln_labels_free(labels, n_labels);
    return rc;
}
