/* rewrite.h — graph-editing helpers shared by the optimization passes (private to src/opt/):
 * use counts, constant inspection, in-place node surgery and the activation matcher. */
#ifndef KILN_OPT_REWRITE_H
#define KILN_OPT_REWRITE_H

#include "opt/opt.h"

/* Who reads each value of the top-level graph. A value is "pinned" when something other
 * than a node input slot reads it by name (a graph output, or a subgraph of some node):
 * such a value may not disappear or be renamed. count[v] counts node input slots (a node
 * reading v twice counts twice) plus one for every pinning reader. */
typedef struct opt_uses {
    int n_values;
    int *count;
    bool *pinned;
    int *start; /* CSR: node indices reading v (once per slot) are node[start[v]..start[v+1]) */
    int *node;
} opt_uses;

kiln_status opt_uses_build(const ir_graph *g, opt_uses *u);
void opt_uses_free(opt_uses *u);
/* The only node reading v through an input slot (once), when v is read by nothing else;
 * -1 otherwise. */
int opt_sole_consumer(const opt_uses *u, int v);

/* Node liveness: passes remove nodes by opt_node_kill (the slot stays, op_type NULL) and
 * the pass manager compacts the array afterwards. */
static inline bool opt_alive(const ir_node *n) { return n->op_type != NULL; }
/* n is the default-domain op `op`. */
bool opt_is(const ir_node *n, const char *op);
/* Producing node of v when it is alive, else -1. */
int opt_producer(const ir_graph *g, int v);
void opt_node_kill(ir_graph *g, int i);

/* A load-time constant: an initializer or folded value, not overridable by the caller. */
const core_tensor *opt_const(const ir_graph *g, int v);
/* One-element float/int constant as double. */
bool opt_const_scalar(const ir_graph *g, int v, double *out);
/* Static type of v: true with dtype, rank and all dims known (>= 0). */
bool opt_static_shape(const ir_graph *g, int v, kiln_dtype *dt, int *ndim, int64_t *dims);
/* Dtype and rank (dims may be -1) of v; false when even the rank is unknown. */
bool opt_value_rank(const ir_graph *g, int v, kiln_dtype *dt, int *ndim, int64_t *dims);
/* Element type of v when known (from a constant or the value's type), else UNDEFINED. */
kiln_dtype opt_value_dtype(const ir_graph *g, int v);
/* a and b have provably equal shapes: same rank, each dim equal and known, or unknown
 * with the same symbolic name. */
bool opt_same_shape(const ir_graph *g, int a, int b);
/* ir_graph_infer plus the rules of infer_extra.c, to a fixed point. */
kiln_status opt_infer_types(ir_graph *g);
/* Integer list of a constant input (axes, pads, shapes); -1 when not a constant. */
int64_t opt_const_ints(const ir_graph *g, int v, int64_t *out, int64_t max);
/* Integer list attribute; -1 when absent. */
int64_t opt_attr_ints(const ir_node *n, const char *name, int64_t *out, int64_t max);
int64_t opt_attr_int(const ir_node *n, const char *name, int64_t dflt);
float opt_attr_float(const ir_node *n, const char *name, float dflt);
const char *opt_attr_string(const ir_node *n, const char *name, const char *dflt);

/* Attribute surgery (replace when present). Return false on OOM (error set). */
bool opt_set_attr_int(ir_node *n, const char *name, int64_t v);
bool opt_set_attr_float(ir_node *n, const char *name, float v);
bool opt_set_attr_string(ir_node *n, const char *name, const char *s);
bool opt_set_attr_ints(ir_node *n, const char *name, const int64_t *v, int64_t count);
bool opt_set_attr_floats(ir_node *n, const char *name, const float *v, int64_t count);
void opt_remove_attr(ir_node *n, const char *name);
void opt_clear_attrs(ir_node *n);
/* Turn n into op/domain (opset: the model's for the default domain, 1 for ai.kiln). */
bool opt_node_retype(const ir_graph *g, ir_node *n, const char *op, const char *domain);
/* Replace n's inputs by ins[0..n_in). */
bool opt_node_set_inputs(ir_node *n, int n_in, const int *ins);

/* A fresh value named after base ("base" + suffix, uniquified); -1 on OOM. */
int opt_new_value(ir_graph *g, const char *base, const char *suffix);
/* A fresh value holding constant t (ownership of t passes to the graph); -1 on OOM. */
int opt_new_const(ir_graph *g, const char *base, const char *suffix, core_tensor *t);
/* Append a node (op in domain, inputs, outputs) and set its outputs' producer. Returns
 * its index or -1 on OOM. Node pointers taken before the call may be invalidated. */
int opt_add_node(ir_graph *g, const char *name, const char *op, const char *domain, int n_in,
                 const int *ins, int n_out, const int *outs);
/* Every node input slot reading `from` reads `to` instead (not graph outputs). */
void opt_replace_uses(ir_graph *g, int from, int to);

/* Remove node `i`, whose output `out` equals its input `in`: consumers read `in`; when
 * `out` is pinned, the producer of `in` is made to write `out` instead, or else the node
 * becomes an Identity. Returns true when the graph changed. */
bool opt_bypass(ir_graph *g, const opt_uses *u, int i, int in, int out);

/* Activations that fused kernels apply (the `activation` attribute of FusedConv /
 * FusedGemm / FusedMatMul). */
typedef enum opt_act_kind {
    OPT_ACT_NONE = 0,
    OPT_ACT_RELU,
    OPT_ACT_CLIP,       /* params: min, max */
    OPT_ACT_LEAKY_RELU, /* params: alpha */
    OPT_ACT_SIGMOID,
    OPT_ACT_SILU,
    OPT_ACT_HARD_SWISH,
    OPT_ACT_GELU,
    OPT_ACT_GELU_TANH
} opt_act_kind;

#define OPT_ACT_MAX_NODES 12
typedef struct opt_act {
    opt_act_kind kind;
    float params[2];
    int n_params;
    int out;                         /* value the activation produces */
    int n_nodes;
    int nodes[OPT_ACT_MAX_NODES];    /* nodes making up the activation */
} opt_act;

/* The attribute string of an activation ("Relu", "Clip", ...). */
const char *opt_act_name(opt_act_kind k);
/* Match an activation reading x: a single op (Relu, Clip with constant bounds, LeakyRelu,
 * Sigmoid, HardSwish, Gelu) or a pattern (x*Sigmoid(x), x*HardSigmoid(x), erf and tanh
 * GELU). Every reader of x must belong to the match and every inner value must be read
 * only inside it; x must be float32. */
bool opt_match_activation(const ir_graph *g, const opt_uses *u, int x, opt_act *a);

/* Floating tolerance of pattern constants (0.5, sqrt 2, 0.044715 ...). */
bool opt_near(double a, double b);

#endif
