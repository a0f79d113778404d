/* control.c — reference kernels for control flow (If, Loop, Scan), sequences and
 * optionals. Subgraphs run through ops_run_subgraph. */
#include "ops/ops.h"
#include "ops/util.h"
#include <stdlib.h>
#include <string.h>

/* Copy `count` elements (strings deep-copied) from src[soff] to dst[doff]. */
static bool ctl_copy(core_tensor *dst, int64_t doff, const core_tensor *src, int64_t soff, int64_t count)
{
    if (count <= 0) return true;
    if (src->dtype == KILN_DTYPE_STRING) {
        char *const *s = src->data;
        for (int64_t i = 0; i < count; i++)
            if (!core_tensor_set_string(dst, doff + i, s[soff + i], strlen(s[soff + i]))) return false;
        return true;
    }
    size_t es = core_dtype_size(src->dtype);
    memcpy((char *)dst->data + (size_t)doff * es, (const char *)src->data + (size_t)soff * es, (size_t)count * es);
    return true;
}

/* ---- If ---- */
static kiln_status if_run(ops_ctx *c)
{
    const core_tensor *cond = ops_input(c, 0);
    if (!cond || cond->numel < 1) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "cond must be a non-empty tensor");
    bool take = core_load_f64(cond->dtype, cond->data, 0) != 0;
    const ir_graph *g = ops_attr_graph(c, take ? "then_branch" : "else_branch");
    if (!g) return ops_error(c, KILN_ERR_INVALID_MODEL, "missing %s", take ? "then_branch" : "else_branch");
    if (g->n_outputs != ops_n_outputs(c))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "branch has %d outputs, node has %d", g->n_outputs, ops_n_outputs(c));
    core_value **outs = calloc((size_t)g->n_outputs + 1, sizeof *outs);
    if (!outs) return core_oom();
    kiln_status st = ops_run_subgraph(c, g, 0, NULL, outs);
    for (int k = 0; k < g->n_outputs; k++) {
        if (st == KILN_OK) st = ops_set_output(c, k, outs[k]);
        else core_value_release(outs[k]);
    }
    free(outs);
    return st;
}

/* Stack per-iteration tensors (all the same shape and dtype) along a new axis `axis`
 * (in [0, rank]); reverse stores them in reverse order. */
static core_value *ctl_stack(ops_ctx *c, core_value **items, int64_t n, int64_t axis, bool reverse,
                             kiln_status *st)
{
    if (n == 0) {
        int64_t d0 = 0;
        core_tensor *t = core_tensor_create(KILN_DTYPE_FLOAT, 1, &d0);
        if (!t) { *st = core_oom(); return NULL; }
        return core_value_from_tensor(t);
    }
    const core_tensor *first = items[0]->tensor;
    for (int64_t i = 0; i < n; i++) {
        const core_tensor *t = items[i]->kind == CORE_VALUE_TENSOR ? items[i]->tensor : NULL;
        if (!t || t->dtype != first->dtype || t->ndim != first->ndim ||
            memcmp(t->dims, first->dims, sizeof(int64_t) * (size_t)t->ndim)) {
            *st = ops_error(c, KILN_ERR_SHAPE, "scan output changes shape or dtype between iterations");
            return NULL;
        }
    }
    int r = first->ndim;
    if (axis < 0) axis += r + 1;
    if (axis < 0 || axis > r || r + 1 > KILN_MAX_DIMS) { *st = ops_error(c, KILN_ERR_SHAPE, "bad scan output axis"); return NULL; }
    int64_t dims[KILN_MAX_DIMS];
    for (int i = 0, j = 0; i <= r; i++) dims[i] = i == axis ? n : first->dims[j++];
    core_tensor *out = core_tensor_create(first->dtype, r + 1, dims);
    if (!out) { *st = core_oom(); return NULL; }
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= first->dims[i];
    for (int i = (int)axis; i < r; i++) inner *= first->dims[i];
    for (int64_t it = 0; it < n; it++) {
        const core_tensor *t = items[reverse ? n - 1 - it : it]->tensor;
        for (int64_t o = 0; o < outer; o++)
            if (!ctl_copy(out, (o * n + it) * inner, t, o * inner, inner)) { core_tensor_destroy(out); *st = core_oom(); return NULL; }
    }
    return core_value_from_tensor(out);
}

/* Slice index `idx` of tensor t along `axis`, removing that axis. */
static core_value *ctl_slice(const core_tensor *t, int64_t axis, int64_t idx)
{
    int64_t dims[KILN_MAX_DIMS];
    int r = t->ndim;
    for (int i = 0, j = 0; i < r; i++) if (i != axis) dims[j++] = t->dims[i];
    core_tensor *out = core_tensor_create(t->dtype, r - 1, dims);
    if (!out) return NULL;
    int64_t outer = 1, inner = 1, n = t->dims[axis];
    for (int i = 0; i < axis; i++) outer *= t->dims[i];
    for (int i = (int)axis + 1; i < r; i++) inner *= t->dims[i];
    for (int64_t o = 0; o < outer; o++)
        if (!ctl_copy(out, o * inner, t, (o * n + idx) * inner, inner)) { core_tensor_destroy(out); return NULL; }
    return core_value_from_tensor(out);
}

/* ---- Loop ---- */
static kiln_status loop_run(ops_ctx *c)
{
    const ir_graph *body = ops_attr_graph(c, "body");
    if (!body) return ops_error(c, KILN_ERR_INVALID_MODEL, "missing body");
    int n_carried = ops_n_inputs(c) - 2;
    if (n_carried < 0) n_carried = 0;
    if (body->n_inputs != n_carried + 2 || body->n_outputs < n_carried + 1)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "body signature does not match %d loop-carried values", n_carried);
    int n_scan = body->n_outputs - 1 - n_carried;
    if (ops_n_outputs(c) > n_carried + n_scan)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "node has more outputs than the body provides");
    const core_tensor *mt = ops_input(c, 0), *ct = ops_input(c, 1);
    int64_t max_trip = mt && mt->numel ? core_load_i64(mt->dtype, mt->data, 0) : INT64_MAX;
    bool cond = ct && ct->numel ? core_load_i64(ct->dtype, ct->data, 0) != 0 : true;

    kiln_status st = KILN_OK;
    core_value **state = calloc((size_t)n_carried + 2, sizeof *state);
    core_value **bin = calloc((size_t)n_carried + 2, sizeof *bin);
    core_value **bout = calloc((size_t)body->n_outputs + 1, sizeof *bout);
    core_value ***scans = calloc((size_t)n_scan + 1, sizeof *scans);
    int64_t n_iter = 0, cap = 0;
    if (!state || !bin || !bout || !scans) { st = core_oom(); goto done; }
    for (int k = 0; k < n_carried; k++) {
        core_value *v = ops_input_value(c, k + 2);
        if (!v) { st = ops_error(c, KILN_ERR_INVALID_ARGUMENT, "loop-carried input %d missing", k); goto done; }
        state[k] = core_value_retain(v);
    }
    for (int64_t it = 0; it < max_trip && cond; it++) {
        core_tensor *itt = core_tensor_create(KILN_DTYPE_INT64, 0, NULL);
        core_tensor *cdt = core_tensor_create(KILN_DTYPE_BOOL, 0, NULL);
        if (!itt || !cdt) { core_tensor_destroy(itt); core_tensor_destroy(cdt); st = core_oom(); goto done; }
        *(int64_t *)itt->data = it;
        *(uint8_t *)cdt->data = cond;
        bin[0] = core_value_from_tensor(itt);
        bin[1] = core_value_from_tensor(cdt);
        for (int k = 0; k < n_carried; k++) bin[k + 2] = state[k];
        st = ops_run_subgraph(c, body, n_carried + 2, bin, bout);
        core_value_release(bin[0]);
        core_value_release(bin[1]);
        if (st) goto done;
        const core_tensor *co = bout[0]->kind == CORE_VALUE_TENSOR ? bout[0]->tensor : NULL;
        cond = co && co->numel ? core_load_i64(co->dtype, co->data, 0) != 0 : false;
        core_value_release(bout[0]);
        for (int k = 0; k < n_carried; k++) { core_value_release(state[k]); state[k] = bout[k + 1]; }
        if (n_iter == cap) {
            cap = cap ? cap * 2 : 16;
            for (int s = 0; s < n_scan; s++) {
                core_value **p = realloc(scans[s], sizeof *p * (size_t)cap);
                if (!p) { st = core_oom(); for (int k = 0; k < n_scan; k++) core_value_release(bout[1 + n_carried + k]); goto done; }
                scans[s] = p;
            }
        }
        for (int s = 0; s < n_scan; s++) scans[s][n_iter] = bout[1 + n_carried + s];
        n_iter++;
    }
    for (int k = 0; k < n_carried && k < ops_n_outputs(c); k++) {
        st = ops_set_output(c, k, state[k]);
        state[k] = NULL;
        if (st) goto done;
    }
    for (int s = 0; s < n_scan && n_carried + s < ops_n_outputs(c); s++) {
        core_value *v = ctl_stack(c, scans[s], n_iter, 0, false, &st);
        if (!v) goto done;
        if ((st = ops_set_output(c, n_carried + s, v))) goto done;
    }
done:
    for (int k = 0; state && k < n_carried; k++) core_value_release(state[k]);
    for (int s = 0; scans && s < n_scan; s++) {
        for (int64_t i = 0; scans[s] && i < n_iter; i++) core_value_release(scans[s][i]);
        free(scans[s]);
    }
    free(scans);
    free(state);
    free(bin);
    free(bout);
    return st;
}

/* ---- Scan (opset 9+; opset 8 form with batch axis handled by scan8_run) ---- */
static kiln_status scan_core(ops_ctx *c, const ir_graph *body, int n_state, int n_scan_in,
                             core_value *const *init, const core_tensor *const *scan_in,
                             core_value **final_state, core_value **scan_out, int n_scan_out)
{
    int64_t n_axes_in = 0, n_dirs_in = 0, n_axes_out = 0, n_dirs_out = 0;
    const int64_t *axes_in = ops_attr_ints(c, "scan_input_axes", &n_axes_in);
    const int64_t *dirs_in = ops_attr_ints(c, "scan_input_directions", &n_dirs_in);
    const int64_t *axes_out = ops_attr_ints(c, "scan_output_axes", &n_axes_out);
    const int64_t *dirs_out = ops_attr_ints(c, "scan_output_directions", &n_dirs_out);
    if (ops_opset(c) < 9) { axes_in = axes_out = NULL; n_axes_in = n_axes_out = 0; dirs_in = ops_attr_ints(c, "directions", &n_dirs_in); }
    int64_t len = -1;
    int64_t axis_of[64];
    if (n_scan_in > 64) return ops_error(c, KILN_ERR_UNSUPPORTED, "too many scan inputs");
    for (int i = 0; i < n_scan_in; i++) {
        int64_t ax = i < n_axes_in ? axes_in[i] : 0;
        ax = ops_axis(ax, scan_in[i]->ndim);
        if (ax < 0 || scan_in[i]->ndim < 1) return ops_error(c, KILN_ERR_SHAPE, "bad scan input axis for input %d", i);
        axis_of[i] = ax;
        if (len >= 0 && scan_in[i]->dims[ax] != len) return ops_error(c, KILN_ERR_SHAPE, "scan inputs differ in length");
        len = scan_in[i]->dims[ax];
    }
    if (len < 0) len = 0;
    kiln_status st = KILN_OK;
    core_value **state = calloc((size_t)n_state + 1, sizeof *state);
    core_value **bin = calloc((size_t)(n_state + n_scan_in) + 1, sizeof *bin);
    core_value **bout = calloc((size_t)body->n_outputs + 1, sizeof *bout);
    core_value **items = calloc((size_t)(n_scan_out * (len ? len : 1)) + 1, sizeof *items);
    if (!state || !bin || !bout || !items) { st = core_oom(); goto done; }
    for (int k = 0; k < n_state; k++) state[k] = core_value_retain(init[k]);
    for (int64_t it = 0; it < len; it++) {
        for (int k = 0; k < n_state; k++) bin[k] = state[k];
        for (int i = 0; i < n_scan_in; i++) {
            bool rev = i < n_dirs_in && dirs_in[i];
            bin[n_state + i] = ctl_slice(scan_in[i], axis_of[i], rev ? len - 1 - it : it);
            if (!bin[n_state + i]) { for (int j = 0; j < i; j++) core_value_release(bin[n_state + j]); st = core_oom(); goto done; }
        }
        st = ops_run_subgraph(c, body, n_state + n_scan_in, bin, bout);
        for (int i = 0; i < n_scan_in; i++) core_value_release(bin[n_state + i]);
        if (st) goto done;
        for (int k = 0; k < n_state; k++) { core_value_release(state[k]); state[k] = bout[k]; }
        for (int s = 0; s < n_scan_out; s++) items[s * len + it] = bout[n_state + s];
    }
    for (int k = 0; k < n_state; k++) { final_state[k] = state[k]; state[k] = NULL; }
    for (int s = 0; s < n_scan_out; s++) {
        bool rev = s < n_dirs_out && dirs_out[s];
        int64_t ax = s < n_axes_out ? axes_out[s] : 0;
        scan_out[s] = ctl_stack(c, items + s * len, len, ax, rev, &st);
        if (!scan_out[s]) {
            for (int j = 0; j < s; j++) { core_value_release(scan_out[j]); scan_out[j] = NULL; }
            for (int k = 0; k < n_state; k++) { core_value_release(final_state[k]); final_state[k] = NULL; }
            goto done;
        }
    }
done:
    for (int k = 0; state && k < n_state; k++) core_value_release(state[k]);
    for (int64_t i = 0; items && i < n_scan_out * len; i++) core_value_release(items[i]);
    free(state);
    free(bin);
    free(bout);
    free(items);
    return st;
}

static kiln_status scan_run(ops_ctx *c)
{
    const ir_graph *body = ops_attr_graph(c, "body");
    int64_t n_scan_in = ops_attr_int(c, "num_scan_inputs", -1);
    if (!body || n_scan_in < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "missing body or num_scan_inputs");
    bool v8 = ops_opset(c) < 9;
    int first = v8 ? 1 : 0;
    int n_state = ops_n_inputs(c) - first - (int)n_scan_in;
    int n_scan_out = body->n_outputs - n_state;
    if (n_state < 0 || n_scan_out < 0 || body->n_inputs != n_state + n_scan_in)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "body signature does not match the node");
    core_value *init[64] = {0}, *fin[64] = {0}, *sout[64] = {0};
    const core_tensor *sin[64] = {0};
    if (n_state > 64 || n_scan_in > 64 || n_scan_out > 64) return ops_error(c, KILN_ERR_UNSUPPORTED, "too many scan values");
    for (int k = 0; k < n_state; k++) {
        init[k] = ops_input_value(c, first + k);
        if (!init[k]) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "state input %d missing", k);
    }
    for (int i = 0; i < n_scan_in; i++) {
        sin[i] = ops_input(c, first + n_state + i);
        if (!sin[i]) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "scan input %d missing", i);
    }
    if (!v8) {
        kiln_status st = scan_core(c, body, n_state, (int)n_scan_in, init, sin, fin, sout, n_scan_out);
        if (st) return st;
        for (int k = 0; k < n_state; k++) if (!st) st = ops_set_output(c, k, fin[k]); else core_value_release(fin[k]);
        for (int s = 0; s < n_scan_out; s++) if (!st) st = ops_set_output(c, n_state + s, sout[s]); else core_value_release(sout[s]);
        return st;
    }
    /* Opset 8: axis 0 of every input is a batch; scan runs along axis 1 per batch entry. */
    int64_t batch = -1;
    for (int k = 0; k < n_state; k++) {
        if (init[k]->kind != CORE_VALUE_TENSOR || init[k]->tensor->ndim < 1) return ops_error(c, KILN_ERR_SHAPE, "state %d needs a batch axis", k);
        batch = init[k]->tensor->dims[0];
    }
    for (int i = 0; i < n_scan_in; i++) {
        if (sin[i]->ndim < 2) return ops_error(c, KILN_ERR_SHAPE, "scan input %d needs batch and sequence axes", i);
        batch = sin[i]->dims[0];
    }
    if (batch < 0) batch = 0;
    core_value **fin_b = calloc((size_t)(n_state + n_scan_out) * (size_t)(batch ? batch : 1) + 1, sizeof *fin_b);
    if (!fin_b) return core_oom();
    kiln_status st = KILN_OK;
    for (int64_t b = 0; b < batch && !st; b++) {
        core_value *ib[64];
        const core_tensor *sb[64];
        core_value *sbv[64];
        for (int k = 0; k < n_state; k++) ib[k] = ctl_slice(init[k]->tensor, 0, b);
        for (int i = 0; i < n_scan_in; i++) { sbv[i] = ctl_slice(sin[i], 0, b); sb[i] = sbv[i] ? sbv[i]->tensor : NULL; }
        bool ok = true;
        for (int k = 0; k < n_state; k++) ok = ok && ib[k];
        for (int i = 0; i < n_scan_in; i++) ok = ok && sb[i];
        if (!ok) st = core_oom();
        else st = scan_core(c, body, n_state, (int)n_scan_in, ib, sb, fin_b + b * (n_state + n_scan_out),
                            fin_b + b * (n_state + n_scan_out) + n_state, n_scan_out);
        for (int k = 0; k < n_state; k++) core_value_release(ib[k]);
        for (int i = 0; i < n_scan_in; i++) core_value_release(sbv[i]);
    }
    for (int k = 0; k < n_state + n_scan_out && !st; k++) {
        core_value **col = calloc((size_t)batch + 1, sizeof *col);
        if (!col) { st = core_oom(); break; }
        for (int64_t b = 0; b < batch; b++) col[b] = fin_b[b * (n_state + n_scan_out) + k];
        core_value *v = ctl_stack(c, col, batch, 0, false, &st);
        free(col);
        if (v) st = ops_set_output(c, k, v);
    }
    for (int64_t i = 0; i < (n_state + n_scan_out) * batch; i++) core_value_release(fin_b[i]);
    free(fin_b);
    return st;
}

/* ---- sequences ---- */
static core_value *seq_input(ops_ctx *c, int i)
{
    core_value *v = ops_input_value(c, i);
    return v && v->kind == CORE_VALUE_SEQUENCE ? v : NULL;
}

static kiln_status seq_empty_run(ops_ctx *c)
{
    core_value *s = core_value_sequence((kiln_dtype)ops_attr_int(c, "dtype", KILN_DTYPE_FLOAT));
    return s ? ops_set_output(c, 0, s) : core_oom();
}

static kiln_status seq_construct_run(ops_ctx *c)
{
    core_tensor *t0 = ops_input(c, 0);
    core_value *s = core_value_sequence(t0 ? t0->dtype : KILN_DTYPE_FLOAT);
    if (!s) return core_oom();
    for (int i = 0; i < ops_n_inputs(c); i++) {
        core_value *v = ops_input_value(c, i);
        if (!v || v->kind != CORE_VALUE_TENSOR) { core_value_release(s); return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input %d is not a tensor", i); }
        if (v->tensor->dtype != s->elem_dtype) { core_value_release(s); return ops_error(c, KILN_ERR_DTYPE, "inputs differ in dtype"); }
        if (!core_value_seq_append(s, v)) { core_value_release(s); return core_oom(); }
    }
    return ops_set_output(c, 0, s);
}

static bool seq_position(ops_ctx *c, int input, int64_t n, bool insert, int64_t *pos)
{
    const core_tensor *p = ops_input(c, input);
    int64_t v = p && p->numel ? core_load_i64(p->dtype, p->data, 0) : (insert ? n : n - 1);
    if (v < 0) v += n;
    if (v < 0 || v > n || (!insert && v == n)) return false;
    *pos = v;
    return true;
}

static kiln_status seq_insert_run(ops_ctx *c)
{
    core_value *s = seq_input(c, 0), *t = ops_input_value(c, 1);
    if (!s || !t) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "needs a sequence and a value");
    int64_t pos;
    if (!seq_position(c, 2, s->n_items, true, &pos)) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "position out of range");
    core_value *n = core_value_sequence(s->elem_dtype);
    if (!n) return core_oom();
    for (int64_t i = 0; i <= s->n_items; i++) {
        if (i == pos && !core_value_seq_append(n, t)) goto oom;
        if (i < s->n_items && !core_value_seq_append(n, s->items[i])) goto oom;
    }
    return ops_set_output(c, 0, n);
oom:
    core_value_release(n);
    return core_oom();
}

static kiln_status seq_at_run(ops_ctx *c)
{
    core_value *s = seq_input(c, 0);
    if (!s) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input 0 is not a sequence");
    int64_t pos;
    if (!ops_input(c, 1) || !seq_position(c, 1, s->n_items, false, &pos))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "position out of range for a sequence of %lld", (long long)s->n_items);
    return ops_set_output(c, 0, core_value_retain(s->items[pos]));
}

static kiln_status seq_erase_run(ops_ctx *c)
{
    core_value *s = seq_input(c, 0);
    if (!s) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input 0 is not a sequence");
    int64_t pos;
    if (!seq_position(c, 1, s->n_items, false, &pos)) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "position out of range");
    core_value *n = core_value_sequence(s->elem_dtype);
    if (!n) return core_oom();
    for (int64_t i = 0; i < s->n_items; i++)
        if (i != pos && !core_value_seq_append(n, s->items[i])) { core_value_release(n); return core_oom(); }
    return ops_set_output(c, 0, n);
}

static kiln_status seq_length_run(ops_ctx *c)
{
    core_value *s = seq_input(c, 0);
    if (!s) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input 0 is not a sequence");
    core_tensor *t = ops_output(c, 0, KILN_DTYPE_INT64, 0, NULL);
    if (!t) return KILN_ERR_OUT_OF_MEMORY;
    *(int64_t *)t->data = s->n_items;
    return KILN_OK;
}

static kiln_status split_to_seq_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *sp = ops_input(c, 1);
    if (!x) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input missing");
    int64_t axis = ops_axis(ops_attr_int(c, "axis", 0), x->ndim);
    if (axis < 0 || x->ndim < 1) return ops_error(c, KILN_ERR_SHAPE, "axis out of range");
    int64_t len = x->dims[axis], nparts, sizes_buf[4096], *sizes = sizes_buf;
    bool keep = true;
    if (!sp) {
        nparts = len;
        for (int64_t i = 0; i < len && i < 4096; i++) sizes[i] = 1;
        if (len > 4096) return ops_error(c, KILN_ERR_UNSUPPORTED, "too many parts");
        keep = ops_attr_int(c, "keepdims", 1) != 0;
    } else if (sp->ndim == 0) {
        int64_t s = core_load_i64(sp->dtype, sp->data, 0);
        if (s <= 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "split must be positive");
        nparts = (len + s - 1) / s;
        if (nparts > 4096) return ops_error(c, KILN_ERR_UNSUPPORTED, "too many parts");
        for (int64_t i = 0; i < nparts; i++) sizes[i] = i == nparts - 1 ? len - s * i : s;
    } else {
        nparts = ops_tensor_i64s(sp, sizes, 4096);
        if (nparts < 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "%s", core_error_text());
        int64_t sum = 0;
        for (int64_t i = 0; i < nparts; i++) { if (sizes[i] < 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "negative split"); sum += sizes[i]; }
        if (sum != len) return ops_error(c, KILN_ERR_SHAPE, "split sizes sum to %lld, axis has %lld", (long long)sum, (long long)len);
    }
    core_value *s = core_value_sequence(x->dtype);
    if (!s) return core_oom();
    int64_t outer = 1, inner = 1, off = 0;
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    for (int i = (int)axis + 1; i < x->ndim; i++) inner *= x->dims[i];
    for (int64_t p = 0; p < nparts; p++) {
        int64_t dims[KILN_MAX_DIMS];
        int r = 0;
        for (int i = 0; i < x->ndim; i++) {
            if (i == axis) { if (keep) dims[r++] = sizes[p]; }
            else dims[r++] = x->dims[i];
        }
        core_tensor *t = core_tensor_create(x->dtype, r, dims);
        if (!t) { core_value_release(s); return core_oom(); }
        for (int64_t o = 0; o < outer; o++)
            ctl_copy(t, o * sizes[p] * inner, x, (o * len + off) * inner, sizes[p] * inner);
        off += sizes[p];
        core_value *tv = core_value_from_tensor(t);
        if (!tv || !core_value_seq_append(s, tv)) { core_value_release(tv); core_value_release(s); return core_oom(); }
        core_value_release(tv);
    }
    return ops_set_output(c, 0, s);
}

static kiln_status concat_from_seq_run(ops_ctx *c)
{
    core_value *s = seq_input(c, 0);
    if (!s) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input 0 is not a sequence");
    if (s->n_items == 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "empty sequence");
    bool new_axis = ops_attr_int(c, "new_axis", 0) != 0;
    const core_tensor *f = s->items[0]->tensor;
    int r = f->ndim;
    int64_t axis = ops_attr_int(c, "axis", 0);
    if (new_axis) {
        if (axis < 0) axis += r + 1;
        if (axis < 0 || axis > r) return ops_error(c, KILN_ERR_SHAPE, "axis out of range");
        core_value **items = s->items;
        kiln_status st = KILN_OK;
        core_value *v = ctl_stack(c, items, s->n_items, axis, false, &st);
        return v ? ops_set_output(c, 0, v) : st;
    }
    axis = ops_axis(axis, r);
    if (axis < 0 || r < 1) return ops_error(c, KILN_ERR_SHAPE, "axis out of range");
    int64_t dims[KILN_MAX_DIMS], total = 0;
    for (int64_t i = 0; i < s->n_items; i++) {
        const core_tensor *t = s->items[i]->tensor;
        if (!t || t->ndim != r || t->dtype != f->dtype) return ops_error(c, KILN_ERR_SHAPE, "sequence items differ in rank or dtype");
        for (int d = 0; d < r; d++)
            if (d != axis && t->dims[d] != f->dims[d]) return ops_error(c, KILN_ERR_SHAPE, "sequence items differ in shape");
        total += t->dims[axis];
    }
    memcpy(dims, f->dims, sizeof(int64_t) * (size_t)r);
    dims[axis] = total;
    core_tensor *out = ops_output(c, 0, f->dtype, r, dims);
    if (!out) return KILN_ERR_OUT_OF_MEMORY;
    int64_t outer = 1, inner = 1, off = 0;
    for (int i = 0; i < axis; i++) outer *= f->dims[i];
    for (int i = (int)axis + 1; i < r; i++) inner *= f->dims[i];
    for (int64_t i = 0; i < s->n_items; i++) {
        const core_tensor *t = s->items[i]->tensor;
        int64_t n = t->dims[axis];
        for (int64_t o = 0; o < outer; o++)
            if (!ctl_copy(out, (o * total + off) * inner, t, o * n * inner, n * inner)) return core_oom();
        off += n;
    }
    return KILN_OK;
}

static kiln_status seq_map_run(ops_ctx *c)
{
    const ir_graph *body = ops_attr_graph(c, "body");
    core_value *s0 = seq_input(c, 0);
    if (!body || !s0) return ops_error(c, KILN_ERR_INVALID_MODEL, "needs body and a sequence input");
    int n_in = ops_n_inputs(c), n_out = ops_n_outputs(c);
    if (body->n_inputs != n_in || body->n_outputs != n_out) return ops_error(c, KILN_ERR_INVALID_MODEL, "body signature mismatch");
    if (n_in > 64 || n_out > 64) return ops_error(c, KILN_ERR_UNSUPPORTED, "too many inputs");
    core_value *outs[64], *bin[64], *bout[64];
    kiln_status st = KILN_OK;
    for (int k = 0; k < n_out; k++) outs[k] = NULL;
    for (int k = 0; k < n_out; k++) {
        const ir_type *t = &body->values[body->outputs[k]].type;
        outs[k] = core_value_sequence(t->kind == IR_TYPE_TENSOR ? t->dtype : KILN_DTYPE_FLOAT);
        if (!outs[k]) { st = core_oom(); goto done; }
    }
    for (int64_t i = 0; i < s0->n_items; i++) {
        for (int k = 0; k < n_in; k++) {
            core_value *v = ops_input_value(c, k);
            if (!v) { st = ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input %d missing", k); goto done; }
            if (v->kind == CORE_VALUE_SEQUENCE) {
                if (v->n_items != s0->n_items) { st = ops_error(c, KILN_ERR_SHAPE, "sequences differ in length"); goto done; }
                bin[k] = v->items[i];
            } else bin[k] = v;
        }
        if ((st = ops_run_subgraph(c, body, n_in, bin, bout))) goto done;
        for (int k = 0; k < n_out; k++) {
            if (bout[k]->kind == CORE_VALUE_TENSOR) outs[k]->elem_dtype = bout[k]->tensor->dtype;
            bool ok = core_value_seq_append(outs[k], bout[k]);
            core_value_release(bout[k]);
            if (!ok) { st = core_oom(); for (int j = k + 1; j < n_out; j++) core_value_release(bout[j]); goto done; }
        }
    }
    for (int k = 0; k < n_out; k++) { st = ops_set_output(c, k, outs[k]); outs[k] = NULL; if (st) goto done; }
done:
    for (int k = 0; k < n_out; k++) core_value_release(outs[k]);
    return st;
}

/* ---- optionals ---- */
static kiln_status optional_run(ops_ctx *c)
{
    core_value *v = ops_input_value(c, 0);
    return ops_set_output(c, 0, v ? core_value_retain(v) : core_value_none());
}

static kiln_status optional_has_run(ops_ctx *c)
{
    core_value *v = ops_input_value(c, 0);
    core_tensor *t = ops_output(c, 0, KILN_DTYPE_BOOL, 0, NULL);
    if (!t) return KILN_ERR_OUT_OF_MEMORY;
    *(uint8_t *)t->data = v && v->kind != CORE_VALUE_NONE;
    return KILN_OK;
}

static kiln_status optional_get_run(ops_ctx *c)
{
    core_value *v = ops_input_value(c, 0);
    if (!v || v->kind == CORE_VALUE_NONE) return ops_error(c, KILN_ERR_RUNTIME, "the optional is empty");
    return ops_set_output(c, 0, core_value_retain(v));
}


const ops_schema ops_table_control[] = {
    {"If", "", 1, if_run},
    {"Loop", "", 1, loop_run},
    {"Scan", "", 8, scan_run},
    {"SequenceEmpty", "", 11, seq_empty_run},
    {"SequenceConstruct", "", 11, seq_construct_run},
    {"SequenceInsert", "", 11, seq_insert_run},
    {"SequenceAt", "", 11, seq_at_run},
    {"SequenceErase", "", 11, seq_erase_run},
    {"SequenceLength", "", 11, seq_length_run},
    {"SplitToSequence", "", 11, split_to_seq_run},
    {"ConcatFromSequence", "", 11, concat_from_seq_run},
    {"SequenceMap", "", 17, seq_map_run},
    {"Optional", "", 15, optional_run},
    {"OptionalHasElement", "", 15, optional_has_run},
    {"OptionalGetElement", "", 15, optional_get_run},
    OPS_TABLE_END
};
