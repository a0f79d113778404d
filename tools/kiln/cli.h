/* cli.h — what the kiln CLI's subcommand files export to main.c's dispatcher. */
#ifndef KILN_TOOLS_CLI_H
#define KILN_TOOLS_CLI_H

#include <stdio.h>

/* Each subcommand: argv[0] is the subcommand name; returns the process exit status. */
int cli_run_main(int argc, char **argv);
void cli_run_help(FILE *f);
int cli_inspect_main(int argc, char **argv);
void cli_inspect_help(FILE *f);
int cli_bench_main(int argc, char **argv);
void cli_bench_help(FILE *f);
int cli_build_main(int argc, char **argv);
void cli_build_help(FILE *f);
/* Plans (build.c): whether path starts with the plan magic, and `kiln inspect PLAN`. */
#include <stdbool.h>
bool cli_is_plan_file(const char *path);
int cli_inspect_plan(const char *path, bool check);

int cli_detect_main(int argc, char **argv);
void cli_detect_help(FILE *f);
int cli_classify_main(int argc, char **argv);
void cli_classify_help(FILE *f);
int cli_upscale_main(int argc, char **argv);
void cli_upscale_help(FILE *f);

#endif
