/* apf.json loading for the forwarder (parser: agent-protocol/bootdata). */
#define LOG_COMPONENT "forwarder"

#include <errno.h>
#include <stdlib.h>

#include "cleanup.h"
#include "forwarder-setup.h"
#include "fs.h"

int fwd_config_load(const char *path, caa_apf_config *ret, caa_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = caa_read_file(path, CAA_APF_CONFIG_MAX_SIZE, 0, &text, &len, err);
    if (r < 0)
        return caa_error_prefix(err, "reading the configuration %s", path);
    r = caa_apf_config_parse(text, len, ret, err);
    if (r < 0)
        return caa_error_prefix(err, "%s", path);
    return 0;
}
