/* Agent request rewrites (agent-protocol/relay/agent-rewrite.c): the change
 * itself, everything else kept (unknown fields included), no-op cases keep
 * the original bytes, bad input is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent-rewrite.h"
#include "agent.pb-c.h"
#include "error.h"
#include "oci.pb-c.h"
#include "xalloc.h"

/* Field 99, length-delimited, "x!": unknown to every message here. */
static const uint8_t unknown99[] = {0x9a, 0x06, 0x02, 'x', '!'};

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = xmalloc(*len + sizeof(unknown99));
    protobuf_c_message_pack(m, b);
    return b;
}

/* Appends unknown99 (a message is a concatenation of fields). */
static void add_unknown(uint8_t *b, size_t *len)
{
    memcpy(b + *len, unknown99, sizeof(unknown99));
    *len += sizeof(unknown99);
}

/* ------------------------------------------------------------ CreateSandbox */

static uint8_t *sandbox_bytes(size_t n_dns, size_t *len)
{
    Grpc__CreateSandboxRequest req = GRPC__CREATE_SANDBOX_REQUEST__INIT;
    char *dns[] = {"10.96.0.10", "search default.svc"};
    req.hostname = "host";
    req.dns = dns;
    req.n_dns = n_dns;
    req.sandbox_id = "sb-1";
    req.sandbox_pidns = 1;
    uint8_t *b = pack(&req.base, len);
    add_unknown(b, len);
    return b;
}

static void test_sandbox_clears_dns(void **state)
{
    (void)state;
    size_t len, n;
    uint8_t *in = sandbox_bytes(2, &len), *out = NULL;
    assert_int_equal(caa_agent_rewrite_sandbox_dns(in, len, &out, &n, NULL), 0);
    Grpc__CreateSandboxRequest *r = grpc__create_sandbox_request__unpack(NULL, n, out);
    assert_non_null(r);
    assert_int_equal(r->n_dns, 0);
    assert_string_equal(r->hostname, "host");
    assert_string_equal(r->sandbox_id, "sb-1");
    assert_true(r->sandbox_pidns);
    assert_int_equal(r->base.n_unknown_fields, 1);
    assert_int_equal(r->base.unknown_fields[0].tag, 99);
    grpc__create_sandbox_request__free_unpacked(r, NULL);
    free(out);
    free(in);
}

static void test_sandbox_without_dns_unchanged(void **state)
{
    (void)state;
    size_t len, n = 0;
    uint8_t *in = sandbox_bytes(0, &len), *out = NULL;
    assert_int_equal(caa_agent_rewrite_sandbox_dns(in, len, &out, &n, NULL), 1);
    assert_null(out);
    /* An empty message is a valid CreateSandboxRequest too. */
    assert_int_equal(caa_agent_rewrite_sandbox_dns((const uint8_t *)"", 0, &out, &n, NULL), 1);
    free(in);
}

static void test_sandbox_bad_input(void **state)
{
    (void)state;
    static const uint8_t bad[][4] = {
        {0xff, 0xff, 0xff, 0xff}, {0x12, 0x05, 'a', 'b'}, {0x0a, 0x80, 0x80, 0x80}};
    for (size_t i = 0; i < 3; i++) {
        caa_error *e = NULL;
        uint8_t *out = NULL;
        size_t n;
        assert_int_equal(caa_agent_rewrite_sandbox_dns(bad[i], sizeof(bad[i]), &out, &n, &e), -EINVAL);
        assert_non_null(e);
        assert_non_null(strstr(caa_error_msg(e), "CreateSandboxRequest"));
        assert_null(out);
        caa_error_free(e);
    }
}

static void test_sandbox_unrepresentable(void **state)
{
    (void)state;
    /* dns [""] then a field number 0 written as a 2-byte varint: protobuf-c
     * decodes it but cannot write it back in a decodable form (found by
     * the forwarder-rewrite fuzz target). */
    static const uint8_t in[] = {0x12, 0x00, 0x80, 0x00, 0x80, 0x01, 0x80, 0x00, 0x00};
    caa_error *e = NULL;
    uint8_t *out = NULL;
    size_t n;
    assert_int_equal(caa_agent_rewrite_sandbox_dns(in, sizeof(in), &out, &n, &e), -EINVAL);
    assert_non_null(strstr(caa_error_msg(e), "malformed"));
    assert_null(out);
    caa_error_free(e);
}

/* ------------------------------------------------------------ CreateContainer */

typedef struct cc_opts {
    bool oci;
    bool linux_present;
    size_t n_ns;
    const char *cdi_value; /* existing CDI annotation, or NULL */
    const char *gpus;      /* default_gpus annotation, or NULL */
    bool unknown_in_spec;
} cc_opts;

static uint8_t *container_bytes(const cc_opts *o, size_t *len)
{
    Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
    Grpc__Spec spec = GRPC__SPEC__INIT;
    Grpc__Linux lx = GRPC__LINUX__INIT;
    Grpc__LinuxNamespace ns[2] = {GRPC__LINUX_NAMESPACE__INIT, GRPC__LINUX_NAMESPACE__INIT};
    Grpc__LinuxNamespace *nsp[2] = {&ns[0], &ns[1]};
    Grpc__Spec__AnnotationsEntry ann[3] = {GRPC__SPEC__ANNOTATIONS_ENTRY__INIT,
                                           GRPC__SPEC__ANNOTATIONS_ENTRY__INIT,
                                           GRPC__SPEC__ANNOTATIONS_ENTRY__INIT};
    Grpc__Spec__AnnotationsEntry *annp[3] = {&ann[0], &ann[1], &ann[2]};
    ns[0].type = "pid";
    ns[1].type = "ipc";
    ns[1].path = "/proc/1/ns/ipc";
    ann[0].key = "io.kubernetes.cri.container-type";
    ann[0].value = "container";
    ann[1].key = CAA_CDI_PEERPODS_ANNOTATION;
    ann[1].value = (char *)(o->cdi_value ? o->cdi_value : "");
    lx.namespaces = nsp;
    lx.n_namespaces = o->n_ns;
    lx.cgroupspath = "/kubepods/x";
    spec.version = "1.1.0";
    spec.hostname = "web";
    size_t n_ann = 1;
    if (o->cdi_value)
        annp[n_ann++] = &ann[1];
    if (o->gpus) {
        ann[2].key = CAA_CDI_GPUS_ANNOTATION;
        ann[2].value = (char *)o->gpus;
        annp[n_ann++] = &ann[2];
    }
    spec.annotations = annp;
    spec.n_annotations = n_ann;
    spec.linux = o->linux_present ? &lx : NULL;
    req.container_id = "ctr";
    req.exec_id = "exec";
    req.stdout_port = 7;
    req.oci = o->oci ? &spec : NULL;

    if (!o->unknown_in_spec || !o->oci) {
        uint8_t *b = pack(&req.base, len);
        add_unknown(b, len);
        return b;
    }
    /* Field 99 inside the Spec: pack the Spec alone, append, then wrap it
     * by hand as field 6 of the request. */
    size_t slen;
    uint8_t *sb = pack(&spec.base, &slen);
    add_unknown(sb, &slen);
    req.oci = NULL;
    size_t rlen;
    uint8_t *rb = pack(&req.base, &rlen);
    uint8_t *b = xmalloc(rlen + slen + 16);
    memcpy(b, rb, rlen);
    size_t n = rlen;
    b[n++] = 0x32; /* field 6, length-delimited */
    size_t v = slen;
    do {
        b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    memcpy(b + n, sb, slen);
    n += slen;
    memcpy(b + n, unknown99, sizeof(unknown99));
    n += sizeof(unknown99);
    free(sb);
    free(rb);
    *len = n;
    return b;
}

static void test_container_netns_appended(void **state)
{
    (void)state;
    cc_opts o = {.oci = true, .linux_present = true, .n_ns = 2, .unknown_in_spec = true};
    size_t len, n;
    uint8_t *in = container_bytes(&o, &len), *out = NULL;
    assert_int_equal(caa_agent_rewrite_container_netns(in, len, "/run/netns/podns", &out, &n, NULL), 0);
    Grpc__CreateContainerRequest *r = grpc__create_container_request__unpack(NULL, n, out);
    assert_non_null(r);
    assert_string_equal(r->container_id, "ctr");
    assert_string_equal(r->exec_id, "exec");
    assert_int_equal(r->stdout_port, 7);
    assert_non_null(r->oci);
    assert_non_null(r->oci->linux);
    assert_string_equal(r->oci->linux->cgroupspath, "/kubepods/x");
    assert_int_equal(r->oci->linux->n_namespaces, 3);
    assert_string_equal(r->oci->linux->namespaces[0]->type, "pid");
    assert_string_equal(r->oci->linux->namespaces[1]->type, "ipc");
    assert_string_equal(r->oci->linux->namespaces[1]->path, "/proc/1/ns/ipc");
    assert_string_equal(r->oci->linux->namespaces[2]->type, "network");
    assert_string_equal(r->oci->linux->namespaces[2]->path, "/run/netns/podns");
    assert_int_equal(r->oci->n_annotations, 1);
    assert_int_equal(r->base.n_unknown_fields, 1);
    assert_int_equal(r->base.unknown_fields[0].tag, 99);
    assert_int_equal(r->oci->base.n_unknown_fields, 1);
    assert_int_equal(r->oci->base.unknown_fields[0].tag, 99);
    grpc__create_container_request__free_unpacked(r, NULL);
    free(out);
    free(in);
}

static void test_container_netns_creates_linux(void **state)
{
    (void)state;
    cc_opts o = {.oci = true, .linux_present = false};
    size_t len, n;
    uint8_t *in = container_bytes(&o, &len), *out = NULL;
    assert_int_equal(caa_agent_rewrite_container_netns(in, len, "/x/ns", &out, &n, NULL), 0);
    Grpc__CreateContainerRequest *r = grpc__create_container_request__unpack(NULL, n, out);
    assert_non_null(r);
    assert_non_null(r->oci->linux);
    assert_int_equal(r->oci->linux->n_namespaces, 1);
    assert_string_equal(r->oci->linux->namespaces[0]->type, "network");
    assert_string_equal(r->oci->linux->namespaces[0]->path, "/x/ns");
    grpc__create_container_request__free_unpacked(r, NULL);
    free(out);
    free(in);

    /* Upstream appends unconditionally: a second pass adds another entry. */
    cc_opts o2 = {.oci = true, .linux_present = true, .n_ns = 1};
    in = container_bytes(&o2, &len);
    uint8_t *once = NULL, *twice = NULL;
    size_t n1, n2;
    assert_int_equal(caa_agent_rewrite_container_netns(in, len, "/p", &once, &n1, NULL), 0);
    assert_int_equal(caa_agent_rewrite_container_netns(once, n1, "/p", &twice, &n2, NULL), 0);
    r = grpc__create_container_request__unpack(NULL, n2, twice);
    assert_int_equal(r->oci->linux->n_namespaces, 3);
    grpc__create_container_request__free_unpacked(r, NULL);
    free(once);
    free(twice);
    free(in);
}

static void test_container_without_oci_unchanged(void **state)
{
    (void)state;
    cc_opts o = {.oci = false};
    size_t len, n = 0;
    uint8_t *in = container_bytes(&o, &len), *out = NULL;
    assert_int_equal(caa_agent_rewrite_container_netns(in, len, "/p", &out, &n, NULL), 1);
    assert_int_equal(caa_agent_rewrite_container_gpu(in, len, &out, &n, NULL), 1);
    assert_null(out);
    free(in);
}

static const char *cdi_of(const Grpc__Spec *s, size_t *count)
{
    const char *v = NULL;
    *count = 0;
    for (size_t i = 0; i < s->n_annotations; i++) {
        if (strcmp(s->annotations[i]->key, CAA_CDI_PEERPODS_ANNOTATION) == 0) {
            v = s->annotations[i]->value;
            (*count)++;
        }
    }
    return v;
}

static void test_container_gpu_annotation(void **state)
{
    (void)state;
    /* No default_gpus annotation on the container (upstream's trigger):
     * unchanged; an empty one neither. */
    cc_opts o0 = {.oci = true, .linux_present = true, .n_ns = 1};
    size_t len, n, count;
    uint8_t *in = container_bytes(&o0, &len), *out = NULL;
    assert_int_equal(caa_agent_rewrite_container_gpu(in, len, &out, &n, NULL), 1);
    free(in);
    o0.gpus = "";
    in = container_bytes(&o0, &len);
    assert_int_equal(caa_agent_rewrite_container_gpu(in, len, &out, &n, NULL), 1);
    assert_null(out);
    free(in);

    /* Absent: added, the other annotations and unknown fields kept. The
     * container's annotations are what the Kata shim passes from the pod
     * (default_gpus set by upstream's webhook). */
    cc_opts o = {.oci = true, .linux_present = true, .n_ns = 1, .unknown_in_spec = true, .gpus = "2"};
    in = container_bytes(&o, &len);
    assert_int_equal(caa_agent_rewrite_container_gpu(in, len, &out, &n, NULL), 0);
    Grpc__CreateContainerRequest *r = grpc__create_container_request__unpack(NULL, n, out);
    assert_int_equal(r->oci->n_annotations, 3);
    assert_string_equal(cdi_of(r->oci, &count), CAA_CDI_ALL_NVIDIA_GPUS);
    assert_int_equal(count, 1);
    assert_string_equal(r->oci->annotations[0]->key, "io.kubernetes.cri.container-type");
    assert_int_equal(r->oci->linux->n_namespaces, 1); /* the worker does not touch namespaces */
    assert_int_equal(r->oci->base.n_unknown_fields, 1);
    assert_int_equal(r->base.n_unknown_fields, 1);
    grpc__create_container_request__free_unpacked(r, NULL);
    free(out);
    free(in);

    /* Another value: replaced in place, not duplicated. */
    cc_opts o2 = {.oci = true, .cdi_value = "vendor.com/gpu=0", .gpus = "1"};
    in = container_bytes(&o2, &len);
    out = NULL;
    assert_int_equal(caa_agent_rewrite_container_gpu(in, len, &out, &n, NULL), 0);
    r = grpc__create_container_request__unpack(NULL, n, out);
    assert_int_equal(r->oci->n_annotations, 3);
    assert_string_equal(cdi_of(r->oci, &count), CAA_CDI_ALL_NVIDIA_GPUS);
    assert_int_equal(count, 1);
    grpc__create_container_request__free_unpacked(r, NULL);
    free(out);
    free(in);

    /* Already right: the original bytes go on. */
    cc_opts o3 = {.oci = true, .cdi_value = CAA_CDI_ALL_NVIDIA_GPUS, .gpus = "1"};
    in = container_bytes(&o3, &len);
    out = NULL;
    assert_int_equal(caa_agent_rewrite_container_gpu(in, len, &out, &n, NULL), 1);
    assert_null(out);
    free(in);
}

static void test_container_bad_input(void **state)
{
    (void)state;
    /* OCI field (6) announcing more bytes than there are; wrong wire type for field 1. */
    static const uint8_t trunc[] = {0x0a, 0x01, 'c', 0x32, 0x10, 0x0a};
    static const uint8_t wrongtype[] = {0x0d, 0x01, 0x02, 0x03, 0x04};
    const struct {
        const uint8_t *b;
        size_t n;
    } cases[] = {{trunc, sizeof(trunc)}, {wrongtype, sizeof(wrongtype)}, {(const uint8_t *)"\xff", 1}};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(cases); i++) {
        caa_error *e = NULL;
        uint8_t *out = NULL;
        size_t n;
        assert_int_equal(caa_agent_rewrite_container_netns(cases[i].b, cases[i].n, "/p", &out, &n, &e),
                         -EINVAL);
        assert_non_null(strstr(caa_error_msg(e), "CreateContainerRequest"));
        caa_error_free(e);
        e = NULL;
        assert_int_equal(caa_agent_rewrite_container_gpu(cases[i].b, cases[i].n, &out, &n, &e), -EINVAL);
        caa_error_free(e);
        assert_null(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sandbox_clears_dns),
        cmocka_unit_test(test_sandbox_without_dns_unchanged),
        cmocka_unit_test(test_sandbox_bad_input),
        cmocka_unit_test(test_sandbox_unrepresentable),
        cmocka_unit_test(test_container_netns_appended),
        cmocka_unit_test(test_container_netns_creates_linux),
        cmocka_unit_test(test_container_without_oci_unchanged),
        cmocka_unit_test(test_container_gpu_annotation),
        cmocka_unit_test(test_container_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
