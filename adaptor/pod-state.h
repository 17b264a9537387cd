/* Pod lifecycle states and the transitions allowed between them.
 *
 *   created -> provisioning -> [booting -> connecting ->] ready -> stopping -> gone
 *   any live state -> stopping; provisioning..connecting -> failed; failed -> stopping
 *
 * booting is StartVM's pod network step, connecting its agent proxy step. */
#pragma once

#include <stdbool.h>

typedef enum caa_pod_state {
    CAA_POD_CREATED = 0,  /* pod dir and state exist; no instance can exist */
    CAA_POD_PROVISIONING, /* create requested: an instance may exist */
    CAA_POD_BOOTING,      /* instance known; network being set up, VM booting */
    CAA_POD_CONNECTING,   /* agent proxy dialling the VM */
    CAA_POD_READY,        /* StartVM answered OK */
    CAA_POD_STOPPING,     /* StopVM: tearing down; an instance may still exist */
    CAA_POD_FAILED,       /* StartVM failed; instance_id set iff its deletion failed */
    CAA_POD_GONE,         /* everything deleted; the pod dir is being removed */
    CAA_POD_STATE_COUNT
} caa_pod_state;

const char *caa_pod_state_name(caa_pod_state s);
/* -EINVAL for an unknown name. */
int caa_pod_state_from_name(const char *name, caa_pod_state *ret);
bool caa_pod_state_transition_allowed(caa_pod_state from, caa_pod_state to);
/* True when an instance may exist in the cloud for a pod in this state (for
 * FAILED/STOPPING only if an instance id is recorded or creation may be pending). */
bool caa_pod_state_may_have_instance(caa_pod_state s);
/* True when a daemon that stopped in this state may have had a provider
 * create in flight (the instance may exist without a recorded id). */
bool caa_pod_state_create_may_be_pending(caa_pod_state s);
