/* fuzz_plan.c — libFuzzer target for the plan reader. Inputs that start with the plan magic
 * get their checksums recomputed first, so mutations reach the structural validation of
 * sections, graph, tensors, profiles and memory plan instead of stopping at the checksum
 * (contexts are not created: a fuzzed arena size may legitimately ask for gigabytes). Seeds: KILN_PLAN_SEEDS="DIR model.onnx ..."
 * makes DIR/<n>.kplan from each model in LLVMFuzzerInitialize (tests/fuzz/run.sh does). */
#include "kiln.h"
#include "plan/plan.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *spec = getenv("KILN_PLAN_SEEDS");
    if (!spec || !*spec) return 0;
    char *copy = strdup(spec), *save = NULL;
    char *dir = copy ? strtok_r(copy, " ", &save) : NULL;
    int i = 0;
    for (char *model = dir ? strtok_r(NULL, " ", &save) : NULL; model; model = strtok_r(NULL, " ", &save)) {
        char out[4096];
        snprintf(out, sizeof out, "%s/seed%d.kplan", dir, i++);
        kiln_build_options o = kiln_build_options_default();
        o.num_threads = 1;
        o.verbose = -1;
        if (kiln_plan_build(model, &o, out) != KILN_OK) fprintf(stderr, "fuzz_plan: seed %s: %s\n", model, kiln_last_error());
    }
    free(copy);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 22)) return 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    plan_fix_checksums(buf, size);
    kiln_model *m = NULL;
    if (plan_is_plan(buf, size) && kiln_model_load_memory(buf, size, NULL, NULL, &m) == KILN_OK) kiln_model_destroy(m);
    free(buf);
    return 0;
}
