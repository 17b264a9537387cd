/* Two engines back to back in memory: the daemon's client against the
 * forwarder's server, with upstream's certificate scheme. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <cmocka.h>

#include <openssl/x509v3.h>

#include "strv.h"
#include "tls-cert-internal.h"
#include "tls-test-util.h"
#include "xalloc.h"

static tls_material mat;

static int setup(void **state)
{
    (void)state;
    tls_material_init(&mat, TEST_INSTANCE);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tls_material_done(&mat);
    return 0;
}

/* A pair built from explicit contexts (freed here; the engines keep refs). */
static void pair(tls_peer *c, tls_peer *s, SSL_CTX *cctx, SSL_CTX *sctx, const char *name)
{
    tls_peer_init(c, cctx, CAA_TLS_ROLE_CLIENT, name);
    tls_peer_init(s, sctx, CAA_TLS_ROLE_SERVER, NULL);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

static void default_pair(tls_peer *c, tls_peer *s)
{
    pair(c, s, tls_client_ctx(&mat, NULL), tls_server_ctx(&mat, NULL), TEST_INSTANCE);
}

static void profile(const char *min, const char *suites, caa_tls_profile *p)
{
    _cleanup_strv_ char **v = NULL;
    if (suites)
        caa_strv_split_append(&v, suites, ',');
    caa_error *err = NULL;
    if (caa_tls_profile_parse(min, v, p, &err) < 0)
        fail_msg("profile: %s", err->msg);
}

static caa_tls_identity *build_identity(const caa__tls_cert_params *p, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    assert_int_equal(caa__tls_cert_build(p, issuer, issuer_key, &cert, &key, NULL), 0);
    return caa__tls_identity_new(cert, key);
}

static void test_exchange(void **state)
{
    (void)state;
    tls_peer c, s;
    default_pair(&c, &s);

    /* Written before the handshake: queued, sent after it. */
    assert_int_equal(caa_tls_engine_write(c.e, "early", 5, NULL), 0);
    assert_int_equal(caa_tls_engine_write_pending(c.e), 5);
    assert_false(caa_tls_engine_handshake_done(c.e));
    tls_pump(&c, &s);
    assert_null(c.err);
    assert_null(s.err);
    assert_true(caa_tls_engine_handshake_done(c.e));
    assert_true(caa_tls_engine_handshake_done(s.e));
    assert_int_equal(caa_tls_engine_write_pending(c.e), 0);
    assert_int_equal(s.in_len, 5);
    assert_memory_equal(s.in, "early", 5);

    assert_string_equal(caa_tls_engine_protocol(c.e), "TLSv1.3");
    assert_string_equal(caa_tls_engine_protocol(s.e), "TLSv1.3");
    _cleanup_free_ char *server_subject = caa_tls_engine_peer_subject(c.e);
    _cleanup_free_ char *client_subject = caa_tls_engine_peer_subject(s.e);
    assert_string_equal(server_subject, "CN=" TEST_INSTANCE ",O=agent-protocol-forwarder");
    assert_string_equal(client_subject, "O=cloud-api-adaptor");

    /* 1 MiB each way (several records, both directions interleaved). */
    /* Smaller under valgrind, which is slow at crypto. */
    size_t big = getenv("CAA_UNDER_VALGRIND") ? 64 * 1024 : 1 << 20;
    uint8_t *data = xmalloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(caa_tls_engine_write(c.e, data, big, NULL), 0);
    assert_int_equal(caa_tls_engine_write(s.e, data, big, NULL), 0);
    assert_true(caa_tls_engine_output_pending(c.e) > big);
    tls_pump(&c, &s);
    assert_int_equal(s.in_len, 5 + big);
    assert_memory_equal(s.in + 5, data, big);
    assert_int_equal(c.in_len, big);
    assert_memory_equal(c.in, data, big);
    assert_int_equal(caa_tls_engine_input_pending(s.e), 0);
    free(data);

    /* Clean close: close_notify reaches the server, then transport EOF is fine. */
    assert_int_equal(caa_tls_engine_shutdown(c.e, NULL), 0);
    assert_int_equal(caa_tls_engine_shutdown(c.e, NULL), 0); /* idempotent */
    _cleanup_error_ caa_error *err = NULL;
    assert_int_equal(caa_tls_engine_write(c.e, "x", 1, &err), -EPIPE);
    tls_pump(&c, &s);
    assert_null(s.err);
    assert_true(caa_tls_engine_peer_closed(s.e));
    assert_int_equal(caa_tls_engine_feed_eof(s.e, NULL), 0);
    uint8_t b[8];
    assert_int_equal(caa_tls_engine_read(s.e, b, sizeof(b), NULL), 0);
    /* The server answers with its own close_notify (TLS allows a half-close). */
    assert_int_equal(caa_tls_engine_write(s.e, "bye", 3, NULL), 0);
    assert_int_equal(caa_tls_engine_shutdown(s.e, NULL), 0);
    tls_pump(&c, &s);
    assert_null(c.err);
    assert_true(caa_tls_engine_peer_closed(c.e));
    assert_memory_equal(c.in + big, "bye", 3);

    tls_peer_done(&c);
    tls_peer_done(&s);
}

static void test_truncation(void **state)
{
    (void)state;
    tls_peer c, s;
    default_pair(&c, &s);
    tls_pump(&c, &s);
    assert_null(s.err);

    /* EOF without close_notify is an attack or a crash, not an end. */
    uint8_t b[8];
    _cleanup_error_ caa_error *err = NULL, *again = NULL;
    assert_int_equal(caa_tls_engine_feed_eof(s.e, NULL), 0);
    assert_int_equal(caa_tls_engine_read(s.e, b, sizeof(b), &err), -ECONNRESET);
    tls_expect_error(err, -ECONNRESET, "closed without a TLS close_notify");
    /* The failure sticks. */
    assert_int_equal(caa_tls_engine_write(s.e, "x", 1, &again), -ECONNRESET);
    assert_string_equal(again->msg, err->msg);
    assert_int_equal(caa_tls_engine_feed(s.e, "x", 1, NULL), -ECONNRESET);
    assert_int_equal(caa_tls_engine_handshake(s.e, NULL), -ECONNRESET);

    /* EOF in the middle of the handshake fails at once. */
    tls_peer c2, s2;
    default_pair(&c2, &s2);
    _cleanup_error_ caa_error *err2 = NULL;
    assert_int_equal(caa_tls_engine_handshake(c2.e, NULL), 0);
    assert_true(caa_tls_engine_output_pending(c2.e) > 0);
    assert_int_equal(caa_tls_engine_feed_eof(c2.e, &err2), -ECONNRESET);
    tls_expect_error(err2, -ECONNRESET,
                     "TLS handshake failed: the server closed the connection during the handshake");

    tls_peer_done(&c);
    tls_peer_done(&s);
    tls_peer_done(&c2);
    tls_peer_done(&s2);
}

static void test_profiles(void **state)
{
    (void)state;
    caa_tls_profile p12, p13;
    profile("VersionTLS12", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256", &p12);
    profile("VersionTLS13", NULL, &p13);

    /* A TLS 1.2-only client (the profile sets a minimum, the test a maximum). */
    tls_peer c, s;
    SSL_CTX *cctx = tls_client_ctx(&mat, &p12);
    SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
    pair(&c, &s, cctx, tls_server_ctx(&mat, &p12), TEST_INSTANCE);
    tls_pump(&c, &s);
    assert_null(c.err);
    assert_null(s.err);
    assert_string_equal(caa_tls_engine_protocol(s.e), "TLSv1.2");
    assert_string_equal(caa_tls_engine_cipher(s.e), "ECDHE-ECDSA-AES256-GCM-SHA384");
    assert_int_equal(caa_tls_engine_write(c.e, "ping", 4, NULL), 0);
    tls_pump(&c, &s);
    assert_int_equal(s.in_len, 4);
    tls_peer_done(&c);
    tls_peer_done(&s);

    /* With a TLS 1.2 suite list, TLS 1.3 stays available with its defaults. */
    pair(&c, &s, tls_client_ctx(&mat, &p12), tls_server_ctx(&mat, &p12), TEST_INSTANCE);
    tls_pump(&c, &s);
    assert_null(s.err);
    assert_string_equal(caa_tls_engine_protocol(s.e), "TLSv1.3");
    tls_peer_done(&c);
    tls_peer_done(&s);

    /* Server requires TLS 1.3, client offers at most 1.2. */
    cctx = tls_client_ctx(&mat, NULL);
    SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
    pair(&c, &s, cctx, tls_server_ctx(&mat, &p13), TEST_INSTANCE);
    tls_pump(&c, &s);
    tls_expect_error(s.err, -EPROTO, "no common TLS version with the client");
    tls_expect_error(c.err, -EPROTO, "no common TLS version with the server");
    tls_expect_error(c.err, -EPROTO, "protocol version");
    tls_peer_done(&c);
    tls_peer_done(&s);

    /* No common TLS 1.2 suite: the server only allows an RSA suite, which
     * cannot work with its ECDSA certificate anyway. */
    caa_tls_profile prsa;
    profile(NULL, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", &prsa);
    cctx = tls_client_ctx(&mat, &p12);
    SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
    pair(&c, &s, cctx, tls_server_ctx(&mat, &prsa), TEST_INSTANCE);
    tls_pump(&c, &s);
    tls_expect_error(s.err, -EPROTO, "no common TLS cipher suite with the client");
    tls_expect_error(s.err, -EPROTO, "no shared cipher");
    tls_expect_error(c.err, -EPROTO, "no common TLS cipher suite with the server");
    tls_peer_done(&c);
    tls_peer_done(&s);

    caa_tls_profile_done(&p12);
    caa_tls_profile_done(&p13);
    caa_tls_profile_done(&prsa);
}

static void test_tls11_client(void **state)
{
    (void)state;
    tls_peer c, s;
    SSL_CTX *cctx = tls_client_ctx(&mat, NULL);

    /* An old client: TLS 1.1 only (security level 0 so OpenSSL agrees to send it). */
    SSL_CTX_set_security_level(cctx, 0);
    assert_int_equal(SSL_CTX_set_min_proto_version(cctx, TLS1_1_VERSION), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "DEFAULT:@SECLEVEL=0"), 1);
    pair(&c, &s, cctx, tls_server_ctx(&mat, NULL), TEST_INSTANCE);
    tls_pump(&c, &s);
    tls_expect_error(s.err, -EPROTO, "no common TLS version with the client");
    tls_expect_error(s.err, -EPROTO, "unsupported protocol");
    assert_non_null(c.err);
    assert_false(caa_tls_engine_handshake_done(s.e));
    tls_peer_done(&c);
    tls_peer_done(&s);
}

static void test_wrong_ca(void **state)
{
    (void)state;
    _cleanup_tls_ca_ caa_tls_ca *other = NULL;
    assert_int_equal(caa_tls_ca_new(&other, NULL), 0);
    _cleanup_tls_trust_ caa_tls_trust *other_trust = caa_tls_ca_trust(other);
    caa_tls_client_config cfg = {.identity = mat.client, .ca = other_trust};
    SSL_CTX *cctx = NULL;
    assert_int_equal(caa_tls_client_ctx_new(&cfg, &cctx, NULL), 0);

    tls_peer c, s;
    pair(&c, &s, cctx, tls_server_ctx(&mat, NULL), TEST_INSTANCE);
    tls_pump(&c, &s);
    tls_expect_error(c.err, -EACCES, "server certificate rejected: unable to get local issuer certificate");
    tls_expect_error(c.err, -EACCES, "certificate verify failed");
    /* The alert tells the server why. */
    tls_expect_error(s.err, -EACCES, "the client refused our certificate");
    tls_expect_error(s.err, -EACCES, "unknown ca");
    assert_false(caa_tls_engine_handshake_done(c.e));
    tls_peer_done(&c);
    tls_peer_done(&s);
}

static void test_wrong_server_name(void **state)
{
    (void)state;
    tls_peer c, s;
    pair(&c, &s, tls_client_ctx(&mat, NULL), tls_server_ctx(&mat, NULL), "podvm-other-deadbeef");
    tls_pump(&c, &s);
    tls_expect_error(c.err, -EACCES, "server certificate rejected: hostname mismatch");
    assert_non_null(s.err);
    tls_peer_done(&c);
    tls_peer_done(&s);

    /* The CN alone does not count (as in Go): a certificate without SAN fails. */
    const caa__tls_cert_params no_san = {
        .org = "agent-protocol-forwarder",
        .common_name = TEST_INSTANCE,
        .ext_key_usage = NID_server_auth,
        .not_before_offset_s = -300,
        .validity_s = 3600,
    };
    _cleanup_tls_identity_ caa_tls_identity *srv = build_identity(&no_san, mat.ca->cert, mat.ca->key);
    caa_tls_server_config scfg = {.identity = srv, .client_ca = mat.client_trust};
    SSL_CTX *sctx = NULL;
    assert_int_equal(caa_tls_server_ctx_new(&scfg, &sctx, NULL), 0);
    pair(&c, &s, tls_client_ctx(&mat, NULL), sctx, TEST_INSTANCE);
    tls_pump(&c, &s);
    tls_expect_error(c.err, -EACCES, "hostname mismatch");
    tls_peer_done(&c);
    tls_peer_done(&s);
}

static void test_missing_client_cert(void **state)
{
    (void)state;
    caa_tls_client_config cfg = {.ca = mat.ca_trust};
    SSL_CTX *cctx = NULL;
    assert_int_equal(caa_tls_client_ctx_new(&cfg, &cctx, NULL), 0);

    tls_peer c, s;
    pair(&c, &s, cctx, tls_server_ctx(&mat, NULL), TEST_INSTANCE);
    assert_int_equal(caa_tls_engine_write(c.e, "request", 7, NULL), 0);
    tls_pump(&c, &s);
    tls_expect_error(s.err, -EACCES, "the client presented no certificate");
    tls_expect_error(s.err, -EACCES, "peer did not return a certificate");
    assert_int_equal(s.in_len, 0); /* nothing reached the application */
    /* TLS 1.3: the client learns it from the alert on its first read. */
    tls_expect_error(c.err, -EACCES, "the server requires a client certificate and none is configured");
    tls_expect_error(c.err, -EACCES, "certificate required");
    tls_peer_done(&c);
    tls_peer_done(&s);

    /* TLS 1.2: the handshake itself fails on the client too. */
    assert_int_equal(caa_tls_client_ctx_new(&cfg, &cctx, NULL), 0);
    SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
    pair(&c, &s, cctx, tls_server_ctx(&mat, NULL), TEST_INSTANCE);
    tls_pump(&c, &s);
    tls_expect_error(s.err, -EACCES, "the client presented no certificate");
    tls_expect_error(c.err, -EACCES,
                     "TLS handshake failed: the server requires a client certificate and none is configured");
    assert_false(caa_tls_engine_handshake_done(c.e));
    tls_peer_done(&c);
    tls_peer_done(&s);
}

static void test_foreign_client_cert(void **state)
{
    (void)state;
    /* Same profile and subject as the real one, but another key. */
    _cleanup_tls_identity_ caa_tls_identity *foreign = NULL;
    assert_int_equal(caa_tls_identity_generate_client(&foreign, NULL), 0);
    caa_tls_client_config cfg = {.identity = foreign, .ca = mat.ca_trust};
    SSL_CTX *cctx = NULL;
    assert_int_equal(caa_tls_client_ctx_new(&cfg, &cctx, NULL), 0);

    tls_peer c, s;
    pair(&c, &s, cctx, tls_server_ctx(&mat, NULL), TEST_INSTANCE);
    assert_int_equal(caa_tls_engine_write(c.e, "request", 7, NULL), 0);
    tls_pump(&c, &s);
    tls_expect_error(
        s.err, -EACCES,
        "client certificate rejected: self-signed certificate (not one of the trusted certificates)");
    tls_expect_error(s.err, -EACCES, "certificate verify failed");
    assert_int_equal(s.in_len, 0);
    tls_expect_error(c.err, -EACCES, "the server refused our certificate");
    tls_peer_done(&c);
    tls_peer_done(&s);

    /* A client certificate issued by a CA the server does not trust. */
    _cleanup_tls_ca_ caa_tls_ca *other = NULL;
    assert_int_equal(caa_tls_ca_new(&other, NULL), 0);
    const caa__tls_cert_params client = {
        .org = "cloud-api-adaptor",
        .ext_key_usage = NID_client_auth,
        .not_before_offset_s = -300,
        .validity_s = 3600,
    };
    _cleanup_tls_identity_ caa_tls_identity *issued = build_identity(&client, other->cert, other->key);
    cfg.identity = issued;
    assert_int_equal(caa_tls_client_ctx_new(&cfg, &cctx, NULL), 0);
    pair(&c, &s, cctx, tls_server_ctx(&mat, NULL), TEST_INSTANCE);
    tls_pump(&c, &s);
    tls_expect_error(s.err, -EACCES, "client certificate rejected: unable to get local issuer certificate");
    tls_peer_done(&c);
    tls_peer_done(&s);
}

static void test_expired(void **state)
{
    (void)state;
    const caa__tls_cert_params old_server = {
        .org = "agent-protocol-forwarder",
        .common_name = TEST_INSTANCE,
        .dns_name = TEST_INSTANCE,
        .ext_key_usage = NID_server_auth,
        .not_before_offset_s = -3 * 86400,
        .validity_s = 86400,
    };
    _cleanup_tls_identity_ caa_tls_identity *srv = build_identity(&old_server, mat.ca->cert, mat.ca->key);
    caa_tls_server_config scfg = {.identity = srv, .client_ca = mat.client_trust};
    SSL_CTX *sctx = NULL;
    assert_int_equal(caa_tls_server_ctx_new(&scfg, &sctx, NULL), 0);

    tls_peer c, s;
    pair(&c, &s, tls_client_ctx(&mat, NULL), sctx, TEST_INSTANCE);
    tls_pump(&c, &s);
    tls_expect_error(c.err, -EACCES, "server certificate rejected: certificate has expired");
    tls_expect_error(s.err, -EACCES, "certificate expired");
    tls_peer_done(&c);
    tls_peer_done(&s);

    /* An expired client certificate used as the trust anchor: still refused. */
    const caa__tls_cert_params old_client = {
        .org = "cloud-api-adaptor",
        .self_cert_sign = true,
        .ext_key_usage = NID_client_auth,
        .not_before_offset_s = -3 * 86400,
        .validity_s = 86400,
    };
    _cleanup_tls_identity_ caa_tls_identity *cli = build_identity(&old_client, NULL, NULL);
    _cleanup_free_ char *cli_pem = caa_tls_identity_cert_pem(cli);
    _cleanup_tls_trust_ caa_tls_trust *cli_trust = NULL;
    assert_int_equal(caa_tls_trust_from_pem(cli_pem, &cli_trust, NULL), 0);
    caa_tls_client_config ccfg = {.identity = cli, .ca = mat.ca_trust};
    caa_tls_server_config scfg2 = {.identity = mat.server, .client_ca = cli_trust};
    SSL_CTX *cctx = NULL;
    assert_int_equal(caa_tls_client_ctx_new(&ccfg, &cctx, NULL), 0);
    assert_int_equal(caa_tls_server_ctx_new(&scfg2, &sctx, NULL), 0);
    pair(&c, &s, cctx, sctx, TEST_INSTANCE);
    tls_pump(&c, &s);
    tls_expect_error(s.err, -EACCES, "client certificate rejected: certificate has expired");
    tls_peer_done(&c);
    tls_peer_done(&s);
}

/* Upstream's ttRPC frame header (length 0x12, stream 1, request) followed by junk. */
static const uint8_t ttrpc_frame[] = {0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00,
                                      0x0a, 0x0e, 'g',  'r',  'p',  'c',  '.',  'H',  'e',  'a'};

static void test_plain_client(void **state)
{
    (void)state;
    SSL_CTX *sctx = tls_server_ctx(&mat, NULL);
    _cleanup_tls_engine_ caa_tls_engine *s = NULL;
    _cleanup_error_ caa_error *err = NULL;

    assert_int_equal(caa_tls_engine_new(sctx, CAA_TLS_ROLE_SERVER, NULL, &s, NULL), 0);
    assert_int_equal(caa_tls_engine_feed(s, ttrpc_frame, sizeof(ttrpc_frame), &err), -EPROTO);
    tls_expect_error(err, -EPROTO, "TLS handshake failed: the client is not speaking TLS (first byte 0x00");
    caa_tls_engine_freep(&s);
    caa_error_freep(&err);

    /* Plain HTTP, byte by byte. */
    const char *http = "GET /agent HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(caa_tls_engine_new(sctx, CAA_TLS_ROLE_SERVER, NULL, &s, NULL), 0);
    int r = 0;
    for (size_t i = 0; http[i] && r == 0; i++)
        r = caa_tls_engine_feed(s, http + i, 1, &err);
    assert_int_equal(r, -EPROTO);
    tls_expect_error(err, -EPROTO, "not speaking TLS (first byte 0x47");
    SSL_CTX_free(sctx);

    /* A server that answers a ClientHello with plain bytes. */
    SSL_CTX *cctx = tls_client_ctx(&mat, NULL);
    _cleanup_tls_engine_ caa_tls_engine *c = NULL;
    _cleanup_error_ caa_error *cerr = NULL;
    assert_int_equal(caa_tls_engine_new(cctx, CAA_TLS_ROLE_CLIENT, TEST_INSTANCE, &c, NULL), 0);
    SSL_CTX_free(cctx);
    assert_int_equal(caa_tls_engine_handshake(c, NULL), 0);
    assert_int_equal(caa_tls_engine_feed(c, "SSH-2.0-OpenSSH_9.2\r\n", 21, &cerr), -EPROTO);
    tls_expect_error(cerr, -EPROTO, "the server is not speaking TLS (first byte 0x53");
}

static void test_skip_verify_and_config_errors(void **state)
{
    (void)state;
    caa_error *err = NULL;
    SSL_CTX *ctx = NULL;

    /* Skip-verify on both sides: no CA, no client certificate. */
    caa_tls_client_config ccfg = {.skip_verify = true};
    caa_tls_server_config scfg = {.identity = mat.server, .skip_verify = true};
    SSL_CTX *cctx = NULL, *sctx = NULL;
    assert_int_equal(caa_tls_client_ctx_new(&ccfg, &cctx, NULL), 0);
    assert_int_equal(caa_tls_server_ctx_new(&scfg, &sctx, NULL), 0);
    tls_peer c, s;
    pair(&c, &s, cctx, sctx, NULL);
    assert_int_equal(caa_tls_engine_write(c.e, "hi", 2, NULL), 0);
    tls_pump(&c, &s);
    assert_null(c.err);
    assert_null(s.err);
    assert_int_equal(s.in_len, 2);
    assert_null(caa_tls_engine_peer_subject(s.e));
    tls_peer_done(&c);
    tls_peer_done(&s);

    /* Misconfigurations are refused when the context is built. */
    caa_tls_client_config both = {.ca = mat.ca_trust, .skip_verify = true};
    assert_int_equal(caa_tls_client_ctx_new(&both, &ctx, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "cannot be used together");
    caa_error_freep(&err);
    caa_tls_client_config none = {.identity = mat.client};
    assert_int_equal(caa_tls_client_ctx_new(&none, &ctx, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "a CA to verify the server is required");
    caa_error_freep(&err);
    caa_tls_server_config no_id = {.client_ca = mat.client_trust};
    assert_int_equal(caa_tls_server_ctx_new(&no_id, &ctx, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "a certificate and key are required");
    caa_error_freep(&err);
    caa_tls_server_config no_ca = {.identity = mat.server};
    assert_int_equal(caa_tls_server_ctx_new(&no_ca, &ctx, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "a CA to verify client certificates is required");
    caa_error_freep(&err);
    caa_tls_server_config sboth = {
        .identity = mat.server, .client_ca = mat.client_trust, .skip_verify = true};
    assert_int_equal(caa_tls_server_ctx_new(&sboth, &ctx, &err), -EINVAL);
    caa_error_freep(&err);
    assert_null(ctx);

    /* A verifying client needs a server name. */
    cctx = tls_client_ctx(&mat, NULL);
    caa_tls_engine *e = NULL;
    assert_int_equal(caa_tls_engine_new(cctx, CAA_TLS_ROLE_CLIENT, NULL, &e, &err), -EINVAL);
    tls_expect_error(err, -EINVAL, "a server name to verify is required");
    caa_error_freep(&err);
    assert_int_equal(caa_tls_engine_new(NULL, CAA_TLS_ROLE_CLIENT, "x", &e, &err), -EINVAL);
    caa_error_freep(&err);
    SSL_CTX_free(cctx);
    assert_null(e);

    /* Shutdown before the handshake only marks the engine closed. */
    cctx = tls_client_ctx(&mat, NULL);
    assert_int_equal(caa_tls_engine_new(cctx, CAA_TLS_ROLE_CLIENT, TEST_INSTANCE, &e, NULL), 0);
    SSL_CTX_free(cctx);
    assert_int_equal(caa_tls_engine_write(e, "lost", 4, NULL), 0);
    assert_int_equal(caa_tls_engine_shutdown(e, NULL), 0);
    assert_int_equal(caa_tls_engine_write_pending(e), 0);
    assert_int_equal(caa_tls_engine_output_pending(e), 0);
    assert_int_equal(caa_tls_engine_handshake(e, &err), -EPIPE);
    caa_error_freep(&err);
    caa_tls_engine_free(e);
    caa_tls_engine_free(NULL);
}

static void test_user_ca(void **state)
{
    (void)state;
    /* A user CA: the server certificate says "podvm-server", whatever the VM is called. */
    _cleanup_tls_ca_ caa_tls_ca *user = NULL;
    _cleanup_free_ char *cert = NULL, *ca_pem = NULL;
    _cleanup_secret_ char *key = NULL;
    assert_int_equal(caa_tls_ca_new(&user, NULL), 0);
    assert_int_equal(caa_tls_ca_issue_server(user, CAA_TLS_USER_CA_SERVER_NAME, &cert, &key, NULL), 0);
    ca_pem = caa_tls_ca_cert_pem(user);

    _cleanup_tls_identity_ caa_tls_identity *srv = NULL;
    _cleanup_tls_trust_ caa_tls_trust *ca = NULL;
    assert_int_equal(caa_tls_identity_from_pem(cert, key, &srv, NULL), 0);
    assert_int_equal(caa_tls_trust_from_pem(ca_pem, &ca, NULL), 0);
    caa_tls_client_config ccfg = {.identity = mat.client, .ca = ca};
    caa_tls_server_config scfg = {.identity = srv, .client_ca = mat.client_trust};
    SSL_CTX *cctx = NULL, *sctx = NULL;
    assert_int_equal(caa_tls_client_ctx_new(&ccfg, &cctx, NULL), 0);
    assert_int_equal(caa_tls_server_ctx_new(&scfg, &sctx, NULL), 0);
    tls_peer c, s;
    pair(&c, &s, cctx, sctx, caa_tls_server_name(true, TEST_INSTANCE));
    tls_pump(&c, &s);
    assert_null(c.err);
    assert_null(s.err);
    assert_true(caa_tls_engine_handshake_done(c.e));
    tls_peer_done(&c);
    tls_peer_done(&s);
}

/* writev: small pieces share records (16 KiB each), whole records of a
 * large piece go as they are; the peer reads the concatenation. Output is
 * taken in place (peek/consume) and input read in place (feed_borrowed). */
static void test_writev_and_in_place(void **state)
{
    (void)state;
    tls_peer c, s;
    default_pair(&c, &s);
    tls_pump(&c, &s);
    assert_null(s.err);
    /* Go's order: AES-128-GCM first. */
    assert_string_equal(caa_tls_engine_cipher(c.e), "TLS_AES_128_GCM_SHA256");

    uint8_t *big = xmalloc(40000);
    for (size_t i = 0; i < 40000; i++)
        big[i] = (uint8_t)(i * 31 + 7);
    struct iovec iov[3] = {{"0123456789", 10}, {big, 40000}, {"tail!", 5}};
    assert_int_equal(caa_tls_engine_writev(c.e, iov, 3, NULL), 0);
    /* 10 + 40000 + 5 bytes in three records (16384, 16384, 7247), each
     * 22 bytes longer (header, content type, tag), not five. */
    size_t out_len;
    const uint8_t *out = caa_tls_engine_output_peek(c.e, &out_len);
    assert_non_null(out);
    assert_int_equal(out_len, 40015 + 3 * 22);
    assert_int_equal(caa_tls_engine_output_pending(c.e), out_len);

    /* The server reads it in place, in two uneven parts: the rest of a
     * record split by the first part is kept by feed_done. */
    uint8_t *copy = xmemdup(out, out_len);
    caa_tls_engine_output_consume(c.e, out_len);
    assert_int_equal(caa_tls_engine_output_pending(c.e), 0);
    size_t none;
    assert_null(caa_tls_engine_output_peek(c.e, &none));
    assert_int_equal(none, 0);
    size_t first = 20000;
    assert_int_equal(caa_tls_engine_feed_borrowed(s.e, copy, first, NULL), 0);
    uint8_t *plain = xmalloc(40015);
    size_t got = 0;
    ssize_t n;
    while ((n = caa_tls_engine_read(s.e, plain + got, 40015 - got, NULL)) > 0)
        got += (size_t)n;
    assert_int_equal(got, 16384); /* only the first record is complete */
    caa_tls_engine_feed_done(s.e);
    /* The rest of the second record is the engine's now (OpenSSL's record
     * buffer or ours): the caller's bytes may go. */
    memset(copy, 0, first);
    assert_int_equal(caa_tls_engine_feed_borrowed(s.e, copy + first, out_len - first, NULL), 0);
    while ((n = caa_tls_engine_read(s.e, plain + got, 40015 - got, NULL)) > 0)
        got += (size_t)n;
    caa_tls_engine_feed_done(s.e);
    assert_int_equal(got, 40015);
    assert_memory_equal(plain, "0123456789", 10);
    assert_memory_equal(plain + 10, big, 40000);
    assert_memory_equal(plain + 40010, "tail!", 5);
    assert_int_equal(caa_tls_engine_input_pending(s.e), 0);

    /* Before the handshake writev queues, like write. */
    tls_peer c2, s2;
    default_pair(&c2, &s2);
    assert_int_equal(caa_tls_engine_writev(c2.e, iov, 3, NULL), 0);
    assert_int_equal(caa_tls_engine_write_pending(c2.e), 40015);
    tls_pump(&c2, &s2);
    assert_int_equal(s2.in_len, 40015);
    assert_memory_equal(s2.in + 10, big, 40000);

    free(plain);
    free(copy);
    free(big);
    tls_peer_done(&c);
    tls_peer_done(&s);
    tls_peer_done(&c2);
    tls_peer_done(&s2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exchange),
        cmocka_unit_test(test_writev_and_in_place),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_tls11_client),
        cmocka_unit_test(test_wrong_ca),
        cmocka_unit_test(test_wrong_server_name),
        cmocka_unit_test(test_missing_client_cert),
        cmocka_unit_test(test_foreign_client_cert),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_plain_client),
        cmocka_unit_test(test_skip_verify_and_config_errors),
        cmocka_unit_test(test_user_ca),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
