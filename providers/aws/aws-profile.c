/* AWS shared configuration files (see aws-profile.h). */
#include "aws-profile.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "fs.h"
#include "xalloc.h"

#define MAX_FILE (1u << 20)

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static void set(char **field, const char *value, bool override)
{
    if (*field && !override)
        return;
    free(*field);
    *field = xstrdup(value);
}

/* Applies the section called `want` of one INI document. */
static int apply(const char *text, const char *want, bool config_file, bool override, aws_profile *p,
                 caa_error **err)
{
    if (!text)
        return 0;
    _cleanup_free_ char *copy = xstrdup(text);
    bool in = false;
    unsigned lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#' || *l == ';')
            continue;
        if (*l == '[') {
            char *end = strchr(l, ']');
            if (!end)
                return caa_error_set(err, -EINVAL, "AWS %s file: malformed section header",
                                     config_file ? "config" : "credentials");
            *end = '\0';
            char *name = trim(l + 1);
            if (config_file) {
                /* The config file names profiles "profile X"; a bare name is
                 * not a profile there, except "default". */
                if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7]))
                    name = trim(name + 8);
                else if (strcmp(name, "default") != 0)
                    name = NULL;
            }
            in = name && strcmp(name, want) == 0;
            p->found = p->found || in;
            continue;
        }
        if (!in)
            continue;
        char *eq = strchr(l, '=');
        if (!eq)
            continue; /* nested sub-section lines and the like: not ours */
        *eq = '\0';
        char *key = trim(l);
        char *value = trim(eq + 1);
        if (strcmp(key, "aws_access_key_id") == 0)
            set(&p->access_key_id, value, override);
        else if (strcmp(key, "aws_secret_access_key") == 0)
            set(&p->secret_access_key, value, override);
        else if (strcmp(key, "aws_session_token") == 0)
            set(&p->session_token, value, override);
        else if (strcmp(key, "region") == 0)
            set(&p->region, value, override);
        else if (strcmp(key, "role_arn") == 0)
            set(&p->role_arn, value, override);
        else if (strcmp(key, "web_identity_token_file") == 0)
            set(&p->web_identity_token_file, value, override);
        else if (strcmp(key, "role_session_name") == 0)
            set(&p->role_session_name, value, override);
    }
    if (copy)
        OPENSSL_cleanse(copy, strlen(text));
    return 0;
}

int aws_profile_parse(const char *credentials_text, const char *config_text, const char *name,
                      aws_profile *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    int r = apply(config_text, name, true, false, ret, err);
    if (r >= 0)
        r = apply(credentials_text, name, false, true, ret, err);
    if (r < 0)
        aws_profile_done(ret);
    return r;
}

static int read_optional(const char *env, const char *home_rel, char **ret, caa_error **err)
{
    *ret = NULL;
    const char *path = getenv(env);
    _cleanup_free_ char *fallback = NULL;
    if (!path || !*path) {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return 0;
        fallback = xasprintf("%s/%s", home, home_rel);
        path = fallback;
    }
    size_t len;
    caa_error *e = NULL;
    int r = caa_read_file(path, MAX_FILE, 0, ret, &len, &e);
    if (r == -ENOENT) {
        caa_error_free(e);
        return 0;
    }
    if (r < 0) {
        caa_error_propagate(err, &e);
        return caa_error_prefix(err, "reading %s", path);
    }
    return 0;
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

int aws_profile_load(const char *name, aws_profile *ret, caa_error **err)
{
    char *creds = NULL, *config = NULL;
    memset(ret, 0, sizeof(*ret));
    int r = read_optional("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", &creds, err);
    if (r >= 0)
        r = read_optional("AWS_CONFIG_FILE", ".aws/config", &config, err);
    if (r >= 0)
        r = aws_profile_parse(creds, config, name, ret, err);
    free_secret(creds);
    free_secret(config);
    return r;
}

void aws_profile_done(aws_profile *p)
{
    if (!p)
        return;
    free_secret(p->access_key_id);
    free_secret(p->secret_access_key);
    free_secret(p->session_token);
    free(p->region);
    free(p->role_arn);
    free(p->web_identity_token_file);
    free(p->role_session_name);
    memset(p, 0, sizeof(*p));
}
