/* Fuzz target bootdata-cloud-config: the strict cloud-config parser, and the
 * emitter on whatever it accepts (emit -> parse must give the same files). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloud-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    caa_cloud_config *cc = NULL;
    caa_error *err = NULL;
    if (caa_cloud_config_parse(data, size, &cc, &err) < 0) {
        caa_error_free(err);
        return 0;
    }
    char *text = NULL;
    size_t len = 0;
    if (caa_cloud_config_emit(cc, &text, &len, &err) == 0) {
        caa_cloud_config *back = NULL;
        if (caa_cloud_config_parse(text, len, &back, NULL) < 0 && len <= CAA_CLOUD_CONFIG_MAX_SIZE)
            abort();
        if (back) {
            if (back->n_files != cc->n_files)
                abort();
            for (size_t i = 0; i < cc->n_files; i++)
                if (strcmp(back->files[i].path, cc->files[i].path) != 0 ||
                    back->files[i].content_len != cc->files[i].content_len ||
                    memcmp(back->files[i].content, cc->files[i].content, cc->files[i].content_len) != 0)
                    abort();
        }
        caa_cloud_config_free(back);
        free(text);
    } else {
        /* Only content YAML cannot carry (invalid UTF-8) may fail to emit. */
        caa_error_free(err);
    }
    caa_cloud_config_free(cc);
    return 0;
}
