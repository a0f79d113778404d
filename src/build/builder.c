/* builder.c — kiln_plan_build: import and optimize an ONNX model, resolve the optimization
 * profile, time the kernel choices (tactics) of each Conv at the opt shapes and keep the
 * fastest (timing cache), plan activation memory at the max shapes, write the plan. */
#include "build/build.h"
#include "core/threadpool.h"
#include "cpu/cpu.h"
#include "onnx/onnx.h"
#include "opt/opt.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUILD_TACTIC_ATTR "kiln_tactic"

static double bd_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

typedef struct bd_opts {
    int threads;
    int verbose;
} bd_opts;

static void bd_log(const bd_opts *o, int level, const char *fmt, ...) CORE_PRINTF(3, 4);
static void bd_log(const bd_opts *o, int level, const char *fmt, ...)
{
    if (o->verbose < level) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* ---- profiles ------------------------------------------------------------------------------------ */

typedef struct bd_spec {
    char name[256];
    int ndim;
    int64_t dims[KILN_MAX_DIMS];
} bd_spec;

/* Parses "name:1x3x224x224,other:1x16" into specs (at most cap). */
static kiln_status bd_parse_specs(const char *opt, const char *text, bd_spec *specs, int cap, int *n)
{
    *n = 0;
    if (!text) return KILN_OK;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0) { p = end ? end + 1 : p + len; continue; }
        if (*n == cap) return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: more than %d inputs", opt, cap);
        char item[1024];
        if (len >= sizeof item) return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: item too long", opt);
        memcpy(item, p, len);
        item[len] = 0;
        char *colon = strrchr(item, ':');
        if (!colon || colon == item)
            return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: '%s' is not NAME:DIMS (e.g. input:1x3x224x224)", opt, item);
        *colon = 0;
        bd_spec *s = &specs[*n];
        memset(s, 0, sizeof *s);
        if (strlen(item) >= sizeof s->name) return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: input name too long", opt);
        strcpy(s->name, item);
        for (int i = 0; i < *n; i++)
            if (!strcmp(specs[i].name, s->name))
                return core_error(KILN_ERR_INVALID_ARGUMENT, "%s gives input '%s' twice", opt, s->name);
        const char *d = colon + 1;
        if (*d && strcmp(d, "scalar")) {
            for (;;) {
                char *e;
                long long v = strtoll(d, &e, 10);
                if (e == d || v < 0 || v > ((int64_t)1 << 40))
                    return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: bad dims '%s' for input '%s'", opt, colon + 1, s->name);
                if (s->ndim == KILN_MAX_DIMS)
                    return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: input '%s' has more than %d dims", opt, s->name, KILN_MAX_DIMS);
                s->dims[s->ndim++] = v;
                if (!*e) break;
                if (*e != 'x' && *e != 'X' && *e != '*')
                    return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: bad dims '%s' for input '%s'", opt, colon + 1, s->name);
                d = e + 1;
            }
        }
        (*n)++;
        p = end ? end + 1 : p + len;
    }
    return KILN_OK;
}

static const bd_spec *bd_find_spec(const bd_spec *s, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].name, name)) return &s[i];
    return NULL;
}

#define BD_MAX_SPECS 256

static kiln_status bd_profile_specs(const ir_graph *g, const kiln_build_options *ko, const bd_opts *o, plan_profile *pr,
                                    bd_spec *smin, bd_spec *sopt, bd_spec *smax);

/* The one optimization profile from the options and the graph's declared input types. */
static kiln_status bd_profile(const ir_graph *g, const kiln_build_options *ko, const bd_opts *o, plan_profile *pr)
{
    bd_spec *smin = calloc(3 * BD_MAX_SPECS, sizeof *smin);
    if (!smin) return core_oom();
    bd_spec *sopt = smin + BD_MAX_SPECS, *smax = sopt + BD_MAX_SPECS;
    kiln_status st = bd_profile_specs(g, ko, o, pr, smin, sopt, smax);
    free(smin);
    return st;
}

static kiln_status bd_profile_specs(const ir_graph *g, const kiln_build_options *ko, const bd_opts *o, plan_profile *pr,
                                    bd_spec *smin, bd_spec *sopt, bd_spec *smax)
{
    int nmin, nopt, nmax;
    kiln_status st = bd_parse_specs("--min-shapes", ko->min_shapes, smin, BD_MAX_SPECS, &nmin);
    if (!st) st = bd_parse_specs("--opt-shapes", ko->opt_shapes, sopt, BD_MAX_SPECS, &nopt);
    if (!st) st = bd_parse_specs("--max-shapes", ko->max_shapes, smax, BD_MAX_SPECS, &nmax);
    if (st) return st;
    /* every named input must exist */
    const bd_spec *lists[3] = {smin, sopt, smax};
    int counts[3] = {nmin, nopt, nmax};
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < counts[l]; i++) {
            bool found = false;
            for (int k = 0; k < g->n_inputs; k++)
                if (!g->values[g->inputs[k]].constant && !strcmp(g->values[g->inputs[k]].name, lists[l][i].name)) found = true;
            if (!found) {
                char names[1024] = "";
                size_t pos = 0;
                for (int k = 0; k < g->n_inputs && pos < sizeof names - 1; k++)
                    if (!g->values[g->inputs[k]].constant) {
                        int w = snprintf(names + pos, sizeof names - pos, "%s%s", pos ? ", " : "", g->values[g->inputs[k]].name);
                        if (w > 0) pos += (size_t)w;
                    }
                return core_error(KILN_ERR_NOT_FOUND, "shapes given for '%s', which is not a model input (inputs: %s)",
                                  lists[l][i].name, names);
            }
        }
    pr->inputs = calloc((size_t)g->n_inputs + 1, sizeof *pr->inputs);
    if (!pr->inputs) return core_oom();
    for (int k = 0; k < g->n_inputs; k++) {
        const ir_value *v = &g->values[g->inputs[k]];
        if (v->constant) continue;
        const ir_type *t = &v->type;
        if (t->kind != IR_TYPE_TENSOR)
            return core_error(KILN_ERR_UNSUPPORTED, "input '%s' is not a tensor: plans take tensor inputs only", v->name);
        const bd_spec *a = bd_find_spec(smin, nmin, v->name), *b = bd_find_spec(sopt, nopt, v->name),
                      *c = bd_find_spec(smax, nmax, v->name);
        int ndim = t->ndim;
        const bd_spec *any = b ? b : c ? c : a;
        if (ndim < 0) {
            if (!any) return core_error(KILN_ERR_INVALID_ARGUMENT, "input '%s' has an unknown rank: give its shape", v->name);
            ndim = any->ndim;
        }
        if (ndim > KILN_MAX_DIMS) return core_error(KILN_ERR_UNSUPPORTED, "input '%s' has %d dims", v->name, ndim);
        const bd_spec *sp[3] = {a, b, c};
        static const char *const opt_name[3] = {"--min-shapes", "--opt-shapes", "--max-shapes"};
        for (int l = 0; l < 3; l++)
            if (sp[l] && sp[l]->ndim != ndim)
                return core_error(KILN_ERR_SHAPE, "%s: input '%s' has %d dims, %d given", opt_name[l], v->name, ndim, sp[l]->ndim);
        plan_input_range *r = &pr->inputs[pr->n_inputs++];
        if (!(r->name = core_strdup(v->name))) return core_oom();
        r->ndim = ndim;
        for (int d = 0; d < ndim; d++) {
            int64_t fixed = t->ndim >= 0 && t->dims ? t->dims[d].value : -1;
            if (fixed >= 0) {
                for (int l = 0; l < 3; l++)
                    if (sp[l] && sp[l]->dims[d] != fixed)
                        return core_error(KILN_ERR_SHAPE, "%s: input '%s' dim %d is %lld, the model fixes it at %lld",
                                          opt_name[l], v->name, d, (long long)sp[l]->dims[d], (long long)fixed);
                r->min[d] = r->opt[d] = r->max[d] = fixed;
                continue;
            }
            if (!any) {
                const char *sym = t->dims && t->dims[d].symbol ? t->dims[d].symbol : "?";
                bd_log(o, 0, "kiln build: warning: input '%s' dim %d (%s) is dynamic and no shape was given: using 1\n",
                       v->name, d, sym);
                r->min[d] = r->opt[d] = r->max[d] = 1;
                continue;
            }
            int64_t op = b ? b->dims[d] : c ? c->dims[d] : a->dims[d];
            r->opt[d] = op;
            r->min[d] = a ? a->dims[d] : op;
            r->max[d] = c ? c->dims[d] : op;
            if (r->min[d] > r->opt[d] || r->opt[d] > r->max[d])
                return core_error(KILN_ERR_SHAPE, "input '%s' dim %d: min %lld, opt %lld, max %lld are not ordered", v->name, d,
                                  (long long)r->min[d], (long long)r->opt[d], (long long)r->max[d]);
        }
    }
    return KILN_OK;
}

/* ---- random inputs ---------------------------------------------------------------------------------- */

static uint64_t bd_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* Inputs for one run at the profile's opt (which = 1) or max (which = 2) shapes: floats
 * uniform in [-1, 1) from a fixed seed, integers and bools 0 (always a valid index). */
static kiln_status bd_inputs(const ir_graph *g, const plan_profile *pr, int which, core_value **vals)
{
    uint64_t seed = 0x5eed0001ull;
    for (int k = 0; k < g->n_inputs; k++) {
        vals[k] = NULL;
        const ir_value *v = &g->values[g->inputs[k]];
        if (v->constant) continue;
        const plan_input_range *r = NULL;
        for (int i = 0; i < pr->n_inputs; i++)
            if (!strcmp(pr->inputs[i].name, v->name)) r = &pr->inputs[i];
        if (!r) return core_error(KILN_ERR_INTERNAL, "no profile for input '%s'", v->name);
        kiln_dtype dt = v->type.dtype != KILN_DTYPE_UNDEFINED ? v->type.dtype : KILN_DTYPE_FLOAT;
        core_tensor *t = core_tensor_create(dt, r->ndim, which == 1 ? r->opt : r->max);
        if (!t) return core_error_prefix(KILN_ERR_OUT_OF_MEMORY, "input '%s': ", v->name);
        if (core_dtype_is_float(dt))
            for (int64_t i = 0; i < t->numel; i++)
                core_store_f64(dt, t->data, i, (double)bd_rand(&seed) / 2147483648.0 * 2.0 - 1.0);
        if (!(vals[k] = core_value_from_tensor(t))) return core_oom();
    }
    return KILN_OK;
}

static void bd_release(core_value **vals, int n)
{
    for (int k = 0; k < n; k++) core_value_release(vals[k]);
}

/* ---- conv tactics ----------------------------------------------------------------------------------- */

typedef struct bd_tune {
    ir_graph *g;
    const bd_opts *o;
    build_tcache *tc;
    core_threadpool *pool;
    int n_convs, k;
    int timed, cached, fixed;
    int chosen[BUILD_MAX_TACTICS];
    kiln_status err;
} bd_tune;

static bool bd_is_conv(const ir_node *nd)
{
    bool dflt = !nd->domain || !*nd->domain || !strcmp(nd->domain, "ai.onnx");
    bool kiln = nd->domain && !strcmp(nd->domain, "ai.kiln");
    return (dflt && !strcmp(nd->op_type, "Conv")) ||
           (kiln && (!strcmp(nd->op_type, "FusedConv") || !strcmp(nd->op_type, "ConvNhwc")));
}

static kiln_status bd_set_tactic(ir_node *nd, int tactic)
{
    for (int a = 0; a < nd->n_attrs; a++)
        if (!strcmp(nd->attrs[a].name, BUILD_TACTIC_ATTR)) {
            nd->attrs[a].type = IR_ATTR_INT;
            nd->attrs[a].i = tactic;
            return KILN_OK;
        }
    ir_attr *na = realloc(nd->attrs, sizeof *na * (size_t)(nd->n_attrs + 1));
    if (!na) return core_oom();
    nd->attrs = na;
    ir_attr *a = &na[nd->n_attrs];
    memset(a, 0, sizeof *a);
    if (!(a->name = core_strdup(BUILD_TACTIC_ATTR))) return core_oom();
    a->type = IR_ATTR_INT;
    a->i = tactic;
    nd->n_attrs++;
    return KILN_OK;
}

static void bd_ints_str(const ir_node *nd, const char *name, char *buf, size_t size)
{
    const ir_attr *a = ir_node_attr(nd, name);
    size_t pos = 0;
    buf[0] = 0;
    if (!a || a->type != IR_ATTR_INTS) { snprintf(buf, size, "-"); return; }
    for (int64_t i = 0; i < a->n && pos < size; i++) {
        int w = snprintf(buf + pos, size - pos, "%s%lld", i ? "," : "", (long long)a->ints[i]);
        if (w < 0) break;
        pos += (size_t)w;
    }
}

static bool bd_ints_all_one(const ir_node *nd, const char *name)
{
    const ir_attr *a = ir_node_attr(nd, name);
    if (!a) return true;
    if (a->type != IR_ATTR_INTS) return false;
    for (int64_t i = 0; i < a->n; i++)
        if (a->ints[i] != 1) return false;
    return true;
}

/* Timings of one tactic: the least of several runs (noise only ever adds time). */
static double bd_time_tactic(bd_tune *t, ir_node *nd, int tactic, core_value *const *in)
{
    kiln_status st = bd_set_tactic(nd, tactic);
    if (st) { t->err = st; return INFINITY; }
    core_value *outs[16] = {0};
    if (nd->n_outputs > 16) return INFINITY;
    double best = INFINITY, total = 0;
    for (int run = 0; run < 25; run++) {
        double t0 = bd_now_ms();
        st = rt_node_eval_pool(t->g, nd, t->pool, in, outs);
        double dt = bd_now_ms() - t0;
        for (int k = 0; k < nd->n_outputs; k++) { core_value_release(outs[k]); outs[k] = NULL; }
        if (st) { t->err = st; return INFINITY; }
        if (run == 0) continue; /* the first run packs the weights for this tactic */
        if (dt < best) best = dt;
        total += dt;
        if (run >= 3 && total > 30.0) break;
    }
    return best;
}

static void bd_observe(void *arg, int node, core_value *const *in, core_value *const *out)
{
    (void)out;
    bd_tune *t = arg;
    ir_node *nd = &t->g->nodes[node];
    if (t->err || !bd_is_conv(nd)) return;
    t->k++;
    const core_tensor *x = nd->n_inputs > 0 && in[0] && in[0]->kind == CORE_VALUE_TENSOR ? in[0]->tensor : NULL;
    const core_tensor *w = nd->n_inputs > 1 && in[1] && in[1]->kind == CORE_VALUE_TENSOR ? in[1]->tensor : NULL;
    const char *name = nd->name && *nd->name ? nd->name : "(unnamed)";
    if (!x || !w || x->dtype != KILN_DTYPE_FLOAT || w->dtype != KILN_DTYPE_FLOAT || (x->ndim != 4 && x->ndim != 3) ||
        w->ndim != x->ndim) {
        bd_log(t->o, 1, "[%d/%d] %s (%s): not a float 1-D/2-D conv, left to the default kernel\n", t->k, t->n_convs, name,
               nd->op_type);
        return;
    }
    /* ConvNhwc: channels-last [N, H, W, C] (the layout pass makes only 2-D ones) */
    bool nhwc = !strcmp(nd->op_type, "ConvNhwc");
    if (nhwc && x->ndim != 4) return;
    const ir_attr *ga = ir_node_attr(nd, "group");
    int64_t G = ga && ga->type == IR_ATTR_INT ? ga->i : 1;
    /* C from W: a ConvNhwc with x_channel_offset reads a slice of a wider X */
    int64_t C = w->dims[1] * G, M = w->dims[0];
    int64_t XH = nhwc ? x->dims[1] : x->ndim == 4 ? x->dims[2] : 1, XW = nhwc ? x->dims[2] : x->dims[x->ndim - 1];
    int64_t KH = x->ndim == 4 ? w->dims[2] : 1, KW = w->dims[w->ndim - 1];
    int cand[BUILD_MAX_TACTICS], nc = 0;
    cand[nc++] = CPU_CONV_GEMM;
    if (G > 1 && G == C && G == M) cand[nc++] = CPU_CONV_DW;
    if (G == 1 && x->ndim == 4 && KH == 3 && KW == 3 && bd_ints_all_one(nd, "strides") && bd_ints_all_one(nd, "dilations"))
        cand[nc++] = CPU_CONV_WINO;

    char desc[160], xs[96], ws[96];
    const ir_attr *sa = ir_node_attr(nd, "strides");
    int64_t stride = sa && sa->type == IR_ATTR_INTS && sa->n > 0 ? sa->ints[sa->n - 1] : 1;
    char sdesc[32] = "";
    if (stride > 1) snprintf(sdesc, sizeof sdesc, " /%lld", (long long)stride);
    snprintf(desc, sizeof desc, "%s %lldx%lld %lld->%lld %lldx%lld%s%s", nd->op_type, (long long)KH, (long long)KW,
             (long long)C, (long long)M, (long long)XH, (long long)XW,
             sdesc, G > 1 ? (G == C && G == M ? " dw" : " grouped") : "");

    if (nc == 1) {
        t->err = bd_set_tactic(nd, cand[0]);
        t->fixed++;
        t->chosen[cand[0]]++;
        bd_log(t->o, 1, "[%d/%d] %s (%s): %s (only candidate)\n", t->k, t->n_convs, name, desc, build_tactic_name(cand[0]));
        return;
    }
    /* the timing cache key: everything the kernel's speed depends on */
    char key[1024], s1[64], s2[64], s3[96];
    bd_ints_str(nd, "strides", s1, sizeof s1);
    bd_ints_str(nd, "dilations", s2, sizeof s2);
    bd_ints_str(nd, "pads", s3, sizeof s3);
    const ir_attr *ap = ir_node_attr(nd, "auto_pad"), *act = ir_node_attr(nd, "activation");
    bool has_bias = nd->n_inputs > 2 && in[2], has_resid = nd->n_inputs > 3 && in[3];
    snprintf(key, sizeof key, "%s|float|x=%s|w=%s|g=%lld|s=%s|d=%s|p=%s|ap=%s|b=%d|z=%d|act=%s|t=%d", nd->op_type,
             core_shape_str(x->ndim, x->dims, xs, sizeof xs), core_shape_str(w->ndim, w->dims, ws, sizeof ws),
             (long long)G, s1, s2, s3, ap && ap->s ? ap->s : "NOTSET", has_bias, has_resid,
             act && act->s && *act->s ? act->s : "none", t->o->threads);
    const char *hit = t->tc ? build_tcache_find(t->tc, key) : NULL;
    int best = hit ? build_tactic_from_name(hit) : 0;
    bool valid = false;
    for (int i = 0; i < nc; i++) valid |= cand[i] == best;
    if (valid) {
        t->err = bd_set_tactic(nd, best);
        t->cached++;
        t->chosen[best]++;
        bd_log(t->o, 0, "[%d/%d] %s (%s): %s (timing cache)\n", t->k, t->n_convs, name, desc, build_tactic_name(best));
        return;
    }
    double ms[BUILD_MAX_TACTICS];
    best = cand[0];
    double best_ms = INFINITY;
    for (int i = 0; i < nc && !t->err; i++) {
        ms[i] = bd_time_tactic(t, nd, cand[i], in);
        /* strictly faster wins: ties keep the earlier tactic of the fixed order gemm, depthwise, winograd */
        if (ms[i] < best_ms) { best_ms = ms[i]; best = cand[i]; }
    }
    if (t->err) return;
    /* sorted fastest first for the progress line */
    int ord[BUILD_MAX_TACTICS];
    for (int i = 0; i < nc; i++) ord[i] = i;
    for (int i = 1; i < nc; i++)
        for (int j = i; j > 0 && ms[ord[j]] < ms[ord[j - 1]]; j--) { int tmp = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = tmp; }
    char line[256] = "", times[256] = "";
    size_t lp = 0, tp = 0;
    for (int i = 0; i < nc; i++) {
        int a = ord[i], b = i;
        int w1 = snprintf(line + lp, sizeof line - lp, "%s%s %.3f ms", i ? ", " : "", build_tactic_name(cand[a]), ms[a]);
        if (w1 > 0 && (size_t)w1 < sizeof line - lp) lp += (size_t)w1;
        int w2 = snprintf(times + tp, sizeof times - tp, "%s%s=%.4f", b ? "," : "", build_tactic_name(cand[b]), ms[b]);
        if (w2 > 0 && (size_t)w2 < sizeof times - tp) tp += (size_t)w2;
    }
    t->err = bd_set_tactic(nd, best);
    if (!t->err && t->tc) t->err = build_tcache_put(t->tc, key, build_tactic_name(best), times);
    t->timed++;
    t->chosen[best]++;
    bd_log(t->o, 0, "[%d/%d] %s (%s): %s -> %s\n", t->k, t->n_convs, name, desc, line, build_tactic_name(best));
}

/* ---- the build ---------------------------------------------------------------------------------------- */

static kiln_status bd_run(const ir_graph *g, int threads, bool plan_memory, core_value **inputs, rt_state **state_out,
                          bd_tune *tune)
{
    rt_state *s = rt_state_create(g, threads, plan_memory);
    if (!s) return core_error_prefix(KILN_ERR_OUT_OF_MEMORY, "builder: ");
    if (tune) rt_state_set_observer(s, bd_observe, tune);
    core_value **outs = calloc((size_t)g->n_outputs + 1, sizeof *outs);
    if (!outs) { rt_state_destroy(s); return core_oom(); }
    kiln_status st = rt_state_run(s, inputs, outs);
    bd_release(outs, g->n_outputs);
    free(outs);
    if (!st && tune && tune->err) st = tune->err;
    if (st || !state_out) rt_state_destroy(s);
    else *state_out = s;
    return st;
}

static void bd_fmt_bytes(double b, char *buf, size_t n)
{
    if (b >= 1 << 20) snprintf(buf, n, "%.1f MB", b / (1 << 20));
    else if (b >= 1 << 10) snprintf(buf, n, "%.1f KB", b / (1 << 10));
    else snprintf(buf, n, "%.0f B", b);
}

KILN_API kiln_build_options kiln_build_options_default(void)
{
    kiln_build_options o;
    memset(&o, 0, sizeof o);
    return o;
}

KILN_API kiln_status kiln_plan_build(const char *onnx_path, const kiln_build_options *opts, const char *plan_path)
{
    if (!onnx_path || !plan_path) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plan_build: NULL path");
    kiln_build_options ko = opts ? *opts : kiln_build_options_default();
    bd_opts o = {ko.num_threads > 0 ? ko.num_threads : core_physical_cores(), ko.verbose};
    double t_start = bd_now_ms();
    const plan_target *host = plan_target_host();
    char cpu[512];
    plan_target_str(host, cpu, sizeof cpu);
    bd_log(&o, 1, "kiln build: %s -> %s, %d thread%s, CPU %s\n", onnx_path, plan_path, o.threads, o.threads == 1 ? "" : "s", cpu);

    ir_model *m = NULL;
    plan_info info;
    memset(&info, 0, sizeof info);
    plan_profile prof;
    memset(&prof, 0, sizeof prof);
    build_tcache *tc = NULL;
    core_threadpool *pool = NULL;
    core_value **inputs = NULL;
    rt_state *mem_state = NULL;
    kiln_status st = onnx_model_load_file(onnx_path, &m);
    if (st) return st;
    if (o.verbose >= 1) opt_set_verbose(true);
    st = opt_prepare_model(m);
    if (o.verbose >= 1) opt_set_verbose(false);
    if (st) goto done;
    ir_graph *g = m->graph;
    double t_opt = bd_now_ms();
    bd_log(&o, 0, "kiln build: imported and optimized %s: %d nodes (%.0f ms)\n", onnx_path, g->n_nodes, t_opt - t_start);

    st = bd_profile(g, &ko, &o, &prof);
    if (st) goto done;
    for (int k = 0; k < prof.n_inputs; k++) {
        const plan_input_range *r = &prof.inputs[k];
        char a[200], b[200], c[200];
        bd_log(&o, 0, "kiln build: profile: %s min %s opt %s max %s\n", r->name, core_shape_str(r->ndim, r->min, a, sizeof a),
               core_shape_str(r->ndim, r->opt, b, sizeof b), core_shape_str(r->ndim, r->max, c, sizeof c));
    }

    if (ko.timing_cache) {
        if (!(tc = build_tcache_create(cpu))) { st = KILN_ERR_OUT_OF_MEMORY; goto done; }
        bool foreign = false;
        st = build_tcache_load(tc, ko.timing_cache, &foreign);
        if (st) goto done;
        if (foreign) bd_log(&o, 0, "kiln build: timing cache %s was measured on another CPU: ignoring it\n", ko.timing_cache);
        else bd_log(&o, 1, "kiln build: timing cache %s: %d entries\n", ko.timing_cache, build_tcache_count(tc));
    }

    /* tactics: one run at the opt shapes; each Conv's candidates are timed on its real inputs */
    inputs = calloc((size_t)g->n_inputs + 1, sizeof *inputs);
    if (!inputs) { st = core_oom(); goto done; }
    if (o.threads > 1 && !(pool = core_threadpool_create(o.threads))) { st = core_oom(); goto done; }
    bd_tune tune;
    memset(&tune, 0, sizeof tune);
    tune.g = g;
    tune.o = &o;
    tune.tc = tc;
    tune.pool = pool;
    for (int i = 0; i < g->n_nodes; i++) tune.n_convs += bd_is_conv(&g->nodes[i]);
    st = bd_inputs(g, &prof, 1, inputs);
    if (!st) st = bd_run(g, o.threads, false, inputs, NULL, &tune);
    bd_release(inputs, g->n_inputs);
    if (st) { st = core_error_prefix(st, "tactic selection at the opt shapes: "); goto done; }
    double t_tune = bd_now_ms();
    bd_log(&o, 0, "kiln build: %d convs: %d timed, %d from the timing cache, %d with one candidate (%.0f ms)\n",
           tune.n_convs, tune.timed, tune.cached, tune.fixed, t_tune - t_opt);

    /* memory: one run at the max shapes makes the arena plan the contexts reserve */
    st = bd_inputs(g, &prof, 2, inputs);
    if (!st) st = bd_run(g, o.threads, true, inputs, &mem_state, NULL);
    bd_release(inputs, g->n_inputs);
    if (st) { st = core_error_prefix(st, "memory planning at the max shapes: "); goto done; }
    size_t arena = 0;
    if (rt_state_memory_plan(mem_state, &prof.slots, &prof.n_slots, &arena) == KILN_OK) prof.arena_bytes = arena;
    else {
        core_error_clear();
        bd_log(&o, 0, "kiln build: no static memory plan for this graph (it holds sequences at top level)\n");
    }
    char ab[32];
    bd_fmt_bytes((double)arena, ab, sizeof ab);
    bd_log(&o, 0, "kiln build: memory plan at the max shapes: %s arena, %d buffers\n", ab, prof.n_slots);

    /* the plan */
    info.target = *host;
    info.isa_required = plan_target_kernels_isa(host->kernels);
    info.n_profiles = 1;
    info.profiles = &prof;
    info.build_threads = o.threads;
    char notes[1024];
    const char *base = strrchr(onnx_path, '/');
    snprintf(notes, sizeof notes,
             "kiln=%s\nsource=%s\nthreads=%d\ntactics=gemm:%d,depthwise:%d,winograd:%d\nmin_shapes=%s\nopt_shapes=%s\n"
             "max_shapes=%s\n",
             kiln_version_string(), base ? base + 1 : onnx_path, o.threads, tune.chosen[CPU_CONV_GEMM],
             tune.chosen[CPU_CONV_DW], tune.chosen[CPU_CONV_WINO], ko.min_shapes ? ko.min_shapes : "",
             ko.opt_shapes ? ko.opt_shapes : "", ko.max_shapes ? ko.max_shapes : "");
    info.notes = notes;
    st = plan_write_file(plan_path, m, &info);
    if (st) goto done;
    if (tc && build_tcache_dirty(tc)) {
        st = build_tcache_save(tc, ko.timing_cache);
        if (st) goto done;
    }
    bd_log(&o, 0, "kiln build: wrote %s in %.2f s\n", plan_path, (bd_now_ms() - t_start) / 1e3);
done:
    rt_state_destroy(mem_state);
    free(inputs);
    core_threadpool_destroy(pool);
    build_tcache_destroy(tc);
    for (int k = 0; k < prof.n_inputs; k++) free(prof.inputs[k].name);
    free(prof.inputs);
    free(prof.slots);
    ir_model_destroy(m);
    return st;
}
