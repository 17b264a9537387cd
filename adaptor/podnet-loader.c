/* Loading the pod network module at its first use (podnet-loader.h). */
#define LOG_COMPONENT "adaptor/podnetwork"
#include "podnet-loader.h"

#include <dlfcn.h>
#include <errno.h>

#include "log.h"
#include "module.h"

#if !defined(CAA_PODNET_MODULE_DIR) || !defined(CAA_BUILD_ROOT)
#    error "CAA_PODNET_MODULE_DIR and CAA_BUILD_ROOT must be defined by the build"
#endif

static const caa_podnet_worker_ops *loaded;

static int check_entry(const caa_podnet_worker_ops *m, const char *dir, caa_error **err)
{
    if (m->abi_version != CAA_PODNET_WORKER_ABI || m->size != sizeof(caa_podnet_worker_ops))
        return caa_error_set(err, -EPROTO,
                             "pod network module %s/%s was built for another daemon (ABI %u, %u bytes of "
                             "operations; this daemon needs ABI %u, %zu bytes): install the module that "
                             "came with this daemon",
                             dir, CAA_PODNET_WORKER_MODULE_FILE, (unsigned)m->abi_version, (unsigned)m->size,
                             (unsigned)CAA_PODNET_WORKER_ABI, sizeof(caa_podnet_worker_ops));
    return 0;
}

int caa_podnet_worker(const caa_podnet_worker_ops **ret, caa_error **err)
{
    if (loaded) {
        *ret = loaded;
        return 0;
    }
    const char *dir =
        caa_module_running_from_build_tree() ? CAA_BUILD_ROOT "/adaptor/podnetwork" : CAA_PODNET_MODULE_DIR;
    void *handle = NULL;
    const void *entry = NULL;
    int r = caa_module_open("pod network module", dir, CAA_PODNET_WORKER_MODULE_FILE,
                            CAA_PODNET_WORKER_MODULE_SYMBOL, &handle, &entry, err);
    if (r < 0)
        return r;
    const caa_podnet_worker_ops *m = entry;
    if ((r = check_entry(m, dir, err)) < 0) {
        dlclose(handle);
        return r;
    }
    log_info("loaded the pod network module %s/%s (%s)", dir, CAA_PODNET_WORKER_MODULE_FILE,
             m->version ? m->version : "no version");
    loaded = m;
    *ret = loaded;
    return 0;
}
