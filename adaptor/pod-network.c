/* Pod network hooks: the worker side of the pod network (its VXLAN tunnel,
 * adaptor/podnetwork/podnet-worker.h) for pods whose CreateVM named a
 * network namespace.
 *
 *   CreateVM: a VNI not used by a live pod, inspect the namespace -> the
 *             config goes into apf.json as "pod-network"; the VNI and the
 *             namespace path are persisted in state.json.
 *   StartVM:  the VXLAN tunnel to the VM's IP (ips[0]; ips[1] in dedicated mode).
 *   StopVM:   teardown (idempotent). A pod recovered after a restart has no
 *             config in memory: it is read back from its apf.json.
 *
 * The library calls are synchronous and short (netlink, one nftables batch);
 * they run on the loop thread and report through a deferred callback. They
 * live in the pod network module (podnet-loader.h), loaded at the first pod
 * with a network namespace. */
#define LOG_COMPONENT "adaptor/podnetwork"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "apf-config.h"
#include "boot-data.h"
#include "fs.h"
#include "log.h"
#include "pod-hooks.h"
#include "pod-internal.h"
#include "podnet-loader.h"
#include "podnet-worker.h"
#include "xalloc.h"

#define ID(pod) ((pod)->rec.sandbox_id)

static caa_podnet_config *pod_config(caa_pod *pod)
{
    return pod->network;
}

void caa_pod_network_free(caa_pod *pod)
{
    caa_podnet_config_free(pod_config(pod));
    pod->network = NULL;
}

int caa_pod_network_inspect(caa_manager *m, caa_pod *pod, caa_error **err)
{
    const caa_daemon_config *cfg = m->cfg;
    if (!pod->netns_path) {
        log_pod_debug(ID(pod), "no network namespace: the pod gets no pod network");
        return 0;
    }
    size_t n = 0;
    uint32_t *in_use = caa_pods_vnis_in_use(m, &n);
    uint32_t vni = 0, index = 0;
    int r = caa_podnet_vni_alloc((uint32_t)cfg->vxlan_min_id, in_use, n, &vni, &index, err);
    free(in_use);
    if (r < 0)
        return caa_error_prefix(err, "allocating a VXLAN id");

    caa_podnet_inspect_opts opts = {
        .host_interface = cfg->host_interface,
        .vxlan_id = vni,
        .index = index,
        .vxlan_port = (uint16_t)cfg->vxlan_port,
        .pod_subnet_cidrs = cfg->pod_subnet_cidrs,
    };
    const caa_podnet_worker_ops *ops = NULL;
    if ((r = caa_podnet_worker(&ops, err)) < 0)
        return caa_error_prefix(err, "the pod network");
    caa_podnet_config *net = NULL;
    r = ops->inspect(pod->netns_path, &opts, &net, err);
    if (r < 0)
        return caa_error_prefix(err, "inspecting the pod network");
    /* Passed on as upstream does; the VM side decides whether it can do it. */
    net->external_net_via_pod_vm = cfg->ext_network_via_podvm;
    pod->multi_nic = cfg->ext_network_via_podvm; /* as upstream: MultiNic = ExternalNetViaPodVM */
    pod->network = net;
    pod->rec.vni = vni;
    log_pod_info(ID(pod), "pod network: interface %s, VXLAN id %u%s", net->interface, vni,
                 net->dedicated ? " (dedicated host interface)" : "");
    return 0;
}

/* A recovered pod's config, from the apf.json its CreateVM wrote. */
static int load_config(caa_pod *pod, caa_error **err)
{
    if (pod->network)
        return 0;
    _cleanup_free_ char *path = xasprintf("%s/%s", pod->dir, CAA_APF_JSON_NAME);
    char *data = NULL;
    size_t len = 0;
    int r = caa_read_file(path, CAA_APF_CONFIG_MAX_SIZE, 1, &data, &len, err);
    if (r < 0)
        return r;
    caa_apf_config apf = {0};
    r = caa_apf_config_parse(data, len, &apf, err);
    explicit_bzero(data, len); /* holds the VM's TLS server key */
    free(data);
    if (r < 0)
        return caa_error_prefix(err, "'%s'", path);
    caa_podnet_config *net = NULL;
    if (apf.pod_network)
        r = caa_podnet_config_from_json(apf.pod_network, &net, err);
    if (apf.tls_server_key)
        explicit_bzero(apf.tls_server_key, strlen(apf.tls_server_key));
    caa_apf_config_done(&apf);
    if (r < 0)
        return caa_error_prefix(err, "'%s' pod-network", path);
    if (!net)
        return caa_error_set(err, -ENOENT, "'%s' has no pod-network", path);
    pod->network = net;
    return 0;
}

int caa_pod_network_setup(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err)
{
    if (!pod->rec.netns_path || !pod->network) {
        caa_hook_complete_later(m, cb, opaque, 0, NULL);
        return 0;
    }
    caa_podnet_config *net = pod->network;
    char **ips = pod->rec.instance_ips;
    const char *vm_ip = ips[0];
    if (net->dedicated) {
        if (!ips[1])
            return caa_error_set(
                err, -EINVAL, "the host interface is dedicated (-host-interface) but instance %s has one IP",
                pod->rec.instance_id);
        vm_ip = ips[1];
    }
    const caa_podnet_worker_ops *ops = NULL;
    int r = caa_podnet_worker(&ops, err);
    if (r < 0)
        return caa_error_prefix(err, "the pod network");
    r = ops->setup(pod->rec.netns_path, net, vm_ip, err);
    if (r < 0)
        return r;
    log_pod_info(ID(pod), "pod network tunnel to %s set up (VXLAN id %u)", vm_ip, net->vxlan_id);
    caa_hook_complete_later(m, cb, opaque, 0, NULL);
    return 0;
}

int caa_pod_network_teardown(caa_manager *m, caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err)
{
    (void)err;
    if (!pod->rec.netns_path) {
        caa_hook_complete_later(m, cb, opaque, 0, NULL);
        return 0;
    }
    caa_error *e = NULL;
    int r = load_config(pod, &e);
    if (r < 0) {
        /* Nothing to go on: the tunnel (if any) cannot be found. Not fatal for StopVM. */
        log_pod_warn(ID(pod), "cannot tear down the pod network: %s", caa_error_msg(e));
        caa_error_free(e);
        caa_hook_complete_later(m, cb, opaque, 0, NULL);
        return 0;
    }
    const caa_podnet_worker_ops *ops = NULL;
    r = caa_podnet_worker(&ops, &e);
    if (r == 0)
        r = ops->teardown(pod->rec.netns_path, pod->network, &e);
    if (r == 0)
        log_pod_debug(ID(pod), "pod network torn down");
    caa_hook_complete_later(m, cb, opaque, r, e);
    return 0;
}
