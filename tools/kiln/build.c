/* build.c — `kiln build`: turn an ONNX model into a plan (tactics timed on this machine,
 * memory planned for the max shapes), and the plan branch of `kiln inspect`. */
#include "cli.h"
#include "build/build.h"
#include "cpu/cpu.h"
#include "plan/plan.h"

#include "kiln.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_build_help(FILE *f)
{
    fprintf(f,
            "usage: kiln build MODEL.onnx [-o PLAN] [--threads N] [--shapes NAME:DIMS]...\n"
            "                  [--min-shapes NAME:DIMS]... [--opt-shapes NAME:DIMS]... [--max-shapes NAME:DIMS]...\n"
            "                  [--timing-cache FILE] [--verbose | --quiet]\n\n"
            "Builds an engine plan: imports and optimizes MODEL, times the kernel choices\n"
            "(tactics) of every convolution on this machine at the opt shapes and keeps the\n"
            "fastest, plans the activation memory at the max shapes, and writes PLAN (default:\n"
            "MODEL with the extension .kplan). `kiln run`, `kiln bench` and the C API load plans\n"
            "like models; a plan accepts any input shape within [min, max].\n"
            "  -o, --output PLAN     where to write the plan\n"
            "  --threads N           threads to tune for (default: physical cores)\n"
            "  --shapes NAME:DIMS    fixed shape for an input (min = opt = max), e.g. input:1x3x224x224\n"
            "  --min-shapes, --opt-shapes, --max-shapes NAME:DIMS\n"
            "                        a range for an input's dynamic dims; several inputs may be\n"
            "                        given comma-separated or by repeating the option. A dynamic\n"
            "                        dim with no shape given is taken as 1 (with a warning).\n"
            "  --timing-cache FILE   reuse tactic timings from FILE and add new ones to it; with\n"
            "                        every timing cached, no timing is done and the plan is\n"
            "                        byte-identical to the previous build's\n"
            "  --verbose             list every optimizer pass and every tactic decision\n"
            "  --quiet               no progress output\n");
}

static int bfail(const char *fmt, ...) CORE_PRINTF(1, 2);
static int bfail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kiln build: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* Appends item to a comma-separated list (malloc'd). */
static bool append_spec(char **list, const char *item)
{
    size_t a = *list ? strlen(*list) : 0, b = strlen(item);
    char *n = realloc(*list, a + b + 2);
    if (!n) return false;
    if (a) n[a++] = ',';
    memcpy(n + a, item, b + 1);
    *list = n;
    return true;
}

int cli_build_main(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *cache = NULL;
    char *smin = NULL, *sopt = NULL, *smax = NULL;
    int threads = 0, verbose = 0, rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        char opt[64];
        const char *val = NULL;
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof opt) {
            memcpy(opt, a, (size_t)(eq - a));
            opt[eq - a] = 0;
            val = eq + 1;
        } else snprintf(opt, sizeof opt, "%s", a);
        static const char *const with_value[] = {"-o", "--output", "--threads", "--shapes", "--min-shapes", "--opt-shapes",
                                                 "--max-shapes", "--timing-cache", NULL};
        bool takes = false;
        for (int k = 0; with_value[k]; k++) takes |= !strcmp(opt, with_value[k]);
        if (takes && !val) {
            if (i + 1 >= argc) { rc = bfail("%s needs a value (see `kiln help build`)", opt); break; }
            val = argv[++i];
        }
        if (!strcmp(opt, "-o") || !strcmp(opt, "--output")) out = val;
        else if (!strcmp(opt, "--threads")) {
            char *e;
            long v = strtol(val, &e, 10);
            if (*e || v < 1 || v > 1024) rc = bfail("--threads: '%s' is not a thread count (1..1024)", val);
            threads = (int)v;
        } else if (!strcmp(opt, "--shapes")) {
            if (!append_spec(&smin, val) || !append_spec(&sopt, val) || !append_spec(&smax, val)) rc = bfail("out of memory");
        } else if (!strcmp(opt, "--min-shapes")) {
            if (!append_spec(&smin, val)) rc = bfail("out of memory");
        } else if (!strcmp(opt, "--opt-shapes")) {
            if (!append_spec(&sopt, val)) rc = bfail("out of memory");
        } else if (!strcmp(opt, "--max-shapes")) {
            if (!append_spec(&smax, val)) rc = bfail("out of memory");
        } else if (!strcmp(opt, "--timing-cache")) cache = val;
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) verbose = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) verbose = -1;
        else if (a[0] == '-' && a[1]) rc = bfail("unknown option '%s' (see `kiln help build`)", a);
        else if (!model) model = a;
        else rc = bfail("unexpected argument '%s'", a);
    }
    char *def_out = NULL;
    if (!rc && !model) rc = bfail("no MODEL given (see `kiln help build`)");
    if (!rc && !out) {
        size_t n = strlen(model);
        const char *dot = strrchr(model, '.'), *slash = strrchr(model, '/');
        if (dot && (!slash || dot > slash)) n = (size_t)(dot - model);
        def_out = malloc(n + 8);
        if (!def_out) rc = bfail("out of memory");
        else {
            memcpy(def_out, model, n);
            strcpy(def_out + n, ".kplan");
            out = def_out;
        }
    }
    if (!rc) {
        kiln_build_options o = kiln_build_options_default();
        o.num_threads = threads;
        o.min_shapes = smin;
        o.opt_shapes = sopt;
        o.max_shapes = smax;
        o.timing_cache = cache;
        o.verbose = verbose;
        if (kiln_plan_build(model, &o, out) != KILN_OK) rc = bfail("%s", kiln_last_error());
        else if (verbose >= 0) printf("plan: %s\n", out);
    }
    free(smin);
    free(sopt);
    free(smax);
    free(def_out);
    return rc;
}

/* ---- kiln inspect PLAN ------------------------------------------------------------------------- */

bool cli_is_plan_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char head[8];
    bool is = read(fd, head, sizeof head) == (ssize_t)sizeof head && plan_is_plan(head, sizeof head);
    close(fd);
    return is;
}

static void print_type(const ir_type *t)
{
    if (t->kind != IR_TYPE_TENSOR) {
        printf("%s", t->kind == IR_TYPE_SEQUENCE ? "sequence" : t->kind == IR_TYPE_OPTIONAL ? "optional" : "?");
        return;
    }
    printf("%s", core_dtype_name(t->dtype));
    if (t->ndim < 0) { printf(" [?]"); return; }
    printf(" [");
    for (int i = 0; i < t->ndim; i++) {
        const ir_dim *d = t->dims ? &t->dims[i] : NULL;
        if (i) printf(",");
        if (d && d->value >= 0) printf("%lld", (long long)d->value);
        else printf("%s", d && d->symbol ? d->symbol : "?");
    }
    printf("]");
}

static void human(double b, char *buf, size_t n)
{
    if (b >= 1 << 20) snprintf(buf, n, "%.2f MB", b / (1 << 20));
    else if (b >= 1 << 10) snprintf(buf, n, "%.1f KB", b / (1 << 10));
    else snprintf(buf, n, "%.0f B", b);
}

static const char *tactic_layout(int t)
{
    switch (t) {
    case CPU_CONV_GEMM: return "weights packed to 6-row GEMM panels at first run";
    case CPU_CONV_DW: return "weights as stored (KxK per channel)";
    case CPU_CONV_WINO: return "weights transformed to 6x6 Winograd tiles at first run";
    default: return "";
    }
}

int cli_inspect_plan(const char *path, bool check)
{
    ir_model *m = NULL;
    plan_info *pi = NULL;
    if (plan_load_file(path, PLAN_VERIFY_ALL, &m, &pi) != KILN_OK) {
        fprintf(stderr, "kiln inspect: %s\n", kiln_last_error());
        if (check) printf("check: plan is not usable here: %s\n", kiln_last_error());
        return 1;
    }
    const ir_graph *g = m->graph;
    char b1[64], b2[64], isa[256];
    printf("plan: %s\n", path);
    printf("format: %u, build id %016llx\n", pi->format_version, (unsigned long long)pi->build_id);
    human((double)pi->file_size, b1, sizeof b1);
    human((double)pi->data_size, b2, sizeof b2);
    printf("size: %s (%llu bytes; weights %s, 64-byte aligned at offset %llu; metadata checksum %016llx, "
           "weights checksum %016llx)\n", b1, (unsigned long long)pi->file_size, b2, (unsigned long long)pi->data_offset,
           (unsigned long long)pi->meta_checksum, (unsigned long long)pi->data_checksum);
    printf("target: %s, %s\n", pi->target.vendor, pi->target.brand);
    printf("  builder ISA: %s\n", plan_isa_str(pi->target.isa, isa, sizeof isa));
    printf("  kernels: %s (needs %s)\n", pi->target.kernels, plan_isa_str(pi->isa_required, isa, sizeof isa));
    printf("  this CPU: ok\n");
    if (pi->notes && *pi->notes) {
        printf("build:\n");
        const char *p = pi->notes;
        while (*p) {
            const char *e = strchr(p, '\n');
            int n = e ? (int)(e - p) : (int)strlen(p);
            printf("  %.*s\n", n, p);
            p = e ? e + 1 : p + n;
        }
    }
    printf("inputs:\n");
    for (int k = 0; k < g->n_inputs; k++) {
        const ir_value *v = &g->values[g->inputs[k]];
        if (v->constant) continue;
        printf("  %s: ", v->name);
        print_type(&v->type);
        printf("\n");
    }
    printf("outputs:\n");
    for (int k = 0; k < g->n_outputs; k++) {
        const ir_value *v = &g->values[g->outputs[k]];
        printf("  %s: ", v->name);
        print_type(&v->type);
        printf("\n");
    }
    for (int p = 0; p < pi->n_profiles; p++) {
        const plan_profile *pr = &pi->profiles[p];
        printf("profile %d:\n", p);
        for (int k = 0; k < pr->n_inputs; k++) {
            const plan_input_range *r = &pr->inputs[k];
            char a[200], b[200], c[200];
            printf("  %s: min %s, opt %s, max %s\n", r->name, core_shape_str(r->ndim, r->min, a, sizeof a),
                   core_shape_str(r->ndim, r->opt, b, sizeof b), core_shape_str(r->ndim, r->max, c, sizeof c));
        }
        human((double)pr->arena_bytes, b1, sizeof b1);
        printf("  memory plan: %s activation arena at the max shapes, %d buffers (reserved per context; smaller\n"
               "  shapes reuse the same offsets)\n", b1, pr->n_slots);
    }
    /* op histogram of the top-level graph */
    printf("nodes: %d\n", g->n_nodes);
    int *seen = calloc((size_t)g->n_nodes + 1, sizeof(int));
    for (int i = 0; seen && i < g->n_nodes; i++) {
        if (seen[i]) continue;
        int n = 0;
        for (int j = i; j < g->n_nodes; j++)
            if (!seen[j] && !strcmp(g->nodes[j].op_type, g->nodes[i].op_type) &&
                !strcmp(g->nodes[j].domain ? g->nodes[j].domain : "", g->nodes[i].domain ? g->nodes[i].domain : "")) {
                seen[j] = 1;
                n++;
            }
        printf("  %-24s %d\n", g->nodes[i].op_type, n);
    }
    free(seen);
    int n_nhwc = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const char *op = g->nodes[i].op_type, *dom = g->nodes[i].domain ? g->nodes[i].domain : "";
        size_t l = strlen(op);
        n_nhwc += !strcmp(dom, "ai.kiln") && l > 4 && !strcmp(op + l - 4, "Nhwc");
    }
    if (n_nhwc)
        printf("layouts: conv regions channels-last (NHWC: %d ai.kiln *Nhwc nodes), the rest NCHW; dense row-major, in the arena\n",
               n_nhwc);
    else
        printf("layouts: activations NCHW, dense row-major, in the arena\n");
    printf("tactics:\n");
    int counts[BUILD_MAX_TACTICS] = {0};
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        const ir_attr *a = ir_node_attr(nd, "kiln_tactic");
        if (!a || a->type != IR_ATTR_INT) continue;
        int t = (int)a->i;
        const char *tn = build_tactic_name(t);
        if (t > 0 && t < BUILD_MAX_TACTICS) counts[t]++;
        const ir_value *wv = nd->n_inputs > 1 && nd->inputs[1] >= 0 ? &g->values[nd->inputs[1]] : NULL;
        char ws[96] = "?";
        if (wv && wv->constant && wv->constant->kind == CORE_VALUE_TENSOR)
            core_shape_str(wv->constant->tensor->ndim, wv->constant->tensor->dims, ws, sizeof ws);
        printf("  %-28s %-10s w %-14s %-10s %s\n", nd->name && *nd->name ? nd->name : "(unnamed)", nd->op_type, ws,
               tn ? tn : "?", tactic_layout(t));
    }
    printf("  total: gemm %d, depthwise %d, winograd %d\n", counts[CPU_CONV_GEMM], counts[CPU_CONV_DW], counts[CPU_CONV_WINO]);
    if (check) printf("check: ok (plan loads and runs on this CPU)\n");
    ir_model_destroy(m);
    plan_info_destroy(pi);
    return 0;
}
