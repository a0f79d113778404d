/* api_internal.h — what other modules need from api.c: making a kiln_model from an IR model
 * built in code (src/network/) rather than loaded from ONNX. */
#ifndef KILN_API_INTERNAL_H
#define KILN_API_INTERNAL_H

#include "ir/ir.h"

/* Finish m as kiln_model_load_file finishes an imported model (plugin shape inference,
 * kernel resolution, constant folding, optimization per opts) and wrap it. Takes ownership
 * of m, also on failure. m->graph must be sorted and verified. */
kiln_status api_model_from_ir(ir_model *m, const kiln_load_options *opts, kiln_model **out);

#endif
