/* The one symbol the pod network module exports (podnet-module.h). */
#include "podnet-module.h"

#include "caa-version.h"

__attribute__((visibility("default"))) const caa_podnet_worker_ops caa_podnet_worker_module_entry = {
    .abi_version = CAA_PODNET_WORKER_ABI,
    .size = sizeof(caa_podnet_worker_ops),
    .version = CAA_VERSION " (" CAA_GIT_COMMIT ")",
    .inspect = caa_podnet_worker_inspect,
    .setup = caa_podnet_worker_setup,
    .teardown = caa_podnet_worker_teardown,
};
