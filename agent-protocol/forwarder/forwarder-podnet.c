/* Pod network set-up of the forwarder (agent-protocol/podnetwork does the work). */
#define LOG_COMPONENT "forwarder"

#include "forwarder-setup.h"
#include "log.h"
#include "podnet-config.h"
#include "podnet-vm.h"

int fwd_pod_network_setup(const caa_apf_config *apf, const char *netns_path, caa_error **err)
{
    if (!apf->pod_network)
        return 1;
    _cleanup_podnet_config_ caa_podnet_config *cfg = NULL;
    int r = caa_podnet_config_from_json(apf->pod_network, &cfg, err);
    if (r < 0)
        return caa_error_prefix(err, "apf.json pod-network");
    caa_podnet_vm_opts opts = {.netns_path = netns_path};
    r = caa_podnet_vm_setup(cfg, &opts, err); /* its errors name the namespace */
    if (r < 0)
        return r;
    log_info("pod network set up in %s (interface %s, VNI %u)", netns_path, cfg->interface, cfg->vxlan_id);
    return 0;
}
