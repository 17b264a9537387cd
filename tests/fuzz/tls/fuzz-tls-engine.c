/* Fuzz target: bytes from the network into the engine. The first input byte
 * picks the role (even: server, the forwarder receiving a connection; odd:
 * client, after sending its ClientHello) and the chunk size the rest is fed
 * in. Whatever arrives, the engine must fail cleanly or wait for more. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls-cert.h"
#include "tls-context.h"
#include "tls-engine.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static SSL_CTX *server_ctx, *client_ctx;

static void init(void)
{
    caa_tls_ca *ca = NULL;
    caa_tls_identity *client = NULL, *server = NULL;
    char *cert = NULL, *key = NULL, *client_pem = NULL;
    caa_tls_trust *client_trust = NULL, *ca_trust = NULL;

    if (caa_tls_ca_new(&ca, NULL) < 0 || caa_tls_identity_generate_client(&client, NULL) < 0 ||
        caa_tls_ca_issue_server(ca, "podvm-fuzz", &cert, &key, NULL) < 0 ||
        caa_tls_identity_from_pem(cert, key, &server, NULL) < 0)
        abort();
    client_pem = caa_tls_identity_cert_pem(client);
    if (caa_tls_trust_from_pem(client_pem, &client_trust, NULL) < 0)
        abort();
    ca_trust = caa_tls_ca_trust(ca);
    caa_tls_server_config s = {.identity = server, .client_ca = client_trust};
    caa_tls_client_config c = {.identity = client, .ca = ca_trust};
    if (caa_tls_server_ctx_new(&s, &server_ctx, NULL) < 0 ||
        caa_tls_client_ctx_new(&c, &client_ctx, NULL) < 0)
        abort();
    /* The contexts hold their own references from here on. */
    caa_tls_trust_free(client_trust);
    caa_tls_trust_free(ca_trust);
    caa_tls_identity_free(server);
    caa_tls_identity_free(client);
    caa_tls_ca_free(ca);
    free(cert);
    caa_tls_secret_free(key);
    free(client_pem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    caa_tls_engine *e = NULL;
    uint8_t out[4096];
    bool client;
    size_t chunk;

    if (!server_ctx)
        init();
    if (size == 0)
        return 0;
    client = data[0] & 1;
    chunk = (size_t)(data[0] >> 1) + 1;
    data++;
    size--;
    if (caa_tls_engine_new(client ? client_ctx : server_ctx,
                           client ? CAA_TLS_ROLE_CLIENT : CAA_TLS_ROLE_SERVER, client ? "podvm-fuzz" : NULL,
                           &e, NULL) < 0)
        abort();
    if (client && caa_tls_engine_handshake(e, NULL) < 0)
        abort();
    int failed = 0;
    while (size > 0 && !failed) {
        size_t n = size < chunk ? size : chunk;
        caa_error *err = NULL;
        if (caa_tls_engine_feed(e, data, n, &err) < 0) {
            if (!err || err->code >= 0)
                abort();
            failed = 1;
        }
        caa_error_free(err);
        ssize_t r;
        do {
            r = caa_tls_engine_read(e, out, sizeof(out), NULL);
        } while (r > 0);
        while (caa_tls_engine_take_output(e, out, sizeof(out)) > 0)
            ;
        data += n;
        size -= n;
    }
    caa_tls_engine_feed_eof(e, NULL);
    caa_tls_engine_free(e);
    return 0;
}
