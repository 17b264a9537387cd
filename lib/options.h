/* Declarative command-line and environment options.
 *
 * Each component (the daemon, each provider, the forwarder) describes its
 * options in a static table. Precedence follows upstream's flag registrar:
 * default < environment variable (when set and non-empty) < command-line flag.
 * Flags take Go's syntax with one or two dashes: -name value, -name=value,
 * --name=value; booleans as -name or -name=false. List options take
 * comma-separated values and append. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

typedef enum caa_opt_type {
    CAA_OPT_STRING,   /* char *            */
    CAA_OPT_BOOL,     /* bool              */
    CAA_OPT_INT,      /* int64_t, [min,max] */
    CAA_OPT_DURATION, /* int64_t nanoseconds */
    CAA_OPT_LIST,     /* char ** (strv), comma-separated, appends */
    CAA_OPT_KEYVALUE, /* char ** of "k=v", comma-separated, appends */
} caa_opt_type;

enum {
    CAA_OPT_SECRET = 1 << 0, /* value masked in the effective-configuration dump */
};

typedef struct caa_option {
    const char *name; /* flag name without dashes */
    const char *env;  /* environment variable, or NULL for flag-only */
    caa_opt_type type;
    size_t offset; /* into the target struct of the option set */
    const char *def;
    int64_t min, max; /* CAA_OPT_INT bounds (both 0: unbounded) */
    unsigned flags;
    const char *help;
} caa_option;

/* Table rows, the one way to write them: `target` is the struct type the
 * offsets point into, `field` a member of it.
 *   CAA_OPTION(aws_config, "aws-region", "AWS_REGION", CAA_OPT_STRING, region, "", "AWS region")
 * CAA_OPTION_INT adds the [lo, hi] bounds, CAA_OPTION_SECRET is a string
 * option (default "") masked in the configuration dump. */
#define CAA_OPTION(target, name_, env_, type_, field, def_, help_)                                           \
    {                                                                                                        \
        .name = (name_), .env = (env_), .type = (type_), .offset = offsetof(target, field), .def = (def_),   \
        .help = (help_)                                                                                      \
    }
#define CAA_OPTION_INT(target, name_, env_, field, def_, lo, hi, help_)                                      \
    {                                                                                                        \
        .name = (name_), .env = (env_), .type = CAA_OPT_INT, .offset = offsetof(target, field),              \
        .def = (def_), .min = (lo), .max = (hi), .help = (help_)                                             \
    }
#define CAA_OPTION_SECRET(target, name_, env_, field, help_)                                                 \
    {                                                                                                        \
        .name = (name_), .env = (env_), .type = CAA_OPT_STRING, .offset = offsetof(target, field),           \
        .def = "", .flags = CAA_OPT_SECRET, .help = (help_)                                                  \
    }

typedef struct caa_option_set {
    const char *title; /* heading in --help, e.g. "libvirt provider" */
    const caa_option *opts;
    size_t n_opts;
    void *target;
} caa_option_set;

/* Applies defaults, then the environment, then argv[0..argc) (argv holds only
 * the flags). Returns 1 when help was requested (-h, -help, --help), 0 on
 * success, negative with *err on a bad flag or value. Positional arguments
 * after the flags are not allowed. */
int caa_options_parse(const caa_option_set *sets, size_t n_sets, int argc, char **argv, caa_error **err);
/* The command-line prologue of a program with one flag table: parses
 * argv[1..argc), prints -help on stdout, a bad flag as "<prog>: <message>" on
 * stderr, and, when *version is true after parsing, "<prog> version V\n
 * commit: C" on stdout. Returns -1 when the program goes on, else the exit
 * status to leave with (0, or 2 for a usage error) after freeing the sets. */
int caa_options_parse_program(const char *prog, const caa_option_set *sets, size_t n_sets, int argc,
                              char **argv, const bool *version, const char *version_text, const char *commit);
/* Sets one option from its text form (used by parse; exported for tests). */
int caa_option_set_value(const caa_option *opt, void *target, const char *value, bool append,
                         caa_error **err);
void caa_options_print_help(FILE *out, const caa_option_set *sets, size_t n_sets);
/* Calls cb(name, value) for every option with its effective value, secrets masked. */
void caa_options_dump(const caa_option_set *sets, size_t n_sets,
                      void (*cb)(const char *name, const char *value, void *opaque), void *opaque);
/* Frees strings and lists held by the target structs. */
void caa_options_free(const caa_option_set *sets, size_t n_sets);
