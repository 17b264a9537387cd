/* The webhook's serving certificate: tls.crt and tls.key in a directory (a
 * mounted Secret, as upstream's framework expects), turned into an OpenSSL
 * server context with the TLS profile, and reloaded when the files change.
 *
 * The files are checked (stat: device, inode, size, mtime) when a connection
 * arrives, so a rotated Secret is used from the next connection on without a
 * restart and without a timer. A pair that does not load (half-written, key
 * not matching) keeps the previous context in use; the failure is logged
 * once per change and retried on the next connection. */
#pragma once

#include <openssl/ssl.h>

#include "error.h"
#include "tls-profile.h"

typedef struct caa_serving_cert caa_serving_cert;

/* Loads <dir>/tls.crt and <dir>/tls.key now; errors name the file. The
 * profile is copied. */
int caa_serving_cert_new(const char *dir, const caa_tls_profile *profile, caa_serving_cert **ret,
                         caa_error **err);
/* The current context (owned by sc; take a reference to keep it). */
SSL_CTX *caa_serving_cert_ctx(caa_serving_cert *sc);
/* Number of successful loads (1 after new; tests and logs). */
unsigned caa_serving_cert_generation(const caa_serving_cert *sc);
void caa_serving_cert_free(caa_serving_cert *sc);
