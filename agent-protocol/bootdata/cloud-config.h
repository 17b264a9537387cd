/* The cloud-config user-data document the adaptor hands to a pod VM.
 *
 * Layout (upstream-compatible): a first line "#cloud-config", then a mapping
 * with the single key `write_files`, a list of {path, content} items. The
 * emitter writes it with libyaml, contents as literal blocks where YAML
 * allows. The parser accepts exactly that shape: any other top-level key or
 * item key, anchors, aliases, explicit non-string tags, several documents or
 * more than CAA_CLOUD_CONFIG_MAX_SIZE bytes are errors. */
#pragma once

#include <stddef.h>

#include "error.h"

#define CAA_CLOUD_CONFIG_MAX_SIZE (1024 * 1024)
#define CAA_CLOUD_CONFIG_MAX_FILES 32
#define CAA_CLOUD_CONFIG_HEADER "#cloud-config\n"

typedef struct caa_cloud_file {
    char *path;
    char *content; /* NUL-terminated; may hold NUL bytes, content_len counts them */
    size_t content_len;
} caa_cloud_file;

typedef struct caa_cloud_config {
    caa_cloud_file *files;
    size_t n_files;
} caa_cloud_config;

caa_cloud_config *caa_cloud_config_new(void);
void caa_cloud_config_free(caa_cloud_config *cc);
CAA_DEFINE_CLEANUP(caa_cloud_config *, caa_cloud_config_free)
#define _cleanup_cloud_config_ _cleanup_(caa_cloud_config_freep)

/* Appends a copy of path and content (files are emitted in this order). */
void caa_cloud_config_add(caa_cloud_config *cc, const char *path, const void *content, size_t len);
/* The first file with this path, or NULL. */
const caa_cloud_file *caa_cloud_config_find(const caa_cloud_config *cc, const char *path);

/* Emits the document. *ret is NUL-terminated, *ret_len excludes the NUL.
 * Fails (-EINVAL) on content that YAML cannot carry (invalid UTF-8). */
int caa_cloud_config_emit(const caa_cloud_config *cc, char **ret, size_t *ret_len, caa_error **err);
/* Strict parse (see above). -EFBIG over the size limit, -EINVAL otherwise. */
int caa_cloud_config_parse(const void *data, size_t len, caa_cloud_config **ret, caa_error **err);
