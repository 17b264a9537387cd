#include "pod-state.h"

#include <errno.h>
#include <string.h>

static const char *const names[CAA_POD_STATE_COUNT] = {
    [CAA_POD_CREATED] = "created", [CAA_POD_PROVISIONING] = "provisioning",
    [CAA_POD_BOOTING] = "booting", [CAA_POD_CONNECTING] = "connecting",
    [CAA_POD_READY] = "ready",     [CAA_POD_STOPPING] = "stopping",
    [CAA_POD_FAILED] = "failed",   [CAA_POD_GONE] = "gone",
};

#define BIT(s) (1u << (s))

/* allowed[from] = set of `to` states. */
static const unsigned allowed[CAA_POD_STATE_COUNT] = {
    [CAA_POD_CREATED] = BIT(CAA_POD_PROVISIONING) | BIT(CAA_POD_STOPPING),
    [CAA_POD_PROVISIONING] = BIT(CAA_POD_BOOTING) | BIT(CAA_POD_CONNECTING) | BIT(CAA_POD_READY) |
                             BIT(CAA_POD_FAILED) | BIT(CAA_POD_STOPPING),
    [CAA_POD_BOOTING] =
        BIT(CAA_POD_CONNECTING) | BIT(CAA_POD_READY) | BIT(CAA_POD_FAILED) | BIT(CAA_POD_STOPPING),
    [CAA_POD_CONNECTING] = BIT(CAA_POD_READY) | BIT(CAA_POD_FAILED) | BIT(CAA_POD_STOPPING),
    /* failed: the VM of a recovered pod is gone from the cloud. */
    [CAA_POD_READY] = BIT(CAA_POD_STOPPING) | BIT(CAA_POD_FAILED),
    /* A failed delete keeps the pod so that a later StopVM retries. */
    [CAA_POD_STOPPING] = BIT(CAA_POD_GONE) | BIT(CAA_POD_FAILED),
    [CAA_POD_FAILED] = BIT(CAA_POD_STOPPING),
    [CAA_POD_GONE] = 0,
};

const char *caa_pod_state_name(caa_pod_state s)
{
    if ((unsigned)s >= CAA_POD_STATE_COUNT)
        return "invalid";
    return names[s];
}

int caa_pod_state_from_name(const char *name, caa_pod_state *ret)
{
    if (!name)
        return -EINVAL;
    for (unsigned i = 0; i < CAA_POD_STATE_COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            *ret = (caa_pod_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

bool caa_pod_state_transition_allowed(caa_pod_state from, caa_pod_state to)
{
    if ((unsigned)from >= CAA_POD_STATE_COUNT || (unsigned)to >= CAA_POD_STATE_COUNT)
        return false;
    return (allowed[from] & BIT(to)) != 0;
}

bool caa_pod_state_may_have_instance(caa_pod_state s)
{
    switch (s) {
    case CAA_POD_CREATED:
    case CAA_POD_GONE:
    case CAA_POD_STATE_COUNT:
        return false;
    case CAA_POD_PROVISIONING:
    case CAA_POD_BOOTING:
    case CAA_POD_CONNECTING:
    case CAA_POD_READY:
    case CAA_POD_STOPPING:
    case CAA_POD_FAILED:
        return true;
    }
    return false;
}

bool caa_pod_state_create_may_be_pending(caa_pod_state s)
{
    switch (s) {
    case CAA_POD_PROVISIONING:
    case CAA_POD_BOOTING:
    case CAA_POD_CONNECTING:
    case CAA_POD_STOPPING:
        return true;
    case CAA_POD_CREATED:
    case CAA_POD_READY:
    case CAA_POD_FAILED:
    case CAA_POD_GONE:
    case CAA_POD_STATE_COUNT:
        return false;
    }
    return false;
}
