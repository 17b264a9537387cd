/* Seams in the pod lifecycle (pod network, boot data, agent proxy). A NULL member is a
 * step that is skipped. Async members follow the tree's contract: a negative
 * return means failed now (cb never called), 0 means cb runs exactly once
 * later on the loop thread.
 *
 *  CreateVM:  network_inspect -> build_boot_data
 *  StartVM:   provider create -> network_setup -> proxy_start -> ready
 *  StopVM (and a failed start): proxy_stop -> provider delete -> network_teardown
 *
 * Hooks belong to the pod layer (they include pod-internal.h). Per-pod data
 * of a hook lives in caa_pod.network / caa_pod.proxy and is released in pod_free. */
#pragma once

#include <stddef.h>

#include "provider.h"

typedef struct caa_manager caa_manager;
typedef struct caa_pod caa_pod;

typedef struct caa_pod_hooks {
    /* CreateVM: read the pod netns (pod->netns_path): addresses, routes, MTU. */
    int (*network_inspect)(caa_manager *m, caa_pod *pod, caa_error **err);
    /* CreateVM: build the boot data (cloud-config user-data with apf.json,
     * initdata from pod->spec.initdata or cfg->initdata, TLS material) the
     * provider hands to the VM. Never log its content. */
    int (*build_boot_data)(caa_manager *m, caa_pod *pod, char **ret_user_data, size_t *ret_len,
                           caa_error **err);
    /* StartVM, instance known (pod->rec.instance_ips[0]): the pod network (worker side of its VXLAN tunnel).
     */
    int (*network_setup)(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err);
    /* StartVM: listen on pod->agent_socket, connect to the VM, cb once ready. */
    int (*proxy_start)(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err);
    /* StopVM / failed start / shutdown: stop listening, drop the VM connection. */
    void (*proxy_stop)(caa_manager *m, caa_pod *pod);
    /* StopVM / failed start: remove the pod network. Idempotent; also called for
     * pods recovered from a state file, whose setup state is unknown. */
    int (*network_teardown)(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err);
    /* The pod object is being freed. */
    void (*pod_free)(caa_manager *m, caa_pod *pod);
} caa_pod_hooks;

/* The daemon's hooks (pod-hooks.c): pod network (pod-network.c), boot data
 * (boot-data.c), agent proxy (pod-proxy.c). */
extern const caa_pod_hooks caa_pod_hooks_default;

/* The hook implementations, for tests that compose their own table. */
int caa_pod_network_inspect(caa_manager *m, caa_pod *pod, caa_error **err);
int caa_pod_network_setup(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err);
int caa_pod_network_teardown(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err);
void caa_pod_network_free(caa_pod *pod);
int caa_pod_build_boot_data(caa_manager *m, caa_pod *pod, char **ret_user_data, size_t *ret_len,
                            caa_error **err);
int caa_pod_proxy_start(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err);
void caa_pod_proxy_stop(caa_manager *m, caa_pod *pod);

/* For hooks that finish synchronously: runs cb(status, err, opaque) from the
 * loop soon (never re-entrantly), as the async contract demands. Takes err. */
void caa_hook_complete_later(caa_manager *m, caa_done_cb cb, void *opaque, int status, caa_error *err);
