/* The worker side of the pod network as a loadable module,
 * caa-podnet-worker.so: the daemon maps it, and with it libnl-route and
 * libnftables, only when the first pod with a network namespace is created or
 * torn down (adaptor/podnet-loader.c). An idle daemon, or one whose pods have
 * no pod network, never maps them.
 *
 * Like a provider module (providers/module.h) it exports one symbol and takes
 * lib/ from the daemon. */
#pragma once

#include <stdint.h>

#include "podnet-worker.h"

/* Bump on any change to the ops' signatures or to podnet-config.h's types. */
#define CAA_PODNET_WORKER_ABI 1
#define CAA_PODNET_WORKER_MODULE_FILE "caa-podnet-worker.so"
#define CAA_PODNET_WORKER_MODULE_SYMBOL "caa_podnet_worker_module_entry"

/* The exported symbol: podnet-worker.h's three operations behind the
 * version the module was built for. */
typedef struct caa_podnet_worker_ops {
    uint32_t abi_version; /* CAA_PODNET_WORKER_ABI the module was built with; keep first */
    uint32_t size;        /* sizeof(caa_podnet_worker_ops) the module was built with */
    const char *version;  /* CAA_VERSION and commit, for messages */
    int (*inspect)(const char *netns_path, const caa_podnet_inspect_opts *opts, caa_podnet_config **ret,
                   caa_error **err);
    int (*setup)(const char *netns_path, const caa_podnet_config *cfg, const char *vm_ip, caa_error **err);
    int (*teardown)(const char *netns_path, const caa_podnet_config *cfg, caa_error **err);
} caa_podnet_worker_ops;

extern const caa_podnet_worker_ops caa_podnet_worker_module_entry;
