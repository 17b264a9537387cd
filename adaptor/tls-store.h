/* The daemon's generated TLS material on disk, so that a restarted daemon
 * still trusts the VMs it started and they still trust it:
 * <pods-dir>/.tls/tls-material.json, mode 0600, directory 0700.
 *
 *   {"schema": 1, "client_cert": PEM, "client_key": PEM, "ca_cert": PEM, "ca_key": PEM}
 *
 * Each pair is present only when the daemon generated it (a user-supplied
 * -cert-file or -ca-cert-file is never copied here). The file holds private
 * keys: it is never logged, and buffers holding it are wiped. */
#pragma once

#include <stddef.h>

#include "error.h"

#define CAA_TLS_STORE_FILE "tls-material.json"
#define CAA_TLS_STORE_SCHEMA 1
#define CAA_TLS_STORE_MAX (256 * 1024)

typedef struct caa_tls_material {
    char *client_cert; /* PEM or NULL */
    char *client_key;  /* PEM or NULL; secret */
    char *ca_cert;
    char *ca_key; /* secret */
} caa_tls_material;

/* Creates dir (0700) if needed; refuses a symlink or a non-directory and
 * tightens the mode of an existing directory to 0700. */
int caa_tls_store_prepare_dir(const char *dir, caa_error **err);
/* Reads <dir>/tls-material.json. -ENOENT (without a message) when the file
 * does not exist; -EINVAL for a file that is not ours (bad JSON, wrong types,
 * a pair with only one half, an unknown schema). */
int caa_tls_store_load(const char *dir, caa_tls_material *ret, caa_error **err);
/* Parses the file's content (the part of load that sees untrusted bytes).
 * -EINVAL with a message that never echoes the content. */
int caa_tls_material_parse(const char *data, size_t len, caa_tls_material *ret, caa_error **err);
/* Atomically replaces <dir>/tls-material.json (mode 0600). */
int caa_tls_store_save(const char *dir, const caa_tls_material *m, caa_error **err);
/* Wipes the keys and frees everything. */
void caa_tls_material_done(caa_tls_material *m);
