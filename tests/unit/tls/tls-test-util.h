/* Helpers shared by the TLS tests: a full set of certificate material in
 * upstream's scheme, and two engines wired back to back in memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls-cert.h"
#include "tls-context.h"
#include "tls-engine.h"

#define TEST_INSTANCE "podvm-nginx-1a2b3c4d"

typedef struct tls_material {
    caa_tls_ca *ca;
    caa_tls_trust *ca_trust;     /* the daemon verifies servers with it */
    caa_tls_identity *client;    /* generated client identity */
    char *client_cert_pem;       /* apf.json tls-client-ca */
    caa_tls_trust *client_trust; /* the forwarder verifies clients with it */
    char *server_cert_pem;       /* apf.json tls-server-cert */
    char *server_key_pem;        /* apf.json tls-server-key */
    caa_tls_identity *server;
} tls_material;

void tls_material_init(tls_material *m, const char *instance_name);
void tls_material_done(tls_material *m);

/* Contexts as the daemon and the forwarder build them from the material. */
SSL_CTX *tls_client_ctx(const tls_material *m, const caa_tls_profile *profile);
SSL_CTX *tls_server_ctx(const tls_material *m, const caa_tls_profile *profile);

typedef struct tls_peer {
    caa_tls_engine *e;
    caa_error *err; /* first error seen */
    uint8_t *in;    /* plaintext received */
    size_t in_len;
} tls_peer;

void tls_peer_init(tls_peer *p, SSL_CTX *ctx, caa_tls_role role, const char *server_name);
void tls_peer_done(tls_peer *p);
/* Reads all available plaintext into p->in (errors into p->err). */
void tls_peer_drain(tls_peer *p);
/* Starts the client's handshake, then moves bytes both ways (and reads
 * plaintext) until nothing moves. */
void tls_pump(tls_peer *client, tls_peer *server);
/* Asserts err has code and its message contains fragment. */
void tls_expect_error(const caa_error *err, int code, const char *fragment);
