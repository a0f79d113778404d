/* test_fold.c — load-time constant folding of shape computations and symbolic shape
 * inference, on models from tests/data (tests/data/make_bad_models.py). */
#include "onnx/onnx.h"
#include "opt/opt.h"
#include "runtime/runtime.h"
#include <stdio.h>
#include <string.h>

static int passed, failed;
#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static ir_model *load(const char *path)
{
    ir_model *m = NULL;
    if (onnx_model_load_file(path, &m) || rt_graph_prepare(m->graph) || opt_fold_constants(m->graph)) {
        printf("load %s: %s\n", path, core_error_text());
        ir_model_destroy(m);
        return NULL;
    }
    return m;
}

static const ir_type *type_of(const ir_graph *g, const char *name)
{
    int v = ir_graph_find_value(g, name);
    return v >= 0 ? &g->values[v].type : NULL;
}

int main(void)
{
    ir_model *m = load("tests/data/fold_shape_chain.onnx");
    CHECK(m != NULL, "fold_shape_chain loads");
    if (m) {
        const ir_graph *g = m->graph;
        CHECK(g->n_nodes == 2, "Shape->Gather->Unsqueeze->Concat folded: %d nodes left (want Relu, Reshape)", g->n_nodes);
        int v = ir_graph_find_value(g, "newshape");
        CHECK(v >= 0 && g->values[v].constant, "newshape is a constant");
        if (v >= 0 && g->values[v].constant) {
            const core_tensor *t = g->values[v].constant->tensor;
            CHECK(t->numel == 2 && ((int64_t *)t->data)[0] == 2 && ((int64_t *)t->data)[1] == -1, "newshape = [2, -1]");
        }
        const ir_type *y = type_of(g, "y");
        CHECK(y && y->ndim == 2 && y->dims[0].value == 2 && y->dims[1].value == 12, "y inferred as 2x12");
        /* and it still runs */
        float x[24];
        for (int i = 0; i < 24; i++) x[i] = (float)i - 12;
        int64_t dims[3] = {2, 3, 4};
        core_value *in = core_value_from_tensor(core_tensor_wrap(KILN_DTYPE_FLOAT, 3, dims, x)), *out = NULL;
        CHECK(rt_graph_run(g, &in, &out) == KILN_OK, "run: %s", core_error_text());
        if (out) {
            const core_tensor *t = out->tensor;
            CHECK(t->ndim == 2 && t->dims[0] == 2 && t->dims[1] == 12 && ((float *)t->data)[0] == 0 && ((float *)t->data)[23] == 11,
                  "reshaped relu output");
        }
        core_value_release(in);
        core_value_release(out);
        ir_model_destroy(m);
    }
    m = load("tests/data/symbolic_batch.onnx");
    CHECK(m != NULL, "symbolic_batch loads");
    if (m) {
        const ir_type *c = type_of(m->graph, "c"), *f = type_of(m->graph, "f"), *y = type_of(m->graph, "y");
        CHECK(c && c->ndim == 4 && c->dims[0].value == -1 && c->dims[0].symbol && !strcmp(c->dims[0].symbol, "N") &&
              c->dims[1].value == 4 && c->dims[2].value == 6 && c->dims[3].value == 6, "conv output N x 4 x 6 x 6");
        CHECK(f && f->ndim == 2 && f->dims[0].symbol && !strcmp(f->dims[0].symbol, "N") && f->dims[1].value == 144, "flatten N x 144");
        CHECK(y && y->ndim == 2 && y->dims[0].symbol && !strcmp(y->dims[0].symbol, "N") && y->dims[1].value == 10, "gemm N x 10");
        ir_model_destroy(m);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
