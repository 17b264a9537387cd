/* Smoke test of the libvirt provider against a real libvirtd + QEMU (TCG):
 * create (volumes, cidata upload over a stream, define, start), check what
 * libvirt holds, wait for an address that never comes (nothing boots), and
 * see everything removed again. Driven by libvirt-qemu-smoke.sh, which starts
 * libvirtd inside a network namespace it owns.
 * Arguments: URI POOL NETWORK */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "cidata-iso.h"
#include "libvirt-internal.h"

static int failures, checks;

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        checks++;                                                                                            \
        if (cond) {                                                                                          \
            printf("ok - " __VA_ARGS__);                                                                     \
        } else {                                                                                             \
            printf("not ok - " __VA_ARGS__);                                                                 \
            failures++;                                                                                      \
        }                                                                                                    \
        printf("\n");                                                                                        \
    } while (0)

typedef struct result {
    bool called;
    int status;
    caa_instance *inst;
    caa_error *err;
} result;

static void on_instance(int status, caa_instance *inst, caa_error *err, void *opaque)
{
    result *r = opaque;
    r->called = true;
    r->status = status;
    r->inst = inst;
    r->err = err;
}

static void on_done(int status, caa_error *err, void *opaque)
{
    result *r = opaque;
    r->called = true;
    r->status = status;
    r->err = err;
}

static int count(virConnectPtr conn, const char *pool_name)
{
    virStoragePoolPtr pool = virStoragePoolLookupByName(conn, pool_name);
    virStoragePoolRefresh(pool, 0);
    int n =
        virStoragePoolNumOfVolumes(pool) + virConnectNumOfDomains(conn) + virConnectNumOfDefinedDomains(conn);
    virStoragePoolFree(pool);
    return n;
}

static void on_list(int status, caa_instance **list, caa_error *err, void *opaque)
{
    result *r = opaque;
    r->called = true;
    r->status = status;
    r->err = err;
    caa_instance_list_free(list);
}

static int list_once(uv_loop_t *loop, caa_provider *prov, caa_error **ret_err)
{
    result r = {0};
    if (caa_provider_list_instances(prov, on_list, &r, ret_err) < 0)
        return -1;
    while (!r.called)
        uv_run(loop, UV_RUN_ONCE);
    *ret_err = r.err;
    return r.status;
}

/* libvirtd restarts between two calls: the second reconnects. The script
 * restarts the daemon when we print READY and tells us on stdin. */
static int reconnect_mode(const char *uri_flag)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_provider *prov = caa_provider_new(&caa_libvirt_provider, &loop);
    char *args[] = {(char *)uri_flag};
    caa_option_set set = caa_provider_option_set(prov);
    caa_error *err = NULL;
    if (caa_options_parse(&set, 1, 1, args, &err) < 0 || caa_provider_init(prov, &err) < 0) {
        printf("Bail out! %s\n", caa_error_msg(err));
        return 1;
    }
    CHECK(list_once(&loop, prov, &err) == 0, "list before the restart");
    caa_error_free(err);
    err = NULL;
    printf("# READY\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof(line), stdin))
        return 1;
    int r = list_once(&loop, prov, &err);
    CHECK(r == 0, "list after libvirtd restarted: %s", err ? caa_error_msg(err) : "ok");
    CHECK(caa_libvirt_test_reconnects(prov->priv) == 1, "reconnected once");
    caa_error_free(err);
    caa_provider_free(prov);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    printf("1..%d\n", checks);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    /* As the daemon does: a write to a socket libvirtd closed must fail with
     * EPIPE (and trigger the reconnect), not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[2], "reconnect") == 0) {
        char flag[512];
        snprintf(flag, sizeof(flag), "-uri=%s", argv[1]);
        printf("TAP version 13\n");
        return reconnect_mode(flag);
    }
    if (argc != 4) {
        fprintf(stderr, "usage: %s URI POOL NETWORK | %s URI reconnect\n", argv[0], argv[0]);
        return 2;
    }
    printf("TAP version 13\n");
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_provider *prov = caa_provider_new(&caa_libvirt_provider, &loop);
    char uri[512], pool[256], net[256];
    snprintf(uri, sizeof(uri), "-uri=%s", argv[1]);
    snprintf(pool, sizeof(pool), "-pool-name=%s", argv[2]);
    snprintf(net, sizeof(net), "-network-name=%s", argv[3]);
    char *args[] = {uri,
                    pool,
                    net,
                    "-ip-wait=6s",
                    "-memory=256",
                    "-cpu=1",
                    "-root-disk-size=1",
                    "-console-log-dir=/var/log/libvirt/qemu"};
    caa_option_set set = caa_provider_option_set(prov);
    caa_error *err = NULL;
    if (caa_options_parse(&set, 1, 8, args, &err) < 0 || caa_provider_init(prov, &err) < 0 ||
        caa_provider_verify_config(prov, &err) < 0) {
        printf("Bail out! %s\n", caa_error_msg(err));
        return 1;
    }
    lv_provider *p = prov->priv;
    virConnectPtr conn = caa_libvirt_test_connection(p, &err);
    CHECK(conn != NULL, "connected to %s", argv[1]);
    const lv_host *host = NULL;
    CHECK(lv_host_get(p, conn, &host, &err) == 0, "host probed");
    printf("# domain type %s (%s), loader %s\n", host->domain_type, host->domain_type_reason,
           host->loader ? host->loader : "(autoselect)");
    CHECK(strcmp(host->domain_type, "qemu") == 0, "KVM that cannot run stock guests is not picked");
    int before = count(conn, argv[2]);

    /* Blocking create (the worker-side half), to look at the result before cleanup. */
    static const char ud[] = "#cloud-config\nwrite_files: []\n";
    lv_create_state st = {.name = strdup("podvm-smoke-5a0e5a0e"),
                          .sandbox_id = strdup("5a0e5a0e11112222"),
                          .pod_name = strdup("smoke"),
                          .pod_namespace = strdup("default"),
                          .user_data = ud,
                          .user_data_len = sizeof(ud) - 1};
    int r = lv_do_create(p, &st, &err);
    CHECK(r == 0 && st.started, "domain created and started: %s", r < 0 ? caa_error_msg(err) : st.uuid);
    virDomainPtr dom = virDomainLookupByName(conn, st.name);
    CHECK(dom && virDomainIsActive(dom) == 1, "domain is running under QEMU");
    if (dom)
        virDomainFree(dom);
    /* The uploaded cidata image is byte for byte what the builder makes. */
    virStoragePoolPtr sp = virStoragePoolLookupByName(conn, argv[2]);
    virStorageVolPtr iso = virStorageVolLookupByName(sp, "podvm-smoke-5a0e5a0e-cloudinit.iso");
    uint8_t *want = NULL;
    size_t want_len = 0;
    caa_cidata_iso_build_seed(st.name, ud, sizeof(ud) - 1, &want, &want_len, NULL);
    char *got = calloc(1, want_len + 1);
    size_t got_len = 0;
    virStreamPtr s = virStreamNew(conn, 0);
    if (iso && virStorageVolDownload(iso, s, 0, 0, 0) == 0) {
        for (int n; (n = virStreamRecv(s, got + got_len, want_len + 1 - got_len)) > 0;)
            got_len += (size_t)n;
        virStreamFinish(s);
    }
    virStreamFree(s);
    /* Volume timestamps differ between two builds; compare past the PVD dates: sizes and the files' bytes. */
    CHECK(got_len == want_len, "uploaded ISO has the built size (%zu bytes)", got_len);
    CHECK(got_len > 0 && memmem(got, got_len, "local-hostname: podvm-smoke-5a0e5a0e\n", 37) != NULL,
          "uploaded ISO carries meta-data");
    CHECK(got_len > 0 && memmem(got, got_len, ud, sizeof(ud) - 1) != NULL, "uploaded ISO carries user-data");
    free(got);
    free(want);
    if (iso)
        virStorageVolFree(iso);
    virStoragePoolFree(sp);
    caa_error_free(err);
    err = NULL;
    CHECK(lv_do_cleanup(p, &st, &err) == 0, "cleanup: %s", err ? caa_error_msg(err) : "ok");
    CHECK(count(conn, argv[2]) == before, "nothing left after cleanup");
    lv_create_state_done(&st);

    /* Through the asynchronous API: nothing boots, so the lease wait times out
     * and everything is removed again. */
    caa_instance_spec spec = {.instance_name = "podvm-smoke-b00tb00t",
                              .sandbox_id = "b00tb00t0000",
                              .user_data = ud,
                              .user_data_len = sizeof(ud) - 1};
    result res = {0};
    CHECK(caa_provider_create_instance(prov, &spec, on_instance, &res, NULL) == 0, "create_instance started");
    while (!res.called)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK(res.status == -ETIMEDOUT && !res.inst, "no lease, so -ETIMEDOUT without instance: %s",
          res.err ? caa_error_msg(res.err) : "-");
    caa_error_free(res.err);
    CHECK(count(conn, argv[2]) == before, "nothing left after the timeout");

    /* Deleting something already gone. */
    result d = {0};
    caa_provider_delete_instance(prov, "00000000-0000-4000-8000-000000000000", on_done, &d, NULL);
    while (!d.called)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK(d.status == 0, "delete of a missing domain succeeds");

    virConnectClose(conn);
    caa_provider_free(prov);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    printf("1..%d\n", checks);
    return failures ? 1 : 0;
}
