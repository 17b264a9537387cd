/* Fuzz target bootdata-apf-config: the apf.json parser, and the builder on
 * whatever it accepts (build -> parse must succeed again). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apf-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    caa_apf_config c;
    caa_error *err = NULL;
    if (caa_apf_config_parse((const char *)data, size, &c, &err) < 0) {
        caa_error_free(err);
        return 0;
    }
    char *s = caa_apf_config_to_string(&c, NULL);
    if (!s)
        abort();
    caa_apf_config back;
    if (caa_apf_config_parse(s, strlen(s), &back, NULL) < 0)
        abort();
    caa_apf_config_done(&back);
    free(s);
    caa_apf_config_done(&c);
    return 0;
}
