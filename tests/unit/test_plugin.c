/* test_plugin.c — custom operators: the ClampScale plugin of examples/plugin_example.c on
 * tests/data/network/plugin_model.onnx (unsupported before registration, correct after), error
 * propagation from run and infer callbacks, attribute accessors, plugin layers in a network,
 * and concurrent registration. Run from the repository root. */
#define PLUGIN_EXAMPLE_NO_MAIN
#include "../../examples/plugin_example.c"
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

static int passed, failed;
#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)
#define DATA "tests/data/network/"

static bool has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) { printf("  error text \"%s\" lacks \"%s\"\n", hay, needle); return false; }
    return true;
}

static float expect_y(float x) /* the model: Add(ClampScale(Mul(x, 2), lo -1, hi 1.5, scale 3), 1) */
{
    float v = 2 * x;
    v = v < -1 ? -1 : v > 1.5f ? 1.5f : v;
    return v * 3 + 1;
}

static void test_model(void)
{
    kiln_model *m = NULL;
    kiln_status st = kiln_model_load_file(DATA "plugin_model.onnx", NULL, &m);
    CHECK(st == KILN_ERR_UNSUPPORTED && !m && has(kiln_last_error(), "com.example.ClampScale") && has(kiln_last_error(), "not supported"),
          "before registration: %d %s", (int)st, kiln_last_error());

    CHECK(clamp_scale_register() == KILN_OK, "register: %s", kiln_last_error());
    CHECK(clamp_scale_register() == KILN_ERR_INVALID_ARGUMENT && has(kiln_last_error(), "com.example.ClampScale: already registered"),
          "duplicate: %s", kiln_last_error());

    for (int opt = 0; opt < 2; opt++) {
        kiln_load_options o = {2, opt};
        m = NULL;
        CHECK(kiln_model_load_file(DATA "plugin_model.onnx", &o, &m) == KILN_OK, "after registration: %s", kiln_last_error());
        if (!m) continue;
        /* the plugin's infer callback typed its output; kiln's inference carried it to Y */
        kiln_tensor_info oi;
        CHECK(kiln_model_output_info(m, 0, &oi) == KILN_OK && oi.dtype == KILN_DTYPE_FLOAT && oi.ndim == 4 && oi.dims[0] == -1 &&
              oi.dims[3] == 5, "output info from the plugin's infer: dtype %d ndim %d", (int)oi.dtype, oi.ndim);
        kiln_context *c = NULL;
        float x[2 * 3 * 4 * 5];
        for (int i = 0; i < 120; i++) x[i] = (float)(i - 60) / 37.0f;
        const int64_t dims[4] = {2, 3, 4, 5};
        long calls = clamp_scale_calls;
        CHECK(kiln_context_create(m, &c) == KILN_OK && kiln_context_set_input(c, "X", KILN_DTYPE_FLOAT, 4, dims, x, sizeof x) == KILN_OK &&
              kiln_context_run(c) == KILN_OK, "run: %s", kiln_last_error());
        kiln_tensor_view y;
        bool ok = kiln_context_get_output(c, "Y", &y) == KILN_OK && y.ndim == 4 && y.nbytes == sizeof x;
        for (int i = 0; ok && i < 120; i++)
            if (((const float *)y.data)[i] != expect_y(x[i])) {
                printf("  Y[%d] = %g, expected %g\n", i, ((const float *)y.data)[i], expect_y(x[i]));
                ok = false;
            }
        CHECK(ok, "outputs through the plugin (no_optimize %d)", opt);
        CHECK(clamp_scale_calls == calls + 1, "user data reached the run callback");
        /* an error inside the kernel propagates with the plugin's message and the node's name */
        x[7] = NAN;
        st = kiln_context_set_input(c, "X", KILN_DTYPE_FLOAT, 4, dims, x, sizeof x);
        st = st ? st : kiln_context_run(c);
        CHECK(st == KILN_ERR_RUNTIME && has(kiln_last_error(), "node 'clamp_scale' (com.example.ClampScale): input element 7 is NaN"),
              "run error: %d %s", (int)st, kiln_last_error());
        /* and the context still works afterwards */
        x[7] = 0;
        CHECK(kiln_context_set_input(c, "X", KILN_DTYPE_FLOAT, 4, dims, x, sizeof x) == KILN_OK && kiln_context_run(c) == KILN_OK,
              "run after an error: %s", kiln_last_error());
        kiln_context_destroy(c);
        kiln_model_destroy(m);
    }

    m = NULL;
    st = kiln_model_load_file(DATA "plugin_bad_attr.onnx", NULL, &m);
    CHECK(st == KILN_ERR_INVALID_MODEL && !m && has(kiln_last_error(), "lo (2) is above hi (1)") && has(kiln_last_error(), "clamp_scale"),
          "infer error fails the load: %d %s", (int)st, kiln_last_error());
}

/* ---- plugins that misbehave, and the accessors ------------------------------------------------ */

static kiln_status silent_fail_run(kiln_plugin_context *ctx, void *user)
{
    (void)ctx; (void)user;
    return KILN_ERR_SHAPE; /* no kiln_plugin_error: kiln makes a message */
}

static kiln_status weird_status_run(kiln_plugin_context *ctx, void *user)
{
    (void)ctx; (void)user;
    return (kiln_status)1234;
}

static kiln_status no_output_run(kiln_plugin_context *ctx, void *user)
{
    (void)ctx; (void)user;
    return KILN_OK;
}

/* Attr accessors, two outputs (sum and max of the input, times attribute `k`), wrong-type
 * errors, a string attribute selecting the dtype check. */
static kiln_status stats_run(kiln_plugin_context *ctx, void *user)
{
    int *seen = user;
    int64_t k = 1;
    const char *mode = NULL;
    const int64_t *ints = NULL;
    const float *floats = NULL;
    int64_t ni = 0, nf = 0;
    float f = 0;
    kiln_status st;
    if ((st = kiln_plugin_attr_int(ctx, "k", &k)) && st != KILN_ERR_NOT_FOUND) return st;
    if (kiln_plugin_attr_string(ctx, "mode", &mode) == KILN_OK && strcmp(mode, "sum_max"))
        return kiln_plugin_error(ctx, KILN_ERR_INVALID_MODEL, "mode '%s'", mode);
    if (kiln_plugin_attr_ints(ctx, "ints", &ints, &ni) == KILN_OK && ni == 3 && ints[2] == 30) seen[0] = 1;
    if (kiln_plugin_attr_floats(ctx, "floats", &floats, &nf) == KILN_OK && nf == 2 && floats[1] == 2.5f) seen[1] = 1;
    if (kiln_plugin_attr_float(ctx, "k", &f) == KILN_ERR_INVALID_MODEL) seen[2] = 1; /* k is an int */
    if (kiln_plugin_attr_int(ctx, "absent", &k) == KILN_ERR_NOT_FOUND) seen[3] = 1;
    if (kiln_plugin_output(ctx, 5, KILN_DTYPE_FLOAT, 0, NULL, (void **)&floats) == KILN_ERR_INVALID_ARGUMENT) seen[4] = 1;
    kiln_tensor_info info;
    if (kiln_plugin_input_info(ctx, 0, &info) == KILN_OK && info.ndim == 2) seen[5] = 1;
    if (kiln_plugin_input_count(ctx) == 1 && kiln_plugin_output_count(ctx) == 2 && !strcmp(kiln_plugin_node_name(ctx), "stats")) seen[6] = 1;
    if (kiln_plugin_scratch(ctx, 1000)) seen[7] = 1;
    k = 1;
    kiln_plugin_attr_int(ctx, "k", &k);
    kiln_tensor_view x;
    if ((st = kiln_plugin_input(ctx, 0, &x))) return st;
    void *p0, *p1;
    const int64_t one[1] = {1};
    if ((st = kiln_plugin_output(ctx, 0, KILN_DTYPE_FLOAT, 1, one, &p0)) || (st = kiln_plugin_output(ctx, 1, KILN_DTYPE_FLOAT, 0, NULL, &p1)))
        return st;
    const float *v = x.data;
    float s = 0, mx = v[0];
    for (size_t i = 0; i < x.nbytes / 4; i++) { s += v[i]; if (v[i] > mx) mx = v[i]; }
    ((float *)p0)[0] = s * (float)k;
    ((float *)p1)[0] = mx * (float)k;
    return KILN_OK;
}

static kiln_status stats_infer(kiln_plugin_context *ctx, void *user)
{
    (void)user;
    const int64_t one[1] = {1};
    kiln_status st = kiln_plugin_set_output_info(ctx, 0, KILN_DTYPE_FLOAT, 1, one);
    return st ? st : kiln_plugin_set_output_info(ctx, 1, KILN_DTYPE_FLOAT, 0, NULL);
}

static kiln_status register_op(const char *op, kiln_status (*run)(kiln_plugin_context *, void *),
                               kiln_status (*infer)(kiln_plugin_context *, void *), void *user)
{
    kiln_plugin_desc d = {.domain = "test.ops", .op_type = op, .user = user, .infer = infer, .run = run};
    return kiln_plugin_register(&d);
}

/* A network x -> op -> y; runs it and returns the run status (build failure: its status). */
static kiln_status run_op_net(const char *op, float *y_out)
{
    kiln_network *net;
    kiln_network_create("p", &net);
    const int64_t d[2] = {2, 2};
    kiln_net_tensor x = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 2, d), y;
    kiln_status st = kiln_network_add_plugin(net, "node", "test.ops", op, 1, &x, 0, NULL, 1, &y);
    if (!st) st = kiln_network_mark_output(net, y, "y");
    kiln_model *m = NULL;
    if (!st) st = kiln_network_build(net, NULL, &m);
    kiln_network_destroy(net);
    kiln_context *c = NULL;
    const float xv[4] = {1, 2, 3, 4};
    if (!st) st = kiln_context_create(m, &c);
    if (!st) st = kiln_context_set_input(c, "x", KILN_DTYPE_FLOAT, 2, d, xv, sizeof xv);
    if (!st) st = kiln_context_run(c);
    kiln_tensor_view v;
    if (!st && y_out && kiln_context_get_output(c, "y", &v) == KILN_OK) memcpy(y_out, v.data, v.nbytes < 16 ? v.nbytes : 16);
    kiln_context_destroy(c);
    kiln_model_destroy(m);
    return st;
}

static void test_misbehaving(void)
{
    CHECK(register_op("SilentFail", silent_fail_run, NULL, NULL) == KILN_OK && register_op("Weird", weird_status_run, NULL, NULL) == KILN_OK &&
          register_op("NoOutput", no_output_run, NULL, NULL) == KILN_OK, "register test ops: %s", kiln_last_error());
    kiln_status st = run_op_net("SilentFail", NULL);
    CHECK(st == KILN_ERR_SHAPE && has(kiln_last_error(), "node 'node' (test.ops.SilentFail): plugin run failed"), "silent failure: %s", kiln_last_error());
    st = run_op_net("Weird", NULL);
    CHECK(st == KILN_ERR_RUNTIME, "out-of-range status maps to RUNTIME: %d", (int)st);
    st = run_op_net("NoOutput", NULL);
    CHECK(st == KILN_ERR_RUNTIME && has(kiln_last_error(), "did not produce output 0"), "missing output: %s", kiln_last_error());
    st = run_op_net("Unregistered", NULL);
    CHECK(st == KILN_ERR_UNSUPPORTED && has(kiln_last_error(), "add_plugin 'node': op test.ops.Unregistered is neither"), "unregistered op: %s",
          kiln_last_error());

    kiln_plugin_desc d = {.domain = "", .op_type = "Relu", .run = no_output_run};
    CHECK(kiln_plugin_register(&d) == KILN_ERR_INVALID_ARGUMENT && has(kiln_last_error(), "kiln implements this op itself"), "built-in op");
    d.op_type = "NoRun";
    d.run = NULL;
    CHECK(kiln_plugin_register(&d) == KILN_ERR_INVALID_ARGUMENT && has(kiln_last_error(), "run callback is NULL"), "NULL run");
    CHECK(kiln_plugin_register(NULL) == KILN_ERR_INVALID_ARGUMENT, "NULL desc");

    /* attributes and two outputs, through a network plugin layer */
    static int seen[8];
    CHECK(register_op("Stats", stats_run, stats_infer, seen) == KILN_OK, "register Stats");
    kiln_network *net;
    kiln_network_create("stats", &net);
    const int64_t d2[2] = {2, 2};
    kiln_net_tensor x = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 2, d2), o[2];
    const int64_t ints[3] = {10, 20, 30};
    const float floats[2] = {1.5f, 2.5f};
    kiln_plugin_attr at[4] = {{.name = "k", .i = 3}, {.name = "mode", .s = "sum_max"}, {.name = "ints", .ints = ints, .n = 3},
                              {.name = "floats", .floats = floats, .n = 2}};
    st = kiln_network_add_plugin(net, "stats", "test.ops", "Stats", 1, &x, 4, at, 2, o);
    CHECK(st == KILN_OK, "add_plugin Stats: %s", kiln_last_error());
    kiln_tensor_info ti;
    CHECK(kiln_network_tensor_info(net, o[0], &ti) == KILN_OK && ti.ndim == 1 && ti.dims[0] == 1 && !strcmp(ti.name, "stats"),
          "plugin infer in the network: output 0 %s ndim %d", ti.name, ti.ndim);
    CHECK(kiln_network_tensor_info(net, o[1], &ti) == KILN_OK && ti.ndim == 0 && !strcmp(ti.name, "stats:1"), "output 1 scalar");
    /* a later layer uses the plugin's output and its inferred shape */
    kiln_net_tensor s2 = kiln_network_add_elementwise(net, "twice", o[0], o[0], KILN_EW_SUM);
    kiln_network_mark_output(net, s2, "sum2");
    kiln_network_mark_output(net, o[1], "max");
    kiln_model *m = NULL;
    CHECK(kiln_network_build(net, NULL, &m) == KILN_OK, "build stats: %s", kiln_last_error());
    kiln_network_destroy(net);
    kiln_context *c = NULL;
    const float xv[4] = {1, -2, 7, 4};
    if (m && kiln_context_create(m, &c) == KILN_OK && kiln_context_set_input(c, "x", KILN_DTYPE_FLOAT, 2, d2, xv, sizeof xv) == KILN_OK &&
        kiln_context_run(c) == KILN_OK) {
        kiln_tensor_view a, b;
        CHECK(kiln_context_get_output(c, "sum2", &a) == KILN_OK && ((const float *)a.data)[0] == 60.0f, "sum output");
        CHECK(kiln_context_get_output(c, "max", &b) == KILN_OK && ((const float *)b.data)[0] == 21.0f && b.ndim == 0, "max output");
        int all = 1;
        for (int i = 0; i < 8; i++) if (!seen[i]) { printf("  accessor check %d failed\n", i); all = 0; }
        CHECK(all, "attribute and context accessors");
    } else {
        CHECK(0, "stats run: %s", kiln_last_error());
    }
    kiln_context_destroy(c);
    kiln_model_destroy(m);

    /* a plugin node whose inputs are constants may run at load (constant folding) */
    kiln_network_create("folded", &net);
    kiln_net_tensor k = kiln_network_add_constant(net, "k", KILN_DTYPE_FLOAT, 2, d2, xv);
    kiln_plugin_attr at1[1] = {{.name = "k", .i = 2}};
    st = kiln_network_add_plugin(net, "stats", "test.ops", "Stats", 1, &k, 1, at1, 2, o);
    kiln_net_tensor in = kiln_network_add_input(net, "x", KILN_DTYPE_FLOAT, 1, (const int64_t[]){1});
    kiln_network_mark_output(net, kiln_network_add_elementwise(net, "add", in, o[0], KILN_EW_SUM), "y");
    m = NULL;
    CHECK(st == KILN_OK && kiln_network_build(net, NULL, &m) == KILN_OK, "folded build: %s", kiln_last_error());
    kiln_network_destroy(net);
    const float one = 1;
    c = NULL;
    if (m && kiln_context_create(m, &c) == KILN_OK && kiln_context_set_input(c, "x", KILN_DTYPE_FLOAT, 1, (const int64_t[]){1}, &one, 4) == KILN_OK &&
        kiln_context_run(c) == KILN_OK) {
        kiln_tensor_view a;
        CHECK(kiln_context_get_output(c, "y", &a) == KILN_OK && ((const float *)a.data)[0] == 21.0f, "folded plugin value");
    } else {
        CHECK(0, "folded run: %s", kiln_last_error());
    }
    kiln_context_destroy(c);
    kiln_model_destroy(m);
}

/* ---- concurrency ------------------------------------------------------------------------------ */

static int race_ok;
static void *race_register(void *arg)
{
    char op[32];
    snprintf(op, sizeof op, "Own%d", (int)(intptr_t)arg);
    if (register_op(op, no_output_run, NULL, NULL) == KILN_OK) __atomic_add_fetch(&race_ok, 100, __ATOMIC_RELAXED);
    if (register_op("Shared", no_output_run, NULL, NULL) == KILN_OK) __atomic_add_fetch(&race_ok, 1, __ATOMIC_RELAXED);
    /* lookups while others register */
    kiln_model *m = NULL;
    if (kiln_model_load_file(DATA "plugin_model.onnx", NULL, &m) == KILN_OK) __atomic_add_fetch(&race_ok, 10000, __ATOMIC_RELAXED);
    kiln_model_destroy(m);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, race_register, (void *)(intptr_t)i);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    CHECK(race_ok == 8 * 100 + 1 + 8 * 10000, "concurrent registration: %d (8 own ops, the shared one once, 8 loads)", race_ok);
}

int main(void)
{
    test_model();
    test_misbehaving();
    test_threads();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
