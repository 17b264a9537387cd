/* agent.proto / oci.proto as protobuf-c sees them: a CreateContainerRequest
 * with an OCI spec survives pack/unpack, and fields our subset .proto does
 * not know (as a newer agent would send) survive unpack -> pack byte for
 * byte, at top level and inside the nested OCI spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent.pb-c.h"
#include "oci.pb-c.h"

/* Field 99, wire type 2 (length-delimited): tag varint (99 << 3 | 2) = 794. */
static const uint8_t unknown_field_99[] = {0x9a, 0x06, 0x05, 'h', 'e', 'l', 'l', 'o'};

typedef struct buf {
    uint8_t *data;
    size_t len;
} buf;

static buf pack_message(const ProtobufCMessage *m)
{
    buf b = {.len = protobuf_c_message_get_packed_size(m)};
    b.data = malloc(b.len ? b.len : 1);
    assert_non_null(b.data);
    assert_int_equal(protobuf_c_message_pack(m, b.data), b.len);
    return b;
}

static void buf_append(buf *b, const void *data, size_t len)
{
    b->data = realloc(b->data, b->len + len);
    assert_non_null(b->data);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void buf_append_varint(buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = v & 0x7f;
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    buf_append(b, tmp, n);
}

/* Appends a length-delimited field. */
static void buf_append_ld(buf *b, uint32_t field, const void *data, size_t len)
{
    buf_append_varint(b, (uint64_t)field << 3 | 2);
    buf_append_varint(b, len);
    buf_append(b, data, len);
}

/* A CreateContainerRequest as the Kata shim builds it for a guest-pulled image. */
static buf build_create_container(void)
{
    Grpc__LinuxNamespace ns_pid = GRPC__LINUX_NAMESPACE__INIT, ns_net = GRPC__LINUX_NAMESPACE__INIT,
                         ns_mnt = GRPC__LINUX_NAMESPACE__INIT;
    ns_pid.type = "pid";
    ns_net.type = "network";
    ns_net.path = "/run/netns/podns";
    ns_mnt.type = "mount";
    Grpc__LinuxNamespace *namespaces[] = {&ns_pid, &ns_net, &ns_mnt};

    Grpc__LinuxIDMapping uid_map = GRPC__LINUX_IDMAPPING__INIT;
    uid_map.hostid = 100000;
    uid_map.containerid = 0;
    uid_map.size = 65536;
    Grpc__LinuxIDMapping *uid_maps[] = {&uid_map};

    Grpc__Linux__SysctlEntry sysctl = GRPC__LINUX__SYSCTL_ENTRY__INIT;
    sysctl.key = "net.ipv4.ip_forward";
    sysctl.value = "1";
    Grpc__Linux__SysctlEntry *sysctls[] = {&sysctl};

    Grpc__Linux linux_ = GRPC__LINUX__INIT;
    linux_.n_namespaces = 3;
    linux_.namespaces = namespaces;
    linux_.n_uidmappings = 1;
    linux_.uidmappings = uid_maps;
    linux_.n_sysctl = 1;
    linux_.sysctl = sysctls;
    linux_.cgroupspath = "/kubepods/pod1/ctr1";

    Grpc__Spec__AnnotationsEntry a1 = GRPC__SPEC__ANNOTATIONS_ENTRY__INIT,
                                 a2 = GRPC__SPEC__ANNOTATIONS_ENTRY__INIT;
    a1.key = "io.kubernetes.cri.sandbox-name";
    a1.value = "pod1";
    a2.key = "io.katacontainers.config.hypervisor.default_gpus";
    a2.value = "1";
    Grpc__Spec__AnnotationsEntry *annotations[] = {&a1, &a2};

    Grpc__Mount mount = GRPC__MOUNT__INIT;
    mount.destination = "/data";
    mount.source = "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/pv1/mount";
    mount.type = "bind";
    char *mount_opts[] = {"rbind", "rw"};
    mount.n_options = 2;
    mount.options = mount_opts;
    Grpc__Mount *mounts[] = {&mount};

    Grpc__Process process = GRPC__PROCESS__INIT;
    char *args[] = {"/bin/sh", "-c", "sleep 1"};
    process.n_args = 3;
    process.args = args;
    process.cwd = "/";
    process.oomscoreadj = -998;

    Grpc__Root root = GRPC__ROOT__INIT;
    root.path = "/run/kata-containers/ctr1/rootfs";

    Grpc__Spec spec = GRPC__SPEC__INIT;
    spec.version = "1.1.0";
    spec.process = &process;
    spec.root = &root;
    spec.hostname = "pod1";
    spec.n_mounts = 1;
    spec.mounts = mounts;
    spec.n_annotations = 2;
    spec.annotations = annotations;
    spec.linux = &linux_;

    Grpc__Storage storage = GRPC__STORAGE__INIT;
    storage.driver = "image_guest_pull";
    char *driver_opts[] = {"image_guest_pull={\"metadata\":{}}"};
    storage.n_driver_options = 1;
    storage.driver_options = driver_opts;
    storage.source = "docker.io/library/busybox:latest";
    storage.fstype = "overlay";
    storage.mount_point = "/run/kata-containers/ctr1/rootfs";
    Grpc__FSGroup fsg = GRPC__FSGROUP__INIT;
    fsg.group_id = 2000;
    fsg.group_change_policy = TYPES__FSGROUP_CHANGE_POLICY__OnRootMismatch;
    storage.fs_group = &fsg;
    Grpc__Storage *storages[] = {&storage};

    Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
    req.container_id = "ctr1";
    req.exec_id = "ctr1";
    req.n_storages = 1;
    req.storages = storages;
    req.oci = &spec;
    req.stdout_port = 1025;
    return pack_message(&req.base);
}

static void test_create_container_roundtrip(void **state)
{
    (void)state;
    buf b = build_create_container();

    Grpc__CreateContainerRequest *r = grpc__create_container_request__unpack(NULL, b.len, b.data);
    assert_non_null(r);
    assert_string_equal(r->container_id, "ctr1");
    assert_int_equal(r->stdout_port, 1025);
    assert_int_equal(r->n_storages, 1);
    assert_string_equal(r->storages[0]->driver, "image_guest_pull");
    assert_non_null(r->storages[0]->fs_group);
    assert_int_equal(r->storages[0]->fs_group->group_id, 2000);
    assert_int_equal(r->storages[0]->fs_group->group_change_policy,
                     TYPES__FSGROUP_CHANGE_POLICY__OnRootMismatch);

    Grpc__Spec *spec = r->oci;
    assert_non_null(spec);
    assert_string_equal(spec->version, "1.1.0");
    assert_string_equal(spec->root->path, "/run/kata-containers/ctr1/rootfs");
    assert_int_equal(spec->process->n_args, 3);
    assert_string_equal(spec->process->args[2], "sleep 1");
    assert_int_equal(spec->process->oomscoreadj, -998);
    assert_int_equal(spec->n_mounts, 1);
    assert_string_equal(spec->mounts[0]->type, "bind");
    assert_int_equal(spec->mounts[0]->n_options, 2);

    assert_int_equal(spec->n_annotations, 2);
    assert_string_equal(spec->annotations[0]->key, "io.kubernetes.cri.sandbox-name");
    assert_string_equal(spec->annotations[0]->value, "pod1");
    assert_string_equal(spec->annotations[1]->value, "1");

    Grpc__Linux *l = spec->linux;
    assert_non_null(l);
    assert_int_equal(l->n_namespaces, 3);
    assert_string_equal(l->namespaces[1]->type, "network");
    assert_string_equal(l->namespaces[1]->path, "/run/netns/podns");
    assert_string_equal(l->namespaces[0]->path, "");
    assert_int_equal(l->n_uidmappings, 1);
    assert_int_equal(l->uidmappings[0]->hostid, 100000);
    assert_int_equal(l->uidmappings[0]->size, 65536);
    assert_int_equal(l->n_sysctl, 1);
    assert_string_equal(l->sysctl[0]->key, "net.ipv4.ip_forward");
    assert_string_equal(l->cgroupspath, "/kubepods/pod1/ctr1");

    /* Re-packing what we decoded gives the same bytes. */
    buf again = pack_message(&r->base);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);

    free(again.data);
    grpc__create_container_request__free_unpacked(r, NULL);
    free(b.data);
}

/* A rewrite the forwarder does: append a namespace and an annotation, re-pack. */
static void test_create_container_rewrite(void **state)
{
    (void)state;
    buf b = build_create_container();
    Grpc__CreateContainerRequest *r = grpc__create_container_request__unpack(NULL, b.len, b.data);
    assert_non_null(r);

    Grpc__Spec__AnnotationsEntry extra = GRPC__SPEC__ANNOTATIONS_ENTRY__INIT;
    extra.key = "cdi.k8s.io/peer-pods";
    extra.value = "nvidia.com/gpu=all";
    Grpc__Spec__AnnotationsEntry **ann = calloc(r->oci->n_annotations + 1, sizeof(*ann));
    assert_non_null(ann);
    memcpy(ann, r->oci->annotations, r->oci->n_annotations * sizeof(*ann));
    ann[r->oci->n_annotations] = &extra;
    Grpc__Spec__AnnotationsEntry **old = r->oci->annotations;
    size_t old_n = r->oci->n_annotations;
    r->oci->annotations = ann;
    r->oci->n_annotations = old_n + 1;

    buf out = pack_message(&r->base);
    /* Restore before free_unpacked, which frees what it allocated. */
    r->oci->annotations = old;
    r->oci->n_annotations = old_n;
    free(ann);

    Grpc__CreateContainerRequest *r2 = grpc__create_container_request__unpack(NULL, out.len, out.data);
    assert_non_null(r2);
    assert_int_equal(r2->oci->n_annotations, 3);
    assert_string_equal(r2->oci->annotations[2]->key, "cdi.k8s.io/peer-pods");
    assert_string_equal(r2->oci->annotations[2]->value, "nvidia.com/gpu=all");
    assert_int_equal(r2->oci->linux->n_namespaces, 3);

    grpc__create_container_request__free_unpacked(r2, NULL);
    grpc__create_container_request__free_unpacked(r, NULL);
    free(out.data);
    free(b.data);
}

static void test_unknown_field_top_level(void **state)
{
    (void)state;
    buf b = build_create_container();
    buf_append(&b, unknown_field_99, sizeof(unknown_field_99));

    Grpc__CreateContainerRequest *r = grpc__create_container_request__unpack(NULL, b.len, b.data);
    assert_non_null(r);
    assert_int_equal(r->base.n_unknown_fields, 1);
    assert_int_equal(r->base.unknown_fields[0].tag, 99);
    assert_int_equal(r->base.unknown_fields[0].wire_type, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED);
    /* protobuf-c keeps the length prefix with the data. */
    assert_int_equal(r->base.unknown_fields[0].len, 6);
    assert_memory_equal(r->base.unknown_fields[0].data, "\x05hello", 6);

    buf again = pack_message(&r->base);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);

    free(again.data);
    grpc__create_container_request__free_unpacked(r, NULL);
    free(b.data);
}

/* Unknown fields inside nested messages (Spec, and Linux within Spec) too. */
static void test_unknown_field_nested(void **state)
{
    (void)state;
    Grpc__LinuxNamespace ns = GRPC__LINUX_NAMESPACE__INIT;
    ns.type = "ipc";
    Grpc__LinuxNamespace *namespaces[] = {&ns};
    Grpc__Linux linux_ = GRPC__LINUX__INIT;
    linux_.n_namespaces = 1;
    linux_.namespaces = namespaces;
    buf lin = pack_message(&linux_.base);
    buf_append(&lin, unknown_field_99, sizeof(unknown_field_99));

    /* Spec: Version (1), Linux (8) with its unknown field, then field 99. */
    buf spec = {0};
    buf_append_ld(&spec, 1, "1.1.0", 5);
    buf_append_ld(&spec, 8, lin.data, lin.len);
    buf_append(&spec, unknown_field_99, sizeof(unknown_field_99));

    /* CreateContainerRequest: container_id (1), OCI (6), then field 99. */
    buf req = {0};
    buf_append_ld(&req, 1, "ctr2", 4);
    buf_append_ld(&req, 6, spec.data, spec.len);
    buf_append(&req, unknown_field_99, sizeof(unknown_field_99));

    Grpc__CreateContainerRequest *r = grpc__create_container_request__unpack(NULL, req.len, req.data);
    assert_non_null(r);
    assert_string_equal(r->container_id, "ctr2");
    assert_int_equal(r->base.n_unknown_fields, 1);
    assert_int_equal(r->oci->base.n_unknown_fields, 1);
    assert_int_equal(r->oci->linux->base.n_unknown_fields, 1);
    assert_string_equal(r->oci->linux->namespaces[0]->type, "ipc");

    buf again = pack_message(&r->base);
    assert_int_equal(again.len, req.len);
    assert_memory_equal(again.data, req.data, req.len);

    free(again.data);
    grpc__create_container_request__free_unpacked(r, NULL);
    free(req.data);
    free(spec.data);
    free(lin.data);
}

/* A subset (empty) message keeps every field of the full agent message. */
static void test_subset_message_passthrough(void **state)
{
    (void)state;
    /* StatsContainerRequest{container_id: "ctr1"} as the full protocol encodes it. */
    buf b = {0};
    buf_append_ld(&b, 1, "ctr1", 4);
    Grpc__StatsContainerRequest *r = grpc__stats_container_request__unpack(NULL, b.len, b.data);
    assert_non_null(r);
    assert_int_equal(r->base.n_unknown_fields, 1);
    buf again = pack_message(&r->base);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);
    free(again.data);
    grpc__stats_container_request__free_unpacked(r, NULL);
    free(b.data);
}

static void test_bad_input(void **state)
{
    (void)state;
    buf b = build_create_container();
    /* Every strict prefix that cuts a field short must be rejected. */
    size_t rejected = 0;
    for (size_t n = 1; n < b.len; n++) {
        Grpc__CreateContainerRequest *r = grpc__create_container_request__unpack(NULL, n, b.data);
        if (r)
            grpc__create_container_request__free_unpacked(r, NULL);
        else
            rejected++;
    }
    assert_true(rejected > b.len / 2);

    /* Wrong wire type for field 1 (varint where a string is declared). */
    const uint8_t wrong_type[] = {0x08, 0x01};
    assert_null(grpc__create_container_request__unpack(NULL, sizeof(wrong_type), wrong_type));
    /* Length running past the end. */
    const uint8_t overlong[] = {0x0a, 0x7f, 'x'};
    assert_null(grpc__create_container_request__unpack(NULL, sizeof(overlong), overlong));
    free(b.data);
}

static void test_service_descriptor(void **state)
{
    (void)state;
    const ProtobufCServiceDescriptor *d = &grpc__agent_service__descriptor;
    /* protobuf-c's service name is the wire service string. */
    assert_string_equal(d->name, "grpc.AgentService");
    assert_int_equal(d->n_methods, 42);
    const char *expected[] = {"CreateContainer", "StartContainer", "RemoveContainer", "ExecProcess",
                              "SignalProcess",   "WaitProcess",    "UpdateContainer", "GetGuestDetails",
                              "CopyFile",        "GetOOMEvent",    "SetPolicy",       "CreateSandbox",
                              "DestroySandbox",  "ReadStdout",     "WriteStdin",      "MemAgentCompactSet"};
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        assert_non_null(protobuf_c_service_descriptor_get_method_by_name(d, expected[i]));
    const ProtobufCMethodDescriptor *m =
        protobuf_c_service_descriptor_get_method_by_name(d, "CreateContainer");
    assert_ptr_equal(m->input, &grpc__create_container_request__descriptor);
    assert_string_equal(m->output->name, "google.protobuf.Empty");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_container_roundtrip), cmocka_unit_test(test_create_container_rewrite),
        cmocka_unit_test(test_unknown_field_top_level),    cmocka_unit_test(test_unknown_field_nested),
        cmocka_unit_test(test_subset_message_passthrough), cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_service_descriptor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
