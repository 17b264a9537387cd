/* GetInfo through the pod observer: a real ttRPC client on the fixture
 * manager's socket asks for a pod's VM id and waits; the lifecycle records
 * the instance (the scripted create answers) and the waiter's observer
 * answers. No sleep: the loop runs until the answer arrives. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lifecycle-fixture.h"
#include "podvminfo.pb-c.h"
#include "services.h"
#include "ttrpc.h"
#include "xalloc.h"

typedef struct client_ctx {
    ttrpc_client *client;
    bool connected;
    bool answered;
    int status;
    int grpc_code;
    char vmid[64];
    char message[256];
} client_ctx;

static void run_until(fx *f, const bool *flag)
{
    for (int i = 0; i < 1000 && !*flag; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(*flag);
}

static void on_connected(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    client_ctx *cc = opaque;
    if (status < 0)
        fail_msg("connect: %s", caa_error_msg(err));
    cc->client = c;
    cc->connected = true;
}

static void on_response(const ttrpc_result *res, void *opaque)
{
    client_ctx *cc = opaque;
    cc->answered = true;
    cc->status = res->status;
    cc->grpc_code = res->grpc_code;
    snprintf(cc->message, sizeof(cc->message), "%s", res->message ? res->message : "");
    if (res->status == 0 && res->grpc_code == 0) {
        Podvminfo__GetInfoResponse *r =
            podvminfo__get_info_response__unpack(NULL, res->payload_len, res->payload);
        assert_non_null(r);
        snprintf(cc->vmid, sizeof(cc->vmid), "%s", r->vmid);
        podvminfo__get_info_response__free_unpacked(r, NULL);
    }
}

static void connect_client(fx *f, client_ctx *cc)
{
    caa_error *err = NULL;
    if (ttrpc_client_connect_unix(&f->loop, f->cfg.socket_path, on_connected, cc, &err) < 0)
        fail_msg("connect: %s", caa_error_msg(err));
    run_until(f, &cc->connected);
}

static void get_info(client_ctx *cc, const char *name, const char *ns, bool wait)
{
    Podvminfo__GetInfoRequest req = PODVMINFO__GET_INFO_REQUEST__INIT;
    req.podname = (char *)name;
    req.podnamespace = (char *)ns;
    req.wait = wait;
    size_t len = podvminfo__get_info_request__get_packed_size(&req);
    uint8_t *buf = xmalloc(len + 1);
    podvminfo__get_info_request__pack(&req, buf);
    caa_error *err = NULL;
    cc->answered = false;
    if (ttrpc_client_call(cc->client, CAA_PODVMINFO_SERVICE, "GetInfo", buf, len, 0, NULL, 0, on_response, cc,
                          &err) < 0)
        fail_msg("call: %s", caa_error_msg(err));
    free(buf);
}

static void close_client(fx *f, client_ctx *cc)
{
    ttrpc_client_close(cc->client);
    fx_drain(f);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void test_wait_answered_when_instance_recorded(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    client_ctx cc = {0};
    connect_client(f, &cc);
    get_info(&cc, caa_pod_name(pod), "default", true);
    /* The waiter is registered (the server handled the call) and nothing answers it yet. */
    for (int i = 0; i < 1000 && caa_list_empty(&f->m.waiters); i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_false(caa_list_empty(&f->m.waiters));
    assert_false(cc.answered);

    scripted_create_ok(f->sp, "i-42", FX_IP); /* instance_changed -> the waiter's observer */
    run_until(f, &cc.answered);
    assert_int_equal(cc.status, 0);
    assert_int_equal(cc.grpc_code, 0);
    assert_string_equal(cc.vmid, "i-42");
    assert_true(caa_list_empty(&f->m.waiters));

    /* Known now: answered at once, also without waiting. */
    get_info(&cc, caa_pod_name(pod), "default", false);
    run_until(f, &cc.answered);
    assert_string_equal(cc.vmid, "i-42");
    close_client(f, &cc);
}

static void test_unknown_pod(void **state)
{
    fx *f = *state;
    fx_pod_at(f, CAA_POD_CREATED);
    client_ctx cc = {0};
    connect_client(f, &cc);
    get_info(&cc, "nginx-sb1", "default", false); /* no instance yet */
    run_until(f, &cc.answered);
    assert_int_equal(cc.grpc_code, 5); /* NOT_FOUND */
    assert_non_null(strstr(cc.message, "no pod VM for pod default/nginx-sb1"));
    close_client(f, &cc);
}

/* The instance is deleted before the waiter's pod gets one: a cleared
 * instance (instance_changed with no id) answers nobody. */
static void test_cleared_instance_answers_nobody(void **state)
{
    fx *f = *state;
    caa_pod *pod = fx_pod_at(f, CAA_POD_PROVISIONING);
    client_ctx cc = {0};
    connect_client(f, &cc);
    get_info(&cc, "other-pod", "default", true);
    for (int i = 0; i < 1000 && caa_list_empty(&f->m.waiters); i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    fx_stop_vm(f, pod, &f->stop);
    scripted_create_ok(f->sp, "i-1", FX_IP);
    scripted_delete_done(f->sp, 0);
    fx_drain(f);
    fx_assert_answer(&f->stop, 0);
    assert_false(cc.answered);
    /* The shutdown answers the waiter UNAVAILABLE. */
    caa_manager_shutdown(&f->m);
    run_until(f, &cc.answered);
    assert_int_equal(cc.grpc_code, 14); /* UNAVAILABLE */
    close_client(f, &cc);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_wait_answered_when_instance_recorded),
        T(test_unknown_pod),
        T(test_cleared_instance_answers_nobody),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
