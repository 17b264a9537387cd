/* Fuzz target: the pod-network JSON parser, plus a round trip of whatever it
 * accepts (re-encoding and re-parsing must give the same JSON). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "podnet-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    caa_podnet_config *cfg = NULL;
    caa_error *err = NULL;
    if (caa_podnet_config_parse((const char *)data, size, &cfg, &err) < 0) {
        if (!err || !err->msg || err->code >= 0)
            abort();
        caa_error_free(err);
        return 0;
    }
    json_t *j = caa_podnet_config_to_json(cfg);
    char *text = json_dumps(j, JSON_COMPACT);
    caa_podnet_config *again = NULL;
    if (!text || caa_podnet_config_parse(text, strlen(text), &again, NULL) < 0)
        abort();
    json_t *j2 = caa_podnet_config_to_json(again);
    if (!json_equal(j, j2))
        abort();
    json_decref(j2);
    json_decref(j);
    free(text);
    caa_podnet_config_free(again);
    caa_podnet_config_free(cfg);
    return 0;
}
