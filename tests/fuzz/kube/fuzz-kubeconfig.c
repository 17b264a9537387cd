/* Fuzzes the kubeconfig parser: never crash, never leak; an accepted document
 * has a server and a namespace. */
#include <stdint.h>
#include <stdlib.h>

#include "kube-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    caa_kube_config cfg;
    caa_error *err = NULL;
    if (caa_kubeconfig_parse((const char *)data, size, "/base", &cfg, &err) < 0) {
        if (!err)
            abort();
        caa_error_free(err);
        return 0;
    }
    if (!cfg.server || !cfg.namespace)
        abort();
    caa_kube_config_done(&cfg);
    return 0;
}
