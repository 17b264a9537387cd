/* Fuzz target forwarder-rewrite: the input is a CreateSandbox and a
 * CreateContainer payload at once; every rewrite of agent-rewrite.h runs on
 * it. A rewrite succeeds exactly when the input decodes; its output must
 * decode, carry the change, keep every field the subset .proto does not
 * know, and (for the idempotent ones) need no second rewrite. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent-rewrite.h"
#include "agent.pb-c.h"
#include "oci.pb-c.h"
#include "pb-strict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A rewrite may refuse a decodable input only when a string in it holds a
 * NUL (re-encoding would cut it short) or when re-encoding it unchanged does
 * not decode either (protobuf-c accepts a few malformed tags). */
static void refused_because_unrepresentable(const ProtobufCMessage *in, const uint8_t *data, size_t size)
{
    if (caa_pb_check_strings(in->descriptor, data, size, NULL, NULL) < 0)
        return;
    size_t n = protobuf_c_message_get_packed_size(in);
    uint8_t *buf = malloc(n ? n : 1);
    n = protobuf_c_message_pack(in, buf);
    ProtobufCMessage *again = protobuf_c_message_unpack(in->descriptor, NULL, n, buf);
    assert(again == NULL);
    free(buf);
}

static void sandbox(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL;
    size_t n = 0;
    Grpc__CreateSandboxRequest *in = grpc__create_sandbox_request__unpack(NULL, size, data);
    int r = caa_agent_rewrite_sandbox_dns(data, size, &out, &n, NULL);
    if (!in)
        assert(r < 0);
    else if (r < 0)
        refused_because_unrepresentable(&in->base, data, size);
    if (r == 1)
        assert(in->n_dns == 0);
    if (r == 0) {
        Grpc__CreateSandboxRequest *o = grpc__create_sandbox_request__unpack(NULL, n, out);
        assert(o && o->n_dns == 0);
        assert(strcmp(o->hostname, in->hostname) == 0 && strcmp(o->sandbox_id, in->sandbox_id) == 0);
        assert(o->n_storages == in->n_storages && o->n_kernel_modules == in->n_kernel_modules);
        assert(o->base.n_unknown_fields == in->base.n_unknown_fields);
        uint8_t *again = NULL;
        size_t m;
        assert(caa_agent_rewrite_sandbox_dns(out, n, &again, &m, NULL) == 1);
        grpc__create_sandbox_request__free_unpacked(o, NULL);
        free(out);
    }
    if (in)
        grpc__create_sandbox_request__free_unpacked(in, NULL);
}

static void container(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL;
    size_t n = 0;
    Grpc__CreateContainerRequest *in = grpc__create_container_request__unpack(NULL, size, data);

    int r = caa_agent_rewrite_container_netns(data, size, "/run/netns/podns", &out, &n, NULL);
    if (!in)
        assert(r < 0);
    else if (r < 0)
        refused_because_unrepresentable(&in->base, data, size);
    if (r == 1)
        assert(in->oci == NULL);
    if (r == 0) {
        Grpc__CreateContainerRequest *o = grpc__create_container_request__unpack(NULL, n, out);
        assert(o && o->oci && o->oci->linux);
        size_t before = in->oci->linux ? in->oci->linux->n_namespaces : 0;
        assert(o->oci->linux->n_namespaces == before + 1);
        Grpc__LinuxNamespace *ns = o->oci->linux->namespaces[before];
        assert(strcmp(ns->type, "network") == 0 && strcmp(ns->path, "/run/netns/podns") == 0);
        assert(o->base.n_unknown_fields == in->base.n_unknown_fields);
        assert(o->oci->base.n_unknown_fields == in->oci->base.n_unknown_fields);
        assert(o->oci->n_annotations == in->oci->n_annotations && o->n_storages == in->n_storages);
        grpc__create_container_request__free_unpacked(o, NULL);
        free(out);
    }

    out = NULL;
    r = caa_agent_rewrite_container_gpu(data, size, &out, &n, NULL);
    if (!in)
        assert(r < 0);
    else if (r < 0)
        refused_because_unrepresentable(&in->base, data, size);
    if (r == 0) {
        Grpc__CreateContainerRequest *o = grpc__create_container_request__unpack(NULL, n, out);
        assert(o && o->oci);
        size_t hits = 0;
        for (size_t i = 0; i < o->oci->n_annotations; i++) {
            if (strcmp(o->oci->annotations[i]->key, CAA_CDI_PEERPODS_ANNOTATION) == 0) {
                assert(strcmp(o->oci->annotations[i]->value, CAA_CDI_ALL_NVIDIA_GPUS) == 0);
                hits++;
            }
        }
        assert(hits >= 1);
        assert(o->oci->base.n_unknown_fields == in->oci->base.n_unknown_fields);
        uint8_t *again = NULL;
        size_t m;
        assert(caa_agent_rewrite_container_gpu(out, n, &again, &m, NULL) == 1);
        grpc__create_container_request__free_unpacked(o, NULL);
        free(out);
    }
    if (in)
        grpc__create_container_request__free_unpacked(in, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sandbox(data, size);
    container(data, size);
    return 0;
}
