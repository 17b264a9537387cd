/* Assembly of one pod's cloud-config from apf.json, auth.json, initdata and
 * the scratch-space marker. */
#include "userdata.h"

#include <errno.h>
#include <string.h>

#include "bootdata-paths.h"
#include "cloud-config.h"
#include "initdata.h"
#include "xalloc.h"

#define PATH_OF(name) CAA_PEERPOD_DIR "/" name

void caa_userdata_done(caa_userdata *ud)
{
    if (!ud)
        return;
    free(ud->text);
    memset(ud, 0, sizeof(*ud));
}

int caa_userdata_validate_initdata_default(const char *encoded, caa_error **err)
{
    if (caa_initdata_decode_parse(encoded, strlen(encoded), NULL, err) < 0)
        return caa_error_prefix(err, "-initdata");
    return 0;
}

/* The initdata file content (gzip+base64), or NULL when the pod has none. */
static int initdata_content(const caa_userdata_parts *parts, char **ret, caa_error **err)
{
    *ret = NULL;
    if (parts->initdata_toml && *parts->initdata_toml) {
        size_t len = strlen(parts->initdata_toml);
        _cleanup_initdata_ caa_initdata *d = NULL;
        if (caa_initdata_parse(parts->initdata_toml, len, &d, err) < 0)
            return caa_error_prefix(err, "annotation io.katacontainers.config.hypervisor.cc_init_data");
        *ret = caa_initdata_encode(parts->initdata_toml, len, err);
        return *ret ? 0 : -EIO;
    }
    if (parts->initdata_default && *parts->initdata_default) {
        if (caa_userdata_validate_initdata_default(parts->initdata_default, err) < 0)
            return -EINVAL;
        *ret = xstrdup(parts->initdata_default);
    }
    return 0;
}

int caa_userdata_build(const caa_userdata_parts *parts, caa_userdata *ret, caa_error **err)
{
    if (!parts->apf)
        return caa_error_set(err, -EINVAL, "user-data: apf.json configuration missing");
    _cleanup_free_ char *apf = caa_apf_config_to_string(parts->apf, err);
    if (!apf)
        return -EINVAL;
    _cleanup_free_ char *initdata = NULL;
    int r = initdata_content(parts, &initdata, err);
    if (r < 0)
        return r;

    _cleanup_cloud_config_ caa_cloud_config *cc = caa_cloud_config_new();
    caa_cloud_config_add(cc, PATH_OF(CAA_BOOTDATA_APF_JSON), apf, strlen(apf));
    bool auth_skipped = false;
    if (parts->auth_json) {
        if (parts->auth_json_len <= CAA_USERDATA_AUTH_MAX)
            caa_cloud_config_add(cc, PATH_OF(CAA_BOOTDATA_AUTH_JSON), parts->auth_json, parts->auth_json_len);
        else
            auth_skipped = true;
    }
    if (initdata)
        caa_cloud_config_add(cc, PATH_OF(CAA_BOOTDATA_INITDATA), initdata, strlen(initdata));
    if (parts->scratch_space)
        caa_cloud_config_add(cc, PATH_OF(CAA_BOOTDATA_SCRATCH_MARKER), "", 0);

    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if ((r = caa_cloud_config_emit(cc, &text, &len, err)) < 0)
        return r;
    if (parts->provider && (r = caa_userdata_check_size(parts->provider, len, err)) < 0)
        return r;
    ret->text = TAKE_PTR(text);
    ret->len = len;
    ret->auth_skipped = auth_skipped;
    return 0;
}
