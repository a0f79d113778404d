/* apps.c — helpers shared by the vision subcommands. */
#include "apps.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

double app_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

bool app_model_open(const char *cmd, const char *path, int threads, app_model *m)
{
    memset(m, 0, sizeof *m);
    kiln_load_options o = {threads, 0};
    if (kiln_model_load_file(path, &o, &m->model) || kiln_context_create(m->model, &m->ctx)) {
        fprintf(stderr, "kiln %s: %s: %s\n", cmd, path, kiln_last_error());
        app_model_close(m);
        return false;
    }
    if (kiln_model_input_count(m->model) < 1 || kiln_model_output_count(m->model) < 1 ||
        kiln_model_input_info(m->model, 0, &m->in) || kiln_model_output_info(m->model, 0, &m->out)) {
        fprintf(stderr, "kiln %s: %s: the model has no inputs or outputs\n", cmd, path);
        app_model_close(m);
        return false;
    }
    return true;
}

void app_model_close(app_model *m)
{
    kiln_context_destroy(m->ctx);
    kiln_model_destroy(m->model);
    m->ctx = NULL;
    m->model = NULL;
}

int app_parse_floats(const char *s, float *out, int n)
{
    int k = 0;
    while (*s && k < n) {
        char *end;
        errno = 0;
        float v = strtof(s, &end);
        if (end == s || errno) return -1;
        out[k++] = v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return *s ? -1 : k;
}

bool app_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') { *value = argv[*i] + n + 1; return true; }
    if (strcmp(argv[*i], name)) return false;
    if (*i + 1 >= argc) { *value = NULL; return true; }
    *value = argv[++*i];
    return true;
}

const char *app_stem(const char *path, char *buf, size_t size)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, size, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    return buf;
}

bool app_mkdirs(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) && errno != EEXIST) return false;
        *p = '/';
    }
    return !mkdir(tmp, 0777) || errno == EEXIST;
}
