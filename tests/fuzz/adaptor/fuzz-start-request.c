/* Fuzzes the start-request.json parser: never crash, never leak, and a
 * document it accepts serialises and parses back to the same request. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "start-request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024 * 1024)
        return 0;
    caa_start_request req;
    caa_error *err = NULL;
    if (caa_start_request_from_json((const char *)data, size, NULL, &req, &err) < 0) {
        caa_error_free(err);
        return 0;
    }
    caa_instance_spec spec = {
        .sandbox_id = req.sandbox_id,
        .instance_type = req.machine_type,
        .image = req.image,
        .vcpus = req.vcpus,
        .memory_mib = req.memory_mib,
        .gpus = req.gpus,
        .user_data = req.user_data,
        .user_data_len = req.user_data_len,
    };
    char *json = caa_start_request_to_json(&spec);
    caa_start_request back;
    if (caa_start_request_from_json(json, strlen(json), req.sandbox_id, &back, NULL) < 0)
        abort();
    if (back.vcpus != req.vcpus || back.memory_mib != req.memory_mib || back.gpus != req.gpus ||
        back.user_data_len != req.user_data_len || (!back.user_data) != (!req.user_data) ||
        (req.user_data && memcmp(back.user_data, req.user_data, req.user_data_len) != 0))
        abort();
    caa_start_request_done(&back);
    caa_start_request_done(&req);
    caa_start_request_text_free(json);
    return 0;
}
