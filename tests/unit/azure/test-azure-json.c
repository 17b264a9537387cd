/* Readers of Azure responses: good documents and bad ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "azure-json.h"
#include "cleanup.h"
#include "strv.h"
#include "xalloc.h"

#define S(x) x, strlen(x)

static void assert_contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("\"%s\" does not contain \"%s\"", hay ? hay : "(null)", needle);
}

static void test_arm_errors(void **state)
{
    (void)state;
    struct {
        long status;
        const char *body;
        int code;
        const char *text;
    } cases[] = {
        {409,
         "{\"error\":{\"code\":\"OperationNotAllowed\",\"message\":\"Operation could not be completed as it "
         "results in exceeding approved Total Regional Cores quota.\"}}",
         -EDQUOT, "Azure quota exceeded: PUT x: HTTP 409: OperationNotAllowed: Operation could not"},
        {409, "{\"error\":{\"code\":\"OperationNotAllowed\",\"message\":\"VM is being deleted\"}}", -EIO,
         "OperationNotAllowed"},
        {403, "{\"error\":{\"code\":\"QuotaExceeded\",\"message\":\"q\"}}", -EDQUOT, "quota"},
        {409,
         "{\"error\":{\"code\":\"SkuNotAvailable\",\"message\":\"The requested VM size Standard_DC2as_v5 is "
         "currently not available in location 'eastus'.\"}}",
         -ENOSPC, "VM size not available or out of capacity"},
        {200, "{\"error\":{\"code\":\"AllocationFailed\",\"message\":\"no capacity\"}}", -ENOSPC,
         "AllocationFailed"},
        {401, "{\"error\":{\"code\":\"ExpiredAuthenticationToken\",\"message\":\"expired\"}}", -EACCES,
         "credentials"},
        {403, "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"no\"}}", -EACCES,
         "AuthorizationFailed"},
        {404, "{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"gone\"}}", -ENOENT,
         "ResourceNotFound"},
        {400, "{\"error\":{\"code\":\"ResourceGroupNotFound\",\"message\":\"gone\"}}", -ENOENT, "gone"},
        {429, "{\"error\":{\"code\":\"TooManyRequests\",\"message\":\"slow down\"}}", -EAGAIN,
         "TooManyRequests"},
        {503, "", -EAGAIN, "HTTP 503"},
        {400, "{\"error\":{\"code\":\"InvalidParameter\",\"message\":\"bad\",\"target\":\"x\"}}", -EINVAL,
         "InvalidParameter: bad"},
        {400, "{\"code\":\"BadRequest\",\"message\":\"top-level\"}", -EINVAL, "BadRequest: top-level"},
        {418, "not json at all", -EIO, "HTTP 418"},
        {400, "{\"error\": 5}", -EINVAL, "HTTP 400"},
        {400, "{\"error\": {\"code\": [1], \"message\": {\"x\": 1}}}", -EINVAL, "HTTP 400"},
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(cases); i++) {
        caa_error *e = NULL;
        int r = az_arm_error(cases[i].status, S(cases[i].body), "PUT x", &e);
        if (r != cases[i].code || e->code != r)
            fail_msg("case %zu: code %d", i, r);
        assert_contains(caa_error_msg(e), cases[i].text);
        caa_error_free(e);
    }
    /* Cloud text is cut and cleaned. */
    _cleanup_free_ char *long_msg = xmalloc(5000);
    memset(long_msg, 'm', 4999);
    long_msg[4999] = '\0';
    long_msg[10] = '\n';
    _cleanup_free_ char *body = xasprintf("{\"error\":{\"code\":\"X\",\"message\":\"%s\"}}", long_msg);
    body[strlen("{\"error\":{\"code\":\"X\",\"message\":\"") + 10] = ' ';
    caa_error *e = NULL;
    az_arm_error(500, S(body), "GET y", &e);
    assert_true(strlen(caa_error_msg(e)) < AZ_ERROR_TEXT_MAX + 100);
    assert_contains(caa_error_msg(e), "...");
    caa_error_free(e);
}

static void test_token(void **state)
{
    (void)state;
    char *tok = NULL;
    int64_t exp = 0;
    assert_int_equal(
        az_parse_token(S("{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"abc.def\"}"),
                       1000, &tok, &exp, NULL),
        0);
    assert_string_equal(tok, "abc.def");
    assert_int_equal(exp, 3599);
    free(tok);
    /* IMDS: strings, expires_on. */
    assert_int_equal(
        az_parse_token(S("{\"access_token\":\"t\",\"expires_in\":\"86399\",\"token_type\":\"Bearer\"}"), 0,
                       &tok, &exp, NULL),
        0);
    assert_int_equal(exp, 86399);
    free(tok);
    assert_int_equal(
        az_parse_token(S("{\"access_token\":\"t\",\"expires_on\":\"5000\"}"), 1400, &tok, &exp, NULL), 0);
    assert_int_equal(exp, 3600);
    free(tok);
    static const char *const bad[] = {
        "",
        "[]",
        "{\"access_token\":\"t\"}",
        "{\"access_token\":\"a b\",\"expires_in\":10}",
        "{\"access_token\":\"a\\r\\nX-Evil: 1\",\"expires_in\":10}",
        "{\"access_token\":\"\",\"expires_in\":10}",
        "{\"access_token\":5,\"expires_in\":10}",
        "{\"access_token\":\"t\",\"expires_in\":-1}",
        "{\"access_token\":\"t\",\"expires_in\":\"12abc\"}",
        "{\"access_token\":\"t\",\"expires_in\":99999999999}",
        "{\"access_token\":\"t\",\"expires_in\":10,\"token_type\":\"MAC\"}",
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(bad); i++) {
        caa_error *e = NULL;
        tok = NULL;
        if (az_parse_token(S(bad[i]), 0, &tok, &exp, &e) != -EPROTO)
            fail_msg("accepted %s", bad[i]);
        assert_null(tok);
        caa_error_free(e);
    }
    caa_error *e = NULL;
    assert_int_equal(
        az_token_error(401, S("{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215\"}"),
                       "getting a token", &e),
        -EACCES);
    assert_string_equal(caa_error_msg(e), "getting a token: HTTP 401: invalid_client: AADSTS7000215");
    caa_error_free(e);
    e = NULL;
    assert_int_equal(az_token_error(503, S("oops"), "t", &e), -EAGAIN);
    caa_error_free(e);
}

static void test_sizes(void **state)
{
    (void)state;
    caa_instance_type *t = NULL;
    size_t n = 0;
    const char *doc =
        "{\"value\":[{\"name\":\"Standard_DC2as_v5\",\"numberOfCores\":2,\"osDiskSizeInMB\":1047552,"
        "\"resourceDiskSizeInMB\":0,\"memoryInMB\":8192,\"maxDataDiskCount\":4},"
        "{\"name\":\"Standard_DC4as_v5\",\"numberOfCores\":4,\"memoryInMB\":16384}]}";
    assert_int_equal(az_parse_vm_sizes(S(doc), &t, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(t[1].name, "Standard_DC4as_v5");
    assert_int_equal(t[1].vcpus, 4);
    assert_int_equal(t[1].memory_mib, 16384);
    assert_int_equal(t[1].gpus, 0);
    caa_instance_types_free(t, n);
    assert_int_equal(az_parse_vm_sizes(S("{\"value\":[]}"), &t, &n, NULL), 0);
    assert_int_equal(n, 0);
    caa_instance_types_free(t, n);
    static const char *const bad[] = {
        "{}",
        "{\"value\":{}}",
        "{\"value\":[{\"name\":\"x\",\"numberOfCores\":\"two\",\"memoryInMB\":1}]}",
        "{\"value\":[{\"name\":\"x\",\"numberOfCores\":2}]}",
        "{\"value\":[{\"numberOfCores\":2,\"memoryInMB\":1}]}",
        "{\"value\":[{\"name\":\"x\",\"numberOfCores\":-2,\"memoryInMB\":1}]}",
        "{\"value\":[{\"name\":\"a\",\"numberOfCores\":2,\"memoryInMB\":1}, 7]}",
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(bad); i++) {
        caa_error *e = NULL;
        if (az_parse_vm_sizes(S(bad[i]), &t, &n, &e) != -EPROTO)
            fail_msg("accepted %s", bad[i]);
        caa_error_free(e);
    }
}

static void test_operation(void **state)
{
    (void)state;
    az_op_status st;
    caa_error *oe = NULL;
    assert_int_equal(az_parse_operation(200, S("{\"status\":\"InProgress\"}"), &st, &oe, NULL), 0);
    assert_int_equal(st, AZ_OP_RUNNING);
    assert_int_equal(
        az_parse_operation(200, S("{\"status\":\"Succeeded\",\"endTime\":\"x\"}"), &st, &oe, NULL), 0);
    assert_int_equal(st, AZ_OP_SUCCEEDED);
    assert_null(oe);
    assert_int_equal(az_parse_operation(200, S("{\"status\":\"SomethingNew\"}"), &st, &oe, NULL), 0);
    assert_int_equal(st, AZ_OP_RUNNING);
    assert_int_equal(az_parse_operation(202, S(""), &st, &oe, NULL), 0);
    assert_int_equal(st, AZ_OP_RUNNING);
    assert_int_equal(az_parse_operation(200, S("  "), &st, &oe, NULL), 0);
    assert_int_equal(st, AZ_OP_SUCCEEDED);
    assert_int_equal(
        az_parse_operation(200,
                           S("{\"status\":\"Failed\",\"error\":{\"code\":\"OSProvisioningTimedOut\","
                             "\"message\":\"too slow\"}}"),
                           &st, &oe, NULL),
        0);
    assert_int_equal(st, AZ_OP_FAILED);
    assert_int_equal(oe->code, -EIO);
    assert_string_equal(caa_error_msg(oe), "operation failed: OSProvisioningTimedOut: too slow");
    caa_error_free(oe);
    assert_int_equal(az_parse_operation(200,
                                        S("{\"status\":\"Failed\",\"error\":{\"code\":\"AllocationFailed\","
                                          "\"message\":\"no capacity\"}}"),
                                        &st, &oe, NULL),
                     0);
    assert_int_equal(oe->code, -ENOSPC);
    caa_error_free(oe);
    assert_int_equal(az_parse_operation(200, S("{\"status\":\"Canceled\"}"), &st, &oe, NULL), 0);
    assert_int_equal(st, AZ_OP_CANCELED);
    assert_int_equal(oe->code, -ECANCELED);
    caa_error_free(oe);
    assert_int_equal(az_parse_provisioning(200, S("{\"properties\":{\"provisioningState\":\"Creating\"}}"),
                                           &st, &oe, NULL),
                     0);
    assert_int_equal(st, AZ_OP_RUNNING);
    assert_int_equal(az_parse_provisioning(200, S("{\"properties\":{\"provisioningState\":\"Succeeded\"}}"),
                                           &st, &oe, NULL),
                     0);
    assert_int_equal(st, AZ_OP_SUCCEEDED);
    static const char *const bad[] = {"{\"status\":5}", "[1]", "<html>", "{\"status\":"};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(bad); i++) {
        caa_error *e = NULL;
        if (az_parse_operation(200, S(bad[i]), &st, &oe, &e) != -EPROTO)
            fail_msg("accepted %s", bad[i]);
        caa_error_free(e);
    }
}

static void test_vm(void **state)
{
    (void)state;
    az_vm vm;
    const char *doc =
        "{\"id\":\"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/podvm-a\","
        "\"name\":\"podvm-a\",\"tags\":{\"caa-node\":\"n1\",\"caa-sandbox-id\":\"abc\",\"x\":\"y\"},"
        "\"properties\":{\"provisioningState\":\"Succeeded\",\"networkProfile\":{\"networkInterfaces\":["
        "{\"id\":\"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/"
        "second\"},"
        "{\"id\":\"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/first\","
        "\"properties\":{\"primary\":true}}]}}}";
    assert_int_equal(az_parse_vm(S(doc), &vm, NULL), 0);
    assert_string_equal(vm.name, "podvm-a");
    assert_string_equal(vm.tag_node, "n1");
    assert_string_equal(vm.tag_sandbox, "abc");
    assert_string_equal(vm.provisioning_state, "Succeeded");
    assert_non_null(strstr(vm.nic_ids[0], "/first"));
    assert_non_null(strstr(vm.nic_ids[1], "/second"));
    az_vm_done(&vm);
    assert_int_equal(az_parse_vm(S("{\"id\":\"/x\",\"name\":\"n\"}"), &vm, NULL), 0);
    assert_null(vm.nic_ids);
    assert_null(vm.tag_node);
    az_vm_done(&vm);
    static const char *const bad[] = {
        "{\"name\":\"n\"}",
        "{\"id\":\"/x\",\"name\":7}",
        "{\"id\":\"/x\",\"name\":\"n\",\"properties\":[]}",
        "{\"id\":\"/x\",\"name\":\"n\",\"tags\":\"t\"}",
        "{\"id\":\"/x\",\"name\":\"n\",\"properties\":{\"networkProfile\":{\"networkInterfaces\":{}}}}",
        "{\"id\":\"/x\",\"name\":\"n\",\"properties\":{\"networkProfile\":{\"networkInterfaces\":[{}]}}}",
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(bad); i++) {
        caa_error *e = NULL;
        if (az_parse_vm(S(bad[i]), &vm, &e) != -EPROTO)
            fail_msg("accepted %s", bad[i]);
        caa_error_free(e);
    }

    az_vm *vms = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(
        az_parse_vm_list(S("{\"value\":[{\"id\":\"/a\",\"name\":\"a\"},{\"id\":\"/b\",\"name\":\"b\"}],"
                           "\"nextLink\":\"https://management.azure.com/next\"}"),
                         &vms, &n, &next, NULL),
        0);
    assert_int_equal(n, 2);
    assert_string_equal(vms[1].name, "b");
    assert_string_equal(next, "https://management.azure.com/next");
    az_vm_list_free(vms, n);
    free(next);
    caa_error *e = NULL;
    assert_int_equal(
        az_parse_vm_list(S("{\"value\":[{\"id\":\"/a\",\"name\":\"a\"},{\"id\":3}]}"), &vms, &n, &next, &e),
        -EPROTO);
    assert_contains(caa_error_msg(e), "entry 1");
    caa_error_free(e);
    e = NULL;
    assert_int_equal(az_parse_vm_list(S("{\"value\":[],\"nextLink\":5}"), &vms, &n, &next, &e), -EPROTO);
    caa_error_free(e);
}

static void test_network(void **state)
{
    (void)state;
    char **priv = NULL, **pub = NULL;
    const char *nic = "{\"properties\":{\"ipConfigurations\":["
                      "{\"name\":\"b\",\"properties\":{\"privateIPAddress\":\"10.0.0.5\"}},"
                      "{\"name\":\"a\",\"properties\":{\"privateIPAddress\":\"10.0.0.4\",\"primary\":true,"
                      "\"publicIPAddress\":{\"id\":\"/subscriptions/s/x/publicIPAddresses/p\"}}},"
                      "{\"name\":\"v6\",\"properties\":{\"privateIPAddress\":\"fd00::4\"}}]}}";
    assert_int_equal(az_parse_nic(S(nic), &priv, &pub, NULL, NULL), 0);
    assert_string_equal(priv[0], "10.0.0.4");
    assert_string_equal(priv[1], "10.0.0.5");
    assert_string_equal(priv[2], "fd00::4");
    assert_string_equal(pub[0], "/subscriptions/s/x/publicIPAddresses/p");
    caa_strv_free(priv);
    caa_strv_free(pub);
    static const char *const bad[] = {
        "{}",
        "{\"properties\":{\"ipConfigurations\":{}}}",
        "{\"properties\":{\"ipConfigurations\":[{}]}}",
        "{\"properties\":{\"ipConfigurations\":[{\"properties\":{\"privateIPAddress\":\"300.1.1.1\"}}]}}",
        "{\"properties\":{\"ipConfigurations\":[{\"properties\":{\"privateIPAddress\":5}}]}}",
        "{\"properties\":{\"ipConfigurations\":[{\"properties\":{\"publicIPAddress\":{}}}]}}",
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(bad); i++) {
        caa_error *e = NULL;
        priv = pub = NULL;
        if (az_parse_nic(S(bad[i]), &priv, &pub, NULL, &e) != -EPROTO)
            fail_msg("accepted %s", bad[i]);
        assert_null(priv);
        caa_error_free(e);
    }
    char *ip = NULL;
    assert_int_equal(az_parse_public_ip(S("{\"properties\":{\"ipAddress\":\"20.1.2.3\"}}"), &ip, NULL), 0);
    assert_string_equal(ip, "20.1.2.3");
    free(ip);
    assert_int_equal(
        az_parse_public_ip(S("{\"properties\":{\"publicIPAllocationMethod\":\"Static\"}}"), &ip, NULL), 0);
    assert_null(ip);
    caa_error *e = NULL;
    assert_int_equal(az_parse_public_ip(S("{\"properties\":{\"ipAddress\":\"x\"}}"), &ip, &e), -EPROTO);
    caa_error_free(e);
}

static void test_hostile(void **state)
{
    (void)state;
    /* Deep nesting: jansson's depth limit turns it into a parse error. */
    size_t depth = 100000;
    char *deep = xmalloc(depth * 2 + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[depth * 2] = '\0';
    caa_instance_type *t;
    size_t n;
    caa_error *e = NULL;
    assert_int_equal(az_parse_vm_sizes(deep, depth * 2, &t, &n, &e), -EPROTO);
    assert_contains(caa_error_msg(e), "not JSON");
    caa_error_free(e);
    e = NULL;
    caa_error *oe = NULL;
    az_op_status st;
    assert_int_equal(az_parse_operation(200, deep, depth * 2, &st, &oe, &e), -EPROTO);
    caa_error_free(e);
    free(deep);
    /* Embedded NUL and invalid UTF-8. */
    static const char nul[] = "{\"access_token\":\"a\\u0000b\",\"expires_in\":5}";
    char *tok = NULL;
    int64_t exp;
    e = NULL;
    assert_int_equal(az_parse_token(S(nul), 0, &tok, &exp, &e), -EPROTO);
    caa_error_free(e);
    e = NULL;
    assert_int_equal(az_parse_vm_sizes("{\"value\":[\xff]}", 12, &t, &n, &e), -EPROTO);
    caa_error_free(e);
}

static void test_helpers(void **state)
{
    (void)state;
    assert_int_equal(az_parse_retry_after("5", 0), 5000);
    assert_int_equal(az_parse_retry_after(" 0 ", 0), 0);
    assert_int_equal(az_parse_retry_after("99999999", 0), 86400000);
    assert_int_equal(az_parse_retry_after(NULL, 0), -1);
    assert_int_equal(az_parse_retry_after("soon", 0), -1);
    assert_int_equal(az_parse_retry_after("5s", 0), -1);
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
    assert_int_equal(az_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470), 10000);
    assert_int_equal(az_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490), 0);
    _cleanup_free_ char *enc = az_url_encode("https://management.azure.com/.default a+b&c=d~");
    assert_string_equal(enc, "https%3A%2F%2Fmanagement.azure.com%2F.default%20a%2Bb%26c%3Dd~");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arm_errors), cmocka_unit_test(test_token),   cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_operation),  cmocka_unit_test(test_vm),      cmocka_unit_test(test_network),
        cmocka_unit_test(test_hostile),    cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
