/* ir.h — kiln's graph IR: values with types (dtype + shape with symbolic dims), nodes with
 * attributes, graphs with subgraphs; built by onnx/ (importer), checked by the verifier,
 * consumed by opt/ and runtime/. All strings and arrays are owned by the graph. */
#ifndef KILN_IR_H
#define KILN_IR_H

#include "core/core.h"

struct ops_schema;
typedef struct ir_graph ir_graph;

/* A dimension: known size (value >= 0) or unknown (value == -1) with an optional
 * symbolic name (owned). */
typedef struct ir_dim {
    int64_t value;
    char *symbol;
} ir_dim;

typedef enum ir_type_kind {
    IR_TYPE_UNKNOWN = 0,
    IR_TYPE_TENSOR = 1,
    IR_TYPE_SEQUENCE = 2, /* elem describes the element type */
    IR_TYPE_OPTIONAL = 3, /* elem describes the contained type */
    IR_TYPE_MAP = 4,
    IR_TYPE_SPARSE_TENSOR = 5
} ir_type_kind;

typedef struct ir_type {
    ir_type_kind kind;
    kiln_dtype dtype;    /* TENSOR: element dtype */
    int ndim;            /* TENSOR: rank, -1 = unknown */
    ir_dim *dims;        /* TENSOR: ndim entries, owned */
    struct ir_type *elem; /* SEQUENCE / OPTIONAL: owned */
} ir_type;

typedef enum ir_attr_type {
    IR_ATTR_UNDEFINED = 0,
    IR_ATTR_FLOAT = 1,
    IR_ATTR_INT = 2,
    IR_ATTR_STRING = 3,
    IR_ATTR_TENSOR = 4,
    IR_ATTR_GRAPH = 5,
    IR_ATTR_FLOATS = 6,
    IR_ATTR_INTS = 7,
    IR_ATTR_STRINGS = 8,
    IR_ATTR_TENSORS = 9,
    IR_ATTR_GRAPHS = 10,
    IR_ATTR_SPARSE_TENSOR = 11,
    IR_ATTR_SPARSE_TENSORS = 12,
    IR_ATTR_TYPE_PROTO = 13,
    IR_ATTR_TYPE_PROTOS = 14
} ir_attr_type; /* numbers equal ONNX AttributeProto.AttributeType */

typedef struct ir_attr {
    char *name;
    ir_attr_type type;
    char *ref_attr_name; /* inside function bodies: refers to the caller's attribute */
    int64_t i;
    float f;
    char *s;        /* STRING: NUL-terminated copy; s_len bytes (may contain NULs) */
    size_t s_len;
    core_tensor *t; /* TENSOR */
    ir_graph *g;    /* GRAPH */
    ir_type *tp;    /* TYPE_PROTO */
    int64_t n;      /* count for the list kinds */
    int64_t *ints;
    float *floats;
    char **strings;
    core_tensor **tensors;
    ir_graph **graphs;
    ir_type **tps;
} ir_attr;

/* A value (graph edge). Ids index ir_graph.values. */
typedef struct ir_value {
    char *name;
    ir_type type;
    core_value *constant; /* initializer or folded constant (owned reference), else NULL */
    int producer;         /* node index, or -1 (graph input, initializer, outer scope) */
    bool is_graph_input;
    bool is_graph_output;
    bool is_outer;        /* defined in an enclosing graph: looked up by name at run time */
} ir_value;

typedef struct ir_node {
    char *name;
    char *op_type;
    char *domain;        /* "" for the default ONNX domain */
    int n_inputs;
    int *inputs;         /* value ids; -1 for an omitted optional input ("") */
    int n_outputs;
    int *outputs;        /* value ids; -1 for an omitted optional output */
    int n_attrs;
    ir_attr *attrs;
    int opset;           /* opset version of this node's domain in the model */
    const struct ops_schema *schema; /* resolved kernel, NULL if unsupported */
} ir_node;

typedef struct ir_opset {
    char *domain;
    int64_t version;
} ir_opset;

struct ir_graph {
    char *name;
    int n_values, cap_values;
    ir_value *values;
    int n_nodes, cap_nodes;
    ir_node *nodes;          /* in topological order after ir_graph_sort */
    int n_inputs;
    int *inputs;             /* value ids of graph inputs (may include initializers) */
    int n_outputs;
    int *outputs;
    ir_graph *parent;        /* enclosing graph for subgraphs, NULL at top level */
    int n_opsets;            /* shared view of the model's opsets (not owned in subgraphs) */
    ir_opset *opsets;
    struct ir_name_index *index; /* name -> value id hash (private to graph.c) */
};

typedef struct ir_model {
    int64_t ir_version;
    char *producer_name;
    char *producer_version;
    char *domain;
    int64_t model_version;
    char *doc_string;
    int n_opsets;
    ir_opset *opsets;
    ir_graph *graph;
    /* Backing storage the graph's tensors may borrow (mmap'd model / external files). */
    int n_mappings;
    struct ir_mapping { void *addr; size_t size; bool is_mmap; } *mappings;
} ir_model;

/* ---- graph construction (graph.c) ------------------------------------------------------ */
ir_graph *ir_graph_create(const char *name, ir_graph *parent);
void ir_graph_destroy(ir_graph *g);
void ir_model_destroy(ir_model *m);
/* Find a value by name in g only; -1 when absent. */
int ir_graph_find_value(const ir_graph *g, const char *name);
/* Find or add a value named `name` (empty string/NULL -> -1 is returned as "omitted").
 * Returns the id, or -2 on OOM (error set). */
int ir_graph_intern_value(ir_graph *g, const char *name);
/* Append a node; returns its index or -1 on OOM. The node struct is copied (shallow: the
 * graph takes ownership of the pointers in it). */
int ir_graph_add_node(ir_graph *g, const ir_node *node);
/* Order nodes topologically; KILN_ERR_INVALID_MODEL naming a node on the cycle, or a
 * value used but never produced. Also sets ir_value.producer. */
kiln_status ir_graph_sort(ir_graph *g);
/* Call fn for every value of g that nd's subgraphs read from the enclosing scope. */
void ir_node_outer_refs(const ir_graph *g, const ir_node *nd, void (*fn)(int v, void *arg), void *arg);
/* Structural checks: every input defined (graph input, initializer, producer, or outer
 * scope), single assignment, outputs produced, attributes well-formed. Recurses into
 * subgraphs. */
kiln_status ir_graph_verify(const ir_graph *g);
/* Opset version of `domain` ("" or "ai.onnx" = default) for this graph, 0 if not imported. */
int64_t ir_graph_opset(const ir_graph *g, const char *domain);

/* Fill unknown value types (dtype, shape with symbolic dims) from op rules over common
 * ops, in node order (infer.c). Declared types are kept; never fails on unknown ops. */
kiln_status ir_graph_infer(ir_graph *g);

void ir_type_free(ir_type *t);       /* frees contents, not t itself */
bool ir_type_copy(ir_type *dst, const ir_type *src);
void ir_attr_free(ir_attr *a);       /* frees contents */
void ir_node_free(ir_node *n);       /* frees contents */
const ir_attr *ir_node_attr(const ir_node *n, const char *name);

#endif /* KILN_IR_H */
