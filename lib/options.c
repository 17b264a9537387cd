#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"
#include "strv.h"
#include "xalloc.h"

#define FIELD(target, opt, type) ((type *)((char *)(target) + (opt)->offset))

static const char *type_hint(caa_opt_type t)
{
    switch (t) {
    case CAA_OPT_STRING:
        return "string";
    case CAA_OPT_BOOL:
        return "";
    case CAA_OPT_INT:
        return "int";
    case CAA_OPT_DURATION:
        return "duration";
    case CAA_OPT_LIST:
        return "list";
    case CAA_OPT_KEYVALUE:
        return "k=v,...";
    }
    return "";
}

int caa_option_set_value(const caa_option *opt, void *target, const char *value, bool append, caa_error **err)
{
    switch (opt->type) {
    case CAA_OPT_STRING: {
        char **f = FIELD(target, opt, char *);
        free(*f);
        *f = xstrdup(value);
        return 0;
    }
    case CAA_OPT_BOOL: {
        bool b;
        if (caa_parse_bool(value, &b) < 0)
            return caa_error_set(err, -EINVAL, "invalid boolean value \"%s\" for -%s", value, opt->name);
        *FIELD(target, opt, bool) = b;
        return 0;
    }
    case CAA_OPT_INT: {
        int64_t v;
        int64_t min = opt->min, max = opt->max;
        if (min == 0 && max == 0) {
            min = INT64_MIN;
            max = INT64_MAX;
        }
        int r = caa_parse_int64(value, min, max, &v);
        if (r == -ERANGE)
            return caa_error_set(err, r, "value \"%s\" for -%s is out of range [%lld, %lld]", value,
                                 opt->name, (long long)min, (long long)max);
        if (r < 0)
            return caa_error_set(err, r, "invalid integer value \"%s\" for -%s", value, opt->name);
        *FIELD(target, opt, int64_t) = v;
        return 0;
    }
    case CAA_OPT_DURATION: {
        int64_t ns;
        if (caa_parse_duration(value, &ns) < 0)
            return caa_error_set(err, -EINVAL, "invalid duration \"%s\" for -%s (examples: 90s, 5m, 1h30m)",
                                 value, opt->name);
        *FIELD(target, opt, int64_t) = ns;
        return 0;
    }
    case CAA_OPT_LIST:
    case CAA_OPT_KEYVALUE: {
        char ***f = FIELD(target, opt, char **);
        _cleanup_strv_ char **items = NULL;
        caa_strv_split_append(&items, value, ',');
        for (size_t i = 0; items && items[i]; i++) {
            if (opt->type == CAA_OPT_KEYVALUE) {
                const char *eq = strchr(items[i], '=');
                if (!eq || eq == items[i])
                    return caa_error_set(err, -EINVAL, "invalid key=value item \"%s\" for -%s", items[i],
                                         opt->name);
            }
        }
        if (!append) {
            caa_strv_free(*f);
            *f = NULL;
        }
        for (size_t i = 0; items && items[i]; i++)
            caa_strv_push(f, items[i]);
        return 0;
    }
    }
    return caa_error_set(err, -EINVAL, "unknown option type for -%s", opt->name);
}

static const caa_option *find_option(const caa_option_set *sets, size_t n_sets, const char *name, size_t len,
                                     void **ret_target)
{
    for (size_t s = 0; s < n_sets; s++) {
        for (size_t i = 0; i < sets[s].n_opts; i++) {
            const caa_option *o = &sets[s].opts[i];
            if (strlen(o->name) == len && memcmp(o->name, name, len) == 0) {
                *ret_target = sets[s].target;
                return o;
            }
        }
    }
    return NULL;
}

int caa_options_parse(const caa_option_set *sets, size_t n_sets, int argc, char **argv, caa_error **err)
{
    int r;
    /* Defaults, then environment. */
    for (size_t s = 0; s < n_sets; s++) {
        for (size_t i = 0; i < sets[s].n_opts; i++) {
            const caa_option *o = &sets[s].opts[i];
            if (o->def) {
                r = caa_option_set_value(o, sets[s].target, o->def, false, err);
                if (r < 0)
                    return caa_error_prefix(err, "default");
            }
            const char *env = o->env ? secure_getenv(o->env) : NULL;
            if (env && *env) {
                if (o->type == CAA_OPT_BOOL) {
                    /* Upstream: "1"/"true" (any case) is true, anything else false. */
                    *FIELD(sets[s].target, o, bool) = strcmp(env, "1") == 0 || strcasecmp(env, "true") == 0;
                    continue;
                }
                r = caa_option_set_value(o, sets[s].target, env, false, err);
                if (r < 0)
                    return caa_error_prefix(err, "environment variable %s", o->env);
            }
        }
    }

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc)
                return caa_error_set(err, -EINVAL, "unexpected argument \"%s\"", argv[i + 1]);
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            return caa_error_set(err, -EINVAL, "unexpected argument \"%s\"", a);
        const char *name = a + 1;
        if (*name == '-')
            name++;
        if (*name == '-' || *name == '=' || *name == '\0')
            return caa_error_set(err, -EINVAL, "bad flag syntax: %s", a);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if ((len == 1 && name[0] == 'h') || (len == 4 && memcmp(name, "help", 4) == 0))
            return 1;
        void *target = NULL;
        const caa_option *o = find_option(sets, n_sets, name, len, &target);
        if (!o)
            return caa_error_set(err, -EINVAL, "flag provided but not defined: -%.*s", (int)len, name);
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (o->type == CAA_OPT_BOOL) {
            value = "true";
        } else {
            if (i + 1 >= argc)
                return caa_error_set(err, -EINVAL, "flag needs an argument: -%s", o->name);
            value = argv[++i];
        }
        r = caa_option_set_value(o, target, value, true, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static char *format_value(const caa_option *o, void *target)
{
    switch (o->type) {
    case CAA_OPT_STRING: {
        const char *v = *FIELD(target, o, char *);
        return xstrdup(v ? v : "");
    }
    case CAA_OPT_BOOL:
        return xstrdup(*FIELD(target, o, bool) ? "true" : "false");
    case CAA_OPT_INT:
        return xasprintf("%lld", (long long)*FIELD(target, o, int64_t));
    case CAA_OPT_DURATION: {
        char buf[64];
        caa_format_duration(*FIELD(target, o, int64_t), buf, sizeof(buf));
        return xstrdup(buf);
    }
    case CAA_OPT_LIST:
    case CAA_OPT_KEYVALUE:
        return caa_strv_join(*FIELD(target, o, char **), ",");
    }
    return xstrdup("");
}

void caa_options_dump(const caa_option_set *sets, size_t n_sets,
                      void (*cb)(const char *, const char *, void *), void *opaque)
{
    for (size_t s = 0; s < n_sets; s++) {
        for (size_t i = 0; i < sets[s].n_opts; i++) {
            const caa_option *o = &sets[s].opts[i];
            _cleanup_free_ char *v = format_value(o, sets[s].target);
            if ((o->flags & CAA_OPT_SECRET) && *v)
                cb(o->name, "********", opaque);
            else
                cb(o->name, v, opaque);
        }
    }
}

void caa_options_print_help(FILE *out, const caa_option_set *sets, size_t n_sets)
{
    for (size_t s = 0; s < n_sets; s++) {
        fprintf(out, "\n%s options:\n", sets[s].title);
        for (size_t i = 0; i < sets[s].n_opts; i++) {
            const caa_option *o = &sets[s].opts[i];
            const char *hint = type_hint(o->type);
            fprintf(out, "  -%s%s%s\n        %s", o->name, *hint ? " " : "", hint, o->help ? o->help : "");
            if (o->env)
                fprintf(out, " (env %s)", o->env);
            if (o->def && *o->def && !(o->flags & CAA_OPT_SECRET))
                fprintf(out, " (default \"%s\")", o->def);
            fputc('\n', out);
        }
    }
}

void caa_options_free(const caa_option_set *sets, size_t n_sets)
{
    for (size_t s = 0; s < n_sets; s++) {
        for (size_t i = 0; i < sets[s].n_opts; i++) {
            const caa_option *o = &sets[s].opts[i];
            if (o->type == CAA_OPT_STRING) {
                char **f = FIELD(sets[s].target, o, char *);
                free(*f);
                *f = NULL;
            } else if (o->type == CAA_OPT_LIST || o->type == CAA_OPT_KEYVALUE) {
                char ***f = FIELD(sets[s].target, o, char **);
                caa_strv_free(*f);
                *f = NULL;
            }
        }
    }
}

int caa_options_parse_program(const char *prog, const caa_option_set *sets, size_t n_sets, int argc,
                              char **argv, const bool *version, const char *version_text, const char *commit)
{
    caa_error *e = NULL;
    int status = -1;
    int r = caa_options_parse(sets, n_sets, argc - 1, argv + 1, &e);
    if (r == 1) {
        caa_options_print_help(stdout, sets, n_sets);
        status = 0;
    } else if (r < 0) {
        fprintf(stderr, "%s: %s\n", prog, caa_error_msg(e));
        status = 2;
    } else if (version && *version) {
        printf("%s version %s\n  commit: %s\n", prog, version_text, commit);
        status = 0;
    }
    caa_error_free(e);
    if (status >= 0)
        caa_options_free(sets, n_sets);
    return status;
}
