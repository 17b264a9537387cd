/* cloud-init NoCloud seed image: an ISO 9660 file system labelled "cidata"
 * (Rock Ridge + Joliet) built in memory with libisofs. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct caa_cidata_file {
    const char *name; /* file name in the root directory, [A-Za-z0-9._-], <= 64 bytes */
    const void *data;
    size_t len;
} caa_cidata_file;

/* Builds an ISO image holding `files` in its root directory, volume id
 * `volume_id` (NULL: "cidata"). On success *ret_image is a malloc'd buffer of
 * *ret_len bytes (a multiple of 2048). Thread-safe. */
int caa_cidata_iso_build(const char *volume_id, const caa_cidata_file *files, size_t n_files,
                         uint8_t **ret_image, size_t *ret_len, caa_error **err);

/* The NoCloud seed of a pod VM: user-data (the cloud-config document),
 * meta-data ("local-hostname: <hostname>") and an empty vendor-data.
 * hostname must be a validated instance name ([a-z0-9-], <= 63). */
int caa_cidata_iso_build_seed(const char *hostname, const char *user_data, size_t user_data_len,
                              uint8_t **ret_image, size_t *ret_len, caa_error **err);
