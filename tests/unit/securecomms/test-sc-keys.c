/* Ed25519 keys in OpenSSH formats, checked by OpenSSH's own ssh-keygen:
 * our private key gives our public line and fingerprint there, and a key
 * ssh-keygen wrote reads back here. Malformed keys are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs.h"
#include "sc-keys.h"
#include "xalloc.h"

static char tmpdir[] = "/tmp/caa-sc-keys-XXXXXX";

static char *run(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    assert_int_equal(pclose(f), 0);
    return xstrdup(buf);
}

static void test_generate_matches_ssh_keygen(void **state)
{
    (void)state;
    caa_sc_key k;
    assert_int_equal(caa_sc_key_generate("worker@caa", &k, NULL), 0);
    assert_non_null(strstr(k.private_pem, "-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    assert_int_equal(strncmp(k.public_line, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 36), 0);

    char *path = xasprintf("%s/key", tmpdir);
    assert_int_equal(caa_write_file_atomic(path, k.private_pem, strlen(k.private_pem), 0600, NULL), 0);
    char *cmd = xasprintf("ssh-keygen -y -f %s", path);
    char *pub = run(cmd);
    /* ssh-keygen -y prints the public key with the comment. */
    assert_string_equal(pub, k.public_line);

    uint8_t blob[CAA_SC_ED25519_BLOB_LEN];
    assert_int_equal(caa_sc_public_line_blob(k.public_line, strlen(k.public_line), blob, NULL), 0);
    char *fp = caa_sc_blob_fingerprint(blob, sizeof(blob));
    char *fcmd = xasprintf("ssh-keygen -l -E sha256 -f %s", path);
    char *listing = run(fcmd);
    assert_non_null(strstr(listing, fp));

    caa_sc_key back;
    assert_int_equal(caa_sc_key_from_private(k.private_pem, strlen(k.private_pem), &back, NULL), 0);
    assert_string_equal(back.public_line, k.public_line);
    caa_sc_key_done(&back);

    free(listing);
    free(fcmd);
    free(fp);
    free(pub);
    free(cmd);
    unlink(path);
    free(path);
    caa_sc_key_done(&k);
}

static void test_reads_ssh_keygen_key(void **state)
{
    (void)state;
    char *path = xasprintf("%s/other", tmpdir);
    char *cmd = xasprintf("ssh-keygen -q -t ed25519 -N '' -C made-by-ssh-keygen -f %s", path);
    free(run(cmd));
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(caa_read_file(path, 8192, 1, &text, &len, NULL), 0);
    caa_sc_key k;
    assert_int_equal(caa_sc_key_from_private(text, len, &k, NULL), 0);
    char *pubpath = xasprintf("%s.pub", path);
    char *pub = NULL;
    assert_int_equal(caa_read_file(pubpath, 8192, 1, &pub, &len, NULL), 0);
    assert_string_equal(k.public_line, pub);
    caa_sc_key_done(&k);
    free(pub);
    unlink(pubpath);
    free(pubpath);
    free(text);
    unlink(path);
    free(path);
    free(cmd);
}

static void expect_private_refused(const char *pem, const char *needle)
{
    caa_sc_key k;
    caa_error *err = NULL;
    assert_int_equal(caa_sc_key_from_private(pem, strlen(pem), &k, &err), -EINVAL);
    if (!strstr(caa_error_msg(err), needle))
        fail_msg("'%s' lacks '%s'", caa_error_msg(err), needle);
    assert_null(k.private_pem);
    caa_error_free(err);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_private_refused("", "not an OPENSSH PRIVATE KEY");
    expect_private_refused("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
                           "not an OPENSSH");
    expect_private_refused("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n", "not an OPENSSH");
    expect_private_refused("-----BEGIN OPENSSH PRIVATE KEY-----\n!!!!\n-----END OPENSSH PRIVATE KEY-----\n",
                           "invalid base64");
    expect_private_refused("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
                           "malformed");

    /* A key whose public half was swapped for another key's. */
    caa_sc_key a, b;
    assert_int_equal(caa_sc_key_generate("a", &a, NULL), 0);
    assert_int_equal(caa_sc_key_generate("b", &b, NULL), 0);
    /* Flip one base64 character in the middle of the body: structure or key check fails. */
    char *bad = xstrdup(a.private_pem);
    char *mid = bad + strlen("-----BEGIN OPENSSH PRIVATE KEY-----\n") + 100;
    *mid = *mid == 'A' ? 'B' : 'A';
    caa_sc_key k;
    assert_true(caa_sc_key_from_private(bad, strlen(bad), &k, NULL) < 0);
    free(bad);

    uint8_t blob[CAA_SC_ED25519_BLOB_LEN];
    caa_error *err = NULL;
    assert_int_equal(caa_sc_public_line_blob("ssh-rsa AAAAB3NzaC1yc2E=\n", 25, blob, &err), -EINVAL);
    assert_non_null(strstr(caa_error_msg(err), "not an ssh-ed25519"));
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_sc_public_line_blob("ssh-ed25519 AAAA", 16, blob, &err), -EINVAL);
    assert_non_null(strstr(caa_error_msg(err), "malformed"));
    caa_error_free(err);
    assert_int_equal(caa_sc_public_line_blob(b.public_line, strlen(b.public_line), blob, NULL), 0);
    assert_int_equal(caa_sc_key_generate("bad comment", &k, NULL), -EINVAL);
    caa_sc_key_done(&a);
    caa_sc_key_done(&b);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return caa_rm_rf(tmpdir, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_matches_ssh_keygen),
        cmocka_unit_test(test_reads_ssh_keygen_key),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
