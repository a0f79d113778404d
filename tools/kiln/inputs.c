/* inputs.c — input handling shared by the CLI subcommands that bind model inputs
 * (run, bench): reading .npy / TensorProto files, splitting NAME=FILE, shape text. */
#include "inputs.h"
#include "npy.h"
#include "onnx/onnx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = n;
    return buf;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

kiln_status cli_tensor_load_file(const char *path, core_tensor **out)
{
    size_t size = 0;
    errno = 0;
    void *buf = slurp(path, &size);
    if (!buf) return core_error(KILN_ERR_IO, "cannot read %s: %s", path, errno ? strerror(errno) : "out of memory");
    kiln_status st;
    bool is_npy = size >= 6 && !memcmp(buf, "\x93NUMPY", 6);
    if (is_npy || has_suffix(path, ".npy")) {
        st = npy_decode(buf, size, out);
    } else {
        st = onnx_tensor_decode(buf, size, out);
    }
    free(buf);
    if (st != KILN_OK) return core_error_prefix(st, "%s: ", path);
    return KILN_OK;
}

static bool has_input_n(const kiln_model *model, const char *name, size_t len)
{
    int n = kiln_model_input_count(model);
    for (int i = 0; i < n; i++) {
        kiln_tensor_info ti;
        if (kiln_model_input_info(model, i, &ti) == KILN_OK && strlen(ti.name) == len && !strncmp(ti.name, name, len))
            return true;
    }
    return false;
}

bool cli_model_has_input(const kiln_model *model, const char *name)
{
    return has_input_n(model, name, strlen(name));
}

kiln_status cli_input_spec_split(const kiln_model *model, const char *spec, char **name, const char **file)
{
    const char *eq = strchr(spec, '=');
    if (!eq) return core_error(KILN_ERR_INVALID_ARGUMENT, "bad input '%s': expected NAME=FILE", spec);
    for (const char *e = eq; e; e = strchr(e + 1, '='))
        if (e[1] && has_input_n(model, spec, (size_t)(e - spec))) {
            eq = e;
            break;
        }
    *name = strndup(spec, (size_t)(eq - spec));
    if (!*name) return core_oom();
    *file = eq + 1;
    return KILN_OK;
}

void cli_input_names_text(const kiln_model *model, char *buf, size_t size)
{
    int n_in = kiln_model_input_count(model);
    size_t n = 0;
    if (!size) return;
    snprintf(buf, size, "none");
    for (int i = 0; i < n_in && n < size; i++) {
        kiln_tensor_info ti;
        if (kiln_model_input_info(model, i, &ti) == KILN_OK)
            n += (size_t)snprintf(buf + n, size - n, "%s'%s'", n ? ", " : "", ti.name);
    }
}

void cli_info_shape_text(const kiln_tensor_info *ti, char *buf, size_t size)
{
    if (ti->ndim < 0) {
        snprintf(buf, size, "unknown shape");
        return;
    }
    if (ti->ndim == 0) {
        snprintf(buf, size, "scalar");
        return;
    }
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < ti->ndim && i < KILN_MAX_DIMS && n < size; i++) {
        const char *sep = i ? "x" : "";
        if (ti->dims[i] >= 0)
            n += (size_t)snprintf(buf + n, size - n, "%s%lld", sep, (long long)ti->dims[i]);
        else
            n += (size_t)snprintf(buf + n, size - n, "%s%s", sep, ti->dim_names[i] ? ti->dim_names[i] : "?");
    }
}
