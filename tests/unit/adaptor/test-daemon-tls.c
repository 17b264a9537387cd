/* The daemon's TLS material: the on-disk store (tls-store.c) and the
 * start-up/per-pod logic (daemon-tls.c): generation, persistence across
 * restarts, apf.json fields, user-supplied files, bad inputs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "daemon-tls.h"
#include "fs.h"
#include "strv.h"
#include "tls-cert.h"
#include "tls-store.h"
#include "xalloc.h"
#include "test-tmpdir.h"

static char *tmpdir;

static int setup(void **state)
{
    (void)state;
    tmpdir = caa_test_tmpdir_new("dtls-test");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(caa_test_tmpdir_remove(tmpdir), 0);
    tmpdir = NULL;
    return 0;
}

static caa_daemon_config base_config(void)
{
    return (caa_daemon_config){
        .pods_dir = tmpdir,
        .ca_cert_file = "",
        .cert_file = "",
        .cert_key = "",
        .tls_min_version = "",
        .tls_cipher_suites = "",
    };
}

static char *read_text(const char *path)
{
    char *data = NULL;
    size_t len;
    assert_int_equal(caa_read_file(path, 1 << 20, 1, &data, &len, NULL), 0);
    return data;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    assert_int_equal(caa_write_file_atomic(path, text, strlen(text), mode, NULL), 0);
}

static X509 *x509_from_pem(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

/* server was signed by ca and names host in its SAN. */
static void assert_issued_by(const char *server_pem, const char *ca_pem, const char *host)
{
    X509 *srv = x509_from_pem(server_pem), *ca = x509_from_pem(ca_pem);
    assert_int_equal(X509_verify(srv, X509_get0_pubkey(ca)), 1);
    assert_int_equal(X509_check_host(srv, host, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL), 1);
    X509_free(srv);
    X509_free(ca);
}

static void apf_free(caa_apf_config *apf)
{
    caa_tls_secret_free(apf->tls_server_key);
    apf->tls_server_key = NULL;
    caa_apf_config_done(apf);
}

/* ------------------------------------------------------------ store */

static void test_store_round_trip(void **state)
{
    (void)state;
    char *dir = xasprintf("%s/.tls", tmpdir);
    caa_tls_material m = {0};
    caa_error *err = NULL;
    assert_int_equal(caa_tls_store_prepare_dir(dir, NULL), 0);
    assert_int_equal(caa_tls_store_load(dir, &m, &err), -ENOENT);
    assert_null(err);

    caa_tls_material in = {
        .client_cert = "CERT-A", .client_key = "KEY-A", .ca_cert = "CA", .ca_key = "CAKEY"};
    assert_int_equal(caa_tls_store_save(dir, &in, NULL), 0);
    struct stat st;
    char *file = xasprintf("%s/%s", dir, CAA_TLS_STORE_FILE);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    assert_int_equal(caa_tls_store_load(dir, &m, NULL), 0);
    assert_string_equal(m.client_cert, "CERT-A");
    assert_string_equal(m.client_key, "KEY-A");
    assert_string_equal(m.ca_cert, "CA");
    assert_string_equal(m.ca_key, "CAKEY");
    caa_tls_material_done(&m);

    /* Only a CA (user client certificate). */
    caa_tls_material ca_only = {.ca_cert = "CA", .ca_key = "CAKEY"};
    assert_int_equal(caa_tls_store_save(dir, &ca_only, NULL), 0);
    assert_int_equal(caa_tls_store_load(dir, &m, NULL), 0);
    assert_null(m.client_cert);
    assert_null(m.client_key);
    assert_string_equal(m.ca_cert, "CA");
    caa_tls_material_done(&m);
    free(file);
    free(dir);
}

static void expect_load_fails(const char *dir, const char *content, const char *needle)
{
    char *file = xasprintf("%s/%s", dir, CAA_TLS_STORE_FILE);
    write_text(file, content, 0600);
    caa_tls_material m = {0};
    caa_error *err = NULL;
    assert_int_equal(caa_tls_store_load(dir, &m, &err), -EINVAL);
    if (!strstr(err->msg, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err->msg, needle);
    /* Never echo the content (it holds keys). */
    assert_null(strstr(err->msg, "SECRET"));
    assert_null(m.ca_key);
    caa_error_free(err);
    free(file);
}

static void test_store_bad_files(void **state)
{
    (void)state;
    char *dir = xasprintf("%s/.tls", tmpdir);
    assert_int_equal(caa_tls_store_prepare_dir(dir, NULL), 0);
    expect_load_fails(dir, "{\"schema\": 1, \"ca_cert\": \"SECRET", "not a JSON object");
    expect_load_fails(dir, "[1]", "not a JSON object");
    expect_load_fails(dir, "{\"schema\": 2}", "schema");
    expect_load_fails(dir, "{\"ca_cert\": \"x\", \"ca_key\": \"SECRET\"}", "schema");
    expect_load_fails(dir, "{\"schema\": 1, \"ca_cert\": \"x\"}", "without its key");
    expect_load_fails(dir, "{\"schema\": 1, \"client_key\": \"SECRET\"}", "without its key");
    expect_load_fails(dir, "{\"schema\": 1, \"ca_cert\": 5, \"ca_key\": \"SECRET\"}", "ca_cert");
    expect_load_fails(dir, "{\"schema\": 1, \"ca_cert\": \"\", \"ca_key\": \"SECRET\"}", "ca_cert");
    expect_load_fails(dir, "{\"schema\": 1, \"ca_key\": \"SECRET\", \"ca_key\": \"SECRET\"}",
                      "not a JSON object");

    /* Not a regular file. */
    char *file = xasprintf("%s/%s", dir, CAA_TLS_STORE_FILE);
    unlink(file);
    assert_int_equal(mkdir(file, 0700), 0);
    caa_tls_material m = {0};
    caa_error *err = NULL;
    assert_int_equal(caa_tls_store_load(dir, &m, &err), -EINVAL);
    caa_error_free(err);
    rmdir(file);
    /* A symlink is refused. */
    assert_int_equal(symlink("/etc/hostname", file), 0);
    err = NULL;
    assert_true(caa_tls_store_load(dir, &m, &err) < 0);
    caa_error_free(err);
    free(file);
    free(dir);
}

static void test_store_dir(void **state)
{
    (void)state;
    char *dir = xasprintf("%s/.tls", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(caa_tls_store_prepare_dir(dir, NULL), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700); /* tightened */
    rmdir(dir);

    caa_error *err = NULL;
    write_text(dir, "x", 0600);
    assert_int_equal(caa_tls_store_prepare_dir(dir, &err), -ENOTDIR);
    caa_error_free(err);
    unlink(dir);
    assert_int_equal(symlink(tmpdir, dir), 0);
    err = NULL;
    assert_int_equal(caa_tls_store_prepare_dir(dir, &err), -ENOTDIR);
    caa_error_free(err);
    unlink(dir);
    free(dir);
}

/* ------------------------------------------------------------ daemon TLS */

static void test_generated_and_persisted(void **state)
{
    (void)state;
    caa_daemon_config cfg = base_config();
    cfg.tls_cipher_suites =
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
    cfg.tls_min_version = "VersionTLS12";
    caa_daemon_tls *t = NULL;
    caa_error *err = NULL;
    if (caa_daemon_tls_new(&cfg, &t, &err) < 0)
        fail_msg("%s", err->msg);
    char *dir = xasprintf("%s/.tls", tmpdir);
    assert_string_equal(caa_daemon_tls_dir(t), dir);
    assert_string_equal(caa_daemon_tls_server_name(t, "podvm-a-1"), "podvm-a-1");

    /* Nothing is generated before the first use. */
    char *file = xasprintf("%s/%s", dir, CAA_TLS_STORE_FILE);
    assert_int_equal(access(file, F_OK), -1);
    const caa_agent_dialer *dialer = NULL;
    assert_int_equal(caa_daemon_tls_dialer(t, &dialer, NULL), 0);
    assert_non_null(dialer);
    const caa_agent_dialer *again_dialer = NULL;
    assert_int_equal(caa_daemon_tls_dialer(t, &again_dialer, NULL), 0);
    assert_ptr_equal(dialer, again_dialer);

    char *saved = read_text(file);
    caa_tls_material m = {0};
    assert_int_equal(caa_tls_store_load(dir, &m, NULL), 0);
    assert_non_null(m.client_cert);
    assert_non_null(m.ca_cert);

    caa_apf_config apf = {0};
    assert_int_equal(caa_daemon_tls_fill_apf(t, "podvm-a-1", &apf, NULL), 0);
    assert_non_null(strstr(apf.tls_server_key, "PRIVATE KEY"));
    assert_issued_by(apf.tls_server_cert, m.ca_cert, "podvm-a-1");
    assert_string_equal(apf.tls_client_ca, m.client_cert);
    assert_string_equal(apf.tls_min_version, "VersionTLS12");
    assert_int_equal(caa_strv_len(apf.tls_cipher_suites), 2);
    assert_string_equal(apf.tls_cipher_suites[1], "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
    char *first_cert = xstrdup(apf.tls_server_cert);
    apf_free(&apf);
    caa_daemon_tls_free(t);

    /* A restarted daemon keeps the material: same file, same CA, same client certificate. */
    t = NULL;
    assert_int_equal(caa_daemon_tls_new(&cfg, &t, NULL), 0);
    char *again = read_text(file);
    assert_string_equal(saved, again);
    assert_int_equal(caa_daemon_tls_fill_apf(t, "podvm-b-2", &apf, NULL), 0);
    assert_issued_by(apf.tls_server_cert, m.ca_cert, "podvm-b-2");
    assert_issued_by(first_cert, m.ca_cert, "podvm-a-1");
    assert_string_equal(apf.tls_client_ca, m.client_cert);
    apf_free(&apf);
    caa_daemon_tls_free(t);

    /* A store that is not our JSON stops the start with the file named. */
    write_text(file, "{\"schema\": 1, \"ca_cert\": \"junk\"}", 0600);
    t = NULL;
    assert_true(caa_daemon_tls_new(&cfg, &t, &err) < 0);
    assert_null(t);
    assert_non_null(strstr(err->msg, CAA_TLS_STORE_FILE));
    caa_error_free(err);

    /* Keys that do not decode fail the first use (the file named, nothing
     * half made, no pod data), are left alone, and the next use retries. */
    const char *junk = "{\"schema\": 1, \"ca_cert\": \"junk\", \"ca_key\": \"junk\"}";
    write_text(file, junk, 0600);
    assert_int_equal(caa_daemon_tls_new(&cfg, &t, NULL), 0);
    err = NULL;
    assert_true(caa_daemon_tls_fill_apf(t, "podvm-c-3", &apf, &err) < 0);
    assert_non_null(strstr(err->msg, CAA_TLS_STORE_FILE));
    assert_null(strstr(err->msg, "junk"));
    caa_error_free(err);
    assert_null(apf.tls_server_cert);
    assert_null(apf.tls_server_key);
    err = NULL;
    assert_true(caa_daemon_tls_dialer(t, &dialer, &err) < 0);
    caa_error_free(err);
    char *left = read_text(file);
    assert_string_equal(left, junk);
    free(left);
    write_text(file, saved, 0600);
    assert_int_equal(caa_daemon_tls_fill_apf(t, "podvm-c-3", &apf, NULL), 0);
    assert_issued_by(apf.tls_server_cert, m.ca_cert, "podvm-c-3");
    apf_free(&apf);
    caa_daemon_tls_free(t);

    caa_tls_material_done(&m);
    free(first_cert);
    free(saved);
    free(again);
    free(file);
    free(dir);
}

static void test_user_ca(void **state)
{
    (void)state;
    /* A user CA: no server certificate is issued, nothing is shipped as client CA. */
    caa_tls_ca *ca = NULL;
    assert_int_equal(caa_tls_ca_new(&ca, NULL), 0);
    char *ca_pem = caa_tls_ca_cert_pem(ca);
    char *ca_file = xasprintf("%s/ca.crt", tmpdir);
    write_text(ca_file, ca_pem, 0644);

    caa_daemon_config cfg = base_config();
    cfg.ca_cert_file = ca_file;
    caa_daemon_tls *t = NULL;
    caa_error *err = NULL;
    if (caa_daemon_tls_new(&cfg, &t, &err) < 0)
        fail_msg("%s", err->msg);
    assert_string_equal(caa_daemon_tls_server_name(t, "podvm-a-1"), CAA_TLS_USER_CA_SERVER_NAME);
    assert_non_null(caa_daemon_tls_dir(t)); /* the generated client identity is kept */
    caa_apf_config apf = {0};
    assert_int_equal(caa_daemon_tls_fill_apf(t, "podvm-a-1", &apf, NULL), 0);
    assert_null(apf.tls_server_cert);
    assert_null(apf.tls_server_key);
    assert_null(apf.tls_client_ca);
    apf_free(&apf);
    caa_daemon_tls_free(t);

    /* User client certificate too: nothing generated, nothing kept. */
    caa_tls_identity *id = NULL;
    assert_int_equal(caa_tls_identity_generate_client(&id, NULL), 0);
    char *cert = caa_tls_identity_cert_pem(id), *key = caa_tls_identity_key_pem(id);
    char *cert_file = xasprintf("%s/client.crt", tmpdir), *key_file = xasprintf("%s/client.key", tmpdir);
    write_text(cert_file, cert, 0644);
    write_text(key_file, key, 0600);
    char *store = xasprintf("%s/.tls/%s", tmpdir, CAA_TLS_STORE_FILE);
    unlink(store);
    cfg.cert_file = cert_file;
    cfg.cert_key = key_file;
    t = NULL;
    assert_int_equal(caa_daemon_tls_new(&cfg, &t, NULL), 0);
    assert_null(caa_daemon_tls_dir(t));
    assert_int_equal(access(store, F_OK), -1);
    caa_daemon_tls_free(t);

    /* Missing files are named. */
    cfg.cert_file = "/nonexistent/client.crt";
    err = NULL;
    assert_true(caa_daemon_tls_new(&cfg, &t, &err) < 0);
    assert_non_null(strstr(err->msg, "/nonexistent/client.crt"));
    caa_error_free(err);
    cfg.cert_file = cert_file;
    cfg.ca_cert_file = "/nonexistent/ca.crt";
    err = NULL;
    assert_true(caa_daemon_tls_new(&cfg, &t, &err) < 0);
    assert_non_null(strstr(err->msg, "/nonexistent/ca.crt"));
    caa_error_free(err);

    caa_tls_secret_free(key);
    free(cert);
    caa_tls_identity_free(id);
    free(store);
    free(cert_file);
    free(key_file);
    free(ca_file);
    free(ca_pem);
    caa_tls_ca_free(ca);
}

static void expect_bad_config(caa_daemon_config cfg, const char *needle)
{
    caa_error *err = NULL;
    assert_int_equal(caa_daemon_tls_check_config(&cfg, &err), -EINVAL);
    if (!strstr(err->msg, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err->msg, needle);
    caa_error_free(err);
}

static void test_check_config(void **state)
{
    (void)state;
    caa_daemon_config cfg = base_config();
    assert_int_equal(caa_daemon_tls_check_config(&cfg, NULL), 0);

    cfg.ca_cert_file = "/x/ca.crt";
    cfg.tls_skip_verify = true;
    expect_bad_config(cfg, "-tls-skip-verify");
    cfg = base_config();
    cfg.cert_file = "/x/c.crt";
    expect_bad_config(cfg, "-cert-key");
    cfg = base_config();
    cfg.tls_min_version = "VersionTLS11";
    expect_bad_config(cfg, "tls-min-version");
    cfg = base_config();
    /* insecure names are accepted with a warning, as upstream accepts them */
    cfg.tls_cipher_suites = "TLS_RSA_WITH_RC4_128_SHA,TLS_RSA_WITH_AES_128_GCM_SHA256";
    assert_int_equal(caa_daemon_tls_check_config(&cfg, NULL), 0);
    cfg = base_config();
    cfg.tls_cipher_suites = "NOPE";
    expect_bad_config(cfg, "NOPE");

    /* -disable-tls: the TLS flags are not looked at. */
    cfg.disable_tls = true;
    cfg.tls_min_version = "VersionTLS10";
    assert_int_equal(caa_daemon_tls_check_config(&cfg, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated_and_persisted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_ca, setup, teardown),
        cmocka_unit_test(test_check_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
