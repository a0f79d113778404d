/* labels.c — class label files: one label per line. */
#include "core/core.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KILN_API void kiln_labels_free(char **labels, int n)
{
    for (int i = 0; labels && i < n; i++) free(labels[i]);
    free(labels);
}

KILN_API kiln_status kiln_labels_load(const char *path, char ***labels, int *n)
{
    if (!path || !labels || !n) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_labels_load: NULL argument");
    *labels = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return core_error(KILN_ERR_IO, "cannot open labels file '%s'", path);
    char **out = NULL;
    int count = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    kiln_status st = KILN_OK;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(out, sizeof *p * (size_t)cap);
            if (!p) { st = core_oom(); break; }
            out = p;
        }
        if (!(out[count] = core_strndup(line, (size_t)len))) { st = core_oom(); break; }
        count++;
    }
    /* A trailing empty line is the file's final newline, not a label. */
    while (st == KILN_OK && count > 0 && out[count - 1][0] == 0) free(out[--count]);
    free(line);
    fclose(f);
    if (st) { kiln_labels_free(out, count); return st; }
    *labels = out;
    *n = count;
    return KILN_OK;
}
