/* kata-agent request rewrites (see agent-rewrite.h).
 *
 * The decoded message is never modified in a way free_unpacked would
 * trip over: added or hidden elements are swapped in around the pack call
 * (stack objects, a temporary pointer array) and the original pointers are
 * restored before the message is freed. */
#include "agent-rewrite.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent.pb-c.h"
#include "cleanup.h"
#include "oci.pb-c.h"
#include "pb-strict.h"
#include "xalloc.h"

/* Packs m and checks that the result decodes again: protobuf-c accepts a
 * few malformed inputs (a field number 0 spelt as a non-minimal varint)
 * whose re-encoding no decoder, protobuf-c included, accepts. Such a
 * request is refused rather than turned into something else. */
static int pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len, caa_error **err)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    _cleanup_free_ uint8_t *buf = xmalloc(n ? n : 1);
    n = protobuf_c_message_pack(m, buf);
    ProtobufCMessage *again = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
    if (!again)
        return caa_error_set(err, -EINVAL, "%s: malformed field tags", m->descriptor->short_name);
    protobuf_c_message_free_unpacked(again, NULL);
    *ret = TAKE_PTR(buf);
    *ret_len = n;
    return 0;
}

/* The rewrites re-encode the whole request from C strings, so a string
 * holding a NUL would come out cut short: refused instead. */
static Grpc__CreateContainerRequest *unpack_create_container(const uint8_t *in, size_t len, caa_error **err)
{
    return (Grpc__CreateContainerRequest *)caa_pb_unpack_strict(&grpc__create_container_request__descriptor,
                                                                in, len, NULL, err);
}

int caa_agent_rewrite_sandbox_dns(const uint8_t *in, size_t len, uint8_t **ret, size_t *ret_len,
                                  caa_error **err)
{
    Grpc__CreateSandboxRequest *req = (Grpc__CreateSandboxRequest *)caa_pb_unpack_strict(
        &grpc__create_sandbox_request__descriptor, in, len, NULL, err);
    if (!req)
        return -EINVAL;
    if (req->n_dns == 0) {
        grpc__create_sandbox_request__free_unpacked(req, NULL);
        return 1;
    }
    size_t n_dns = req->n_dns;
    req->n_dns = 0;
    int r = pack(&req->base, ret, ret_len, err);
    req->n_dns = n_dns;
    grpc__create_sandbox_request__free_unpacked(req, NULL);
    return r;
}

/* A CreateContainerRequest with an OCI spec; 1 (nothing to rewrite) without one. */
static int unpack_container(const uint8_t *in, size_t len, Grpc__CreateContainerRequest **ret,
                            caa_error **err)
{
    Grpc__CreateContainerRequest *req = unpack_create_container(in, len, err);
    if (!req)
        return -EINVAL;
    if (!req->oci) {
        grpc__create_container_request__free_unpacked(req, NULL);
        return 1;
    }
    *ret = req;
    return 0;
}

int caa_agent_rewrite_container_netns(const uint8_t *in, size_t len, const char *netns_path, uint8_t **ret,
                                      size_t *ret_len, caa_error **err)
{
    Grpc__CreateContainerRequest *req = NULL;
    int u = unpack_container(in, len, &req, err);
    if (u != 0)
        return u;
    Grpc__Spec *spec = req->oci;

    Grpc__Linux empty_linux = GRPC__LINUX__INIT;
    Grpc__Linux *lx = spec->linux ? spec->linux : &empty_linux;
    Grpc__LinuxNamespace ns = GRPC__LINUX_NAMESPACE__INIT;
    ns.type = (char *)"network";
    ns.path = (char *)netns_path;

    size_t n = lx->n_namespaces;
    Grpc__LinuxNamespace **orig = lx->namespaces;
    _cleanup_free_ Grpc__LinuxNamespace **list = xnew0(Grpc__LinuxNamespace *, n + 1);
    if (n)
        memcpy(list, orig, n * sizeof(*list));
    list[n] = &ns;

    Grpc__Linux *orig_linux = spec->linux;
    spec->linux = lx;
    lx->namespaces = list;
    lx->n_namespaces = n + 1;
    int r = pack(&req->base, ret, ret_len, err);
    lx->namespaces = orig;
    lx->n_namespaces = n;
    spec->linux = orig_linux;

    grpc__create_container_request__free_unpacked(req, NULL);
    return r;
}

int caa_agent_rewrite_container_gpu(const uint8_t *in, size_t len, uint8_t **ret, size_t *ret_len,
                                    caa_error **err)
{
    Grpc__CreateContainerRequest *req = NULL;
    int u = unpack_container(in, len, &req, err);
    if (u != 0)
        return u;
    Grpc__Spec *spec = req->oci;

    /* A map is a repeated entry list on the wire; a reader keeps the last
     * entry of a key, so every entry of the key gets the value. The trigger
     * is upstream's: the container's default_gpus annotation, non-empty
     * (the last entry of the key counts). */
    bool found = false, differs = false, gpus = false;
    for (size_t i = 0; i < spec->n_annotations; i++) {
        Grpc__Spec__AnnotationsEntry *e = spec->annotations[i];
        if (e->key && strcmp(e->key, CAA_CDI_PEERPODS_ANNOTATION) == 0) {
            found = true;
            if (!e->value || strcmp(e->value, CAA_CDI_ALL_NVIDIA_GPUS) != 0)
                differs = true;
        } else if (e->key && strcmp(e->key, CAA_CDI_GPUS_ANNOTATION) == 0) {
            gpus = e->value && *e->value;
        }
    }
    if (!gpus || (found && !differs)) {
        grpc__create_container_request__free_unpacked(req, NULL);
        return 1;
    }

    size_t n = spec->n_annotations;
    Grpc__Spec__AnnotationsEntry **orig = spec->annotations;
    _cleanup_free_ Grpc__Spec__AnnotationsEntry **list = xnew0(Grpc__Spec__AnnotationsEntry *, n + 1);
    _cleanup_free_ char **saved = xnew0(char *, n + 1);
    Grpc__Spec__AnnotationsEntry added = GRPC__SPEC__ANNOTATIONS_ENTRY__INIT;
    added.key = (char *)CAA_CDI_PEERPODS_ANNOTATION;
    added.value = (char *)CAA_CDI_ALL_NVIDIA_GPUS;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        Grpc__Spec__AnnotationsEntry *e = orig[i];
        saved[i] = e->value;
        if (e->key && strcmp(e->key, CAA_CDI_PEERPODS_ANNOTATION) == 0)
            e->value = (char *)CAA_CDI_ALL_NVIDIA_GPUS;
        list[m++] = e;
    }
    if (!found)
        list[m++] = &added;

    spec->annotations = list;
    spec->n_annotations = m;
    int r = pack(&req->base, ret, ret_len, err);
    spec->annotations = orig;
    spec->n_annotations = n;
    for (size_t i = 0; i < n; i++)
        orig[i]->value = saved[i];

    grpc__create_container_request__free_unpacked(req, NULL);
    return r;
}
