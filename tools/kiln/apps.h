/* apps.h — helpers shared by the vision subcommands (detect, classify, upscale). */
#ifndef KILN_TOOLS_APPS_H
#define KILN_TOOLS_APPS_H

#include "kiln.h"
#include <stdbool.h>
#include <stdio.h>

/* A loaded model with one context, and its first input/output described. */
typedef struct app_model {
    kiln_model *model;
    kiln_context *ctx;
    kiln_tensor_info in, out;
} app_model;

bool app_model_open(const char *cmd, const char *path, int threads, app_model *m);
void app_model_close(app_model *m);
double app_now_ms(void);
/* Parse "a,b,c" into up to n floats; returns the count or -1. */
int app_parse_floats(const char *s, float *out, int n);
/* argv option helpers: return true and advance *i when argv[*i] is `name` with a value. */
bool app_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* Basename without the extension into buf. */
const char *app_stem(const char *path, char *buf, size_t size);
bool app_mkdirs(const char *dir);

#endif
