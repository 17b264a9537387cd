/* The hook table wired into the daemon, and a helper for hooks whose work is
 * synchronous but whose callers expect a later callback. */
#include "pod-hooks.h"

#include <stdlib.h>

#include "manager.h"
#include "pod-internal.h"
#include "xalloc.h"

static void pod_free(caa_manager *m, caa_pod *pod)
{
    caa_pod_proxy_stop(m, pod);
    caa_pod_network_free(pod);
}

const caa_pod_hooks caa_pod_hooks_default = {
    .network_inspect = caa_pod_network_inspect,
    .build_boot_data = caa_pod_build_boot_data,
    .network_setup = caa_pod_network_setup,
    .proxy_start = caa_pod_proxy_start,
    .proxy_stop = caa_pod_proxy_stop,
    .network_teardown = caa_pod_network_teardown,
    .pod_free = pod_free,
};

typedef struct completion {
    caa_done_cb cb;
    void *opaque;
    int status;
    caa_error *err;
} completion;

static void run_completion(void *arg)
{
    completion *c = arg;
    c->cb(c->status, c->err, c->opaque);
    free(c);
}

void caa_hook_complete_later(caa_manager *m, caa_done_cb cb, void *opaque, int status, caa_error *err)
{
    completion *c = xnew0(completion, 1);
    *c = (completion){cb, opaque, status, err};
    caa_manager_defer(m, run_completion, c);
}
