/* The one symbol a provider module exports. Compiled once per provider with
 * -DCAA_MODULE_OPS=<the provider's ops table> (providers/meson.build). */
#include "module.h"

#include "caa-version.h"

#ifndef CAA_MODULE_OPS
#    error "CAA_MODULE_OPS (the provider's ops table) must be defined by the build"
#endif

extern const caa_provider_ops CAA_MODULE_OPS;

__attribute__((visibility("default"))) const caa_provider_module caa_provider_module_entry = {
    .abi_version = CAA_PROVIDER_ABI,
    .ops_size = sizeof(caa_provider_ops),
    .version = CAA_VERSION " (" CAA_GIT_COMMIT ")",
    .ops = &CAA_MODULE_OPS,
};
