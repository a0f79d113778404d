/* ops.h — how an operator is described to kiln: a schema (name, domain, opset range) with
 * its reference kernel. Kernels see the node only through ops_ctx accessors, so the
 * executor, constant folding and (later) backends can all drive the same kernels.
 *
 * Adding an op: write `static kiln_status op_run(ops_ctx *c)` in its family file under
 * src/ops/, add one line to that file's schema table, done. */
#ifndef KILN_OPS_H
#define KILN_OPS_H

#include "core/core.h"
#include "ir/ir.h"

typedef struct ops_ctx ops_ctx;

typedef kiln_status (*ops_run_fn)(ops_ctx *c);

typedef struct ops_schema {
    const char *op_type;
    const char *domain;   /* "" = default ONNX domain, "ai.onnx.ml", ... */
    int since_version;    /* first opset this kernel implements (1 = all) */
    ops_run_fn run;
    int backend;          /* 0 = reference kernel (the oracle); 1 = fast CPU kernel, which
                             takes precedence and calls ops_run_reference() for any node
                             it does not handle */
} ops_schema;

/* Each family file exports a table terminated by an entry with op_type == NULL, and
 * registry.c lists the tables. */
#define OPS_TABLE_END {NULL, NULL, 0, NULL, 0}

/* Find the kernel for (domain, op_type) at `opset`: a fast backend kernel if one is
 * registered (and enabled), else the reference entry with the largest since_version <=
 * opset. NULL if none. */
const ops_schema *ops_find(const char *domain, const char *op_type, int64_t opset);
/* Only reference kernels. */
const ops_schema *ops_find_reference(const char *domain, const char *op_type, int64_t opset);
/* Fast kernels on/off process-wide (KILN_REFERENCE=1 in the environment turns them off):
 * for testing fast kernels against the oracle. */
void ops_set_fast_kernels(bool enabled);
bool ops_fast_kernels_enabled(void);
/* Iterate over every registered schema (for `kiln inspect --check` and docs). */
int ops_count(void);
const ops_schema *ops_at(int i);

/* ---- what a kernel sees (implemented by runtime/exec.c) ---------------------------------
 * Inputs: ops_input returns NULL for an omitted optional input (or one beyond n_inputs)
 * and for a non-tensor value. Outputs: allocate with ops_output (shape + dtype), or hand
 * over a ready value with ops_set_output. An output the node omits ("") still may be
 * allocated; it is simply dropped. */
const ir_node *ops_node(const ops_ctx *c);
int ops_opset(const ops_ctx *c);       /* opset of the node's domain */
int ops_n_inputs(const ops_ctx *c);
int ops_n_outputs(const ops_ctx *c);
bool ops_has_input(const ops_ctx *c, int i);   /* present and not omitted */
bool ops_has_output(const ops_ctx *c, int i);  /* the node names output i */
core_tensor *ops_input(const ops_ctx *c, int i);
core_value *ops_input_value(const ops_ctx *c, int i); /* borrowed; NULL if omitted */
/* Input i dies with this node and nothing else holds it, so the kernel may hand its buffer
 * to an output instead of copying (zero-copy Reshape-like ops; runtime/exec.c). */
bool ops_input_donatable(const ops_ctx *c, int i);
/* Output o as input i's buffer with new dims (same element count), when input i is
 * donatable and a plain CPU tensor: *out is that output (already set). Else *out is NULL and
 * the kernel makes its output itself. Error status only on OOM. */
kiln_status ops_output_donated(ops_ctx *c, int o, int i, int ndim, const int64_t *dims, core_tensor **out);
core_tensor *ops_output(ops_ctx *c, int i, kiln_dtype dtype, int ndim, const int64_t *dims);
/* As ops_output, but the contents are undefined (no zero fill): only for kernels that
 * write every element on every path that returns KILN_OK. A kernel that falls back to
 * ops_run_reference after this gets a zeroed output again from the reference's own
 * ops_output call. KILN_POISON_UNINIT=1 fills these outputs with NaNs instead, for tests. */
core_tensor *ops_output_uninit(ops_ctx *c, int i, kiln_dtype dtype, int ndim, const int64_t *dims);
/* Takes ownership of the caller's reference to v. */
kiln_status ops_set_output(ops_ctx *c, int i, core_value *v);

/* Attributes: the default is returned when the attribute is absent. */
bool ops_has_attr(const ops_ctx *c, const char *name);
int64_t ops_attr_int(const ops_ctx *c, const char *name, int64_t dflt);
float ops_attr_float(const ops_ctx *c, const char *name, float dflt);
const char *ops_attr_string(const ops_ctx *c, const char *name, const char *dflt);
/* List attributes: *n receives the count (0 when absent, and NULL is returned). */
const int64_t *ops_attr_ints(const ops_ctx *c, const char *name, int64_t *n);
const float *ops_attr_floats(const ops_ctx *c, const char *name, int64_t *n);
char *const *ops_attr_strings(const ops_ctx *c, const char *name, int64_t *n);
const core_tensor *ops_attr_tensor(const ops_ctx *c, const char *name);
const ir_graph *ops_attr_graph(const ops_ctx *c, const char *name);
const ir_attr *ops_attr(const ops_ctx *c, const char *name);

/* Errors: sets the error text prefixed with "node 'NAME' (OP): " and returns s. */
kiln_status ops_error(const ops_ctx *c, kiln_status s, const char *fmt, ...) CORE_PRINTF(3, 4);

/* Control flow: run subgraph g (an attribute of this node) with the given input values
 * (borrowed); on success outputs[0..n_outputs(g)-1] receive new references the caller
 * must release. Outer-scope names resolve through the calling node's scope. */
kiln_status ops_run_subgraph(ops_ctx *c, const ir_graph *g, int n_in, core_value *const *inputs,
                             core_value **outputs);

/* Run this node with its reference kernel (what a fast kernel does for cases it does not
 * cover). */
kiln_status ops_run_reference(ops_ctx *c);
/* Scratch memory for the running kernel, 64-byte aligned, grown as needed and kept by the
 * context (no allocation once warm). Valid until the kernel returns; a kernel must not
 * hold it across ops_run_subgraph. NULL (error set) on OOM. */
void *ops_scratch(ops_ctx *c, size_t bytes);
/* The context's thread pool (NULL = single-threaded); see core/threadpool.h. */
struct core_threadpool *ops_threadpool(const ops_ctx *c);

/* Random numbers for RandomNormal/Uniform/Bernoulli: a per-context generator, or seeded
 * when the node gives `seed`. Returns a uniform double in [0, 1). */
double ops_random_uniform(ops_ctx *c);

#endif /* KILN_OPS_H */
