/* start-request.json: round trip, hostile documents and files. */
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

#include "error.h"
#include "fs.h"
#include "start-request.h"
#include "test-tmpdir.h"
#include "xalloc.h"

#define ID "0123456789abcdef"

static const char user_data[] = "#cloud-config\nwrite_files: []\n\001binary\377";

static caa_instance_spec sample(void)
{
    return (caa_instance_spec){
        .sandbox_id = ID,
        .instance_name = "podvm-nginx-01234567",
        .instance_type = "t3.small",
        .image = NULL,
        .vcpus = 2,
        .memory_mib = 4096,
        .gpus = 1,
        .user_data = user_data,
        .user_data_len = sizeof(user_data) - 1,
    };
}

static void test_round_trip(void **state)
{
    (void)state;
    caa_instance_spec in = sample();
    char *text = caa_start_request_to_json(&in);
    assert_null(strstr(text, "cloud-config")); /* encoded, not pasted */
    caa_start_request out;
    caa_error *err = NULL;
    assert_int_equal(caa_start_request_from_json(text, strlen(text), ID, &out, &err), 0);
    caa_start_request_text_free(text);
    assert_string_equal(out.sandbox_id, ID);
    assert_string_equal(out.machine_type, "t3.small");
    assert_null(out.image);
    assert_int_equal(out.vcpus, 2);
    assert_int_equal(out.memory_mib, 4096);
    assert_int_equal(out.gpus, 1);
    assert_int_equal(out.user_data_len, sizeof(user_data) - 1);
    assert_memory_equal(out.user_data, user_data, sizeof(user_data) - 1);
    assert_false(out.multi_nic);
    caa_start_request_done(&out);
}

/* external-net-via-pod-vm's second NIC survives a restart; files without the
 * field (older daemons, single NIC) still load. */
static void test_multi_nic(void **state)
{
    (void)state;
    caa_instance_spec in = sample();
    char *text = caa_start_request_to_json(&in);
    assert_null(strstr(text, "multi_nic"));
    caa_start_request_text_free(text);
    in.multi_nic = true;
    text = caa_start_request_to_json(&in);
    assert_non_null(strstr(text, "\"multi_nic\":true"));
    caa_start_request out;
    assert_int_equal(caa_start_request_from_json(text, strlen(text), ID, &out, NULL), 0);
    assert_true(out.multi_nic);
    caa_start_request_text_free(text);
    caa_start_request_done(&out);
}

static void test_no_user_data(void **state)
{
    (void)state;
    caa_instance_spec in = sample();
    in.user_data = NULL;
    in.user_data_len = 0;
    char *text = caa_start_request_to_json(&in);
    caa_start_request out;
    assert_int_equal(caa_start_request_from_json(text, strlen(text), NULL, &out, NULL), 0);
    assert_null(out.user_data);
    caa_start_request_text_free(text);
    caa_start_request_done(&out);
}

static void expect_refused(const char *doc, const char *want)
{
    caa_start_request out = {0};
    caa_error *err = NULL;
    int r = caa_start_request_from_json(doc, strlen(doc), ID, &out, &err);
    if (r != -EINVAL)
        fail_msg("%s: accepted or wrong error %d", doc, r);
    if (!strstr(caa_error_msg(err), want))
        fail_msg("%s: error \"%s\" does not mention \"%s\"", doc, caa_error_msg(err), want);
    assert_null(out.sandbox_id);
    caa_error_free(err);
}

#define OK_TAIL "\"machine_type\":null,\"image\":null,\"vcpus\":0,\"memory_mib\":0,\"gpus\":0"

static void test_hostile_documents(void **state)
{
    (void)state;
    expect_refused("", "not valid JSON");
    expect_refused("[]", "not a JSON object");
    expect_refused("{\"version\":2}", "version");
    expect_refused("{\"version\":1,\"sandbox_id\":\"../etc\"," OK_TAIL ",\"user_data\":null}", "sandbox_id");
    expect_refused("{\"version\":1,\"sandbox_id\":\"fedcba9876543210\"," OK_TAIL ",\"user_data\":null}",
                   "does not match");
    expect_refused("{\"version\":1,\"sandbox_id\":\"" ID "\"," OK_TAIL "}", "user_data");
    expect_refused("{\"version\":1,\"sandbox_id\":\"" ID "\"," OK_TAIL ",\"user_data\":\"@@@@\"}",
                   "user_data");
    expect_refused("{\"version\":1,\"sandbox_id\":\"" ID "\"," OK_TAIL ",\"user_data\":7}", "user_data");
    expect_refused("{\"version\":1,\"sandbox_id\":\"" ID
                   "\",\"machine_type\":\"a\\u0001b\",\"image\":null,\"vcpus\":0,\"memory_mib\":0,\"gpus\":0,"
                   "\"user_data\":null}",
                   "machine_type");
    expect_refused("{\"version\":1,\"sandbox_id\":\"" ID
                   "\",\"machine_type\":null,\"image\":null,\"vcpus\":-1,\"memory_mib\":0,\"gpus\":0,"
                   "\"user_data\":null}",
                   "vcpus");
    expect_refused("{\"version\":1,\"sandbox_id\":\"" ID
                   "\",\"machine_type\":null,\"image\":null,\"vcpus\":1.5,\"memory_mib\":0,\"gpus\":0,"
                   "\"user_data\":null}",
                   "vcpus");
    expect_refused("{\"version\":1,\"version\":1}", "not valid JSON"); /* duplicate key */
    expect_refused("{\"version\":1,\"sandbox_id\":\"" ID "\"," OK_TAIL ",\"user_data\":null,\"multi_nic\":1}",
                   "multi_nic");
}

static void test_files(void **state)
{
    (void)state;
    char *dir = caa_test_tmpdir_new("start-request");
    caa_instance_spec in = sample();
    caa_start_request out;
    caa_error *err = NULL;

    assert_int_equal(caa_start_request_load(dir, ID, &out, &err), -ENOENT);
    caa_error_free(TAKE_PTR(err));

    assert_int_equal(caa_start_request_save(dir, &in, NULL), 0);
    char *path = xasprintf("%s/%s", dir, CAA_START_REQUEST_FILE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(caa_start_request_load(dir, ID, &out, NULL), 0);
    assert_memory_equal(out.user_data, user_data, sizeof(user_data) - 1);
    caa_start_request_done(&out);

    /* The directory of another sandbox. */
    assert_int_equal(caa_start_request_load(dir, "fedcba9876543210", &out, &err), -EINVAL);
    caa_error_free(TAKE_PTR(err));

    /* A symlink is never followed, a FIFO never opened. */
    char *elsewhere = xasprintf("%s/elsewhere.json", dir);
    assert_int_equal(rename(path, elsewhere), 0);
    assert_int_equal(symlink(elsewhere, path), 0);
    assert_int_equal(caa_start_request_load(dir, ID, &out, &err), -ELOOP);
    caa_error_free(TAKE_PTR(err));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(caa_start_request_load(dir, ID, &out, &err), -EINVAL);
    caa_error_free(TAKE_PTR(err));

    free(elsewhere);
    free(path);
    assert_int_equal(caa_test_tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_no_user_data),
        cmocka_unit_test(test_multi_nic),  cmocka_unit_test(test_hostile_documents),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
