/* Fuzzes the state.json parser: never crash, never leak, and a document it
 * accepts serialises and parses back to the same record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state-store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CAA_STATE_FILE_MAX)
        return 0;
    caa_pod_record rec;
    caa_error *err = NULL;
    if (caa_pod_record_from_json((const char *)data, size, NULL, &rec, &err) < 0) {
        caa_error_free(err);
        return 0;
    }
    char *json = caa_pod_record_to_json(&rec);
    caa_pod_record back;
    if (caa_pod_record_from_json(json, strlen(json), rec.sandbox_id, &back, NULL) < 0)
        abort();
    if (back.state != rec.state || strcmp(back.pod_name, rec.pod_name) != 0 || back.vni != rec.vni)
        abort();
    caa_pod_record_done(&back);
    caa_pod_record_done(&rec);
    free(json);
    return 0;
}
