/* build_boot_data hook: the pod's apf.json (pod network, names, TLS) written
 * to <pods-dir>/<id>/apf.json, then the cloud-config user-data (apf.json,
 * initdata, scratch-space marker) checked against the provider's size limit.
 * Neither the document nor any part of it is logged: it holds the VM's TLS
 * server key and the pod's initdata. */
#define LOG_COMPONENT "adaptor/bootdata"
#include "boot-data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "apf-config.h"
#include "daemon-sc.h"
#include "daemon-tls.h"
#include "fs.h"
#include "log.h"
#include "pod-hooks.h"
#include "pod-internal.h"
#include "podnet-config.h"
#include "tls-cert.h"
#include "userdata.h"
#include "xalloc.h"

static void apf_done(caa_apf_config *apf)
{
    caa_tls_secret_free(apf->tls_server_key);
    apf->tls_server_key = NULL;
    caa_apf_config_done(apf);
}

static int write_apf_json(const caa_pod *pod, const caa_apf_config *apf, caa_error **err)
{
    char *text = caa_apf_config_to_string(apf, err);
    if (!text)
        return -EINVAL;
    _cleanup_free_ char *path = xasprintf("%s/%s", pod->dir, CAA_APF_JSON_NAME);
    int r = caa_write_file_atomic(path, text, strlen(text), 0600, err);
    caa_tls_secret_free(text);
    return r;
}

int caa_pod_build_boot_data(caa_manager *m, caa_pod *pod, char **ret_user_data, size_t *ret_len,
                            caa_error **err)
{
    const caa_daemon_config *cfg = m->cfg;
    caa_apf_config apf = {
        .pod_network = pod->network ? caa_podnet_config_to_json(pod->network) : NULL,
        .pod_namespace = xstrdup(pod->rec.pod_namespace),
        .pod_name = xstrdup(pod->rec.pod_name),
    };
    int r;
    if (m->tls) {
        if ((r = caa_daemon_tls_fill_apf(m->tls, pod->rec.instance_name, &apf, err)) < 0)
            goto out;
        const char *dir = caa_daemon_tls_dir(m->tls);
        free(pod->rec.tls_dir);
        pod->rec.tls_dir = dir ? xstrdup(dir) : NULL;
    }
    if (m->sc && (r = caa_daemon_sc_fill_apf(m->sc, pod->dir, &apf, err)) < 0)
        goto out;
    if ((r = write_apf_json(pod, &apf, err)) < 0) {
        caa_error_prefix(err, "writing %s", CAA_APF_JSON_NAME);
        goto out;
    }

    caa_userdata_parts parts = {
        .apf = &apf,
        .auth_json = pod->auth_json,
        .auth_json_len = pod->auth_json ? strlen(pod->auth_json) : 0,
        .initdata_toml = pod->spec.initdata,
        .initdata_default = cfg->initdata,
        .scratch_space = cfg->enable_scratch_space,
        .provider = m->provider->ops->name,
    };
    caa_userdata ud = {0};
    if ((r = caa_userdata_build(&parts, &ud, err)) < 0)
        goto out;
    if (ud.auth_skipped) /* as upstream: the pod still starts, without the file */
        log_pod_warn(pod->rec.sandbox_id, "image pull credentials over %d bytes: auth.json left out",
                     CAA_USERDATA_AUTH_MAX);
    log_pod_debug(pod->rec.sandbox_id, "user-data: %zu bytes%s%s", ud.len,
                  pod->spec.initdata ? ", initdata from the annotation"
                                     : (*cfg->initdata ? ", initdata from -initdata" : ""),
                  cfg->enable_scratch_space ? ", scratch space" : "");
    *ret_user_data = TAKE_PTR(ud.text);
    *ret_len = ud.len;
    r = 0;
out:
    apf_done(&apf);
    return r;
}
