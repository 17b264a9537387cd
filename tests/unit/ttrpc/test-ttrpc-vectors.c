/* Byte-exact ttRPC vectors (wire-protocols.md §7.2, captured from the Go
 * ttrpc v1.2.2 client and server), checked in both directions: our server
 * answers the Go client's bytes with the Go server's bytes, and our client
 * writes the Go client's bytes and decodes the Go server's answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "health.pb-c.h"
#include "hypervisor.pb-c.h"
#include "ttrpc-test-util.h"
#include "ttrpc.h"
#include "xalloc.h"

typedef struct vector {
    const char *name;
    const char *request;  /* client -> server frame, hex */
    const char *response; /* server -> client frame, hex */
} vector;

static const vector vectors[] = {
    {"version",
     "000000290000000101000a1568797065727669736f722e48797065727669736f72120756657273696f6e1a070a05302e302e30",
     "0000000900000001020012070a05302e302e30"},
    {"createvm",
     "000000660000000301000a1568797065727669736f722e48797065727669736f721208437265617465564d1a430a03736231122"
     "60a1e696f2e6b756265726e657465732e6372692e73616e64626f782d6e616d651204706f64311a142f7661722f72756e2f6e65"
     "746e732f636e692d31",
     "0000002500000003020012230a212f72756e2f70656572706f642f706f64732f7362312f6167656e742e7474727063"},
    {"startvm",
     "000000270000000501000a1568797065727669736f722e48797065727669736f7212075374617274564d1a050a03736231",
     "00000000000000050200"},
    {"stopvm",
     "000000260000000701000a1568797065727669736f722e48797065727669736f72120653746f70564d1a050a03736239",
     "000000200000000702000a1e0802121a73616e64626f782073623920646f6573206e6f74206578697374"},
    {"health-check", "000000140000000901000a0b677270632e4865616c74681205436865636b",
     "0000000400000009020012020801"},
    {"health-version", "000000160000000b01000a0b677270632e4865616c7468120756657273696f6e",
     "0000000a0000000b02000a08080512046e6f7065"},
    {"unknown-method",
     "000000220000000d01000a1568797065727669736f722e48797065727669736f7212044e6f70651a030a0178",
     "000000110000000d02000a0f080c120b6d6574686f64204e6f7065"},
    {"unknown-service", "0000001f0000000f01000a0f68797065727669736f722e4e6f706512075374617274564d1a030a0178",
     "0000001d0000000f02000a1b080c1217736572766963652068797065727669736f722e4e6f7065"},
    {"deadline-metadata",
     "000000430000001101000a1568797065727669736f722e48797065727669736f7212075374617274564d1a050a0373623120dfc"
     "d8de16f2a140a0b7472616365706172656e74120530302d3031",
     "00000000000000110200"},
    {"even-stream", "00000000000000020100",
     "000000370000000202000a350803123153747265616d4944206d757374206265206f646420666f7220636c69656e7420696e697"
     "469617465642073747265616d73"},
    {"empty-request", "00000000000000010100", "0000000e0000000102000a0c080c12087365727669636520"},
    {"reused-stream", "00000000000000010100",
     "000000330000000102000a310803122d53747265616d49442063616e6e6f742062652072652d7573656420616e64206d7573742"
     "0696e6372656d656e74"},
};

#define N_CLIENT_ROWS 9 /* the rows a ttrpc client sends, stream ids 1..0x11 */

static const vector *find_vector(const char *name)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        if (strcmp(vectors[i].name, name) == 0)
            return &vectors[i];
    fail_msg("no vector %s", name);
    return NULL;
}

/* ---------------------------------------------------- Go-like handlers */

static void h_version(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    Hypervisor__VersionResponse r = HYPERVISOR__VERSION_RESPONSE__INIT;
    r.version = "0.0.0";
    ttrpc_call_reply_message(c, &r.base);
}

static void h_create(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    size_t len;
    const uint8_t *p = ttrpc_call_payload(c, &len);
    Hypervisor__CreateVMRequest *req = hypervisor__create_vmrequest__unpack(NULL, len, p);
    assert_non_null(req);
    assert_string_equal(req->networknamespacepath, "/var/run/netns/cni-1");
    assert_int_equal(req->n_annotations, 1);
    assert_string_equal(req->annotations[0]->key, "io.kubernetes.cri.sandbox-name");
    char *path = xasprintf("/run/peerpod/pods/%s/agent.ttrpc", req->id);
    Hypervisor__CreateVMResponse r = HYPERVISOR__CREATE_VMRESPONSE__INIT;
    r.agentsocketpath = path;
    ttrpc_call_reply_message(c, &r.base);
    free(path);
    hypervisor__create_vmrequest__free_unpacked(req, NULL);
}

static void h_start(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    ttrpc_call_reply(c, NULL, 0);
}

static void h_stop(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    size_t len;
    const uint8_t *p = ttrpc_call_payload(c, &len);
    Hypervisor__StopVMRequest *req = hypervisor__stop_vmrequest__unpack(NULL, len, p);
    assert_non_null(req);
    ttrpc_call_reply_error(c, GRPC_UNKNOWN, "sandbox %s does not exist", req->id);
    hypervisor__stop_vmrequest__free_unpacked(req, NULL);
}

static void h_check(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    Grpc__HealthCheckResponse r = GRPC__HEALTH_CHECK_RESPONSE__INIT;
    r.status = GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    ttrpc_call_reply_message(c, &r.base);
}

static void h_hversion(ttrpc_call *c, void *opaque)
{
    (void)opaque;
    ttrpc_call_reply_error(c, GRPC_NOT_FOUND, "nope");
}

static const ttrpc_method_entry hv_methods[] = {
    {"CreateVM", h_create},
    {"StartVM", h_start},
    {"StopVM", h_stop},
    {"Version", h_version},
};

static const ttrpc_method_entry health_methods[] = {
    {"Check", h_check},
    {"Version", h_hversion},
};

typedef struct fixture {
    uv_loop_t loop;
    char *dir;
    char *path;
    ttrpc_server *server;
    bool server_done;
} fixture;

static int setup(void **state)
{
    fixture *f = xnew0(fixture, 1);
    uv_loop_init(&f->loop);
    f->dir = caa_test_tmpdir_new("ttrpc-test");
    f->path = tu_path(f->dir, "hypervisor.sock");
    *state = f;
    return 0;
}

static void on_server_done(void *opaque)
{
    ((fixture *)opaque)->server_done = true;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->server)
        ttrpc_server_close(f->server, on_server_done, f);
    tu_loop_finish(&f->loop);
    assert_true(!f->server || f->server_done);
    free(f->path);
    caa_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static void start_server(fixture *f)
{
    assert_int_equal(ttrpc_server_new(&f->loop, &f->server, NULL), 0);
    assert_int_equal(ttrpc_server_register(f->server, "hypervisor.Hypervisor", hv_methods, 4, NULL, NULL), 0);
    assert_int_equal(ttrpc_server_register(f->server, "grpc.Health", health_methods, 2, NULL, NULL), 0);
    assert_int_equal(ttrpc_server_listen_unix(f->server, f->path, 0600, NULL), 0);
}

/* ---------------------------------------------------- server direction */

static void test_server_vectors_one_by_one(void **state)
{
    fixture *f = *state;
    start_server(f);
    tu_raw *r = tu_raw_connect(&f->loop, f->path);
    assert_non_null(r);
    for (size_t i = 0; i < N_CLIENT_ROWS; i++) {
        tu_raw_send_hex(r, vectors[i].request);
        tu_raw_expect_hex(r, vectors[i].response);
    }
    tu_raw_close(r);

    /* The raw stream-id rows, on a fresh connection, in capture order. */
    r = tu_raw_connect(&f->loop, f->path);
    assert_non_null(r);
    for (size_t i = N_CLIENT_ROWS; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        tu_raw_send_hex(r, vectors[i].request);
        tu_raw_expect_hex(r, vectors[i].response);
    }
    tu_raw_close(r);
}

/* All requests in one write: synchronous handlers answer in order. */
static void test_server_vectors_one_chunk(void **state)
{
    fixture *f = *state;
    start_server(f);
    tu_raw *r = tu_raw_connect(&f->loop, f->path);
    assert_non_null(r);
    size_t total = 0;
    uint8_t *all = NULL;
    for (size_t i = 0; i < N_CLIENT_ROWS; i++) {
        size_t len;
        uint8_t *b = tu_hex(vectors[i].request, &len);
        all = xrealloc(all, total + len);
        memcpy(all + total, b, len);
        total += len;
        free(b);
    }
    tu_raw_send(r, all, total);
    free(all);
    for (size_t i = 0; i < N_CLIENT_ROWS; i++)
        tu_raw_expect_hex(r, vectors[i].response);
    tu_raw_close(r);
}

/* ---------------------------------------------------- client direction */

typedef struct client_ctx {
    ttrpc_client *client;
    bool connected;
    int done;
    ttrpc_result res; /* copied */
    uint8_t *payload;
    char *message;
} client_ctx;

static void on_connect(ttrpc_client *c, int status, const caa_error *err, void *opaque)
{
    (void)err;
    client_ctx *x = opaque;
    assert_int_equal(status, 0);
    x->client = c;
    x->connected = true;
}

static bool is_connected(void *arg)
{
    return ((client_ctx *)arg)->connected;
}

static void on_response(const ttrpc_result *res, void *opaque)
{
    client_ctx *x = opaque;
    x->done++;
    x->res = *res;
    free(x->payload);
    free(x->message);
    x->payload = res->payload_len ? xmemdup(res->payload, res->payload_len) : NULL;
    x->message = xstrdup(res->message);
    x->res.payload = x->payload;
    x->res.message = x->message;
    x->res.response = NULL;
}

static bool got_response(void *arg)
{
    return ((client_ctx *)arg)->done > 0;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    return ttrpc_pack(m, len);
}

/* Sends one call, checks the bytes on the wire, answers with the Go
 * server's bytes and waits for the callback. */
static void exchange(fixture *f, client_ctx *x, tu_raw *srv, const char *name, const char *service,
                     const char *method, const ProtobufCMessage *payload, int64_t timeout_ns,
                     const ttrpc_kv *md, size_t n_md)
{
    const vector *v = find_vector(name);
    size_t len = 0;
    uint8_t *p = payload ? pack(payload, &len) : NULL;
    x->done = 0;
    assert_int_equal(
        ttrpc_client_call(x->client, service, method, p, len, timeout_ns, md, n_md, on_response, x, NULL), 0);
    free(p);
    tu_raw_expect_hex(srv, v->request);
    tu_raw_send_hex(srv, v->response);
    assert_true(tu_run_until(&f->loop, got_response, x, 10000));
    assert_int_equal(x->done, 1);
    assert_int_equal(x->res.status, 0);
}

static void test_client_vectors(void **state)
{
    fixture *f = *state;
    tu_raw_server *rs = tu_raw_server_new(&f->loop, f->path);
    client_ctx x = {0};
    assert_int_equal(ttrpc_client_connect_unix(&f->loop, f->path, on_connect, &x, NULL), 0);
    assert_true(tu_run_until(&f->loop, is_connected, &x, 10000));
    tu_raw *srv = tu_raw_server_accept(rs);
    assert_non_null(srv);

    /* Version */
    Hypervisor__VersionRequest vreq = HYPERVISOR__VERSION_REQUEST__INIT;
    vreq.version = "0.0.0";
    exchange(f, &x, srv, "version", "hypervisor.Hypervisor", "Version", &vreq.base, 0, NULL, 0);
    assert_int_equal(x.res.grpc_code, 0);
    Hypervisor__VersionResponse *vr =
        hypervisor__version_response__unpack(NULL, x.res.payload_len, x.payload);
    assert_non_null(vr);
    assert_string_equal(vr->version, "0.0.0");
    hypervisor__version_response__free_unpacked(vr, NULL);

    /* CreateVM */
    Hypervisor__CreateVMRequest creq = HYPERVISOR__CREATE_VMREQUEST__INIT;
    Hypervisor__CreateVMRequest__AnnotationsEntry ann = HYPERVISOR__CREATE_VMREQUEST__ANNOTATIONS_ENTRY__INIT;
    Hypervisor__CreateVMRequest__AnnotationsEntry *anns[] = {&ann};
    ann.key = "io.kubernetes.cri.sandbox-name";
    ann.value = "pod1";
    creq.id = "sb1";
    creq.n_annotations = 1;
    creq.annotations = anns;
    creq.networknamespacepath = "/var/run/netns/cni-1";
    exchange(f, &x, srv, "createvm", "hypervisor.Hypervisor", "CreateVM", &creq.base, 0, NULL, 0);
    assert_int_equal(x.res.grpc_code, 0);
    Hypervisor__CreateVMResponse *cr =
        hypervisor__create_vmresponse__unpack(NULL, x.res.payload_len, x.payload);
    assert_non_null(cr);
    assert_string_equal(cr->agentsocketpath, "/run/peerpod/pods/sb1/agent.ttrpc");
    hypervisor__create_vmresponse__free_unpacked(cr, NULL);

    /* StartVM: empty reply */
    Hypervisor__StartVMRequest sreq = HYPERVISOR__START_VMREQUEST__INIT;
    sreq.id = "sb1";
    exchange(f, &x, srv, "startvm", "hypervisor.Hypervisor", "StartVM", &sreq.base, 0, NULL, 0);
    assert_int_equal(x.res.grpc_code, 0);
    assert_int_equal(x.res.payload_len, 0);
    assert_string_equal(x.res.message, "");

    /* StopVM: handler error */
    Hypervisor__StopVMRequest treq = HYPERVISOR__STOP_VMREQUEST__INIT;
    treq.id = "sb9";
    exchange(f, &x, srv, "stopvm", "hypervisor.Hypervisor", "StopVM", &treq.base, 0, NULL, 0);
    assert_int_equal(x.res.grpc_code, GRPC_UNKNOWN);
    assert_string_equal(x.res.message, "sandbox sb9 does not exist");

    /* grpc.Health/Check with an empty request: no payload field */
    Grpc__CheckRequest hreq = GRPC__CHECK_REQUEST__INIT;
    exchange(f, &x, srv, "health-check", "grpc.Health", "Check", &hreq.base, 0, NULL, 0);
    assert_int_equal(x.res.grpc_code, 0);
    Grpc__HealthCheckResponse *hr = grpc__health_check_response__unpack(NULL, x.res.payload_len, x.payload);
    assert_non_null(hr);
    assert_int_equal(hr->status, GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    grpc__health_check_response__free_unpacked(hr, NULL);

    /* grpc.Health/Version -> NotFound("nope") */
    exchange(f, &x, srv, "health-version", "grpc.Health", "Version", &hreq.base, 0, NULL, 0);
    assert_int_equal(x.res.grpc_code, GRPC_NOT_FOUND);
    assert_string_equal(x.res.message, "nope");

    /* unknown method / service */
    Hypervisor__StartVMRequest xreq = HYPERVISOR__START_VMREQUEST__INIT;
    xreq.id = "x";
    exchange(f, &x, srv, "unknown-method", "hypervisor.Hypervisor", "Nope", &xreq.base, 0, NULL, 0);
    assert_int_equal(x.res.grpc_code, GRPC_UNIMPLEMENTED);
    assert_string_equal(x.res.message, "method Nope");
    exchange(f, &x, srv, "unknown-service", "hypervisor.Nope", "StartVM", &xreq.base, 0, NULL, 0);
    assert_int_equal(x.res.grpc_code, GRPC_UNIMPLEMENTED);
    assert_string_equal(x.res.message, "service hypervisor.Nope");

    /* StartVM with a deadline and metadata; the captured timeout_nano is
     * passed through so every byte can be compared. */
    ttrpc_kv md[] = {{"traceparent", "00-01"}};
    exchange(f, &x, srv, "deadline-metadata", "hypervisor.Hypervisor", "StartVM", &sreq.base, 29999982303LL,
             md, 1);
    assert_int_equal(x.res.grpc_code, 0);
    assert_int_equal(ttrpc_client_inflight(x.client), 0);

    free(x.payload);
    free(x.message);
    ttrpc_client_close(x.client);
    tu_raw_close(srv);
    tu_raw_server_close(rs);
}

/* A real deadline: the bytes equal the capture except the timeout varint,
 * which has the same width for a 30 s deadline. */
static void test_client_deadline_bytes(void **state)
{
    fixture *f = *state;
    tu_raw_server *rs = tu_raw_server_new(&f->loop, f->path);
    client_ctx x = {0};
    assert_int_equal(ttrpc_client_connect_unix(&f->loop, f->path, on_connect, &x, NULL), 0);
    assert_true(tu_run_until(&f->loop, is_connected, &x, 10000));
    tu_raw *srv = tu_raw_server_accept(rs);
    assert_non_null(srv);

    /* Burn stream ids 1..15 so the call goes out on 0x11 like the capture. */
    for (int i = 0; i < 8; i++)
        assert_int_equal(ttrpc_client_call(x.client, "s", "m", NULL, 0, 0, NULL, 0, on_response, &x, NULL),
                         0);
    assert_true(tu_raw_wait(srv, 8 * (10 + 6)));
    tu_raw_consume(srv, 8 * (10 + 6));

    Hypervisor__StartVMRequest sreq = HYPERVISOR__START_VMREQUEST__INIT;
    sreq.id = "sb1";
    size_t plen;
    uint8_t *p = ttrpc_pack(&sreq.base, &plen);
    ttrpc_kv md[] = {{"traceparent", "00-01"}};
    assert_int_equal(ttrpc_client_call(x.client, "hypervisor.Hypervisor", "StartVM", p, plen, 30000000000LL,
                                       md, 1, on_response, &x, NULL),
                     0);
    free(p);
    size_t wlen;
    uint8_t *want = tu_hex(find_vector("deadline-metadata")->request, &wlen);
    assert_true(tu_raw_wait(srv, wlen));
    /* header (10) + service/method/payload (39) | 0x20 + 5-byte varint | metadata */
    assert_memory_equal(srv->buf, want, 10 + 39 + 1);
    assert_memory_equal(srv->buf + 10 + 39 + 6, want + 10 + 39 + 6, wlen - (10 + 39 + 6));
    Ttrpc__Request *req = ttrpc_request_decode(srv->buf + 10, wlen - 10, NULL);
    assert_non_null(req);
    assert_true(req->timeout_nano == 30000000000LL);
    ttrpc_request_free(req);
    free(want);

    ttrpc_client_close(x.client);
    assert_int_equal(x.done, 9); /* all cancelled */
    assert_int_equal(x.res.status, -ECANCELED);
    free(x.payload);
    free(x.message);
    tu_raw_close(srv);
    tu_raw_server_close(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_vectors_one_by_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_vectors_one_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_deadline_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
