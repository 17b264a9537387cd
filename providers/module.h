/* Provider modules: one cloud provider per shared object, loaded by the
 * registry only when the daemon runs that provider (docs/provider-modules.md).
 *
 * A module exports exactly one symbol, caa_provider_module_entry, of type
 * caa_provider_module. Everything else in the module is local (version script
 * providers/module.map). The module takes lib/ and the provider.c wrappers
 * from the daemon (exported with providers/host-exports.list), so there is one
 * log configuration, one allocator policy, one error type. */
#pragma once

#include <stdint.h>

#include "error.h"
#include "provider.h"

/* Bump on any change to provider.h's types or to the lib/ and provider.c
 * functions a module calls: the daemon refuses a module built for another. */
#define CAA_PROVIDER_ABI 2

#define CAA_PROVIDER_MODULE_SYMBOL "caa_provider_module_entry"
#define CAA_PROVIDER_MODULE_PREFIX "caa-provider-"
#define CAA_PROVIDER_MODULE_SUFFIX ".so"
/* Provider names: [a-z0-9][a-z0-9_-]*, at most this long (they become file names). */
#define CAA_PROVIDER_NAME_MAX 32

typedef struct caa_provider_module {
    uint32_t abi_version; /* CAA_PROVIDER_ABI the module was built with; keep first */
    uint32_t ops_size;    /* sizeof(caa_provider_ops) the module was built with */
    const char *version;  /* CAA_VERSION and commit, for messages */
    const caa_provider_ops *ops;
} caa_provider_module;

/* Defined by providers/module-entry.c in each module. */
extern const caa_provider_module caa_provider_module_entry;

/* The safe loading of any module of the daemon (providers, the pod network):
 * dir must be a compiled-in directory; refuses, before any code of the file
 * runs, a directory or file that is group/world-writable, owned by neither
 * root nor the effective user, or a symbolic link; then dlopens that very file
 * and looks up symbol. kind names the module in messages ("provider module").
 * -ENOENT: no such directory or file; -EPERM: unsafe; -ENOEXEC: not loadable
 * or no such symbol. ret_handle is for dlclose() when the caller refuses the
 * entry. */
int caa_module_open(const char *kind, const char *dir, const char *file, const char *symbol,
                    void **ret_handle, const void **ret_sym, caa_error **err);
/* Is the running executable inside the build tree (run uninstalled)? Then
 * modules come from the build tree, else from the installed directory. The
 * path comes from the kernel, never from the environment or a flag. */
bool caa_module_running_from_build_tree(void);

/* Is name usable as a provider (and module file) name? */
bool caa_provider_name_valid(const char *name);

/* Loads the module for provider `name` from directory dir (a compiled-in
 * directory; never pass a path from the command line or the environment).
 * Refuses, before any code of the module runs, a directory or file that is
 * group/world-writable or owned by neither root nor the effective user; then
 * checks the entry's ABI version, ops size and provider name.
 * -ENOENT: no such module file (the caller may try another directory);
 * -EPERM: unsafe ownership or mode; -ENOEXEC: not a loadable module or no
 * entry symbol; -EPROTO: ABI mismatch or wrong provider name.
 * The module stays loaded for the life of the process. */
int caa_provider_module_load(const char *dir, const char *name, const caa_provider_ops **ret,
                             caa_error **err);
