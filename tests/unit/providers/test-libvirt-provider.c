/* The libvirt provider against libvirt's in-process test driver
 * (test:///default): create/delete round trips, every failure path leaves no
 * domain and no volume behind, idempotency, reconnect, shutdown. The test
 * driver keeps its state per connection, so each test seeds and inspects the
 * provider's own connection. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "libvirt-internal.h"
#include "lv-test-util.h"
#include "pod-volumes.h"
#include "provider.h"

#define POOL "default-pool"
#define BASE "podvm-base.qcow2"
#define BASE_SIZE (UINT64_C(64) << 20)
#define GIB (UINT64_C(1) << 30)

typedef struct fixture {
    uv_loop_t loop;
    caa_provider *prov;
    virConnectPtr conn; /* the provider's connection */
    char *node_xml;     /* custom test driver state file, or NULL */
} fixture;

/* Result of one asynchronous call. */
typedef struct result {
    bool called;
    int calls;
    int status;
    caa_instance *inst;
    caa_instance **list;
    caa_error *err;
} result;

static void result_done(result *r)
{
    caa_instance_free(r->inst);
    caa_instance_list_free(r->list);
    caa_error_free(r->err);
    memset(r, 0, sizeof(*r));
}

static void on_instance(int status, caa_instance *inst, caa_error *err, void *opaque)
{
    result *r = opaque;
    r->called = true;
    r->calls++;
    r->status = status;
    r->inst = inst;
    r->err = err;
}

static void on_done(int status, caa_error *err, void *opaque)
{
    result *r = opaque;
    r->called = true;
    r->calls++;
    r->status = status;
    r->err = err;
}

static void on_list(int status, caa_instance **list, caa_error *err, void *opaque)
{
    result *r = opaque;
    r->called = true;
    r->calls++;
    r->status = status;
    r->list = list;
    r->err = err;
}

static void guard_fired(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void wait_for(fixture *f, result *r)
{
    bool expired = false;
    uv_timer_t guard;
    uv_timer_init(&f->loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, guard_fired, 60000, 0);
    while (!r->called && !expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (!r->called)
        fail_msg("callback not called within 60 s");
}

static void quiet(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static void create_volume(virConnectPtr conn, const char *name, uint64_t bytes)
{
    virStoragePoolPtr pool = virStoragePoolLookupByName(conn, POOL);
    assert_non_null(pool);
    char xml[512];
    snprintf(xml, sizeof(xml),
             "<volume><name>%s</name><capacity unit='bytes'>%llu</capacity>"
             "<target><format type='qcow2'/></target></volume>",
             name, (unsigned long long)bytes);
    virStorageVolPtr vol = virStorageVolCreateXML(pool, xml, 0);
    if (!vol)
        fail_msg("creating %s: %s", name, virGetLastErrorMessage());
    virStorageVolFree(vol);
    virStoragePoolFree(pool);
}

/* The fixture of the running test, torn down by cmocka even when the test
 * fails (so one failure does not leave test-driver state to the next). */
static fixture *current;

static void teardown_fixture(fixture *f);

static int cleanup_current(void **state)
{
    (void)state;
    if (current)
        teardown_fixture(current);
    return 0;
}

/* Sets up a provider with the given flags (plus test defaults). */
static void setup_with(fixture *f, const char *uri, int argc, const char **argv, bool seed_base)
{
    memset(f, 0, sizeof(*f));
    current = f;
    virSetErrorFunc(NULL, quiet);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->prov = caa_provider_new(&caa_libvirt_provider, &f->loop);
    char *args[32];
    int n = 0;
    char uri_arg[600];
    snprintf(uri_arg, sizeof(uri_arg), "-uri=%s", uri ? uri : "test:///default");
    args[n++] = uri_arg;
    args[n++] = "-pool-name=" POOL;
    args[n++] = "-ip-wait=5s";
    for (int i = 0; i < argc; i++)
        args[n++] = (char *)argv[i];
    caa_option_set set = caa_provider_option_set(f->prov);
    caa_error *err = NULL;
    if (caa_options_parse(&set, 1, n, args, &err) != 0)
        fail_msg("options: %s", caa_error_msg(err));
    if (caa_provider_init(f->prov, &err) < 0)
        fail_msg("init: %s", caa_error_msg(err));
    f->conn = caa_libvirt_test_connection(f->prov->priv, &err);
    if (!f->conn)
        fail_msg("connection: %s", caa_error_msg(err));
    if (seed_base)
        create_volume(f->conn, BASE, BASE_SIZE);
}

static void setup(fixture *f, int argc, const char **argv)
{
    setup_with(f, NULL, argc, argv, true);
}

static void teardown_fixture(fixture *f)
{
    current = NULL;
    caa_provider_free(f->prov);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    if (f->conn)
        virConnectClose(f->conn);
    if (f->node_xml)
        lvt_remove_temp(f->node_xml);
}

/* Domains other than the test driver's built-in "test". */
static int count_domains(virConnectPtr conn)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);
    assert_true(n >= 0);
    int ours = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(virDomainGetName(doms[i]), "test") != 0)
            ours++;
        virDomainFree(doms[i]);
    }
    free(doms);
    return ours;
}

/* Volumes in the pool other than those named in keep (NULL-terminated). */
static int count_volumes(virConnectPtr conn, const char *const *keep)
{
    virStoragePoolPtr pool = virStoragePoolLookupByName(conn, POOL);
    assert_non_null(pool);
    virStorageVolPtr *vols = NULL;
    int n = virStoragePoolListAllVolumes(pool, &vols, 0);
    assert_true(n >= 0);
    int other = 0;
    for (int i = 0; i < n; i++) {
        bool kept = false;
        for (size_t k = 0; keep && keep[k]; k++)
            kept |= strcmp(virStorageVolGetName(vols[i]), keep[k]) == 0;
        if (!kept) {
            lvt_note("present: volume %s\n", virStorageVolGetName(vols[i]));
            other++;
        }
        virStorageVolFree(vols[i]);
    }
    free(vols);
    virStoragePoolFree(pool);
    return other;
}

static const char *const only_base[] = {BASE, NULL};

static void assert_nothing_left(fixture *f)
{
    assert_int_equal(count_domains(f->conn), 0);
    assert_int_equal(count_volumes(f->conn, only_base), 0);
}

static caa_instance_spec spec_for(const char *pod, const char *sandbox)
{
    static char names[16][128];
    static int next;
    char *name = names[next++ % 16];
    snprintf(name, 128, "podvm-%.60s-%.8s", pod, sandbox);
    static const char ud[] = "#cloud-config\nwrite_files: []\n";
    return (caa_instance_spec){
        .instance_name = name,
        .sandbox_id = sandbox,
        .pod_name = pod,
        .pod_namespace = "default",
        .vcpus = 3,
        .memory_mib = 1024,
        .user_data = ud,
        .user_data_len = sizeof(ud) - 1,
    };
}

static void create(fixture *f, const caa_instance_spec *spec, result *r)
{
    caa_error *err = NULL;
    memset(r, 0, sizeof(*r));
    int rc = caa_provider_create_instance(f->prov, spec, on_instance, r, &err);
    if (rc < 0)
        fail_msg("create_instance refused: %s", caa_error_msg(err));
    /* Never called from inside the starting call. */
    assert_false(r->called);
    wait_for(f, r);
    assert_int_equal(r->calls, 1);
}

static void delete (fixture *f, const char *id, result *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(caa_provider_delete_instance(f->prov, id, on_done, r, NULL), 0);
    assert_false(r->called);
    wait_for(f, r);
}

static void expect_error(result *r, int code, const char *needle)
{
    if (r->status != code)
        fail_msg("status %d (%s), expected %d", r->status, r->err ? caa_error_msg(r->err) : "-", code);
    assert_non_null(r->err);
    if (needle && !strstr(caa_error_msg(r->err), needle))
        fail_msg("error \"%s\" does not mention \"%s\"", caa_error_msg(r->err), needle);
}

static char *volume_xml(virConnectPtr conn, const char *name)
{
    virStoragePoolPtr pool = virStoragePoolLookupByName(conn, POOL);
    virStorageVolPtr vol = virStorageVolLookupByName(pool, name);
    assert_non_null(vol);
    char *xml = virStorageVolGetXMLDesc(vol, 0);
    virStorageVolFree(vol);
    virStoragePoolFree(pool);
    return xml;
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 0, NULL);
    caa_instance_spec spec = spec_for("nginx", "0123abcd4567ef89");
    result r;
    create(&f, &spec, &r);
    if (r.status != 0)
        fail_msg("create: %s", caa_error_msg(r.err));
    assert_non_null(r.inst);
    assert_int_equal(strlen(r.inst->id), 36);
    assert_string_equal(r.inst->name, "podvm-nginx-0123abcd");
    assert_non_null(r.inst->ips);
    assert_non_null(r.inst->ips[0]);
    lvt_note("instance %s ip %s\n", r.inst->id, r.inst->ips[0]);

    /* The domain: running, ours, sized from the spec, TCG on the test driver. */
    virDomainPtr dom = virDomainLookupByUUIDString(f.conn, r.inst->id);
    assert_non_null(dom);
    assert_int_equal(virDomainIsActive(dom), 1);
    char *xml = virDomainGetXMLDesc(dom, 0);
    assert_non_null(strstr(xml, "<domain type='qemu'"));
    assert_non_null(strstr(xml, ">3</vcpu>"));
    assert_non_null(strstr(xml, "unit='KiB'>1048576</memory>"));
    assert_non_null(strstr(xml, "volume='podvm-nginx-0123abcd-root.qcow2'"));
    assert_non_null(strstr(xml, "volume='podvm-nginx-0123abcd-cloudinit.iso'"));
    assert_non_null(strstr(xml, "0123abcd4567ef89"));
    free(xml);
    virDomainFree(dom);
    /* Root volume: qcow2 over the base, at least -root-disk-size (10 GiB). */
    xml = volume_xml(f.conn, "podvm-nginx-0123abcd-root.qcow2");
    assert_non_null(strstr(xml, "<capacity unit='bytes'>10737418240</capacity>"));
    assert_non_null(strstr(xml, "<path>/default-pool/podvm-base.qcow2</path>"));
    free(xml);
    xml = volume_xml(f.conn, "podvm-nginx-0123abcd-cloudinit.iso");
    assert_non_null(strstr(xml, "<format type='raw'/>"));
    free(xml);

    /* get and list find it. */
    char *id = strdup(r.inst->id);
    result g = {0};
    assert_int_equal(caa_provider_get_instance(f.prov, id, on_instance, &g, NULL), 0);
    wait_for(&f, &g);
    if (g.status != 0)
        fail_msg("get: %s", caa_error_msg(g.err));
    assert_string_equal(g.inst->id, id);
    assert_string_equal(g.inst->ips[0], r.inst->ips[0]);
    result_done(&g);
    result l = {0};
    assert_int_equal(caa_provider_list_instances(f.prov, on_list, &l, NULL), 0);
    wait_for(&f, &l);
    assert_int_equal(l.status, 0);
    assert_non_null(l.list[0]);
    assert_string_equal(l.list[0]->id, id);
    assert_null(l.list[1]); /* the built-in "test" domain is not ours */
    result_done(&l);
    result_done(&r);

    /* Delete, then delete again: both succeed; nothing is left. */
    delete (&f, id, &r);
    assert_int_equal(r.status, 0);
    result_done(&r);
    assert_nothing_left(&f);
    delete (&f, id, &r);
    assert_int_equal(r.status, 0);
    result_done(&r);
    assert_int_equal(caa_provider_get_instance(f.prov, id, on_instance, &g, NULL), 0);
    wait_for(&f, &g);
    expect_error(&g, -ENOENT, NULL);
    result_done(&g);
    free(id);
    teardown_fixture(&f);
}

static void test_capacity_and_image(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 1, (const char *[]){"-root-disk-size=1"});
    create_volume(f.conn, "big-image.qcow2", 3 * GIB);
    caa_instance_spec spec = spec_for("img", "feedbeef00000000");
    spec.image = "big-image.qcow2";
    spec.vcpus = 0; /* provider defaults */
    spec.memory_mib = 0;
    result r;
    create(&f, &spec, &r);
    assert_int_equal(r.status, 0);
    char *xml = volume_xml(f.conn, "podvm-img-feedbeef-root.qcow2");
    assert_non_null(strstr(xml, "<capacity unit='bytes'>3221225472</capacity>")); /* base is bigger */
    assert_non_null(strstr(xml, "<path>/default-pool/big-image.qcow2</path>"));
    free(xml);
    virDomainPtr dom = virDomainLookupByUUIDString(f.conn, r.inst->id);
    xml = virDomainGetXMLDesc(dom, 0);
    assert_non_null(strstr(xml, ">2</vcpu>"));                   /* -cpu default */
    assert_non_null(strstr(xml, "unit='KiB'>8388608</memory>")); /* -memory default */
    free(xml);
    virDomainFree(dom);
    char *id = strdup(r.inst->id);
    result_done(&r);
    delete (&f, id, &r);
    assert_int_equal(r.status, 0);
    result_done(&r);
    free(id);
    const char *keep[] = {BASE, "big-image.qcow2", NULL};
    assert_int_equal(count_volumes(f.conn, keep), 0);
    assert_int_equal(count_domains(f.conn), 0);
    teardown_fixture(&f);
}

static void test_missing_pool(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 1, (const char *[]){"-pool-name=no-such-pool"});
    caa_instance_spec spec = spec_for("p", "1111111111111111");
    result r;
    create(&f, &spec, &r);
    expect_error(&r, -ENOENT, "no-such-pool");
    assert_null(r.inst);
    /* libvirt's own words are passed on. */
    assert_non_null(strstr(caa_error_msg(r.err), "not found"));
    result_done(&r);
    assert_nothing_left(&f);
    teardown_fixture(&f);
}

static void test_missing_base_volume(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 1, (const char *[]){"-vol-name=missing.qcow2"});
    caa_instance_spec spec = spec_for("p", "2222222222222222");
    result r;
    create(&f, &spec, &r);
    expect_error(&r, -ENOENT, "missing.qcow2");
    assert_null(r.inst);
    result_done(&r);
    /* The image annotation is looked up the same way. */
    spec.image = "also-missing";
    create(&f, &spec, &r);
    expect_error(&r, -ENOENT, "also-missing");
    result_done(&r);
    assert_nothing_left(&f);
    teardown_fixture(&f);
}

static void test_define_failure(void **state)
{
    (void)state;
    static fixture f;
    /* Valid syntax for us, beyond libvirt's CPU bitmap: define fails. */
    setup(&f, 1, (const char *[]){"-cpuset=70000"});
    caa_instance_spec spec = spec_for("p", "3333333333333333");
    result r;
    create(&f, &spec, &r);
    expect_error(&r, -EINVAL, "Failed to parse bitmap");
    assert_non_null(strstr(caa_error_msg(r.err), "defining domain"));
    assert_null(r.inst);
    result_done(&r);
    assert_nothing_left(&f); /* root volume and ISO were removed again */
    teardown_fixture(&f);
}

static void test_start_failure(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 0, NULL);
    caa_libvirt_test_set_faults(f.prov->priv, LV_FAULT_START_RACE);
    caa_instance_spec spec = spec_for("p", "4444444444444444");
    result r;
    create(&f, &spec, &r);
    /* The test driver reports it as an internal error, QEMU's as invalid operation. */
    assert_true(r.status < 0);
    assert_non_null(r.err);
    assert_non_null(strstr(caa_error_msg(r.err), "starting domain"));
    assert_non_null(strstr(caa_error_msg(r.err), "already running"));
    assert_null(r.inst);
    result_done(&r);
    assert_nothing_left(&f); /* destroyed, undefined, volumes deleted */
    teardown_fixture(&f);
}

static void test_cidata_volume_failure(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 0, NULL);
    /* Fill the pool so the 10 GiB root volume fits and the ISO does not. */
    virStoragePoolPtr pool = virStoragePoolLookupByName(f.conn, POOL);
    virStoragePoolInfo info;
    assert_int_equal(virStoragePoolGetInfo(pool, &info), 0);
    virStoragePoolFree(pool);
    create_volume(f.conn, "filler", info.available - 10 * GIB - 4096);
    caa_instance_spec spec = spec_for("p", "5555555555555555");
    result r;
    create(&f, &spec, &r);
    expect_error(&r, -EIO, "cloudinit.iso");
    assert_non_null(strstr(caa_error_msg(r.err), "Not enough free space"));
    result_done(&r);
    const char *keep[] = {BASE, "filler", NULL};
    assert_int_equal(count_volumes(f.conn, keep), 0); /* the root volume is gone again */
    assert_int_equal(count_domains(f.conn), 0);
    teardown_fixture(&f);
}

static void test_root_volume_failure(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 1, (const char *[]){"-root-disk-size=200"}); /* the test pool has 100 GiB */
    caa_instance_spec spec = spec_for("p", "6666666666666666");
    result r;
    create(&f, &spec, &r);
    expect_error(&r, -EIO, "root.qcow2");
    result_done(&r);
    assert_nothing_left(&f);
    teardown_fixture(&f);
}

static void test_address_timeout(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 1, (const char *[]){"-ip-wait=1500ms"});
    caa_libvirt_test_set_faults(f.prov->priv, LV_FAULT_NO_ADDRESS);
    caa_instance_spec spec = spec_for("p", "7777777777777777");
    result r;
    uint64_t t0 = uv_hrtime();
    create(&f, &spec, &r);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    expect_error(&r, -ETIMEDOUT, "DHCP lease");
    assert_null(r.inst);
    assert_true(ms >= 1400 && ms < 10000);
    result_done(&r);
    assert_nothing_left(&f);
    teardown_fixture(&f);
}

static void test_cleanup_failure_returns_partial(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 1, (const char *[]){"-ip-wait=200ms"});
    caa_libvirt_test_set_faults(f.prov->priv, LV_FAULT_NO_ADDRESS | LV_FAULT_CLEANUP);
    caa_instance_spec spec = spec_for("p", "8888888888888888");
    result r;
    create(&f, &spec, &r);
    expect_error(&r, -ETIMEDOUT, "cleanup failed too");
    /* A started domain is left: the caller gets its id to delete it. */
    assert_non_null(r.inst);
    assert_non_null(r.inst->id);
    assert_int_equal(count_domains(f.conn), 1);
    char *id = strdup(r.inst->id);
    result_done(&r);
    caa_libvirt_test_set_faults(f.prov->priv, 0);
    delete (&f, id, &r);
    assert_int_equal(r.status, 0);
    result_done(&r);
    free(id);
    assert_nothing_left(&f);

    teardown_fixture(&f);

    /* Cleanup failing when no domain was started: no partial instance; the
     * leftovers are named in the error (and defined-only domains would be
     * found by list_instances). */
    setup(&f, 1, (const char *[]){"-cpuset=70000"});
    caa_libvirt_test_set_faults(f.prov->priv, LV_FAULT_CLEANUP);
    spec = spec_for("p", "8888888888888889");
    create(&f, &spec, &r);
    expect_error(&r, -EINVAL, "cleanup failed too");
    assert_null(r.inst);
    result_done(&r);
    assert_int_equal(count_domains(f.conn), 0);
    assert_int_equal(count_volumes(f.conn, only_base), 2);
    teardown_fixture(&f);
}

static void test_idempotent_create(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 0, NULL);
    caa_instance_spec spec = spec_for("same", "9999999999999999");
    result a, b;
    create(&f, &spec, &a);
    assert_int_equal(a.status, 0);
    /* Same pod again (daemon retry): the existing domain is returned. */
    create(&f, &spec, &b);
    assert_int_equal(b.status, 0);
    assert_string_equal(a.inst->id, b.inst->id);
    assert_non_null(b.inst->ips);
    assert_int_equal(count_domains(f.conn), 1);
    /* Same name, other sandbox: a conflict, and the existing one stays. */
    caa_instance_spec other = spec;
    other.sandbox_id = "9999999999999999-other";
    result c;
    create(&f, &other, &c);
    expect_error(&c, -EEXIST, "another sandbox");
    assert_null(c.inst);
    assert_int_equal(count_domains(f.conn), 1);
    result_done(&c);
    char *id = strdup(a.inst->id);
    result_done(&a);
    result_done(&b);
    delete (&f, id, &a);
    assert_int_equal(a.status, 0);
    result_done(&a);
    free(id);
    assert_nothing_left(&f);
    teardown_fixture(&f);
}

static void test_concurrent_creates(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 0, NULL);
    const char *sandboxes[] = {"aaaaaaaa00000000", "bbbbbbbb00000000", "cccccccc00000000",
                               "dddddddd00000000"};
    caa_instance_spec specs[4];
    result r[4];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 4; i++) {
        specs[i] = spec_for("many", sandboxes[i]);
        assert_int_equal(caa_provider_create_instance(f.prov, &specs[i], on_instance, &r[i], NULL), 0);
    }
    for (int i = 0; i < 4; i++) {
        wait_for(&f, &r[i]);
        if (r[i].status != 0)
            fail_msg("create %d: %s", i, caa_error_msg(r[i].err));
    }
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            assert_string_not_equal(r[i].inst->id, r[j].inst->id);
    assert_int_equal(count_domains(f.conn), 4);
    result d[4];
    memset(d, 0, sizeof(d));
    for (int i = 0; i < 4; i++)
        assert_int_equal(caa_provider_delete_instance(f.prov, r[i].inst->id, on_done, &d[i], NULL), 0);
    for (int i = 0; i < 4; i++) {
        wait_for(&f, &d[i]);
        assert_int_equal(d[i].status, 0);
        result_done(&d[i]);
        result_done(&r[i]);
    }
    assert_nothing_left(&f);
    teardown_fixture(&f);
}

static const char node_xml[] =
    "<node>\n"
    "  <network><name>default</name><bridge name='ppbr0'/>\n"
    "    <ip address='198.18.0.1' netmask='255.255.255.0'><dhcp><range start='198.18.0.100' "
    "end='198.18.0.200'/>"
    "</dhcp></ip></network>\n"
    "  <pool type='dir'><name>default-pool</name><target><path>/default-pool</path></target>\n"
    "    <volume type='file'><name>podvm-base.qcow2</name><capacity unit='MiB'>64</capacity>\n"
    "      <target><path>/default-pool/podvm-base.qcow2</path><format type='qcow2'/></target></volume>\n"
    "  </pool>\n"
    "</node>\n";

/* A lost connection is reopened once and the operation repeated. The node
 * file gives every new test-driver connection the same initial state. */
static void test_reconnect(void **state)
{
    (void)state;
    char *path = lvt_write_temp("node.xml", node_xml, strlen(node_xml));
    char uri[600];
    snprintf(uri, sizeof(uri), "test://%s", path);
    static fixture f;
    setup_with(&f, uri, 0, NULL, false);
    f.node_xml = path;
    void *priv = f.prov->priv;
    assert_int_equal(caa_libvirt_test_reconnects(priv), 0);

    caa_libvirt_test_break_connection(priv, 1);
    caa_instance_spec spec = spec_for("re", "abababab12121212");
    result r;
    create(&f, &spec, &r);
    if (r.status != 0)
        fail_msg("create after a lost connection: %s", caa_error_msg(r.err));
    assert_int_equal(caa_libvirt_test_reconnects(priv), 1);
    assert_non_null(strstr(r.inst->ips[0], "198.18.0."));
    char *id = strdup(r.inst->id);
    result_done(&r);

    /* The domain lives on the new connection. */
    virConnectClose(f.conn);
    f.conn = caa_libvirt_test_connection(priv, NULL);
    assert_int_equal(count_domains(f.conn), 1);

    /* Two losses in a row: the error is reported (one retry only). */
    caa_libvirt_test_break_connection(priv, 2);
    result l = {0};
    assert_int_equal(caa_provider_list_instances(f.prov, on_list, &l, NULL), 0);
    wait_for(&f, &l);
    expect_error(&l, LV_ECONN, NULL);
    assert_null(l.list);
    result_done(&l);
    assert_int_equal(caa_libvirt_test_reconnects(priv), 2);
    (void)id;
    free(id);
    teardown_fixture(&f);
}

static void test_delete_rules(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 0, NULL);
    result r;
    /* Unknown UUID: already gone. */
    delete (&f, "01234567-89ab-cdef-0123-456789abcdef", &r);
    assert_int_equal(r.status, 0);
    result_done(&r);
    /* Not a UUID: refused synchronously, callback never called. */
    caa_error *err = NULL;
    memset(&r, 0, sizeof(r));
    assert_int_equal(caa_provider_delete_instance(f.prov, "i-0123", on_done, &r, &err), -EINVAL);
    caa_error_free(err);
    err = NULL;
    assert_int_equal(caa_provider_get_instance(f.prov, "x'<>", on_instance, &r, &err), -EINVAL);
    caa_error_free(err);
    err = NULL;
    uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_false(r.called);
    /* A domain the adaptor did not create is never deleted. */
    virDomainPtr test = virDomainLookupByName(f.conn, "test");
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainGetUUIDString(test, uuid);
    virDomainFree(test);
    delete (&f, uuid, &r);
    expect_error(&r, -EPERM, "not created by the adaptor");
    result_done(&r);
    result g = {0};
    assert_int_equal(caa_provider_get_instance(f.prov, uuid, on_instance, &g, NULL), 0);
    wait_for(&f, &g);
    expect_error(&g, -ENOENT, "not an adaptor instance");
    result_done(&g);
    test = virDomainLookupByName(f.conn, "test");
    assert_non_null(test);
    virDomainFree(test);
    teardown_fixture(&f);
}

/* Volumes whose domain never got defined or was undefined by someone else:
 * listed under their instance name with the UUID derived from it, and
 * deleted by that UUID; volumes of a domain that exists (even a foreign one)
 * and volumes not named like a pod's stay. */
static void list_has(result *r, const char *id, const char *name, bool want)
{
    bool found = false;
    for (size_t i = 0; r->list && r->list[i]; i++)
        found |= strcmp(r->list[i]->name, name) == 0 && (!id || strcmp(r->list[i]->id, id) == 0);
    if (found != want)
        fail_msg("instance %s %s listed", name, want ? "not" : "wrongly");
}

static void list(fixture *f, result *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(caa_provider_list_instances(f->prov, on_list, r, NULL), 0);
    wait_for(f, r);
    assert_int_equal(r->status, 0);
}

static void test_volumes_without_domain(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 0, NULL);
    caa_instance_spec spec = spec_for("web", "feedbeef00112233");
    result r;
    create(&f, &spec, &r);
    assert_int_equal(r.status, 0);
    char *id = strdup(r.inst->id);
    char derived[VIR_UUID_STRING_BUFLEN];
    assert_int_equal(lv_instance_uuid("podvm-web-feedbeef", derived), 0);
    assert_string_equal(id, derived);
    result_done(&r);
    /* Someone undefines the domain; its volumes stay behind. */
    virDomainPtr dom = virDomainLookupByUUIDString(f.conn, id);
    assert_non_null(dom);
    assert_int_equal(virDomainDestroy(dom), 0);
    assert_int_equal(virDomainUndefine(dom), 0);
    virDomainFree(dom);
    /* A create killed before its define; a foreign domain with pod-like
     * volumes; a volume that is nobody's pod volume. */
    create_volume(f.conn, "podvm-lonely-aaaaaaaa-root.qcow2", 1 << 20);
    create_volume(f.conn, "podvm-other-12345678-root.qcow2", 1 << 20);
    create_volume(f.conn, "bystander-root.qcow2", 1 << 20);
    create_volume(f.conn, "podvm--root.qcow2", 1 << 20);
    virDomainPtr foreign =
        virDomainDefineXML(f.conn, "<domain type='test'><name>podvm-other-12345678</name>"
                                   "<memory>131072</memory><os><type>hvm</type></os></domain>");
    assert_non_null(foreign);

    list(&f, &r);
    list_has(&r, id, "podvm-web-feedbeef", true);
    list_has(&r, NULL, "podvm-lonely-aaaaaaaa", true);
    list_has(&r, NULL, "podvm-other-12345678", false);
    char *lonely = NULL;
    for (size_t i = 0; r.list[i]; i++)
        if (strcmp(r.list[i]->name, "podvm-lonely-aaaaaaaa") == 0)
            lonely = strdup(r.list[i]->id);
    result_done(&r);

    delete (&f, id, &r);
    assert_int_equal(r.status, 0);
    result_done(&r);
    const char *const keep[] = {BASE,
                                "podvm-lonely-aaaaaaaa-root.qcow2",
                                "podvm-other-12345678-root.qcow2",
                                "bystander-root.qcow2",
                                "podvm--root.qcow2",
                                NULL};
    assert_int_equal(count_volumes(f.conn, keep), 0);
    assert_int_equal(count_volumes(f.conn, only_base), 4);
    /* Idempotent: nothing of it is left to delete. */
    delete (&f, id, &r);
    assert_int_equal(r.status, 0);
    result_done(&r);
    assert_int_equal(count_volumes(f.conn, only_base), 4);

    delete (&f, lonely, &r);
    assert_int_equal(r.status, 0);
    result_done(&r);
    assert_int_equal(count_volumes(f.conn, only_base), 3);
    list(&f, &r);
    list_has(&r, NULL, "podvm-lonely-aaaaaaaa", false);
    list_has(&r, NULL, "podvm-web-feedbeef", false);
    result_done(&r);

    assert_int_equal(virDomainUndefine(foreign), 0);
    virDomainFree(foreign);
    free(lonely);
    free(id);
    teardown_fixture(&f);
}

/* Several worker nodes may share one libvirt host: the list (what the orphan
 * sweep deletes from) holds only the domains this node made, never another
 * node's, nor adaptor domains that predate the recorded node; a lookup by
 * id still finds them. */
static virDomainPtr define_adaptor_domain(virConnectPtr conn, const char *name, const char *node_element)
{
    char xml[1024];
    snprintf(xml, sizeof(xml),
             "<domain type='test'><name>%s</name><memory>131072</memory><os><type>hvm</type></os>"
             "<metadata><caa:instance xmlns:caa='" LV_METADATA_NS "'><caa:sandbox-id>%s</caa:sandbox-id>%s"
             "</caa:instance></metadata></domain>",
             name, name, node_element);
    virDomainPtr dom = virDomainDefineXML(conn, xml);
    assert_non_null(dom);
    return dom;
}

static void test_list_this_node_only(void **state)
{
    (void)state;
    static fixture f;
    const char *argv[] = {"-node-name=worker-a"};
    setup(&f, 1, argv);
    caa_instance_spec spec = spec_for("mine", "a0a0a0a0b1b1b1b1");
    result r;
    create(&f, &spec, &r);
    assert_int_equal(r.status, 0);
    char *id = strdup(r.inst->id);
    result_done(&r);
    virDomainPtr dom = virDomainLookupByUUIDString(f.conn, id);
    char *xml = virDomainGetXMLDesc(dom, 0);
    assert_non_null(strstr(xml, ">worker-a</caa:node>"));
    free(xml);
    virDomainFree(dom);
    virDomainPtr other =
        define_adaptor_domain(f.conn, "podvm-theirs-c2c2c2c2", "<caa:node>worker-b</caa:node>");
    virDomainPtr legacy = define_adaptor_domain(f.conn, "podvm-old-d3d3d3d3", "");

    list(&f, &r);
    list_has(&r, id, "podvm-mine-a0a0a0a0", true);
    list_has(&r, NULL, "podvm-theirs-c2c2c2c2", false);
    list_has(&r, NULL, "podvm-old-d3d3d3d3", false);
    result_done(&r);
    char other_id[VIR_UUID_STRING_BUFLEN];
    virDomainGetUUIDString(other, other_id);
    result g = {0};
    assert_int_equal(caa_provider_get_instance(f.prov, other_id, on_instance, &g, NULL), 0);
    wait_for(&f, &g);
    assert_int_equal(g.status, 0);
    result_done(&g);

    delete (&f, id, &r);
    assert_int_equal(r.status, 0);
    result_done(&r);
    assert_int_equal(virDomainUndefine(other), 0);
    assert_int_equal(virDomainUndefine(legacy), 0);
    virDomainFree(other);
    virDomainFree(legacy);
    free(id);
    assert_nothing_left(&f);
    teardown_fixture(&f);
}

static void test_validate_spec(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 0, NULL);
    struct {
        const char *what;
        caa_instance_spec spec;
        int code;
    } cases[] = {
        {"upper case name", spec_for("X", "1234567812345678"), -EINVAL},
        {"quote in name", spec_for("a'b", "1234567812345678"), -EINVAL},
        {"long name",
         spec_for("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "1234567812345678"), -EINVAL},
        {"newline in image", spec_for("a", "1234567812345678"), -EINVAL},
        {"control char in pod", spec_for("a", "1234567812345678"), -EINVAL},
        {"gpus", spec_for("a", "1234567812345678"), -EOPNOTSUPP},
        {"vcpus", spec_for("a", "1234567812345678"), -EINVAL},
        {"memory", spec_for("a", "1234567812345678"), -EINVAL},
        {"bad tag", spec_for("a", "1234567812345678"), -EINVAL},
    };
    cases[3].spec.image = "base.qcow2\n<evil/>";
    cases[4].spec.pod_name = "a\x1b[31m";
    cases[5].spec.gpus = 1;
    cases[6].spec.vcpus = 5000;
    cases[7].spec.memory_mib = -1;
    char *const tags[] = {"a=b\n", NULL};
    cases[8].spec.tags = tags;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result r = {0};
        caa_error *err = NULL;
        int rc = caa_provider_create_instance(f.prov, &cases[i].spec, on_instance, &r, &err);
        if (rc != cases[i].code)
            fail_msg("%s: %d (%s)", cases[i].what, rc, err ? caa_error_msg(err) : "-");
        caa_error_free(err);
        uv_run(&f.loop, UV_RUN_NOWAIT);
        assert_false(r.called);
    }
    assert_nothing_left(&f);
    teardown_fixture(&f);
}

static void test_hostile_names_escaped(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 0, NULL);
    caa_instance_spec spec = spec_for("esc", "e5c0e5c0e5c0e5c0");
    spec.pod_name = "nginx'\"/><evil/>&]]>";
    spec.pod_namespace = "ns<x>";
    char *const tags[] = {"k'=<v>&", NULL};
    spec.tags = tags;
    result r;
    create(&f, &spec, &r);
    if (r.status != 0)
        fail_msg("create: %s", caa_error_msg(r.err));
    char *md = NULL;
    virDomainPtr dom = virDomainLookupByUUIDString(f.conn, r.inst->id);
    md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                              "https://confidentialcontainers.org/cloud-api-adaptor-c/libvirt/1", 0);
    assert_non_null(md);
    assert_null(strstr(md, "<evil"));
    assert_non_null(strstr(md, "&lt;evil/&gt;"));
    free(md);
    virDomainFree(dom);
    char *id = strdup(r.inst->id);
    result_done(&r);
    delete (&f, id, &r);
    assert_int_equal(r.status, 0);
    result_done(&r);
    free(id);
    /* An image name that is not a volume: nothing created. */
    spec.image = "x'/><disk type='file'/>";
    create(&f, &spec, &r);
    expect_error(&r, -ENOENT, NULL);
    result_done(&r);
    assert_nothing_left(&f);
    teardown_fixture(&f);
}

static void test_verify_config(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 0, NULL);
    caa_error *err = NULL;
    if (caa_provider_verify_config(f.prov, &err) != 0)
        fail_msg("verify: %s", caa_error_msg(err));
    teardown_fixture(&f);

    setup(&f, 1, (const char *[]){"-network-name=nonet"});
    assert_int_equal(caa_provider_verify_config(f.prov, &err), -ENOENT);
    assert_non_null(strstr(caa_error_msg(err), "nonet"));
    caa_error_free(err);
    err = NULL;
    teardown_fixture(&f);

    setup_with(&f, NULL, 0, NULL, false); /* no base volume */
    assert_int_equal(caa_provider_verify_config(f.prov, &err), -ENOENT);
    assert_non_null(strstr(caa_error_msg(err), BASE));
    caa_error_free(err);
    teardown_fixture(&f);
}

/* Shutdown while a create waits for its lease: one callback, -ECANCELED,
 * with the instance id (the VM exists); everything is freed. */
static void poll_once(uv_timer_t *t)
{
    (void)t;
}

static void test_teardown_during_wait(void **state)
{
    (void)state;
    static fixture f;
    setup(&f, 1, (const char *[]){"-ip-wait=30s"});
    caa_libvirt_test_set_faults(f.prov->priv, LV_FAULT_NO_ADDRESS);
    caa_instance_spec spec = spec_for("td", "7d7d7d7d7d7d7d7d");
    result r = {0};
    assert_int_equal(caa_provider_create_instance(f.prov, &spec, on_instance, &r, NULL), 0);
    /* Let it get to the address wait (the domain starts within a moment). */
    uv_timer_t t;
    uv_timer_init(&f.loop, &t);
    for (int i = 0; i < 30 && count_domains(f.conn) == 0; i++) {
        uv_timer_start(&t, poll_once, 50, 0);
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    uv_timer_start(&t, poll_once, 300, 0);
    uv_run(&f.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    assert_false(r.called);
    caa_provider_free(f.prov);
    f.prov = NULL;
    current = NULL;
    assert_false(r.called); /* teardown does not call back synchronously */
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    expect_error(&r, -ECANCELED, NULL);
    assert_non_null(r.inst);
    result_done(&r);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    virConnectClose(f.conn);
}

/* Runs the loop for about ms (other work keeps going). */
static void run_for(fixture *f, unsigned ms)
{
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    uv_timer_start(&t, poll_once, ms, 0);
    uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* A create that will wait 60 s for a lease that never comes. */
static void create_waiting(fixture *f, const char *pod, const char *sandbox, result *r)
{
    setup(f, 1, (const char *[]){"-ip-wait=60s"});
    caa_libvirt_test_set_faults(f->prov->priv, LV_FAULT_NO_ADDRESS);
    caa_instance_spec spec = spec_for(pod, sandbox);
    *r = (result){0};
    assert_int_equal(caa_provider_create_instance(f->prov, &spec, on_instance, r, NULL), 0);
}

/* The cancelled create answered once with -ECANCELED; what it made is deleted. */
static void expect_cancelled_and_clean_up(fixture *f, result *r)
{
    run_for(f, 100);
    assert_int_equal(r->calls, 1);
    expect_error(r, -ECANCELED, NULL);
    if (r->inst) {
        result d;
        delete (f, r->inst->id, &d);
        assert_int_equal(d.status, 0);
        result_done(&d);
    }
    result_done(r);
    assert_nothing_left(f);
    teardown_fixture(f);
}

/* The caller's cancel (StopVM during StartVM) ends a 60 s lease wait at once:
 * one -ECANCELED answer with the started domain, which the caller deletes. */
static void test_cancel_during_lease_wait(void **state)
{
    (void)state;
    static fixture f;
    result r, other = {0};
    create_waiting(&f, "cw", "c0c0c0c0c0c0c0c0", &r);
    for (int i = 0; i < 100 && count_domains(f.conn) == 0; i++)
        run_for(&f, 50);
    run_for(&f, 300); /* in the lease wait now */
    assert_false(r.called);

    assert_int_equal(caa_provider_cancel(f.prov, &other), 0); /* someone else's: nothing happens */
    uint64_t t0 = uv_hrtime();
    assert_int_equal(caa_provider_cancel(f.prov, &r), 0);
    assert_false(r.called);                               /* never answers inside the cancel */
    assert_int_equal(caa_provider_cancel(f.prov, &r), 0); /* a second cancel changes nothing */
    wait_for(&f, &r);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    /* Far below the 60 s wait, with room for a loaded machine. */
    if (ms > 10000)
        fail_msg("the cancel took %llu ms", (unsigned long long)ms);
    assert_non_null(r.inst);
    assert_non_null(strstr(caa_error_msg(r.err), "cancelled"));
    assert_false(other.called);
    expect_cancelled_and_clean_up(&f, &r);
}

/* A cancel while the define/start job runs on the worker: the job finishes
 * (a libvirt call is short), then the create ends with the domain it made. */
static void test_cancel_during_define(void **state)
{
    (void)state;
    static fixture f;
    result r;
    create_waiting(&f, "cd", "c1c1c1c1c1c1c1c1", &r);
    assert_int_equal(caa_provider_cancel(f.prov, &r), 0);
    assert_false(r.called);
    wait_for(&f, &r);
    expect_cancelled_and_clean_up(&f, &r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_round_trip, cleanup_current),
        cmocka_unit_test_teardown(test_capacity_and_image, cleanup_current),
        cmocka_unit_test_teardown(test_missing_pool, cleanup_current),
        cmocka_unit_test_teardown(test_missing_base_volume, cleanup_current),
        cmocka_unit_test_teardown(test_define_failure, cleanup_current),
        cmocka_unit_test_teardown(test_start_failure, cleanup_current),
        cmocka_unit_test_teardown(test_cidata_volume_failure, cleanup_current),
        cmocka_unit_test_teardown(test_root_volume_failure, cleanup_current),
        cmocka_unit_test_teardown(test_address_timeout, cleanup_current),
        cmocka_unit_test_teardown(test_cleanup_failure_returns_partial, cleanup_current),
        cmocka_unit_test_teardown(test_idempotent_create, cleanup_current),
        cmocka_unit_test_teardown(test_concurrent_creates, cleanup_current),
        cmocka_unit_test_teardown(test_reconnect, cleanup_current),
        cmocka_unit_test_teardown(test_delete_rules, cleanup_current),
        cmocka_unit_test_teardown(test_volumes_without_domain, cleanup_current),
        cmocka_unit_test_teardown(test_list_this_node_only, cleanup_current),
        cmocka_unit_test_teardown(test_validate_spec, cleanup_current),
        cmocka_unit_test_teardown(test_hostile_names_escaped, cleanup_current),
        cmocka_unit_test_teardown(test_verify_config, cleanup_current),
        cmocka_unit_test_teardown(test_teardown_during_wait, cleanup_current),
        cmocka_unit_test_teardown(test_cancel_during_lease_wait, cleanup_current),
        cmocka_unit_test_teardown(test_cancel_during_define, cleanup_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
