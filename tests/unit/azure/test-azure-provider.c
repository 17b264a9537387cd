/* The Azure provider against the fake Azure endpoint (fake_arm.py): the
 * create / delete / list / get flows, long-running operations, retries,
 * token methods and refresh, error mapping, hostile answers, and that no VM
 * is left behind after a failure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "az-fake.h"
#include "cleanup.h"
#include "strv.h"
#include "xalloc.h"

static az_fake fake = {.stdin_fd = -1};
static uv_loop_t loop;

static int group_setup(void **state)
{
    (void)state;
    if (!az_fake_start(&fake, NULL)) {
        fprintf(stderr, "# python3 or fake_arm.py not available\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    az_fake_stop(&fake);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    az_fake_reset(&fake, NULL);
    assert_int_equal(uv_loop_init(&loop), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

#define FLAGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static caa_provider *provider(const char *const *extra)
{
    caa_error *err = NULL;
    caa_provider *p = az_test_provider(&loop, &fake, extra, &err);
    if (!p)
        fail_msg("provider init: %s", caa_error_msg(err));
    return p;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("\"%s\" does not contain \"%s\"", hay ? hay : "(null)", needle);
}

/* The happy path, with the request sequence of the official client. */
static void test_create_delete(void **state)
{
    (void)state;
    caa_provider *p = provider(FLAGS("-tags", "team=peerpods,env=test"));
    caa_instance_spec spec = az_test_spec(1);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    _cleanup_free_ char *id =
        xasprintf("/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/virtualMachines/%s",
                  spec.instance_name);
    assert_string_equal(r.inst->id, id);
    assert_string_equal(r.inst->name, spec.instance_name);
    assert_non_null(r.inst->ips);
    assert_true(strncmp(r.inst->ips[0], "127.0.1.", 8) == 0);
    assert_null(r.inst->ips[1]);
    az_result_done(&r);

    json_t *st = az_fake_state(&fake);
    json_t *vm = json_object_get(json_object_get(st, "vms"), spec.instance_name);
    assert_non_null(vm);
    json_t *tags = json_object_get(vm, "tags");
    assert_string_equal(json_string_value(json_object_get(tags, "caa-node")), "node-a");
    assert_string_equal(json_string_value(json_object_get(tags, "caa-sandbox-id")), spec.sandbox_id);
    assert_string_equal(json_string_value(json_object_get(tags, "team")), "peerpods");
    assert_string_equal(json_string_value(json_object_get(vm, "size")), "Standard_DC2as_v5");
    /* PUT (201 + Azure-AsyncOperation), GET operation, final GET, NIC. */
    json_t *log = json_object_get(st, "log");
    _cleanup_strv_ char **seq = NULL;
    json_t *e;
    size_t i;
    json_array_foreach(log, i, e)
    {
        const char *path = json_string_value(json_array_get(e, 1));
        if (strstr(path, "vmSizes") || strstr(path, "oauth2"))
            continue;
        const char *last = strrchr(path, '/');
        const char *kind = strstr(path, "/operations/")          ? "op"
                           : strstr(path, "/networkInterfaces/") ? "nic"
                           : strstr(path, "/virtualMachines/")   ? "vm"
                                                                 : last;
        _cleanup_free_ char *item = xasprintf("%s %s", json_string_value(json_array_get(e, 0)), kind);
        caa_strv_push(&seq, item);
    }
    _cleanup_free_ char *joined = caa_strv_join(seq, ",");
    assert_string_equal(joined, "PUT vm,GET op,GET vm,GET nic");
    /* The token was asked for ARM's audience. */
    json_t *scopes = json_object_get(json_object_get(st, "stats"), "scopes");
    _cleanup_free_ char *scope = xasprintf("%s/.default", fake.url);
    assert_string_equal(json_string_value(json_array_get(scopes, 0)), scope);
    json_decref(st);

    assert_int_equal(az_test_delete(&loop, p, id, &r), 0);
    az_result_done(&r);
    assert_int_equal(az_fake_vm_count(&fake), 0);
    /* Already gone: still success. */
    assert_int_equal(az_test_delete(&loop, p, id, &r), 0);
    az_result_done(&r);
    az_test_provider_free(&loop, p);
}

static void test_public_ip(void **state)
{
    (void)state;
    caa_provider *p = provider(FLAGS("-use-public-ip"));
    caa_instance_spec spec = az_test_spec(2);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    assert_true(strncmp(r.inst->ips[0], "127.0.2.", 8) == 0);
    assert_true(strncmp(r.inst->ips[1], "127.0.1.", 8) == 0);
    /* get_instance finds the same addresses. */
    _cleanup_free_ char *id = xstrdup(r.inst->id);
    _cleanup_strv_ char **ips = caa_strv_copy(r.inst->ips);
    az_result_done(&r);
    assert_int_equal(az_test_get(&loop, p, id, &r), 0);
    assert_string_equal(r.inst->ips[0], ips[0]);
    assert_string_equal(r.inst->ips[1], ips[1]);
    az_result_done(&r);
    assert_int_equal(az_fake_count(&fake, "GET", "/publicIPAddresses/"), 2);
    az_test_provider_free(&loop, p);
}

/* A failed or canceled operation: the VM Azure keeps in state Failed is
 * deleted (upstream leaks it), the ARM error is reported. */
static void test_lro_failed(void **state)
{
    (void)state;
    caa_provider *p = provider(NULL);
    az_fake_config(&fake, "{\"lro_result\": \"Failed\", \"lro_polls\": 2}");
    caa_instance_spec spec = az_test_spec(3);
    az_result r;
    assert_true(az_test_create(&loop, p, &spec, &r) < 0);
    assert_null(r.inst);
    assert_contains(caa_error_msg(r.err), "OSProvisioningTimedOut");
    assert_contains(caa_error_msg(r.err), spec.instance_name);
    az_result_done(&r);
    assert_int_equal(az_fake_count(&fake, "DELETE", spec.instance_name), 1);
    assert_int_equal(az_fake_vm_count(&fake), 0);

    az_fake_config(&fake, "{\"lro_result\": \"Canceled\", \"lro_polls\": 1}");
    spec = az_test_spec(4);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), -ECANCELED);
    assert_contains(caa_error_msg(r.err), "canceled");
    az_result_done(&r);
    assert_int_equal(az_fake_vm_count(&fake), 0);
    az_test_provider_free(&loop, p);
}

/* An operation that never ends stops at the create deadline; the VM goes. */
static void test_lro_never(void **state)
{
    (void)state;
    caa_provider *p = provider(FLAGS("-create-timeout", "800ms", "-poll-interval", "50ms"));
    az_fake_config(&fake, "{\"lro_result\": \"never\"}");
    caa_instance_spec spec = az_test_spec(5);
    az_result r;
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), -ETIMEDOUT);
    uint64_t took = uv_now(&loop) - t0;
    /* The deadline, not the 10 min default. */
    assert_true(took >= 750 && took < 10000);
    assert_contains(caa_error_msg(r.err), "did not finish");
    az_result_done(&r);
    assert_true(az_fake_count(&fake, "GET", "/operations/") >= 5);
    assert_int_equal(az_fake_vm_count(&fake), 0);
    az_test_provider_free(&loop, p);
}

/* Retry-After is honoured, capped by -retry-max-delay, and 0 means at once.
 * The bounds are loose (loaded CI machines) but far from the wrong results. */
static void test_retry_after(void **state)
{
    (void)state;
    az_result r;
    /* Two waits of 1 s. */
    caa_provider *p = provider(FLAGS("-retry-max-delay", "5s"));
    az_fake_config(&fake, "{\"retry_after\": \"1\", \"lro_polls\": 2}");
    caa_instance_spec spec = az_test_spec(6);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    assert_true(uv_now(&loop) - t0 >= 1950);
    az_result_done(&r);
    az_test_provider_free(&loop, p);

    /* 30 s asked, 200 ms allowed: uncapped this would take a minute. */
    p = provider(FLAGS("-retry-max-delay", "200ms"));
    az_fake_config(&fake, "{\"retry_after\": \"30\", \"lro_polls\": 2}");
    spec = az_test_spec(8);
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    assert_true(uv_now(&loop) - t0 < 15000);
    az_result_done(&r);
    az_test_provider_free(&loop, p);

    /* Retry-After 0 wins over a 10 s default interval (3 polls: 30 s). */
    p = provider(FLAGS("-retry-max-delay", "20s", "-poll-interval", "10s"));
    az_fake_config(&fake, "{\"retry_after\": \"0\", \"lro_polls\": 3}");
    spec = az_test_spec(7);
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    assert_true(uv_now(&loop) - t0 < 15000);
    az_result_done(&r);
    az_test_provider_free(&loop, p);
}

/* Without Retry-After, polls follow -poll-interval-fast while ARM's answers
 * say the subscription has reads to spare (x-ms-ratelimit-remaining-
 * subscription-reads >= 200), and -poll-interval once its read bucket runs
 * low. The first poll follows the PUT, whose answer counts writes: slow. */
static void test_fast_poll(void **state)
{
    (void)state;
    az_result r;
    caa_provider *p =
        provider(FLAGS("-poll-interval", "1s", "-poll-interval-fast", "50ms", "-retry-max-delay", "5s"));
    az_fake_config(&fake, "{\"lro_polls\": 4}");
    caa_instance_spec spec = az_test_spec(21);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    uint64_t fast = uv_now(&loop) - t0;
    az_result_done(&r);
    /* One slow wait and three fast ones: about 1.15 s; all slow would be 4 s. */
    if (!(fast >= 950 && fast < 2800))
        fail_msg("fast polls took %llu ms", (unsigned long long)fast);

    /* 100 reads in the bucket: fewer than 200 to spare, every wait is 1 s. */
    az_fake_config(&fake, "{\"rate_limit\": {\"reads\": {\"bucket\": 100, \"refill_per_s\": 100}}}");
    spec = az_test_spec(22);
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    assert_true(uv_now(&loop) - t0 >= 3900);
    az_result_done(&r);
    az_fake_config(&fake, "{\"rate_limit\": {}}");
    az_test_provider_free(&loop, p);
}

/* The other ways ARM announces an operation. */
static void test_lro_modes(void **state)
{
    (void)state;
    static const char *const modes[] = {"location", "operation-location", "none"};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(modes); i++) {
        caa_provider *p = provider(NULL);
        az_fake_reset(&fake, NULL);
        az_fake_config(&fake, "{\"lro_header\": \"%s\", \"lro_polls\": 2}", modes[i]);
        caa_instance_spec spec = az_test_spec(10 + (int)i);
        az_result r;
        if (az_test_create(&loop, p, &spec, &r) != 0)
            fail_msg("mode %s: %s", modes[i], caa_error_msg(r.err));
        _cleanup_free_ char *id = xstrdup(r.inst->id);
        az_result_done(&r);
        assert_int_equal(az_test_delete(&loop, p, id, &r), 0);
        az_result_done(&r);
        assert_int_equal(az_fake_vm_count(&fake), 0);
        az_fake_config(&fake, "{\"lro_result\": \"Failed\"}");
        spec = az_test_spec(20 + (int)i);
        assert_true(az_test_create(&loop, p, &spec, &r) < 0);
        az_result_done(&r);
        assert_int_equal(az_fake_vm_count(&fake), 0);
        az_test_provider_free(&loop, p);
    }
}

/* 429 and 5xx storms: retried with Retry-After; past -max-retries the
 * error names the code and nothing is left. */
static void test_throttling(void **state)
{
    (void)state;
    caa_provider *p = provider(FLAGS("-max-retries", "6"));
    caa_instance_spec spec = az_test_spec(30);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0); /* warm up the token */
    az_result_done(&r);
    az_fake_config(&fake, "{\"throttle\": 5}");
    spec = az_test_spec(31);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    az_fake_config(&fake, "{\"throttle\": 3, \"throttle_status\": 503}");
    spec = az_test_spec(32);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    assert_int_equal(az_fake_vm_count(&fake), 3);

    az_fake_config(&fake, "{\"throttle\": 1000, \"throttle_status\": 429}");
    spec = az_test_spec(33);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), -EAGAIN);
    assert_contains(caa_error_msg(r.err), "TooManyRequests");
    assert_contains(caa_error_msg(r.err), "after 6 retries");
    az_result_done(&r);
    az_fake_config(&fake, "{\"throttle\": 0}");
    assert_int_equal(az_fake_vm_count(&fake), 3);
    az_test_provider_free(&loop, p);
}

static void test_quota_and_sku(void **state)
{
    (void)state;
    caa_provider *p = provider(NULL);
    az_fake_config(&fake, "{\"put_error\": {\"status\": 409, \"code\": \"OperationNotAllowed\", \"message\": "
                          "\"Operation could not be completed as it results in exceeding approved "
                          "standardDCASv5Family Cores quota.\"}}");
    caa_instance_spec spec = az_test_spec(40);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), -EDQUOT);
    assert_contains(caa_error_msg(r.err), "quota exceeded");
    assert_contains(caa_error_msg(r.err), "OperationNotAllowed");
    az_result_done(&r);
    az_fake_config(&fake, "{\"put_error\": null, \"sku_unavailable\": [\"Standard_DC2as_v5\"]}");
    assert_int_equal(az_test_create(&loop, p, &spec, &r), -ENOSPC);
    assert_contains(caa_error_msg(r.err), "SkuNotAvailable");
    assert_contains(caa_error_msg(r.err), "not available");
    az_result_done(&r);
    assert_int_equal(az_fake_vm_count(&fake), 0);
    /* A definite rejection created nothing: no DELETE. */
    assert_int_equal(az_fake_count(&fake, "DELETE", "virtualMachines"), 0);
    az_test_provider_free(&loop, p);
}

static void test_bad_secret(void **state)
{
    (void)state;
    caa_provider *p = provider(FLAGS("-secret", "wrong-secret-8c1f"));
    caa_instance_spec spec = az_test_spec(50);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), -EACCES);
    assert_contains(caa_error_msg(r.err), "invalid_client");
    assert_contains(caa_error_msg(r.err), "client secret");
    assert_null(strstr(caa_error_msg(r.err), "wrong-secret-8c1f"));
    az_result_done(&r);
    assert_int_equal(az_fake_stat(&fake, "arm_requests"), 0);
    az_test_provider_free(&loop, p);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Workload identity: the federated token file is read for every token
 * (rotation), as the client assertion. */
static void test_workload_identity(void **state)
{
    (void)state;
    char path[] = "/tmp/caa-az-fed-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "federated-jwt-value\n");
    caa_provider *p = provider(FLAGS("-secret", "", "-federated-token-file", path));
    caa_instance_spec spec = az_test_spec(60);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    /* Rotation: new file content, old tokens revoked. */
    write_file(path, "federated-jwt-rotated");
    az_fake_config(&fake, "{\"federated_token\": \"federated-jwt-rotated\"}");
    json_t *j = az_fake_call(&fake, "POST", "/_fake/expire-tokens", NULL);
    json_decref(j);
    spec = az_test_spec(61);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    assert_int_equal(az_fake_stat(&fake, "token_requests"), 2);
    /* A wrong assertion is an auth error. */
    write_file(path, "not-the-right-one");
    j = az_fake_call(&fake, "POST", "/_fake/expire-tokens", NULL);
    json_decref(j);
    spec = az_test_spec(62);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), -EACCES);
    assert_contains(caa_error_msg(r.err), "workload identity");
    az_result_done(&r);
    /* A FIFO as the token file: refused at once, never a hang on the loop. */
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    j = az_fake_call(&fake, "POST", "/_fake/expire-tokens", NULL);
    json_decref(j);
    spec = az_test_spec(63);
    alarm(20);
    assert_true(az_test_create(&loop, p, &spec, &r) < 0);
    alarm(0);
    assert_contains(caa_error_msg(r.err), "not a regular file");
    az_result_done(&r);
    az_test_provider_free(&loop, p);
    unlink(path);
    assert_int_equal(az_fake_vm_count(&fake), 2);
}

/* Managed identity through IMDS (no secret, no token file). */
static void test_managed_identity(void **state)
{
    (void)state;
    az_fake_config(&fake, "{\"imds_client_id\": \"mi-client-7\"}");
    caa_provider *p = provider(FLAGS("-secret", "", "-clientid", "mi-client-7", "-tenantid", ""));
    caa_instance_spec spec = az_test_spec(70);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    assert_int_equal(az_fake_stat(&fake, "imds_requests"), 1);
    assert_int_equal(az_fake_stat(&fake, "token_requests"), 0);
    json_t *st = az_fake_state(&fake);
    _cleanup_free_ char *res = xasprintf("%s/", fake.url);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_object_get(st, "stats"), "imds_resources"), 0)),
        res);
    json_decref(st);
    az_test_provider_free(&loop, p);

    /* IMDS hiccups (5xx) are retried. */
    az_fake_config(&fake, "{\"token_fail\": 2, \"token_fail_status\": 503}");
    p = provider(FLAGS("-secret", "", "-clientid", "mi-client-7", "-tenantid", ""));
    spec = az_test_spec(71);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    az_test_provider_free(&loop, p);
}

/* Many calls without a token wait on one request; a token near its end is
 * refreshed in the background; a revoked token is replaced after a 401. */
static void test_token_refresh(void **state)
{
    (void)state;
    az_fake_config(&fake, "{\"token_lifetime\": 4, \"token_lifetime_as_string\": true, \"latency_ms\": 50}");
    caa_provider *p = provider(NULL);
    az_result rs[20];
    caa_instance_spec specs[20];
    for (int i = 0; i < 20; i++) {
        specs[i] = az_test_spec(80 + i);
        rs[i] = (az_result){0};
        assert_int_equal(caa_provider_create_instance(p, &specs[i], az_create_cb, &rs[i], NULL), 0);
    }
    for (int i = 0; i < 20; i++) {
        az_run_until(&loop, &rs[i].done);
        assert_int_equal(rs[i].status, 0);
        az_result_done(&rs[i]);
    }
    assert_int_equal(az_fake_stat(&fake, "token_requests"), 1);
    /* Past half the lifetime: the next call still goes at once, and a
     * refresh runs beside it. */
    az_run_for(&loop, 2300);
    caa_instance_spec spec = az_test_spec(100);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    assert_int_equal(az_fake_stat(&fake, "token_requests"), 2);
    /* Revoked on the server: 401, new token, same call succeeds. */
    json_t *j = az_fake_call(&fake, "POST", "/_fake/expire-tokens", NULL);
    json_decref(j);
    spec = az_test_spec(101);
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    assert_int_equal(az_fake_stat(&fake, "token_requests"), 3);
    az_test_provider_free(&loop, p);
}

/* Hostile answers end in clear errors and the VM is deleted. */
static void test_hostile(void **state)
{
    (void)state;
    caa_provider *p = provider(NULL);
    struct {
        const char *config;
        int code;
        const char *text;
    } cases[] = {
        {"{\"hostile\": {\"match\": \"networkInterfaces\", \"body\": {\"prefix\": \"\", \"repeat\": \"[\", "
         "\"times\": 200000}}}",
         -EPROTO, "not JSON"},
        {"{\"hostile\": {\"match\": \"networkInterfaces\", \"body\": {\"prefix\": \"{\\\"a\\\": \\\"\", "
         "\"repeat\": "
         "\"xxxxxxxxxxxxxxxx\", \"times\": 600000, \"suffix\": \"\\\"}\"}}}",
         -EMSGSIZE, "larger than"},
        {"{\"hostile\": {\"match\": \"networkInterfaces\", \"body\": \"{\\\"properties\\\": "
         "{\\\"ipConfigurations\\\": "
         "\\\"x\\\"}}\"}}",
         -EPROTO, "ipConfigurations"},
        {"{\"hostile\": {\"match\": \"networkInterfaces\", \"body\": \"{\\\"properties\\\": "
         "{\\\"ipConfigurations\\\": "
         "[{\\\"properties\\\": {\\\"privateIPAddress\\\": \\\"10.0.0.1; rm -rf /\\\"}}]}}\"}}",
         -EPROTO, "not an IP address"},
        {"{\"hostile\": {\"match\": \"/operations/\", \"body\": \"{\\\"status\\\": 42}\"}}", -EPROTO,
         "not a string"},
        {"{\"hostile\": {\"match\": \"/operations/\", \"body\": \"<html>gateway</html>\"}}", -EPROTO,
         "not JSON"},
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(cases); i++) {
        az_fake_config(&fake, "%s", cases[i].config);
        caa_instance_spec spec = az_test_spec(110 + (int)i);
        az_result r;
        int rc = az_test_create(&loop, p, &spec, &r);
        if (rc != cases[i].code || !strstr(caa_error_msg(r.err), cases[i].text))
            fail_msg("case %zu: %d %s", i, rc, caa_error_msg(r.err));
        assert_null(r.inst);
        az_result_done(&r);
        assert_int_equal(az_fake_vm_count(&fake), 0);
    }
    /* A polling URL pointing elsewhere never gets our token. */
    az_fake_config(&fake,
                   "{\"hostile\": {\"match\": \"virtualMachines/podvm-test-120\", \"status\": 201, \"body\": "
                   "\"{}\", \"headers\": {\"Azure-AsyncOperation\": \"https://evil.example/op\"}}}");
    caa_instance_spec spec = az_test_spec(120);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), -EPROTO);
    assert_contains(caa_error_msg(r.err), "polling URL outside");
    az_result_done(&r);
    az_test_provider_free(&loop, p);
}

static void test_list_and_get(void **state)
{
    (void)state;
    caa_provider *p = provider(NULL);
    caa_provider *other = provider(FLAGS("-node-name", "node-b"));
    az_fake_config(&fake, "{\"page_size\": 1}");
    az_result r;
    for (int i = 0; i < 3; i++) {
        caa_instance_spec spec = az_test_spec(130 + i);
        assert_int_equal(az_test_create(&loop, i == 2 ? other : p, &spec, &r), 0);
        az_result_done(&r);
    }
    assert_int_equal(az_test_list(&loop, p, &r), 0);
    assert_int_equal(caa_strv_len((char **)r.list), 2);
    assert_non_null(strstr(r.list[0]->name, "podvm-test-13"));
    assert_null(r.list[0]->ips);
    _cleanup_free_ char *id = xstrdup(r.list[0]->id);
    az_result_done(&r);
    /* Three final GETs of the creates, three list pages (page_size 1). */
    assert_int_equal(az_fake_count(&fake, "GET", "rg-1/providers/Microsoft.Compute/virtualMachines"), 3 + 3);
    assert_int_equal(az_test_get(&loop, p, id, &r), 0);
    assert_string_equal(r.inst->id, id);
    assert_non_null(r.inst->ips);
    az_result_done(&r);
    _cleanup_free_ char *gone = xstrdup(
        "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/virtualMachines/podvm-gone");
    assert_int_equal(az_test_get(&loop, p, gone, &r), -ENOENT);
    az_result_done(&r);
    /* Ids that are not VM ids fail at once. */
    assert_int_equal(
        az_test_get(&loop, p, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/x/y", &r),
        -EINVAL);
    az_result_done(&r);
    assert_int_equal(az_test_delete(&loop, p, "podvm-1?api-version=x", &r), -EINVAL);
    az_result_done(&r);
    az_test_provider_free(&loop, other);
    az_test_provider_free(&loop, p);
}

/* A listing follows every page: 250 pages of one VM (more than the 100 pages
 * it once stopped at), this node's VMs only. */
static void test_list_many_pages(void **state)
{
    (void)state;
    caa_provider *p = provider(NULL);
    az_fake_config(&fake, "{\"page_size\": 1}");
    json_decref(az_fake_call(&fake, "POST", "/_fake/plant",
                             "{\"count\": 240, \"tags\": {\"caa-node\": \"node-a\"}, "
                             "\"sandbox_tag\": \"caa-sandbox-id\"}"));
    json_decref(az_fake_call(&fake, "POST", "/_fake/plant",
                             "{\"count\": 10, \"prefix\": \"podvm-elsewhere-\", \"tags\": {\"caa-node\": "
                             "\"node-b\"}, \"sandbox_tag\": \"caa-sandbox-id\"}"));
    az_result r;
    assert_int_equal(az_test_list(&loop, p, &r), 0);
    assert_int_equal(caa_strv_len((char **)r.list), 240);
    for (size_t i = 0; r.list[i]; i++)
        assert_non_null(strstr(r.list[i]->name, "podvm-orphan-"));
    az_result_done(&r);
    assert_int_equal(az_fake_count(&fake, "GET", "rg-1/providers/Microsoft.Compute/virtualMachines"), 250);
    az_test_provider_free(&loop, p);
}

/* A create retried for the same sandbox adopts the VM it made first. */
static void test_adopt(void **state)
{
    (void)state;
    caa_provider *p = provider(NULL);
    caa_instance_spec spec = az_test_spec(140);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    _cleanup_free_ char *ip = xstrdup(r.inst->ips[0]);
    az_result_done(&r);
    /* A new per-VM key: ARM refuses the change (409), the VM is ours. */
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    assert_string_equal(r.inst->ips[0], ip);
    az_result_done(&r);
    assert_int_equal(az_fake_vm_count(&fake), 1);
    /* Another sandbox's VM of that name is not touched. */
    caa_instance_spec other = spec;
    other.sandbox_id = "ffffffff0000111122223333444455556666777788889999aaaabbbbcccc";
    assert_int_equal(az_test_create(&loop, p, &other, &r), -EIO);
    assert_contains(caa_error_msg(r.err), "PropertyChangeNotAllowed");
    az_result_done(&r);
    assert_int_equal(az_fake_vm_count(&fake), 1);
    assert_int_equal(az_fake_count(&fake, "DELETE", "virtualMachines"), 0);
    az_test_provider_free(&loop, p);
}

static void test_sizes(void **state)
{
    (void)state;
    caa_provider *p =
        provider(FLAGS("-instance-sizes", "Standard_DC4as_v5,Standard_DC8as_v5,Standard_NotInRegion"));
    caa_instance_spec spec = az_test_spec(150);
    spec.vcpus = 3;
    spec.memory_mib = 12000;
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    json_t *st = az_fake_state(&fake);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(st, "vms"), spec.instance_name), "size")),
                        "Standard_DC4as_v5");
    json_decref(st);
    spec = az_test_spec(151);
    spec.vcpus = 64;
    spec.memory_mib = 1024;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), -EINVAL);
    assert_contains(caa_error_msg(r.err), "no instance type found");
    az_result_done(&r);
    spec = az_test_spec(152);
    spec.instance_type = "Standard_D2as_v5";
    assert_int_equal(az_test_create(&loop, p, &spec, &r), -EINVAL);
    assert_contains(caa_error_msg(r.err), "not part of supported instance types list");
    az_result_done(&r);
    assert_int_equal(az_fake_count(&fake, "GET", "vmSizes"), 1);
    az_test_provider_free(&loop, p);
}

static void test_userdata_limit(void **state)
{
    (void)state;
    caa_provider *p = provider(NULL);
    caa_instance_spec spec = az_test_spec(160);
    _cleanup_free_ char *big = xmalloc(49153);
    memset(big, 'a', 49153);
    spec.user_data = big;
    spec.user_data_len = 49153; /* 65540 bytes of base64 */
    caa_error *err = NULL;
    assert_int_equal(caa_provider_validate_spec(p, &spec, &err), -EINVAL);
    assert_contains(caa_error_msg(err), "64 KiB");
    caa_error_free(err);
    spec.user_data_len = 49152; /* exactly 64 KiB of base64 */
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    az_test_provider_free(&loop, p);
}

/* Teardown with a create in flight: one callback, -ECANCELED, and the id of
 * the VM that may exist; the loop closes cleanly. */
static void test_teardown_in_flight(void **state)
{
    (void)state;
    caa_provider *p = provider(NULL);
    az_fake_config(&fake, "{\"lro_result\": \"never\"}");
    caa_instance_spec spec = az_test_spec(170);
    az_result r = {0};
    assert_int_equal(caa_provider_create_instance(p, &spec, az_create_cb, &r, NULL), 0);
    az_run_for(&loop, 200);
    assert_false(r.done);
    caa_provider_free(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(r.done);
    assert_int_equal(r.status, -ECANCELED);
    assert_non_null(r.inst);
    assert_non_null(strstr(r.inst->id, spec.instance_name));
    az_result_done(&r);
}

/* The caller's cancel (StopVM during StartVM): a create waiting for the size
 * list ends without a VM while another waiter goes on; one in a never-ending
 * operation ends at once with the VM's id (deleted then). */
static void test_cancel_in_flight(void **state)
{
    (void)state;
    caa_provider *p = provider(NULL); /* its size list is on its way */
    caa_instance_spec sized = az_test_spec(176), kept = az_test_spec(177);
    sized.vcpus = kept.vcpus = 2;
    sized.memory_mib = kept.memory_mib = 8192;
    az_result r = {0}, other = {0}, d;
    assert_int_equal(caa_provider_create_instance(p, &sized, az_create_cb, &r, NULL), 0);
    assert_int_equal(caa_provider_create_instance(p, &kept, az_create_cb, &other, NULL), 0);
    assert_int_equal(caa_provider_cancel(p, &r), 0);
    assert_false(r.done); /* never inside the cancel */
    for (int i = 0; i < 100 && !other.done; i++)
        az_run_for(&loop, 50);
    assert_true(r.done && other.done);
    assert_int_equal(r.status, -ECANCELED);
    assert_null(r.inst); /* nothing was sent */
    assert_int_equal(other.status, 0);
    assert_int_equal(az_fake_vm_count(&fake), 1);
    assert_int_equal(az_test_delete(&loop, p, other.inst->id, &d), 0);
    az_result_done(&d);
    az_result_done(&r);
    az_result_done(&other);

    az_fake_config(&fake, "{\"lro_result\": \"never\"}");
    caa_instance_spec spec = az_test_spec(175);
    r = (az_result){0};
    other = (az_result){0};
    assert_int_equal(caa_provider_create_instance(p, &spec, az_create_cb, &r, NULL), 0);
    az_run_for(&loop, 300);
    assert_false(r.done);
    assert_int_equal(caa_provider_cancel(p, &other), 0); /* another caller's: nothing */
    assert_int_equal(caa_provider_cancel(p, &r), 0);
    az_run_for(&loop, 200);
    assert_true(r.done);
    assert_int_equal(r.status, -ECANCELED);
    assert_non_null(r.inst);
    assert_non_null(strstr(r.inst->id, spec.instance_name));
    assert_int_equal(az_test_delete(&loop, p, r.inst->id, &d), 0);
    az_result_done(&d);
    az_result_done(&r);
    assert_int_equal(az_fake_vm_count(&fake), 0);
    az_test_provider_free(&loop, p);
}

/* -max-requests bounds the requests in flight. */
/* n creates started in one go (seeds first..first+n-1); all must succeed. */
static void create_at_once(caa_provider *p, int first, int n)
{
    az_result *rs = xnew0(az_result, (size_t)n);
    caa_instance_spec *specs = xnew0(caa_instance_spec, (size_t)n);
    for (int i = 0; i < n; i++) {
        specs[i] = az_test_spec(first + i);
        assert_int_equal(caa_provider_create_instance(p, &specs[i], az_create_cb, &rs[i], NULL), 0);
    }
    for (int i = 0; i < n; i++) {
        az_run_until(&loop, &rs[i].done);
        assert_int_equal(rs[i].status, 0);
        az_result_done(&rs[i]);
    }
    free(specs);
    free(rs);
}

static void test_request_cap(void **state)
{
    (void)state;
    caa_provider *p = provider(FLAGS("-max-requests", "3"));
    az_fake_config(&fake, "{\"latency_ms\": 30}");
    create_at_once(p, 180, 12);
    long max = az_fake_stat(&fake, "max_in_flight");
    assert_true(max >= 2 && max <= 3);
    az_test_provider_free(&loop, p);
}

/* ARM's token buckets (a storm larger than the bucket): every 429 names its
 * wait (Retry-After >= 1 s), which is waited out without using up one of
 * the -max-retries, so all pods are created, each VM once. */
static void test_rate_limit_storm(void **state)
{
    (void)state;
    caa_provider *p = provider(FLAGS("-max-retries", "1"));
    az_fake_config(&fake, "{\"rate_limit\": {\"reads\": {\"bucket\": 4, \"refill_per_s\": 8}, "
                          "\"writes\": {\"bucket\": 4, \"refill_per_s\": 8}}}");
    create_at_once(p, 200, 8);
    assert_true(az_fake_stat(&fake, "rate_limited") > 0);
    assert_int_equal(az_fake_vm_count(&fake), 8);
    az_fake_config(&fake, "{\"rate_limit\": {}}");
    az_test_provider_free(&loop, p);
}

static void test_rsa_key(void **state)
{
    (void)state;
    caa_provider *p = provider(FLAGS("-ssh-key-type", "rsa"));
    caa_instance_spec spec = az_test_spec(190);
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    az_result_done(&r);
    json_t *st = az_fake_state(&fake);
    json_t *put = json_array_get(json_object_get(st, "puts"), 0);
    json_t *linux_cfg = json_object_get(json_object_get(json_object_get(put, "properties"), "osProfile"),
                                        "linuxConfiguration");
    json_t *keys = json_object_get(json_object_get(linux_cfg, "ssh"), "publicKeys");
    const char *key = json_string_value(json_object_get(json_array_get(keys, 0), "keyData"));
    assert_non_null(key);
    assert_true(strncmp(key, "ssh-rsa AAAAB3NzaC1yc2E", 23) == 0);
    assert_true(strlen(key) > 700);
    json_decref(st);
    az_test_provider_free(&loop, p);
}

#define EXT_SUBNET                                                                                           \
    "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/virtualNetworks/vnet/subnets/ext"

static json_t *put_nic(json_t *put, size_t i)
{
    json_t *np = json_object_get(json_object_get(put, "properties"), "networkProfile");
    return json_array_get(json_object_get(np, "networkInterfaceConfigurations"), i);
}

static const char *nic_str(json_t *nic, const char *ip_key)
{
    json_t *ipc = json_object_get(
        json_array_get(json_object_get(json_object_get(nic, "properties"), "ipConfigurations"), 0),
        "properties");
    json_t *v = json_object_get(ipc, ip_key);
    return json_is_object(v) ? json_string_value(json_object_get(v, strcmp(ip_key, "subnet") ? "name" : "id"))
                             : NULL;
}

/* external-net-via-pod-vm (upstream's MultiNic, Azure provider at
 * 79e1fb63608e): both NICs in the VM PUT, the secondary one on
 * -secondary-subnetid with the public IP; the primary NIC's address first
 * even when ARM lists the NICs the other way round. */
static void test_multi_nic(void **state)
{
    (void)state;
    az_fake_config(&fake, "{\"nics_reversed\": true}");
    caa_provider *p = provider(FLAGS("-use-public-ip", "-secondary-subnetid", EXT_SUBNET));
    caa_instance_spec spec = az_test_spec(200);
    spec.multi_nic = true;
    az_result r;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    if (!r.inst)
        fail_msg("create: %s", caa_error_msg(r.err));
    json_t *st = az_fake_state(&fake);
    json_t *put = json_array_get(json_object_get(st, "puts"), 0);
    json_t *net = put_nic(put, 0), *ext = put_nic(put, 1);
    assert_null(put_nic(put, 2));
    _cleanup_free_ char *net_name = xasprintf("%s-net", spec.instance_name);
    _cleanup_free_ char *ext_name = xasprintf("%s-ext", spec.instance_name);
    assert_string_equal(json_string_value(json_object_get(net, "name")), net_name);
    assert_true(json_is_true(json_object_get(json_object_get(net, "properties"), "primary")));
    assert_non_null(strstr(nic_str(net, "subnet"), "/subnets/default"));
    assert_null(nic_str(net, "publicIPAddressConfiguration")); /* the tunnel NIC stays private */
    assert_string_equal(json_string_value(json_object_get(ext, "name")), ext_name);
    assert_true(json_is_false(json_object_get(json_object_get(ext, "properties"), "primary")));
    assert_string_equal(nic_str(ext, "subnet"), EXT_SUBNET);
    assert_string_equal(nic_str(ext, "publicIPAddressConfiguration"), ext_name);
    /* The fake made both NICs; ips: the public IP, then the primary NIC's address. */
    json_t *nics = json_object_get(json_object_get(json_object_get(st, "vms"), spec.instance_name), "nics");
    assert_int_equal(json_array_size(nics), 2);
    const char *net_ip = json_string_value(json_object_get(json_array_get(nics, 0), "private_ip"));
    const char *ext_ip = json_string_value(json_object_get(json_array_get(nics, 1), "private_ip"));
    const char *pub_ip = json_string_value(json_object_get(json_array_get(nics, 1), "public_ip"));
    assert_string_equal(r.inst->ips[0], pub_ip);
    assert_string_equal(r.inst->ips[1], net_ip);
    assert_string_equal(r.inst->ips[2], ext_ip);
    assert_null(r.inst->ips[3]);
    json_decref(st);
    az_result_done(&r);

    /* Without public IP: the primary NIC's address is ips[0]. */
    az_test_provider_free(&loop, p);
    p = provider(FLAGS("-secondary-subnetid", EXT_SUBNET));
    spec = az_test_spec(201);
    spec.multi_nic = true;
    assert_int_equal(az_test_create(&loop, p, &spec, &r), 0);
    st = az_fake_state(&fake);
    nics = json_object_get(json_object_get(json_object_get(st, "vms"), spec.instance_name), "nics");
    assert_string_equal(r.inst->ips[0],
                        json_string_value(json_object_get(json_array_get(nics, 0), "private_ip")));
    assert_null(
        nic_str(put_nic(json_array_get(json_object_get(st, "puts"), 1), 1), "publicIPAddressConfiguration"));
    json_decref(st);
    az_result_done(&r);
    az_test_provider_free(&loop, p);

    /* No secondary subnet configured: refused before any cloud call, as upstream
     * (the provider is freed with its VM size listing still in flight). */
    p = provider(NULL);
    spec = az_test_spec(202);
    spec.multi_nic = true;
    caa_error *err = NULL;
    assert_int_equal(caa_provider_validate_spec(p, &spec, &err), -EINVAL);
    assert_contains(caa_error_msg(err), "AZURE_SECONDARY_SUBNET_ID");
    caa_error_free(err);
    az_test_provider_free(&loop, p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_nic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lro_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lro_never, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lro_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_and_sku, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workload_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_managed_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_many_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_userdata_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_teardown_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_storm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rsa_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
