/* main.c — the kiln command-line tool: dispatches `kiln CMD ...` to one file per
 * subcommand (run.c, inspect.c, ...) and prints help and version. */
#include "cli.h"
#include "kiln.h"

#include <stdio.h>
#include <string.h>

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv);
    void (*help)(FILE *f);
} cli_command;

static const cli_command commands[] = {
    {"run", "run a model on inputs from .npy/.pb files", cli_run_main, cli_run_help},
    {"inspect", "describe a model: I/O, ops, parameters, FLOPs; --check validates", cli_inspect_main,
     cli_inspect_help},
    {"detect", "detect objects in images with a YOLO-style model", cli_detect_main, cli_detect_help},
    {"classify", "classify images (top-k with labels)", cli_classify_main, cli_classify_help},
    {"upscale", "super-resolve an image", cli_upscale_main, cli_upscale_help},
    {"bench", "time a model: load, latency percentiles, throughput, memory; --profile", cli_bench_main,
     cli_bench_help},
    {"build", "build an engine plan: tune kernels on this machine, plan memory, write .kplan", cli_build_main,
     cli_build_help},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static const cli_command *find_command(const char *name)
{
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "kiln %s — model deployment toolkit\n\n"
               "usage: kiln COMMAND [ARGS...]\n"
               "       kiln help COMMAND\n"
               "       kiln --version\n\ncommands:\n",
            kiln_version_string());
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun `kiln help COMMAND` for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) {
        printf("kiln %s\n", kiln_version_string());
        return 0;
    }
    if (!strcmp(cmd, "help")) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const cli_command *c = find_command(argv[2]);
        if (!c) {
            fprintf(stderr, "kiln: unknown command '%s'\n", argv[2]);
            return 2;
        }
        c->help(stdout);
        return 0;
    }
    const cli_command *c = find_command(cmd);
    if (!c) {
        fprintf(stderr, "kiln: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            c->help(stdout);
            return 0;
        }
    }
    return c->main(argc - 1, argv + 1);
}
