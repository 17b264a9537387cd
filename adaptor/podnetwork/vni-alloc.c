/* VNI allocation: the lowest free index above -vxlan-min-id. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "podnet-worker.h"
#include "xalloc.h"

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int caa_podnet_vni_alloc(uint32_t min_id, const uint32_t *in_use, size_t n_in_use, uint32_t *ret_vni,
                         uint32_t *ret_index, caa_error **err)
{
    if (min_id > CAA_PODNET_MAX_VNI)
        return caa_error_set(err, -EINVAL, "vxlan-min-id %u is above the largest VNI %u", min_id,
                             CAA_PODNET_MAX_VNI);
    _cleanup_free_ uint32_t *sorted = NULL;
    if (n_in_use > 0) {
        sorted = xmemdup(in_use, n_in_use * sizeof(*in_use));
        qsort(sorted, n_in_use, sizeof(*sorted), cmp_u32);
    }
    /* Walk the sorted set: the first gap at or above min_id is the answer. */
    uint32_t candidate = min_id;
    for (size_t i = 0; i < n_in_use; i++) {
        if (sorted[i] < candidate)
            continue;
        if (sorted[i] > candidate)
            break;
        if (candidate == CAA_PODNET_MAX_VNI)
            return caa_error_set(err, -ENOSPC, "no free VXLAN id between %u and %u", min_id,
                                 CAA_PODNET_MAX_VNI);
        candidate++;
    }
    *ret_vni = candidate;
    if (ret_index)
        *ret_index = candidate - min_id;
    return 0;
}
