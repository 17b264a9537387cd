/* Loading one provider module safely: check ownership and mode of the
 * directory and of the opened file, then dlopen that very file through
 * /proc/self/fd/N so nothing can swap it between the check and the load. */
#define LOG_COMPONENT "providers/module"
#include "module.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "xalloc.h"

bool caa_provider_name_valid(const char *name)
{
    if (!name || !*name || strlen(name) > CAA_PROVIDER_NAME_MAX)
        return false;
    for (const char *c = name; *c; c++) {
        bool alnum = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9');
        if (!alnum && (c == name || (*c != '-' && *c != '_')))
            return false;
    }
    return true;
}

/* Only root or the user we run as may have put code here, and nobody else may
 * replace it: a module runs with the daemon's privileges. */
static int check_trusted(const char *kind, const struct stat *st, const char *what, const char *path,
                         caa_error **err)
{
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return caa_error_set(err, -EPERM,
                             "refusing %s %s %s: owned by uid %u, neither root nor the daemon's user", kind,
                             what, path, (unsigned)st->st_uid);
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return caa_error_set(err, -EPERM, "refusing %s %s %s: it is group- or world-writable (%04o)", kind,
                             what, path, (unsigned)(st->st_mode & 07777));
    return 0;
}

static int check_entry(const caa_provider_module *m, const char *path, const char *name, caa_error **err)
{
    if (m->abi_version != CAA_PROVIDER_ABI)
        return caa_error_set(
            err, -EPROTO,
            "provider module %s was built for provider ABI %u, this daemon needs ABI %u: install "
            "the module that came with this daemon",
            path, (unsigned)m->abi_version, (unsigned)CAA_PROVIDER_ABI);
    if (m->ops_size != sizeof(caa_provider_ops))
        return caa_error_set(
            err, -EPROTO,
            "provider module %s has a provider table of %u bytes, this daemon expects %zu: install "
            "the module that came with this daemon",
            path, (unsigned)m->ops_size, sizeof(caa_provider_ops));
    if (!m->ops || !m->ops->name || strcmp(m->ops->name, name) != 0)
        return caa_error_set(err, -EPROTO, "provider module %s provides \"%s\", not \"%s\"", path,
                             m->ops && m->ops->name ? m->ops->name : "(no name)", name);
    return 0;
}

int caa_module_open(const char *kind, const char *dir, const char *file, const char *symbol,
                    void **ret_handle, const void **ret_sym, caa_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return caa_error_set(err, -ENOENT, "no %s directory %s", kind, dir);
        return caa_error_set_errno(err, -errno, "opening %s directory %s", kind, dir);
    }
    struct stat st;
    if (fstat(dfd, &st) < 0)
        return caa_error_set_errno(err, -errno, "reading %s directory %s", kind, dir);
    int r = check_trusted(kind, &st, "directory", dir, err);
    if (r < 0)
        return r;

    /* No symlinks: what is checked is what the directory holds. */
    _cleanup_close_ int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return caa_error_set(err, -ENOENT, "no %s %s", kind, path);
        if (errno == ELOOP)
            return caa_error_set(err, -EPERM, "refusing %s %s: it is a symbolic link", kind, path);
        return caa_error_set_errno(err, -errno, "opening %s %s", kind, path);
    }
    if (fstat(fd, &st) < 0)
        return caa_error_set_errno(err, -errno, "reading %s %s", kind, path);
    if (!S_ISREG(st.st_mode))
        return caa_error_set(err, -EPERM, "refusing %s %s: not a regular file", kind, path);
    r = check_trusted(kind, &st, "file", path, err);
    if (r < 0)
        return r;

    char fd_path[64];
    snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", fd);
    dlerror();
    void *handle = dlopen(fd_path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        return caa_error_set(err, -ENOEXEC, "loading %s %s: %s", kind, path, why ? why : "dlopen failed");
    }
    /* glibc finds an already loaded object by its name: fd stays open for the
     * life of the process, so its number (the object's name, /proc/self/fd/N)
     * never names another module later. */
    int kept_fd = TAKE_FD(fd);
    (void)kept_fd;

    const void *sym = dlsym(handle, symbol);
    if (!sym) {
        dlclose(handle);
        return caa_error_set(err, -ENOEXEC, "%s is not a %s: it has no symbol %s", path, kind, symbol);
    }
    *ret_handle = handle;
    *ret_sym = sym;
    return 0;
}

int caa_provider_module_load(const char *dir, const char *name, const caa_provider_ops **ret, caa_error **err)
{
    if (!caa_provider_name_valid(name))
        return caa_error_set(err, -EINVAL, "invalid provider name \"%s\"", name ? name : "");
    char
        file[sizeof(CAA_PROVIDER_MODULE_PREFIX) + CAA_PROVIDER_NAME_MAX + sizeof(CAA_PROVIDER_MODULE_SUFFIX)];
    snprintf(file, sizeof(file), CAA_PROVIDER_MODULE_PREFIX "%s" CAA_PROVIDER_MODULE_SUFFIX, name);
    _cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
    void *handle = NULL;
    const void *entry = NULL;
    int r = caa_module_open("provider module", dir, file, CAA_PROVIDER_MODULE_SYMBOL, &handle, &entry, err);
    if (r < 0)
        return r;
    const caa_provider_module *m = entry;
    r = check_entry(m, path, name, err);
    if (r < 0) {
        dlclose(handle);
        return r;
    }
    log_debug("loaded provider module %s (%s)", path, m->version ? m->version : "no version");
    *ret = m->ops;
    return 0;
}
