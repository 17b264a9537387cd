/* Provider registry: providers registered at start (the test provider), then
 * provider modules, loaded from one compiled-in directory only when the
 * daemon selects them (docs/provider-modules.md). */
#define LOG_COMPONENT "providers/registry"
#include "provider.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "module.h"
#include "xalloc.h"

#ifndef CAA_PROVIDER_MODULE_DIR
#    error "CAA_PROVIDER_MODULE_DIR (the installed module directory) must be defined by the build"
#endif
#ifndef CAA_BUILD_ROOT
#    error "CAA_BUILD_ROOT (meson's build directory) must be defined by the build"
#endif

#define MAX_PROVIDERS 16

static const caa_provider_ops *registered[MAX_PROVIDERS];
static size_t n_registered;
static const caa_provider_ops *loaded[MAX_PROVIDERS];
static size_t n_loaded;

bool caa_module_running_from_build_tree(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    _cleanup_free_ char *root = realpath(CAA_BUILD_ROOT, NULL);
    if (!root)
        return false;
    size_t len = strlen(root);
    return strncmp(exe, root, len) == 0 && exe[len] == '/';
}

/* The one directory modules come from: <build>/providers for an uninstalled
 * binary, <libdir>/cloud-api-adaptor/providers otherwise. */
static const char *module_dir(void)
{
    static const char *dir;
    if (!dir)
        dir = caa_module_running_from_build_tree() ? CAA_BUILD_ROOT "/providers" : CAA_PROVIDER_MODULE_DIR;
    return dir;
}

static const caa_provider_ops *find_known(const char *name)
{
    for (size_t i = 0; i < n_registered; i++)
        if (strcmp(registered[i]->name, name) == 0)
            return registered[i];
    for (size_t i = 0; i < n_loaded; i++)
        if (strcmp(loaded[i]->name, name) == 0)
            return loaded[i];
    return NULL;
}

/* "name" from "caa-provider-name.so", or NULL. */
static const char *module_file_name(const char *file, char *buf, size_t size)
{
    size_t plen = strlen(CAA_PROVIDER_MODULE_PREFIX), slen = strlen(CAA_PROVIDER_MODULE_SUFFIX);
    size_t len = strlen(file);
    if (len <= plen + slen || strncmp(file, CAA_PROVIDER_MODULE_PREFIX, plen) != 0 ||
        strcmp(file + len - slen, CAA_PROVIDER_MODULE_SUFFIX) != 0 || len - plen - slen >= size)
        return NULL;
    memcpy(buf, file + plen, len - plen - slen);
    buf[len - plen - slen] = '\0';
    return caa_provider_name_valid(buf) ? buf : NULL;
}

static bool listed(const char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

void caa_provider_names(const char **names, size_t max)
{
    /* Names of module files; valid until the next call. */
    static char found[MAX_PROVIDERS][CAA_PROVIDER_NAME_MAX + 1];
    size_t n = 0, n_found = 0;
    if (!max)
        return;
    for (size_t i = 0; i < n_registered && n + 1 < max; i++)
        names[n++] = registered[i]->name;
    for (size_t i = 0; i < n_loaded && n + 1 < max; i++)
        names[n++] = loaded[i]->name;

    /* Modules present but not loaded: listing files loads no code. */
    size_t first_module = n;
    DIR *d = opendir(module_dir());
    for (struct dirent *de; d && (de = readdir(d)) && n + 1 < max && n_found < MAX_PROVIDERS;) {
        char buf[CAA_PROVIDER_NAME_MAX + 1];
        const char *name = module_file_name(de->d_name, buf, sizeof(buf));
        if (!name || listed(names, n, name))
            continue;
        memcpy(found[n_found], name, strlen(name) + 1);
        /* Keep the module names sorted: readdir order is arbitrary. */
        size_t j = n;
        while (j > first_module && strcmp(names[j - 1], found[n_found]) > 0) {
            names[j] = names[j - 1];
            j--;
        }
        names[j] = found[n_found++];
        n++;
    }
    if (d)
        closedir(d);
    names[n] = NULL;
}

static int unknown_provider(const char *name, caa_error **err)
{
    const char *names[MAX_PROVIDERS * 3];
    caa_provider_names(names, CAA_ARRAY_SIZE(names));
    _cleanup_free_ char *list = NULL;
    for (size_t i = 0; names[i]; i++) {
        char *next = xasprintf("%s%s%s", list ? list : "", list ? ", " : "", names[i]);
        free(list);
        list = next;
    }
    return caa_error_set(err, -ENOENT, "unknown provider \"%s\" (available: %s; provider modules are in %s)",
                         name, list ? list : "none", module_dir());
}

const caa_provider_ops *caa_provider_find(const char *name, caa_error **err)
{
    if (!name || !*name) {
        caa_error_set(err, -EINVAL, "no provider name");
        return NULL;
    }
    const caa_provider_ops *ops = find_known(name);
    if (ops)
        return ops;
    /* The name becomes part of a file name: nothing but [a-z0-9_-]. */
    if (!caa_provider_name_valid(name)) {
        unknown_provider(name, err);
        return NULL;
    }
    if (n_loaded >= MAX_PROVIDERS) {
        caa_error_set(err, -ENOSPC, "too many provider modules loaded");
        return NULL;
    }
    caa_error *e = NULL;
    int r = caa_provider_module_load(module_dir(), name, &ops, &e);
    if (r == -ENOENT) {
        log_debug("%s", caa_error_msg(e));
        caa_error_free(e);
        unknown_provider(name, err);
        return NULL;
    }
    if (r < 0) {
        caa_error_propagate(err, &e);
        caa_error_free(e);
        return NULL;
    }
    loaded[n_loaded++] = ops;
    return ops;
}

const caa_provider_ops *caa_provider_lookup(const char *name)
{
    return caa_provider_find(name, NULL);
}

int caa_provider_register(const caa_provider_ops *ops, caa_error **err)
{
    if (!ops || !ops->name || !*ops->name)
        return caa_error_set(err, -EINVAL, "provider without a name");
    /* Only what is already known: registering must not load a module. */
    if (find_known(ops->name))
        return caa_error_set(err, -EEXIST, "provider %s is already registered", ops->name);
    if (n_registered >= MAX_PROVIDERS)
        return caa_error_set(err, -ENOSPC, "too many providers");
    registered[n_registered++] = ops;
    return 0;
}
