/* Strict protobuf decoding: string fields with a NUL are refused (naming the
 * field), everything protobuf-c accepts otherwise still decodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hypervisor.pb-c.h"
#include "pb-strict.h"
#include "ttrpc-codec.h"

#define CREATE_VM &hypervisor__create_vmrequest__descriptor

static void assert_refused(const uint8_t *buf, size_t len, const char *what)
{
    caa_error *err = NULL;
    assert_null(caa_pb_unpack_strict(CREATE_VM, buf, len, NULL, &err));
    assert_int_equal(err->code, -EINVAL);
    if (!strstr(err->msg, what))
        fail_msg("'%s' does not name '%s'", err->msg, what);
    caa_error_free(err);
}

static void test_nul_in_each_string_field_is_refused(void **state)
{
    (void)state;
    /* id = "abc\0def" */
    static const uint8_t id[] = {0x0a, 7, 'a', 'b', 'c', 0, 'd', 'e', 'f'};
    assert_refused(id, sizeof(id), "CreateVMRequest.id: NUL byte at offset 3");
    /* annotations {key "k\0", value "v"} */
    static const uint8_t key[] = {0x12, 7, 0x0a, 2, 'k', 0, 0x12, 1, 'v'};
    assert_refused(key, sizeof(key), "CreateVMRequest.annotations.key");
    static const uint8_t value[] = {0x12, 7, 0x0a, 1, 'k', 0x12, 2, 0, 'v'};
    assert_refused(value, sizeof(value), "CreateVMRequest.annotations.value");
    /* networkNamespacePath = "/x\0" */
    static const uint8_t netns[] = {0x1a, 3, '/', 'x', 0};
    assert_refused(netns, sizeof(netns), "CreateVMRequest.networkNamespacePath");
}

static void test_clean_message_decodes_and_counts_string_bytes(void **state)
{
    (void)state;
    static const uint8_t ok[] = {0x0a, 3, 'a', 'b',  'c', 0x12, 6,   0x0a, 1, 'k',
                                 0x12, 1, 'v', 0x1a, 2,   '/',  'n', 0x20, 5 /* unknown varint field 4 */};
    caa_pb_stats st = {0};
    assert_int_equal(caa_pb_check_strings(CREATE_VM, ok, sizeof(ok), &st, NULL), 0);
    assert_int_equal(st.string_bytes, 3 + 1 + 1 + 2);
    assert_int_equal(st.strings, 4);
    assert_int_equal(st.messages, 1);
    caa_error *err = NULL;
    Hypervisor__CreateVMRequest *r =
        (Hypervisor__CreateVMRequest *)caa_pb_unpack_strict(CREATE_VM, ok, sizeof(ok), NULL, &err);
    assert_non_null(r);
    assert_string_equal(r->id, "abc");
    assert_int_equal(r->n_annotations, 1);
    hypervisor__create_vmrequest__free_unpacked(r, NULL);
    /* The same message over each limit. */
    static const caa_pb_stats bytes6 = {.string_bytes = 6}, strings3 = {.strings = 3}, none = {.messages = 0},
                              messages0 = {.string_bytes = 100, .messages = 1};
    assert_null(caa_pb_unpack_strict(CREATE_VM, ok, sizeof(ok), &bytes6, &err));
    assert_non_null(strstr(err->msg, "CreateVMRequest: more than the 6 bytes of strings allowed"));
    caa_error_free(err);
    err = NULL;
    assert_null(caa_pb_unpack_strict(CREATE_VM, ok, sizeof(ok), &strings3, &err));
    assert_non_null(strstr(err->msg, "more than the 3 strings allowed"));
    caa_error_free(err);
    static const uint8_t two_entries[] = {0x12, 0, 0x12, 0};
    assert_null(caa_pb_unpack_strict(CREATE_VM, two_entries, sizeof(two_entries), &messages0, NULL));
    r = (Hypervisor__CreateVMRequest *)caa_pb_unpack_strict(CREATE_VM, ok, sizeof(ok), &none, NULL);
    assert_non_null(r);
    hypervisor__create_vmrequest__free_unpacked(r, NULL);
    /* Empty message. */
    r = (Hypervisor__CreateVMRequest *)caa_pb_unpack_strict(CREATE_VM, NULL, 0, NULL, NULL);
    assert_non_null(r);
    hypervisor__create_vmrequest__free_unpacked(r, NULL);
}

static void test_malformed_wire_is_refused(void **state)
{
    (void)state;
    static const uint8_t lying_length[] = {0x0a, 50, 'a'};
    assert_refused(lying_length, sizeof(lying_length), "malformed");
    static const uint8_t truncated_varint[] = {0x0a, 0x80};
    assert_refused(truncated_varint, sizeof(truncated_varint), "malformed");
    static const uint8_t group[] = {0x0b, 0x0c};
    assert_refused(group, sizeof(group), "malformed");
    static const uint8_t field_zero[] = {0x02, 0};
    assert_refused(field_zero, sizeof(field_zero), "malformed");
    static const uint8_t short_fixed64[] = {0x21, 1, 2, 3};
    assert_refused(short_fixed64, sizeof(short_fixed64), "malformed");
}

/* The ttRPC envelope: "svc\0x" must not be dispatched as "svc". */
static void test_ttrpc_request_with_nul_in_service_is_refused(void **state)
{
    (void)state;
    static const uint8_t req[] = {0x0a, 5, 's', 'v', 'c', 0, 'x', 0x12, 1, 'm'};
    caa_error *err = NULL;
    assert_null(ttrpc_request_decode(req, sizeof(req), &err));
    assert_int_equal(err->code, -EPROTO);
    assert_non_null(strstr(err->msg, "Request.service"));
    caa_error_free(err);
    const uint8_t *payload;
    size_t payload_len;
    assert_null(ttrpc_request_decode_view(req, sizeof(req), &payload, &payload_len, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nul_in_each_string_field_is_refused),
        cmocka_unit_test(test_clean_message_decodes_and_counts_string_bytes),
        cmocka_unit_test(test_malformed_wire_is_refused),
        cmocka_unit_test(test_ttrpc_request_with_nul_in_service_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
