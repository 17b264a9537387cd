/* Worker side, StartVM/StopVM: the VXLAN tunnel between a pod's namespace and its VM. */
#define LOG_COMPONENT "adaptor/podnetwork"
#include <errno.h>
#include <unistd.h>

#include "log.h"
#include "netns.h"
#include "podnet-error.h"
#include "podnet-netns.h"
#include "podnet-nl.h"
#include "podnet-notrack.h"
#include "podnet-worker.h"

#define VXLAN_NAME CAA_PODNET_WORKER_VXLAN_NAME

static int bridge_devices(struct nl_sock *pod, int pod_ifindex, int vx_ifindex, caa_error **err)
{
    int r = caa_podnet_tc_redirect_add(pod, pod_ifindex, vx_ifindex, err);
    if (r == 0)
        r = caa_podnet_tc_redirect_add(pod, vx_ifindex, pod_ifindex, err);
    return r;
}

int caa_podnet_worker_setup(const char *netns_path, const caa_podnet_config *cfg, const char *vm_ip,
                            caa_error **err)
{
    _cleanup_close_ int nsfd = -1;
    _cleanup_nl_sock_ struct nl_sock *host = NULL, *pod = NULL;
    struct in_addr remote;
    int r;

    if ((r = caa_podnet_config_validate(cfg, err)) < 0)
        return r;
    if ((r = caa_podnet_addr_parse(vm_ip, &remote, err)) < 0)
        return PODNET_PREFIXED(r, err, "pod VM address");
    if ((r = caa_podnet_require_net_admin(err)) < 0)
        return r;
    if ((nsfd = caa_netns_open(netns_path, err)) < 0)
        return nsfd;
    if ((r = caa_podnet_nl_open(NULL, &host, err)) < 0 || (r = caa_podnet_nl_open_fd(nsfd, &pod, err)) < 0)
        return r;

    int pod_ifindex = caa_podnet_link_ifindex(pod, cfg->interface, err);
    if (pod_ifindex < 0)
        return PODNET_PREFIXED(pod_ifindex, err, "pod interface in \"%s\"", netns_path);
    _cleanup_error_ caa_error *probe = NULL;
    if (caa_podnet_link_ifindex(pod, VXLAN_NAME, &probe) >= 0)
        return caa_error_set(err, -EEXIST, "a device named \"%s\" already exists in \"%s\"", VXLAN_NAME,
                             netns_path);

    caa_podnet_vxlan_spec spec = {
        .name = VXLAN_NAME,
        .vni = cfg->vxlan_id,
        .remote = remote,
        .port = cfg->vxlan_port,
        .netns_fd = nsfd,
    };
    /* The device first: when its VNI clashes, nothing of the other tunnel
     * (whose NOTRACK rules carry the same VNI) may be touched. */
    r = caa_podnet_vxlan_create(host, &spec, err);
    if (r == -EEXIST)
        return PODNET_PREFIXED(r, err, "VXLAN id %u clashes with another tunnel on this host", cfg->vxlan_id);
    if (r < 0)
        return r;
    r = caa_podnet_notrack_add(cfg->vxlan_id, remote, cfg->vxlan_port, err);
    int vx_ifindex = -1;
    if (r == 0)
        r = vx_ifindex = caa_podnet_link_ifindex(pod, VXLAN_NAME, err);
    if (r > 0)
        r = caa_podnet_link_set_up(pod, vx_ifindex, err);
    if (r == 0)
        r = bridge_devices(pod, pod_ifindex, vx_ifindex, err);
    if (r < 0) {
        /* Leave nothing behind; the original error is the one to report. */
        caa_podnet_worker_teardown(netns_path, cfg, NULL);
        return PODNET_PREFIXED(r, err, "setting up the pod network tunnel");
    }
    log_debug("tunnel up in %s: %s <-> %s, vni %u, remote %s:%u", netns_path, cfg->interface, VXLAN_NAME,
              cfg->vxlan_id, vm_ip, cfg->vxlan_port);
    return 0;
}

/* Keeps the first error, and goes on. */
static void keep_first(int r, caa_error **e, int *first, caa_error **err)
{
    if (r >= 0)
        return;
    if (*first == 0)
        *first = caa_error_propagate(err, e);
    else
        caa_error_freep(e);
}

static void teardown_pod(const char *netns_path, const caa_podnet_config *cfg, int *first, caa_error **err)
{
    _cleanup_nl_sock_ struct nl_sock *pod = NULL;
    _cleanup_error_ caa_error *e = NULL;
    int r = caa_podnet_nl_open(netns_path, &pod, &e);
    if (r == -ENOENT)
        return; /* the namespace, and everything in it, is gone */
    if (r < 0) {
        keep_first(r, &e, first, err);
        return;
    }

    int pod_ifindex = caa_podnet_link_ifindex(pod, cfg->interface, &e);
    if (pod_ifindex > 0)
        keep_first(caa_podnet_tc_redirect_remove(pod, pod_ifindex, &e), &e, first, err);
    else
        caa_error_freep(&e);

    uint32_t vni;
    r = caa_podnet_vxlan_get_id(pod, VXLAN_NAME, &vni, &e);
    if (r == 0 && vni == cfg->vxlan_id) {
        keep_first(caa_podnet_link_delete(pod, VXLAN_NAME, &e), &e, first, err);
    } else if (r == 0 || r == -ENOENT || r == -EINVAL) {
        if (r == 0)
            log_debug("%s in %s carries VXLAN id %u, not %u: left alone", VXLAN_NAME, netns_path, vni,
                      cfg->vxlan_id);
        caa_error_freep(&e);
    } else {
        keep_first(r, &e, first, err);
    }
}

int caa_podnet_worker_teardown(const char *netns_path, const caa_podnet_config *cfg, caa_error **err)
{
    _cleanup_error_ caa_error *e = NULL;
    int first = 0;

    teardown_pod(netns_path, cfg, &first, err);
    keep_first(caa_podnet_notrack_remove(cfg->vxlan_id, &e), &e, &first, err);
    if (first < 0)
        return PODNET_PREFIXED(first, err, "tearing down the pod network tunnel (VXLAN id %u)",
                               cfg->vxlan_id);
    log_debug("tunnel of vni %u in %s removed", cfg->vxlan_id, netns_path);
    return 0;
}
