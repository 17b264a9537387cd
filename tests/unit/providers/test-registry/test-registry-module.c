/* Small provider modules for test-registry: one good module ("tprobe") whose
 * init logs through the daemon's exported log functions, and broken ones
 * (wrong ABI version, wrong table size, no entry symbol). Built like the real
 * modules: version script, nothing of lib/ linked in. */
#define LOG_COMPONENT "test/module"
#include <errno.h>

#include "log.h"
#include "module.h"

static int probe_init(uv_loop_t *loop, const void *config, void **ret_priv, caa_error **err)
{
    (void)loop;
    (void)config;
    (void)err;
    *ret_priv = NULL;
    log_debug("probe module: debug line");
    log_info("probe module: info line");
    return 0;
}

static int probe_verify(void *priv, caa_error **err)
{
    (void)priv;
    return caa_error_set(err, -EHOSTDOWN, "probe module: error made inside the module");
}

static const caa_provider_ops probe_provider = {
    .name = "tprobe",
    .init = probe_init,
    .verify_config = probe_verify,
};

#if defined(TEST_MODULE_GOOD)
#    define ABI CAA_PROVIDER_ABI
#    define OPS_SIZE sizeof(caa_provider_ops)
#elif defined(TEST_MODULE_BAD_ABI)
#    define ABI (CAA_PROVIDER_ABI + 1000)
#    define OPS_SIZE sizeof(caa_provider_ops)
#elif defined(TEST_MODULE_BAD_SIZE)
#    define ABI CAA_PROVIDER_ABI
#    define OPS_SIZE (sizeof(caa_provider_ops) - sizeof(void *))
#endif

#ifdef ABI
__attribute__((visibility("default"))) const caa_provider_module caa_provider_module_entry = {
    .abi_version = ABI,
    .ops_size = OPS_SIZE,
    .version = "test",
    .ops = &probe_provider,
};
#else
/* TEST_MODULE_NO_ENTRY: a shared object, but not a provider module. */
__attribute__((visibility("default"))) const caa_provider_ops *not_an_entry = &probe_provider;
#endif
