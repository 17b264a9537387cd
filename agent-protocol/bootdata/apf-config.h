/* apf.json: what the adaptor tells the agent-protocol-forwarder in the VM.
 *
 * Field names follow upstream's forwarder config: pod-network (an object whose
 * content belongs to agent-protocol/podnetwork and is carried opaquely here),
 * pod-namespace, pod-name, tls-server-key, tls-server-cert, tls-client-ca,
 * tls-min-version, tls-cipher-suites, and the secure comms fields
 * (apf-securecomms.h). The parser ignores unknown fields (so a
 * newer adaptor can add some) and rejects fields of the wrong type. */
#pragma once

#include <stddef.h>

#include <jansson.h>

#include "apf-securecomms.h"
#include "error.h"

#define CAA_APF_CONFIG_MAX_SIZE (1024 * 1024)

typedef struct caa_apf_config {
    json_t *pod_network; /* JSON object (own reference) or NULL */
    char *pod_namespace;
    char *pod_name;
    char *tls_server_key;     /* PEM; NULL or "" when TLS is off or keys come from the image */
    char *tls_server_cert;    /* PEM */
    char *tls_client_ca;      /* PEM; NULL or "": not written */
    char *tls_min_version;    /* "", "VersionTLS12", "VersionTLS13" (not interpreted here) */
    char **tls_cipher_suites; /* NULL-terminated IANA names, or NULL */
    caa_apf_securecomms sc;   /* sc, sc-pp-prv, sc-wn-pub, sc-inbounds, sc-outbounds */
} caa_apf_config;

/* Frees the members and zeroes the struct. */
void caa_apf_config_done(caa_apf_config *c);

/* Builds the JSON object (new reference). pod_network, when set, must be a
 * JSON object. Empty PEM fields are left out. */
json_t *caa_apf_config_to_json(const caa_apf_config *c, caa_error **err);
/* Compact JSON text, NUL-terminated. */
char *caa_apf_config_to_string(const caa_apf_config *c, caa_error **err);

/* Parses apf.json text into *ret (zeroed first; on failure left empty).
 * JSON null counts as absent for every field. */
int caa_apf_config_parse(const char *text, size_t len, caa_apf_config *ret, caa_error **err);
int caa_apf_config_from_json(const json_t *root, caa_apf_config *ret, caa_error **err);
