/* inputs.h — input handling shared by the CLI subcommands that bind model inputs
 * (run, bench): reading tensor files, splitting NAME=FILE, describing declared shapes. */
#ifndef KILN_TOOLS_INPUTS_H
#define KILN_TOOLS_INPUTS_H

#include "core/core.h"
#include "kiln.h"

/* Read a tensor from a .npy file (recognised by its magic or a .npy extension) or a
 * serialized TensorProto. On success *out is an owned tensor; on failure the error text
 * (core_error_text) starts with the path. */
kiln_status cli_tensor_load_file(const char *path, core_tensor **out);

/* Split spec "NAME=FILE". Names and paths may both contain '=', so the first split whose
 * NAME is an input of model wins; otherwise the first '='. *name is malloc'd (caller
 * frees); *file points into spec. Fails only on out-of-memory or when spec has no '='. */
kiln_status cli_input_spec_split(const kiln_model *model, const char *spec, char **name, const char **file);

/* True when model has an input called name. */
bool cli_model_has_input(const kiln_model *model, const char *name);

/* "'a', 'b'" (the model's input names, quoted) into buf, or "none". */
void cli_input_names_text(const kiln_model *model, char *buf, size_t size);

/* A declared shape as text: "1x3xbatchx?" ('?' where the dim has neither value nor name),
 * "scalar" for rank 0, "unknown shape" when the rank is unknown. */
void cli_info_shape_text(const kiln_tensor_info *ti, char *buf, size_t size);

#endif
