/* Fuzzes annotation parsing: the input is lines of "key=value" (a key may be
 * one of the known ones by index: "#3=value"), plus the sandbox id check and
 * the count parser on every value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "annotations.h"
#include "sandbox-id.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const known[] = {
    CAA_ANN_SANDBOX_NAME,  CAA_ANN_SANDBOX_NAMESPACE, CAA_ANN_SANDBOX_UID,  CAA_ANN_MACHINE_TYPE,
    CAA_ANN_DEFAULT_VCPUS, CAA_ANN_DEFAULT_MEMORY,    CAA_ANN_DEFAULT_GPUS, CAA_ANN_DEFAULT_GPU_MODEL,
    CAA_ANN_IMAGE,         CAA_ANN_INITDATA,
};

#define MAX_PAIRS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';

    caa_annotation ann[MAX_PAIRS];
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line && n < MAX_PAIRS; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *key = line;
        if (line[0] == '#' && line[1] >= '0' && line[1] <= '9')
            key = known[(size_t)(line[1] - '0') % (sizeof(known) / sizeof(known[0]))];
        ann[n].key = key;
        ann[n].value = eq + 1;
        n++;
        int64_t v;
        (void)caa_parse_count(eq + 1, 1, CAA_SPEC_VCPUS_MAX, &v);
        (void)caa_sandbox_id_check(eq + 1, NULL);
    }
    caa_pod_spec spec;
    caa_error *err = NULL;
    if (caa_pod_spec_from_annotations(ann, n, &spec, &err) == 0) {
        if (!spec.pod_name || !spec.pod_namespace || spec.vcpus < 0 || spec.vcpus > CAA_SPEC_VCPUS_MAX)
            abort();
        caa_pod_spec_done(&spec);
    } else {
        if (!err)
            abort();
        caa_error_free(err);
    }
    free(buf);
    return 0;
}
