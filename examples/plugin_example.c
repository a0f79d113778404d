/* plugin_example.c — a custom operator for kiln: com.example.ClampScale,
 * y = min(max(x, lo), hi) * scale on float tensors (attributes lo, hi, scale), registered with
 * kiln_plugin_register and then used by an ONNX model that kiln could not load without it.
 *
 * Build (after `make`, from the repository root):
 *   cc -O2 -Iinclude examples/plugin_example.c build/libkiln.a -lm -lpthread -o build/plugin_example
 * Run:
 *   build/plugin_example tests/data/network/plugin_model.onnx
 * (tests/data/network/make_test_data.py writes that model with onnx.helper: Mul -> ClampScale -> Add.)
 * tests/unit/test_plugin.c includes this file (PLUGIN_EXAMPLE_NO_MAIN) and tests it. */
#include "kiln.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct clamp_scale_attrs {
    float lo, hi, scale;
} clamp_scale_attrs;

/* Attributes with their defaults; an error (naming the node) when they make no sense. */
static kiln_status clamp_scale_read_attrs(kiln_plugin_context *ctx, clamp_scale_attrs *a)
{
    a->lo = -INFINITY;
    a->hi = INFINITY;
    a->scale = 1.0f;
    /* Absent attributes leave the defaults (KILN_ERR_NOT_FOUND); a wrong type is an error. */
    kiln_status st;
    if ((st = kiln_plugin_attr_float(ctx, "lo", &a->lo)) && st != KILN_ERR_NOT_FOUND) return st;
    if ((st = kiln_plugin_attr_float(ctx, "hi", &a->hi)) && st != KILN_ERR_NOT_FOUND) return st;
    if ((st = kiln_plugin_attr_float(ctx, "scale", &a->scale)) && st != KILN_ERR_NOT_FOUND) return st;
    if (!(a->lo <= a->hi)) return kiln_plugin_error(ctx, KILN_ERR_INVALID_MODEL, "lo (%g) is above hi (%g)", a->lo, a->hi);
    return KILN_OK;
}

/* Shape inference at load: one float input, output of the same shape. */
static kiln_status clamp_scale_infer(kiln_plugin_context *ctx, void *user)
{
    (void)user;
    clamp_scale_attrs a;
    kiln_status st = clamp_scale_read_attrs(ctx, &a);
    if (st) return st;
    if (kiln_plugin_input_count(ctx) != 1)
        return kiln_plugin_error(ctx, KILN_ERR_INVALID_MODEL, "expects 1 input, got %d", kiln_plugin_input_count(ctx));
    kiln_tensor_info in;
    if ((st = kiln_plugin_input_info(ctx, 0, &in))) return st;
    if (in.dtype != KILN_DTYPE_FLOAT && in.dtype != KILN_DTYPE_UNDEFINED)
        return kiln_plugin_error(ctx, KILN_ERR_DTYPE, "input is %s, expected float", kiln_dtype_name(in.dtype));
    return kiln_plugin_set_output_info(ctx, 0, KILN_DTYPE_FLOAT, in.ndim, in.dims);
}

/* The kernel. `user` counts calls here, to show what it is for (it must be thread-safe). */
static kiln_status clamp_scale_run(kiln_plugin_context *ctx, void *user)
{
    if (user) __atomic_add_fetch((long *)user, 1, __ATOMIC_RELAXED);
    clamp_scale_attrs a;
    kiln_status st = clamp_scale_read_attrs(ctx, &a);
    if (st) return st;
    kiln_tensor_view x;
    if ((st = kiln_plugin_input(ctx, 0, &x))) return st;
    if (x.dtype != KILN_DTYPE_FLOAT)
        return kiln_plugin_error(ctx, KILN_ERR_DTYPE, "input is %s, expected float", kiln_dtype_name(x.dtype));
    void *out;
    if ((st = kiln_plugin_output(ctx, 0, KILN_DTYPE_FLOAT, x.ndim, x.dims, &out))) return st;
    float *y = out;
    const float *xv = x.data;
    size_t n = x.nbytes / sizeof(float);
    for (size_t i = 0; i < n; i++) {
        /* An error from inside the kernel, propagated to kiln_context_run's caller. */
        if (isnan(xv[i])) return kiln_plugin_error(ctx, KILN_ERR_RUNTIME, "input element %zu is NaN", i);
        float v = xv[i] < a.lo ? a.lo : xv[i] > a.hi ? a.hi : xv[i];
        y[i] = v * a.scale;
    }
    return KILN_OK;
}

static long clamp_scale_calls;

/* Register once per process, before loading models that use the op. */
static kiln_status clamp_scale_register(void)
{
    kiln_plugin_desc d = {
        .domain = "com.example",
        .op_type = "ClampScale",
        .user = &clamp_scale_calls,
        .infer = clamp_scale_infer,
        .run = clamp_scale_run,
    };
    return kiln_plugin_register(&d);
}

#ifndef PLUGIN_EXAMPLE_NO_MAIN
int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s plugin_model.onnx\n", argv[0]);
        return 2;
    }
    kiln_model *model = NULL;
    kiln_context *ctx = NULL;
    int rc = 1;
    /* Without the plugin the model does not load: "... op com.example.ClampScale ... is not supported". */
    if (kiln_model_load_file(argv[1], NULL, &model) == KILN_OK) {
        fprintf(stderr, "unexpected: the model loaded without the plugin\n");
        kiln_model_destroy(model);
        return 1;
    }
    printf("without the plugin: %s\n", kiln_last_error());
    if (clamp_scale_register() || kiln_model_load_file(argv[1], NULL, &model) || kiln_context_create(model, &ctx)) goto done;
    float x[2 * 3 * 4 * 5];
    for (int i = 0; i < 120; i++) x[i] = (float)(i - 60) / 40.0f;
    const int64_t dims[4] = {2, 3, 4, 5};
    if (kiln_context_set_input(ctx, "X", KILN_DTYPE_FLOAT, 4, dims, x, sizeof x) || kiln_context_run(ctx)) goto done;
    kiln_tensor_view y;
    if (kiln_context_get_output(ctx, "Y", &y)) goto done;
    const float *yv = y.data;
    printf("with the plugin: Y[0..4] = %g %g %g %g %g (plugin ran %ld time%s)\n", yv[0], yv[1], yv[2], yv[3], yv[4],
           clamp_scale_calls, clamp_scale_calls == 1 ? "" : "s");
    rc = 0;
done:
    if (rc) fprintf(stderr, "error: %s\n", kiln_last_error());
    kiln_context_destroy(ctx);
    kiln_model_destroy(model);
    return rc;
}
#endif
