/* Certificate material for the worker <-> pod VM connection, in upstream's
 * scheme (so upstream pod VM images accept our daemon and the reverse):
 *
 *  - the daemon's client identity: given by the user (-cert-file/-cert-key)
 *    or generated at start: a self-signed ECDSA P-256 certificate, O
 *    "cloud-api-adaptor", clientAuth, valid two years from now - 5 min. Its
 *    certificate (never its key) travels to each VM as apf.json
 *    `tls-client-ca`, where the forwarder uses it as the trust anchor;
 *  - an in-memory CA (O "agent-protocol-forwarder") that issues one server
 *    certificate per VM, CN and DNS SAN = the instance name, delivered as
 *    `tls-server-cert` / `tls-server-key`. With a user CA (-ca-cert-file) the
 *    built-in CA is not used and the server name is "podvm-server".
 *
 * Key material is never logged and never put in error messages. PEM strings
 * holding private keys are returned in memory that must be released with
 * caa_tls_secret_free(), which wipes it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Server name verified when the user supplied the CA (-ca-cert-file). */
#define CAA_TLS_USER_CA_SERVER_NAME "podvm-server"
/* Largest certificate or key file we read. */
#define CAA_TLS_MAX_PEM_FILE (1024 * 1024)

typedef struct caa_tls_identity caa_tls_identity; /* certificate (+ chain) and its private key */
typedef struct caa_tls_trust caa_tls_trust;       /* trust anchors: one or more certificates */
typedef struct caa_tls_ca caa_tls_ca;             /* CA issuing per-VM server certificates */

/* ------------------------------------------------------------ identities */

/* The daemon's generated client identity (see above). */
int caa_tls_identity_generate_client(caa_tls_identity **ret, caa_error **err);
/* Loads a PEM certificate file (leaf first, then any chain) and a PEM private
 * key file (PKCS#8 or traditional, unencrypted). Errors name the file: missing
 * or unreadable (-ENOENT/-EACCES...), no PEM certificate or key in it
 * (-EINVAL), encrypted key (-EINVAL), key not matching the certificate (-EINVAL). */
int caa_tls_identity_load_files(const char *cert_file, const char *key_file, caa_tls_identity **ret,
                                caa_error **err);
/* Same from PEM text (the forwarder reads apf.json `tls-server-cert`/`tls-server-key`). */
int caa_tls_identity_from_pem(const char *cert_pem, const char *key_pem, caa_tls_identity **ret,
                              caa_error **err);
/* Certificate (+ chain) as PEM; newly allocated. */
char *caa_tls_identity_cert_pem(const caa_tls_identity *id);
/* Private key as PKCS#8 PEM; release with caa_tls_secret_free(). */
char *caa_tls_identity_key_pem(const caa_tls_identity *id);
void caa_tls_identity_free(caa_tls_identity *id);

/* ------------------------------------------------------------ trust */

/* All certificates of a PEM text (at least one, else -EINVAL). */
int caa_tls_trust_from_pem(const char *pem, caa_tls_trust **ret, caa_error **err);
/* Same from a file (-ca-cert-file); errors name the file. */
int caa_tls_trust_load_file(const char *path, caa_tls_trust **ret, caa_error **err);
size_t caa_tls_trust_count(const caa_tls_trust *t);
void caa_tls_trust_free(caa_tls_trust *t);

/* ------------------------------------------------------------ CA */

/* New CA with a fresh P-256 key, valid ten years from now - 5 min. */
int caa_tls_ca_new(caa_tls_ca **ret, caa_error **err);
/* The CA certificate as PEM; newly allocated. */
char *caa_tls_ca_cert_pem(const caa_tls_ca *ca);
/* A trust store holding the CA certificate (to verify the servers it issued). */
caa_tls_trust *caa_tls_ca_trust(const caa_tls_ca *ca);
/* Issues a server certificate for instance_name (CN and DNS SAN; serverAuth;
 * fresh P-256 key; valid two years from now - 5 min). instance_name must be
 * a DNS name (letters, digits, '-', '.'; labels of 1..63; at most 253), else
 * -EINVAL. ret_key_pem must be released with caa_tls_secret_free(). */
int caa_tls_ca_issue_server(caa_tls_ca *ca, const char *instance_name, char **ret_cert_pem,
                            char **ret_key_pem, caa_error **err);
/* The CA's key as PKCS#8 PEM (to persist the CA across restarts, so VMs
 * issued before a restart can still be verified); caa_tls_secret_free(). */
char *caa_tls_ca_key_pem(const caa_tls_ca *ca);
/* Restores a CA from caa_tls_ca_cert_pem()/caa_tls_ca_key_pem() output;
 * -EINVAL when the certificate is not a CA or the key does not match. */
int caa_tls_ca_from_pem(const char *cert_pem, const char *key_pem, caa_tls_ca **ret, caa_error **err);
void caa_tls_ca_free(caa_tls_ca *ca);

/* ------------------------------------------------------------ helpers */

/* Name the client verifies: the instance name with the built-in CA, the
 * fixed "podvm-server" with a user CA. */
const char *caa_tls_server_name(bool user_ca, const char *instance_name);
/* Wipes and frees a string holding key material; NULL-safe. */
void caa_tls_secret_free(char *s);
/* Whether s is a DNS name we put in certificates. */
bool caa_tls_valid_dns_name(const char *s);

static inline void caa_tls_identity_freep(caa_tls_identity **p)
{
    caa_tls_identity_free(*p);
    *p = NULL;
}
static inline void caa_tls_trust_freep(caa_tls_trust **p)
{
    caa_tls_trust_free(*p);
    *p = NULL;
}
static inline void caa_tls_ca_freep(caa_tls_ca **p)
{
    caa_tls_ca_free(*p);
    *p = NULL;
}
static inline void caa_tls_secret_freep(char **p)
{
    caa_tls_secret_free(*p);
    *p = NULL;
}
#define _cleanup_tls_identity_ _cleanup_(caa_tls_identity_freep)
#define _cleanup_tls_trust_ _cleanup_(caa_tls_trust_freep)
#define _cleanup_tls_ca_ _cleanup_(caa_tls_ca_freep)
#define _cleanup_secret_ _cleanup_(caa_tls_secret_freep)
