/* process-user-data: where the VM's user-data comes from.
 *
 * Sources, tried in this order on every round:
 *  1. cidata: the file <cidata_dir>/user-data; when it is missing and the
 *     device (by default /dev/disk/by-label/cidata) exists, the device is
 *     mounted read-only (iso9660 unless cidata_fstype says otherwise) on
 *     cidata_dir, read, and unmounted;
 *  2. Azure IMDS: GET <azure>/metadata/instance/compute/userData
 *     ?api-version=2021-01-01&format=text with "Metadata: true"; the body is
 *     base64 of the document;
 *  3. AWS IMDS: IMDSv2 token (PUT <aws>/latest/api/token), then
 *     GET <aws>/latest/user-data with the token; IMDSv1 (no token) only when
 *     the token request gets an HTTP error answer;
 *  4. GCP metadata: GET <gcp>/computeMetadata/v1/instance/attributes/user-data
 *     with "Metadata-Flavor: Google"; the body is base64 of the document;
 *  5. Alibaba Cloud metadata: GET <alibaba>/latest/user-data, the document.
 * A NULL or empty location skips that source. Blocking libcurl easy calls:
 * this is a one-shot program, not the daemon's loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct caa_pud_sources {
    const char *cidata_dir;
    const char *cidata_device;
    const char *cidata_fstype; /* NULL: "iso9660" */
    const char *azure_url;     /* base URL, e.g. http://169.254.169.254 */
    const char *aws_url;
    const char *gcp_url;     /* e.g. http://metadata.google.internal */
    const char *alibaba_url; /* e.g. http://100.100.100.200 */
} caa_pud_sources;

/* One round over the sources. 0: *ret holds the document (NUL-terminated)
 * and *ret_source names the source ("cidata", "azure", "aws", "gcp", "alibaba"). -EAGAIN: no
 * source has user-data (yet); err lists why per source. Any other negative
 * code: a source answered with something unusable (too large, bad base64),
 * which retrying will not fix. request_timeout_ms bounds each HTTP request. */
int caa_pud_fetch_once(const caa_pud_sources *src, int64_t request_timeout_ms, char **ret, size_t *ret_len,
                       const char **ret_source, caa_error **err);

/* Upstream's GCP test: GET <gcp_url>/computeMetadata/v1/instance with
 * "Metadata-Flavor: Google" answers 200. */
bool caa_pud_gcp_metadata_answers(const char *gcp_url, int64_t timeout_ms);

/* Rounds every retry_ms until timeout_ms has passed: -ETIMEDOUT then, with
 * the last round's reasons in the message. */
int caa_pud_fetch(const caa_pud_sources *src, int64_t timeout_ms, int64_t retry_ms, char **ret,
                  size_t *ret_len, const char **ret_source, caa_error **err);
