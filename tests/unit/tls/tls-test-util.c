#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tls-test-util.h"
#include "xalloc.h"

void tls_material_init(tls_material *m, const char *instance_name)
{
    *m = (tls_material){0};
    assert_int_equal(caa_tls_ca_new(&m->ca, NULL), 0);
    m->ca_trust = caa_tls_ca_trust(m->ca);
    assert_int_equal(caa_tls_identity_generate_client(&m->client, NULL), 0);
    m->client_cert_pem = caa_tls_identity_cert_pem(m->client);
    assert_int_equal(caa_tls_trust_from_pem(m->client_cert_pem, &m->client_trust, NULL), 0);
    assert_int_equal(
        caa_tls_ca_issue_server(m->ca, instance_name, &m->server_cert_pem, &m->server_key_pem, NULL), 0);
    assert_int_equal(caa_tls_identity_from_pem(m->server_cert_pem, m->server_key_pem, &m->server, NULL), 0);
}

void tls_material_done(tls_material *m)
{
    caa_tls_ca_free(m->ca);
    caa_tls_trust_free(m->ca_trust);
    caa_tls_identity_free(m->client);
    free(m->client_cert_pem);
    caa_tls_trust_free(m->client_trust);
    free(m->server_cert_pem);
    caa_tls_secret_free(m->server_key_pem);
    caa_tls_identity_free(m->server);
    *m = (tls_material){0};
}

SSL_CTX *tls_client_ctx(const tls_material *m, const caa_tls_profile *profile)
{
    SSL_CTX *ctx = NULL;
    caa_error *err = NULL;
    caa_tls_client_config cfg = {.profile = profile, .identity = m->client, .ca = m->ca_trust};
    if (caa_tls_client_ctx_new(&cfg, &ctx, &err) < 0)
        fail_msg("client ctx: %s", err->msg);
    return ctx;
}

SSL_CTX *tls_server_ctx(const tls_material *m, const caa_tls_profile *profile)
{
    SSL_CTX *ctx = NULL;
    caa_error *err = NULL;
    caa_tls_server_config cfg = {.profile = profile, .identity = m->server, .client_ca = m->client_trust};
    if (caa_tls_server_ctx_new(&cfg, &ctx, &err) < 0)
        fail_msg("server ctx: %s", err->msg);
    return ctx;
}

void tls_peer_init(tls_peer *p, SSL_CTX *ctx, caa_tls_role role, const char *server_name)
{
    caa_error *err = NULL;
    *p = (tls_peer){0};
    if (caa_tls_engine_new(ctx, role, server_name, &p->e, &err) < 0)
        fail_msg("engine: %s", err->msg);
}

void tls_peer_done(tls_peer *p)
{
    caa_tls_engine_free(p->e);
    caa_error_free(p->err);
    free(p->in);
    *p = (tls_peer){0};
}

void tls_peer_drain(tls_peer *p)
{
    uint8_t buf[16384];
    for (;;) {
        ssize_t n = caa_tls_engine_read(p->e, buf, sizeof(buf), p->err ? NULL : &p->err);
        if (n <= 0)
            return;
        p->in = xrealloc(p->in, p->in_len + (size_t)n);
        memcpy(p->in + p->in_len, buf, (size_t)n);
        p->in_len += (size_t)n;
    }
}

static size_t transfer(tls_peer *from, tls_peer *to)
{
    uint8_t buf[16384];
    size_t moved = 0, n;
    while ((n = caa_tls_engine_take_output(from->e, buf, sizeof(buf))) > 0) {
        caa_tls_engine_feed(to->e, buf, n, to->err ? NULL : &to->err);
        moved += n;
    }
    return moved;
}

void tls_pump(tls_peer *client, tls_peer *server)
{
    caa_tls_engine_handshake(client->e, client->err ? NULL : &client->err);
    for (int round = 0; round < 1000; round++) {
        size_t moved = transfer(client, server);
        tls_peer_drain(server);
        moved += transfer(server, client);
        tls_peer_drain(client);
        if (moved == 0)
            return;
    }
    fail_msg("engines did not settle");
}

void tls_expect_error(const caa_error *err, int code, const char *fragment)
{
    if (!err)
        fail_msg("expected an error containing '%s', got none", fragment);
    if (getenv("CAA_TEST_VERBOSE"))
        fprintf(stderr, "error: %s\n", err->msg);
    if (err->code != code || !strstr(err->msg, fragment))
        fail_msg("expected code %d with '%s', got %d: %s", code, fragment, err->code, err->msg);
}
