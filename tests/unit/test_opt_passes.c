/* test_opt_passes.c — the graph optimizer: for each pass, a small model from tests/data/opt
 * (make_models.py) is loaded with optimizations off and on; the test checks the rewrite
 * happened (op counts, per-pass statistics) and that both graphs compute the same outputs
 * (|opt - ref| <= 1e-5 |ref| + 1e-6). Run from the repository root. */
#include "kiln.h"
#include "onnx/onnx.h"
#include "opt/opt.h"
#include "ops/ops.h"
#include "runtime/runtime.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static ir_model *load(const char *path, bool optimize)
{
    ir_model *m = NULL;
    opt_set_enabled(optimize);
    if (onnx_model_load_file(path, &m) || opt_prepare_model(m)) {
        printf("load %s (opt %d): %s\n", path, optimize, core_error_text());
        ir_model_destroy(m);
        return NULL;
    }
    return m;
}

/* Nodes of op type `op` (any domain) in the top-level graph. */
static int count_op(const ir_model *m, const char *op)
{
    int n = 0;
    for (int i = 0; i < m->graph->n_nodes; i++) n += !strcmp(m->graph->nodes[i].op_type, op);
    return n;
}

static const ir_node *find_op(const ir_model *m, const char *op)
{
    for (int i = 0; i < m->graph->n_nodes; i++)
        if (!strcmp(m->graph->nodes[i].op_type, op)) return &m->graph->nodes[i];
    return NULL;
}

static uint64_t rng_state = 88172645463325252ull;
static float rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 4.0 - 2.0);
}

/* Random float inputs for every graph input without initializer (static shapes). */
static bool make_inputs(const ir_graph *g, core_value **in)
{
    for (int k = 0; k < g->n_inputs; k++) {
        const ir_value *v = &g->values[g->inputs[k]];
        in[k] = NULL;
        if (v->constant) continue;
        int64_t dims[KILN_MAX_DIMS];
        for (int i = 0; i < v->type.ndim; i++) dims[i] = v->type.dims[i].value;
        core_tensor *t = core_tensor_create(KILN_DTYPE_FLOAT, v->type.ndim, dims);
        if (!t) return false;
        for (int64_t i = 0; i < t->numel; i++) ((float *)t->data)[i] = rnd();
        in[k] = core_value_from_tensor(t);
    }
    return true;
}

/* Runs the model unoptimized and optimized on the same inputs and compares. Returns the
 * optimized model (caller destroys) for structural checks. */
static ir_model *check_model(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/opt/%s", name);
    ir_model *ref = load(path, false), *opt = load(path, true);
    CHECK(ref && opt, "%s loads with and without optimizations", name);
    if (!ref || !opt) { ir_model_destroy(ref); ir_model_destroy(opt); return NULL; }
    core_value *in[16] = {0}, *o1[16] = {0}, *o2[16] = {0};
    const ir_graph *g = ref->graph;
    CHECK(g->n_inputs <= 16 && g->n_outputs <= 16 && make_inputs(g, in), "%s: inputs", name);
    kiln_status s1 = rt_graph_run(ref->graph, in, o1);
    CHECK(s1 == KILN_OK, "%s: reference run: %s", name, core_error_text());
    kiln_status s2 = rt_graph_run(opt->graph, in, o2);
    CHECK(s2 == KILN_OK, "%s: optimized run: %s", name, core_error_text());
    for (int k = 0; !s1 && !s2 && k < g->n_outputs; k++) {
        const core_tensor *a = o1[k]->tensor, *b = o2[k]->tensor;
        bool same = a && b && a->ndim == b->ndim && a->numel == b->numel && a->dtype == b->dtype;
        for (int i = 0; same && i < a->ndim; i++) same = a->dims[i] == b->dims[i];
        CHECK(same, "%s: output %d shape/dtype", name, k);
        if (!same) continue;
        double worst = 0;
        int64_t at = 0;
        for (int64_t i = 0; i < a->numel; i++) {
            double r = ((const float *)a->data)[i], o = ((const float *)b->data)[i];
            double err = fabs(r - o) / (1e-5 * fabs(r) + 1e-6);
            if (!(err <= worst)) { worst = err; at = i; }
        }
        CHECK(worst <= 1.0, "%s: output %d differs: element %lld ref %.9g opt %.9g", name, k, (long long)at,
              ((const float *)a->data)[at], ((const float *)b->data)[at]);
    }
    for (int k = 0; k < 16; k++) { core_value_release(in[k]); core_value_release(o1[k]); core_value_release(o2[k]); }
    ir_model_destroy(ref);
    return opt;
}

/* A model through the public API (planned activation arena, where Concat elision, zero-copy
 * Reshapes and in-place ChannelUpdates happen), three runs, against the unoptimized graph;
 * input "x", output "y". */
static void check_planned(const char *path)
{
    ir_model *ref = load(path, false);
    opt_set_enabled(true);
    kiln_model *km = NULL;
    kiln_context *kc = NULL;
    kiln_status st = kiln_model_load_file(path, NULL, &km);
    if (!st) st = kiln_context_create(km, &kc);
    CHECK(ref && st == KILN_OK, "%s: loads (%s)", path, kiln_last_error());
    core_value *in[1] = {0}, *o[1] = {0};
    if (ref && !st && make_inputs(ref->graph, in) && rt_graph_run(ref->graph, in, o) == KILN_OK) {
        const core_tensor *x = in[0]->tensor, *want = o[0]->tensor;
        for (int run = 0; run < 3; run++) {
            kiln_tensor_view v;
            st = kiln_context_set_input(kc, "x", KILN_DTYPE_FLOAT, x->ndim, x->dims, x->data, x->nbytes);
            if (!st) st = kiln_context_run(kc);
            if (!st) st = kiln_context_get_output(kc, "y", &v);
            CHECK(st == KILN_OK, "%s run %d: %s", path, run, kiln_last_error());
            if (st) break;
            bool same = v.nbytes == want->nbytes;
            double worst = 0;
            for (int64_t i = 0; same && i < want->numel; i++) {
                double r = ((const float *)want->data)[i], q = ((const float *)v.data)[i];
                double err = fabs(r - q) / (1e-5 * fabs(r) + 1e-6);
                if (!(err <= worst)) worst = err;
            }
            CHECK(same && worst <= 1.0, "%s run %d: planned output differs (worst %.3g tolerances)", path, run, worst);
        }
    } else CHECK(0, "%s: reference run: %s", path, core_error_text());
    core_value_release(in[0]);
    core_value_release(o[0]);
    kiln_context_destroy(kc);
    kiln_model_destroy(km);
    ir_model_destroy(ref);
}

/* Hand-written ai.kiln nodes with inconsistent inputs fail with an error (fast and
 * reference kernels), never crash (make_models.py, "Hostile ai.kiln nodes"). */
static void check_hostile(void)
{
    static const char *const files[] = {"bad_cu_range.onnx", "bad_cu_dims.onnx", "bad_cu_mode.onnx",
                                        "bad_xoff.onnx",     "bad_mbconv.onnx",  "bad_expand.onnx"};
    for (int fast = 0; fast < 2; fast++) {
        ops_set_fast_kernels(fast == 1);
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            char path[256];
            snprintf(path, sizeof path, "tests/data/opt/%s", files[i]);
            ir_model *m = load(path, false);
            CHECK(m != NULL, "%s loads", files[i]);
            if (!m) continue;
            core_value *in[1] = {0}, *out[1] = {0};
            kiln_status st = make_inputs(m->graph, in) ? rt_graph_run(m->graph, in, out) : KILN_ERR_OUT_OF_MEMORY;
            CHECK(st != KILN_OK && st != KILN_ERR_OUT_OF_MEMORY && *core_error_text(),
                  "%s (%s kernels): status %d, '%s'", files[i], fast ? "fast" : "reference", (int)st, core_error_text());
            core_value_release(in[0]);
            core_value_release(out[0]);
            ir_model_destroy(m);
        }
    }
    ops_set_fast_kernels(true);
    opt_set_enabled(true);
}

int main(void)
{
    ir_model *m;
    /* the structural checks below are about the NCHW passes; layout_nhwc has its own */
    opt_set_layout_nhwc(false);

    /* Each model is loaded last with optimizations on, so opt_last_rewrites reports it. */
    if ((m = check_model("noop.onnx"))) {
        CHECK(opt_last_rewrites("eliminate_noop") >= 10, "noop: %d no-op rewrites", opt_last_rewrites("eliminate_noop"));
        CHECK(opt_last_rewrites("eliminate_dead") >= 2, "noop: %d dead nodes", opt_last_rewrites("eliminate_dead"));
        CHECK(m->graph->n_nodes == 2 && count_op(m, "Relu") == 1 && count_op(m, "Identity") == 1,
              "noop: %d nodes left (want Relu and the input->output Identity)", m->graph->n_nodes);
        const ir_node *r = find_op(m, "Relu");
        CHECK(r && !strcmp(m->graph->values[r->outputs[0]].name, "y"), "noop: Relu writes the graph output 'y'");
        ir_model_destroy(m);
    }
    if ((m = check_model("bn_fold.onnx"))) {
        CHECK(opt_last_rewrites("fold_batchnorm") == 3, "bn_fold: %d folds", opt_last_rewrites("fold_batchnorm"));
        CHECK(count_op(m, "BatchNormalization") == 0 && count_op(m, "ConvTranspose") == 1 && count_op(m, "Gemm") == 1 &&
              count_op(m, "FusedConv") == 1, "bn_fold: BN nodes remain or producers missing");
        ir_model_destroy(m);
    }
    if ((m = check_model("conv_act.onnx"))) {
        CHECK(count_op(m, "FusedConv") == 8 && m->graph->n_nodes == 8, "conv_act: %d FusedConv of %d nodes (want 8 of 8)",
              count_op(m, "FusedConv"), m->graph->n_nodes);
        static const char *const want[] = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "Silu", "HardSwish", "Relu", "Gelu"};
        int k = 0, resid = 0;
        for (int i = 0; i < m->graph->n_nodes; i++) {
            const ir_node *n = &m->graph->nodes[i];
            const ir_attr *a = ir_node_attr(n, "activation");
            CHECK(k < 8 && a && a->s && !strcmp(a->s, want[k]), "conv_act: node %d activation %s, want %s", i, a && a->s ? a->s : "-", k < 8 ? want[k] : "-");
            resid += n->n_inputs == 4;
            k++;
        }
        CHECK(resid == 1, "conv_act: %d FusedConv with a residual input (want 1)", resid);
        const ir_node *cl = NULL;
        for (int i = 0; i < m->graph->n_nodes; i++) {
            const ir_attr *a = ir_node_attr(&m->graph->nodes[i], "activation");
            if (a && a->s && !strcmp(a->s, "Clip")) cl = &m->graph->nodes[i];
        }
        const ir_attr *p = cl ? ir_node_attr(cl, "activation_params") : NULL;
        CHECK(p && p->n == 2 && p->floats[0] == 0 && p->floats[1] == 6, "conv_act: Clip params 0, 6");
        ir_model_destroy(m);
    }
    if ((m = check_model("matmul_act.onnx"))) {
        CHECK(count_op(m, "FusedGemm") == 1 && count_op(m, "FusedMatMul") == 3 && m->graph->n_nodes == 4,
              "matmul_act: %d FusedGemm, %d FusedMatMul, %d nodes (want 1, 3, 4)", count_op(m, "FusedGemm"),
              count_op(m, "FusedMatMul"), m->graph->n_nodes);
        int gelu = 0, gelu_tanh = 0;
        for (int i = 0; i < m->graph->n_nodes; i++) {
            const ir_attr *a = ir_node_attr(&m->graph->nodes[i], "activation");
            if (a && a->s) { gelu += !strcmp(a->s, "Gelu"); gelu_tanh += !strcmp(a->s, "GeluTanh"); }
        }
        CHECK(gelu == 1 && gelu_tanh == 1, "matmul_act: erf and tanh GELU recognized (%d, %d)", gelu, gelu_tanh);
        ir_model_destroy(m);
    }
    if ((m = check_model("elementwise.onnx"))) {
        CHECK(m->graph->n_nodes == 1 && count_op(m, "ElementwiseChain") == 1, "elementwise: %d nodes (want 1 ElementwiseChain)", m->graph->n_nodes);
        const ir_node *n = find_op(m, "ElementwiseChain");
        const ir_attr *a = n ? ir_node_attr(n, "opcodes") : NULL;
        CHECK(a && a->n == 9, "elementwise: %lld opcodes (want 9)", a ? (long long)a->n : -1LL);
        ir_model_destroy(m);
    }
    if ((m = check_model("siblings.onnx"))) {
        CHECK(opt_last_rewrites("merge_sibling_convs") == 1, "siblings: %d merges", opt_last_rewrites("merge_sibling_convs"));
        CHECK(count_op(m, "Conv") + count_op(m, "FusedConv") == 1 && count_op(m, "Split") == 1, "siblings: one Conv and a Split");
        ir_model_destroy(m);
    }
    if ((m = check_model("concat.onnx"))) {
        int marked = 0, unmarked = 0;
        for (int i = 0; i < m->graph->n_nodes; i++) {
            const ir_node *n = &m->graph->nodes[i];
            if (strcmp(n->op_type, "Concat")) continue;
            const ir_attr *a = ir_node_attr(n, "kiln_elide");
            if (a && a->i == 1) marked++;
            else unmarked++;
        }
        CHECK(marked == 1 && unmarked == 1, "concat: %d marked, %d unmarked (want 1, 1)", marked, unmarked);
        CHECK(opt_last_rewrites("elide_concat") == 1, "concat: %d elisions counted", opt_last_rewrites("elide_concat"));
        ir_model_destroy(m);
    }
    if ((m = check_model("transpose.onnx"))) {
        CHECK(count_op(m, "Transpose") == 1 && count_op(m, "Reshape") == 1 && m->graph->n_nodes == 3,
              "transpose: %d Transpose, %d Reshape, %d nodes (want 1, 1, 3)", count_op(m, "Transpose"), count_op(m, "Reshape"),
              m->graph->n_nodes);
        const ir_node *t = find_op(m, "Transpose");
        const ir_attr *p = t ? ir_node_attr(t, "perm") : NULL;
        CHECK(p && p->n == 3 && p->ints[0] == 2 && p->ints[1] == 1 && p->ints[2] == 0, "transpose: composed perm 2,1,0");
        ir_model_destroy(m);
    }
    if ((m = check_model("layernorm.onnx"))) {
        const ir_node *n = find_op(m, "LayerNormalization");
        CHECK(m->graph->n_nodes == 1 && n && (!n->domain || !*n->domain), "layernorm: one ONNX LayerNormalization (%d nodes)", m->graph->n_nodes);
        ir_model_destroy(m);
    }
    if ((m = check_model("layernorm_op13.onnx"))) {
        const ir_node *n = find_op(m, "LayerNormalization");
        CHECK(m->graph->n_nodes == 1 && n && n->domain && !strcmp(n->domain, "ai.kiln"), "layernorm_op13: one ai.kiln LayerNormalization");
        ir_model_destroy(m);
    }
    if ((m = check_model("attention.onnx"))) {
        CHECK(count_op(m, "Attention") == 2 && count_op(m, "Softmax") == 0 && count_op(m, "MatMul") == 0,
              "attention: %d Attention nodes (want 2)", count_op(m, "Attention"));
        CHECK(count_op(m, "Transpose") == 1, "attention: %d Transposes left (want 1: ViT's K)", count_op(m, "Transpose"));
        ir_model_destroy(m);
    }
    /* layout_nhwc: every conv and every op between them runs channels-last; Transposes only
     * at the region's entry (x) and where NCHW values are still read (Flatten, outputs). */
    opt_set_layout_nhwc(true);
    if ((m = check_model("layout.onnx"))) {
        CHECK(count_op(m, "ConvNhwc") == 4 && count_op(m, "Conv") == 0 && count_op(m, "FusedConv") == 0,
              "layout: %d ConvNhwc, %d Conv, %d FusedConv (want 4, 0, 0)", count_op(m, "ConvNhwc"), count_op(m, "Conv"),
              count_op(m, "FusedConv"));
        CHECK(count_op(m, "MaxPoolNhwc") == 1 && count_op(m, "AveragePoolNhwc") == 1 && count_op(m, "GlobalAveragePoolNhwc") == 1,
              "layout: pools converted");
        CHECK(count_op(m, "Transpose") == 4, "layout: %d Transposes (want 4: x in; ap, cat, y3 out)", count_op(m, "Transpose"));
        const ir_node *cc = find_op(m, "Concat");
        const ir_attr *ax = cc ? ir_node_attr(cc, "axis") : NULL;
        CHECK(ax && ax->i == 3, "layout: Concat on axis 3");
        /* 16 nodes less Relu, the residual Add and Sigmoid, fused into their convs */
        CHECK(opt_last_rewrites("layout_nhwc") == 13, "layout: %d rewrites (want 13)", opt_last_rewrites("layout_nhwc"));
        ir_model_destroy(m);
    }
    /* YOLOv5-style head: the Sigmoids move into their Convs (ConvNhwc with a Sigmoid
     * epilogue); each level's layout Transpose + Reshape + Transpose becomes one Transpose
     * of the NHWC output viewed [1, H, W, 3, 6]. */
    if ((m = check_model("yolo_head.onnx"))) {
        CHECK(count_op(m, "Sigmoid") == 0 && count_op(m, "ConvNhwc") == 2, "yolo_head: %d Sigmoid, %d ConvNhwc (want 0, 2)",
              count_op(m, "Sigmoid"), count_op(m, "ConvNhwc"));
        CHECK(opt_last_rewrites("hoist_activation") == 2, "yolo_head: %d hoists (want 2)", opt_last_rewrites("hoist_activation"));
        CHECK(opt_last_rewrites("cancel_transpose_reshape_nhwc") == 2, "yolo_head: %d folds (want 2)",
              opt_last_rewrites("cancel_transpose_reshape_nhwc"));
        /* x into NHWC, and one per level */
        CHECK(count_op(m, "Transpose") == 3, "yolo_head: %d Transposes (want 3)", count_op(m, "Transpose"));
        int sig = 0;
        for (int i = 0; i < m->graph->n_nodes; i++) {
            const ir_node *n = &m->graph->nodes[i];
            const ir_attr *a = strcmp(n->op_type, "ConvNhwc") ? NULL : ir_node_attr(n, "activation");
            sig += a && a->s && !strcmp(a->s, "Sigmoid");
            if (!strcmp(n->op_type, "Transpose")) {
                const ir_attr *p = ir_node_attr(n, "perm");
                CHECK(p && (p->n == 4 || (p->n == 5 && p->ints[0] == 0 && p->ints[1] == 3 && p->ints[2] == 1 &&
                                          p->ints[3] == 2 && p->ints[4] == 4)),
                      "yolo_head: folded perm is 0,3,1,2,4");
            }
        }
        CHECK(sig == 2, "yolo_head: %d ConvNhwc with a Sigmoid epilogue (want 2)", sig);
        /* update_concat_slices: each level's Concat(xy, wh, y[..., 4:6]) updates y in place */
        CHECK(count_op(m, "ChannelUpdate") == 2 && count_op(m, "Concat") == 1 && count_op(m, "Slice") == 4 &&
                  opt_last_rewrites("update_concat_slices") == 2,
              "yolo_head: %d ChannelUpdate, %d Concat, %d Slice (want 2, 1, 4)", count_op(m, "ChannelUpdate"),
              count_op(m, "Concat"), count_op(m, "Slice"));
        const ir_node *cu = find_op(m, "ChannelUpdate");
        const ir_attr *offs = cu ? ir_node_attr(cu, "offsets") : NULL;
        CHECK(offs && offs->n == 2 && offs->ints[0] == 0 && offs->ints[1] == 2, "yolo_head: update offsets 0, 2");
        ir_model_destroy(m);
    }
    check_planned("tests/data/opt/yolo_head.onnx");
    check_hostile();
    /* fuse_csp_nhwc: the Splits and Concats of both C3 blocks are gone; the shortcut Adds
     * (2) and the no-shortcut Concat (1) became ChannelUpdates on the merged conv's output */
    if ((m = check_model("csp.onnx"))) {
        CHECK(opt_last_rewrites("fuse_csp_nhwc") == 2, "csp: %d rewrites (want 2)", opt_last_rewrites("fuse_csp_nhwc"));
        CHECK(count_op(m, "Split") == 0 && count_op(m, "Concat") == 0 && count_op(m, "Add") == 0,
              "csp: %d Split, %d Concat, %d Add left (want 0)", count_op(m, "Split"), count_op(m, "Concat"), count_op(m, "Add"));
        int add = 0, set = 0, off = 0;
        for (int i = 0; i < m->graph->n_nodes; i++) {
            const ir_node *n = &m->graph->nodes[i];
            const ir_attr *a = strcmp(n->op_type, "ChannelUpdate") ? NULL : ir_node_attr(n, "mode");
            if (a) add += !strcmp(a->s, "add"), set += !strcmp(a->s, "set");
            off += !strcmp(n->op_type, "ConvNhwc") && ir_node_attr(n, "x_channel_offset");
        }
        CHECK(add == 2 && set == 1 && off == 3, "csp: %d add, %d set updates, %d slice-reading convs (want 2, 1, 3)", add, set, off);
        ir_model_destroy(m);
    }
    check_planned("tests/data/opt/csp.onnx");
    /* fuse_expand_dw: both inverted-residual fronts fuse, the shared 1x1 does not; the fused
     * op's CPU kernel (check_model) and its reference kernel both match the unfused graph */
    if ((m = check_model("mbconv.onnx"))) {
        /* 3 expand+dw, then 3 projections folded in (2 blocks, the dw -> project pair) */
        CHECK(count_op(m, "ConvNhwcMbConv") == 3 && count_op(m, "ConvNhwcExpandDw") == 1 &&
                  opt_last_rewrites("fuse_expand_dw") == 6,
              "mbconv: %d ConvNhwcMbConv, %d ConvNhwcExpandDw, %d rewrites (want 3, 1, 6)", count_op(m, "ConvNhwcMbConv"),
              count_op(m, "ConvNhwcExpandDw"), opt_last_rewrites("fuse_expand_dw"));
        CHECK(count_op(m, "ConvNhwc") == 2, "mbconv: %d ConvNhwc left (want 2: the shared 1x1 and its dw)",
              count_op(m, "ConvNhwc"));
        int expand = 0, resid = 0;
        for (int i = 0; i < m->graph->n_nodes; i++) {
            const ir_node *n = &m->graph->nodes[i];
            if (strcmp(n->op_type, "ConvNhwcMbConv")) continue;
            const ir_attr *ea = ir_node_attr(n, "expand_activation");
            expand += ea && (!strcmp(ea->s, "Clip") || !strcmp(ea->s, "Silu")) && n->inputs[4] >= 0;
            resid += n->inputs[3] >= 0;
        }
        CHECK(expand == 2 && resid == 1, "mbconv: %d blocks with expansion, %d with residual (want 2, 1)", expand, resid);
        ir_model_destroy(m);
    }
    ops_set_fast_kernels(false);
    if ((m = check_model("mbconv.onnx"))) {
        CHECK(count_op(m, "ConvNhwcMbConv") == 3 && count_op(m, "ConvNhwcExpandDw") == 1, "mbconv (reference kernels): fused");
        ir_model_destroy(m);
    }
    if ((m = check_model("yolo_head.onnx"))) { /* ChannelUpdate with several updates */
        CHECK(count_op(m, "ChannelUpdate") == 2, "yolo_head (reference kernels): rewritten");
        ir_model_destroy(m);
    }
    if ((m = check_model("csp.onnx"))) { /* ChannelUpdate and x_channel_offset references */
        CHECK(count_op(m, "ChannelUpdate") == 3, "csp (reference kernels): rewritten");
        ir_model_destroy(m);
    }
    ops_set_fast_kernels(true);

    /* types reach the end of a chain of 12 Splits */
    if ((m = check_model("split_chain.onnx"))) {
        int untyped = 0;
        for (int v = 0; v < m->graph->n_values; v++) {
            kiln_dtype dt = m->graph->values[v].type.dtype;
            if (m->graph->values[v].constant) continue;
            if (m->graph->values[v].producer < 0 && !m->graph->values[v].is_graph_input) continue;
            if (m->graph->values[v].type.kind != IR_TYPE_TENSOR || m->graph->values[v].type.ndim != 4 || dt != KILN_DTYPE_FLOAT)
                untyped++;
        }
        CHECK(untyped == 0, "split_chain: %d values without a 4-D float type", untyped);
        ir_model_destroy(m);
    }
    opt_set_layout_nhwc(false);
    if ((m = check_model("layout.onnx"))) {
        CHECK(count_op(m, "ConvNhwc") == 0 && count_op(m, "Transpose") == 0, "layout off: no NHWC ops, no Transposes");
        ir_model_destroy(m);
    }
    opt_set_layout_nhwc(true);
    /* KILN_OPT=0 semantics: disabled means no pass runs. */
    opt_set_enabled(false);
    ir_model *raw = load("tests/data/opt/conv_act.onnx", false);
    CHECK(raw && count_op(raw, "FusedConv") == 0 && count_op(raw, "Conv") == 8, "disabled: graph as written");
    ir_model_destroy(raw);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
