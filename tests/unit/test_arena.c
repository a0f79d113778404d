/* test_arena.c — the activation arena (memory plan made from the first run) must not
 * change results: every golden model runs through the public API several times, with
 * input shapes changing between runs where the model allows, and each run must equal a
 * fresh one-shot run bit for bit. */
#include "kiln.h"
#include "../../tools/kiln/npy.c"
#include <dirent.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;
#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; printf("FAIL: "); printf(__VA_ARGS__); printf("\n"); } } while (0)

typedef struct dataset { int n; char names[8][128]; core_tensor *t[8]; } dataset;

static bool load_set(const char *dir, dataset *d)
{
    DIR *dp = opendir(dir);
    if (!dp) return false;
    struct dirent *e;
    d->n = 0;
    while ((e = readdir(dp)) && d->n < 8) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".npy")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (npy_read_file(path, &d->t[d->n])) continue;
        snprintf(d->names[d->n], sizeof d->names[0], "%.*s", (int)(l - 4), e->d_name);
        d->n++;
    }
    closedir(dp);
    return d->n > 0;
}

static void free_set(dataset *d) { for (int i = 0; i < d->n; i++) core_tensor_destroy(d->t[i]); d->n = 0; }

/* Run and copy output 0 into *out (malloc'd). */
static bool run(kiln_model *m, kiln_context *c, const dataset *d, void **out, size_t *size)
{
    for (int i = 0; i < d->n; i++)
        if (kiln_context_set_input(c, d->names[i], d->t[i]->dtype, d->t[i]->ndim, d->t[i]->dims, d->t[i]->data, d->t[i]->nbytes))
            return false;
    kiln_tensor_info info;
    kiln_tensor_view v;
    if (kiln_context_run(c) || kiln_model_output_info(m, 0, &info) || kiln_context_get_output(c, info.name, &v)) return false;
    *out = malloc(v.nbytes + 1);
    memcpy(*out, v.data, v.nbytes);
    *size = v.nbytes;
    return true;
}

int main(void)
{
    const char *root = "tests/golden/models";
    DIR *dp = opendir(root);
    if (!dp) { printf("no %s\n0 passed, 1 failed\n", root); return 1; }
    struct dirent *e;
    kiln_load_options one = {1, 0};
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char mpath[2048];
        snprintf(mpath, sizeof mpath, "%s/%s/model.onnx", root, e->d_name);
        dataset sets[4];
        int n_sets = 0;
        for (int k = 0; k < 4; k++) {
            char dir[1536];
            snprintf(dir, sizeof dir, "%s/%s/data_%d/inputs", root, e->d_name, k);
            if (load_set(dir, &sets[n_sets])) n_sets++;
        }
        kiln_model *m = NULL;
        kiln_context *c = NULL;
        if (n_sets == 0 || kiln_model_load_file(mpath, &one, &m) || kiln_context_create(m, &c)) {
            CHECK(false, "%s: setup: %s", e->d_name, kiln_last_error());
            kiln_model_destroy(m);
            continue;
        }
        /* Sequence of data sets: 0,0,1,1,0,... so plans are made, used, remade. */
        int order[] = {0, 0, 1, 1, 0, 2, 2, 0};
        for (size_t r = 0; r < sizeof order / sizeof order[0]; r++) {
            int k = order[r] % n_sets;
            void *got = NULL, *want = NULL;
            size_t gs = 0, ws = 0;
            kiln_context *fresh = NULL;
            bool ok = run(m, c, &sets[k], &got, &gs) && !kiln_context_create(m, &fresh) &&
                      run(m, fresh, &sets[k], &want, &ws);
            CHECK(ok && gs == ws && !memcmp(got, want, gs), "%s: run %zu (data_%d) differs from a fresh run (%s)",
                  e->d_name, r, k, ok ? "values" : kiln_last_error());
            kiln_context_destroy(fresh);
            free(got);
            free(want);
        }
        kiln_context_destroy(c);
        kiln_model_destroy(m);
        for (int k = 0; k < n_sets; k++) free_set(&sets[k]);
    }
    closedir(dp);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
