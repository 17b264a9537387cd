/* One pod's user-data: the cloud-config document the provider hands to the
 * VM, assembled at CreateVM from its parts.
 *
 * Files, in this order (upstream's layout):
 *   /run/peerpod/apf.json              always
 *   /run/peerpod/auth.json             when the pod has registry credentials
 *   /run/peerpod/initdata              gzip+base64 TOML, when the pod or the
 *                                      daemon (-initdata) gives initdata
 *   /run/peerpod/scratch-space.marker  empty, with -enable-scratch-space */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "apf-config.h"
#include "error.h"

/* auth.json above this size is left out, as upstream does. */
#define CAA_USERDATA_AUTH_MAX 12288

typedef struct caa_userdata_parts {
    const caa_apf_config *apf; /* required */
    const char *auth_json;     /* NULL: no auth.json */
    size_t auth_json_len;
    /* Text of the io.katacontainers.config.hypervisor.cc_init_data annotation:
     * plain TOML, validated and then gzip+base64-encoded. NULL or "": none. */
    const char *initdata_toml;
    /* The daemon's -initdata default, already gzip+base64; used when the pod
     * has no annotation. Validated again here. NULL or "": none. */
    const char *initdata_default;
    bool scratch_space;
    /* Provider name for the size limit (caa_userdata_check_size); NULL: no check. */
    const char *provider;
} caa_userdata_parts;

typedef struct caa_userdata {
    char *text; /* the cloud-config document, NUL-terminated */
    size_t len;
    bool auth_skipped; /* auth.json was over CAA_USERDATA_AUTH_MAX and left out */
} caa_userdata;

/* Builds the document. -EINVAL with a message naming the part on bad
 * initdata (annotation or default) or when the result is over the provider's
 * limit. *ret is untouched on failure. */
int caa_userdata_build(const caa_userdata_parts *parts, caa_userdata *ret, caa_error **err);
void caa_userdata_done(caa_userdata *ud);

/* Per-provider user-data limits: aws 16 KiB of raw document (EC2 UserData),
 * azure 64 KiB after base64 (what the adaptor sends in userData), libvirt and
 * unknown providers none. -EINVAL when over. */
int caa_userdata_check_size(const char *provider, size_t len, caa_error **err);
/* The limit in bytes of the raw document for a provider, 0 for none. */
size_t caa_userdata_max_size(const char *provider);

/* Startup check of the -initdata flag value (gzip+base64 TOML). */
int caa_userdata_validate_initdata_default(const char *encoded, caa_error **err);
