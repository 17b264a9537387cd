/* The hook table wired into the daemon. Today every step is empty: no boot
 * data (the provider gets no user-data), no pod network, no agent proxy.
 * The pod network (adaptor/podnetwork/), boot data (adaptor/userdata/) and
 * agent proxy plug in here. */
#include "pod-hooks.h"

const caa_pod_hooks caa_pod_hooks_default = {
    .network_inspect = NULL,
    .build_boot_data = NULL,
    .network_setup = NULL,
    .proxy_start = NULL,
    .proxy_stop = NULL,
    .network_teardown = NULL,
    .pod_free = NULL,
};
