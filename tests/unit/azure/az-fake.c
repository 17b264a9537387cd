/* Test helpers around the fake Azure endpoint (see az-fake.h). */
#include "az-fake.h"
#include "azure-provider.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "options.h"
#include "strv.h"
#include "xalloc.h"

bool az_fake_start(az_fake *f, const char *config)
{
    const char *root = getenv("CAA_SOURCE_ROOT");
    _cleanup_free_ char *script = xasprintf("%s/tests/integration/azure/fake_arm.py", root ? root : ".");
    if (access(script, R_OK) < 0)
        return false;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        return false;
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (config)
            execlp("python3", "python3", script, "--config", config, (char *)NULL);
        else
            execlp("python3", "python3", script, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    char line[64] = "";
    size_t n = 0;
    while (n < sizeof(line) - 1) {
        ssize_t r = read(out[0], line + n, 1);
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    close(out[0]);
    f->pid = pid;
    f->stdin_fd = in[1];
    if (sscanf(line, "PORT %d", &f->port) != 1) {
        az_fake_stop(f);
        return false;
    }
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", f->port);
    return true;
}

void az_fake_stop(az_fake *f)
{
    if (f->stdin_fd >= 0)
        close(f->stdin_fd);
    f->stdin_fd = -1;
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    f->pid = 0;
}

json_t *az_fake_call(az_fake *f, const char *method, const char *path, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return NULL;
    }
    size_t bl = body ? strlen(body) : 0;
    _cleanup_free_ char *req =
        xasprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                  method, path, bl, body ? body : "");
    size_t off = 0, len = strlen(req);
    while (off < len) {
        ssize_t w = write(fd, req + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    size_t cap = 65536, got = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (got + 1 >= cap)
            buf = xrealloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + got, cap - got - 1);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    json_t *j = sep ? json_loads(sep + 4, 0, NULL) : NULL;
    free(buf);
    return j;
}

json_t *az_fake_state(az_fake *f)
{
    return az_fake_call(f, "GET", "/_fake/state", NULL);
}

void az_fake_config(az_fake *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *body = xvasprintf(fmt, ap);
    va_end(ap);
    json_t *j = az_fake_call(f, "POST", "/_fake/config", body);
    assert(j);
    json_decref(j);
}

void az_fake_reset(az_fake *f, const char *config)
{
    json_t *j = az_fake_call(f, "POST", "/_fake/reset", config);
    assert(j);
    json_decref(j);
}

size_t az_fake_vm_count(az_fake *f)
{
    json_t *s = az_fake_state(f);
    size_t n = json_object_size(json_object_get(s, "vms"));
    json_decref(s);
    return n;
}

size_t az_fake_count(az_fake *f, const char *method, const char *path_part)
{
    json_t *s = az_fake_state(f);
    json_t *log = json_object_get(s, "log"), *e;
    size_t i, n = 0;
    json_array_foreach(log, i, e)
    {
        const char *m = json_string_value(json_array_get(e, 0));
        const char *p = json_string_value(json_array_get(e, 1));
        if (m && p && strcmp(m, method) == 0 && strstr(p, path_part))
            n++;
    }
    json_decref(s);
    return n;
}

long az_fake_stat(az_fake *f, const char *name)
{
    json_t *s = az_fake_state(f);
    long v = (long)json_integer_value(json_object_get(json_object_get(s, "stats"), name));
    json_decref(s);
    return v;
}

caa_provider *az_test_provider(uv_loop_t *loop, az_fake *f, const char *const *extra, caa_error **err)
{
    static const char *const env[] = {
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_REGION",
        "AZURE_RESOURCE_GROUP",
        "AZURE_SUBNET_ID",
        "AZURE_SECONDARY_SUBNET_ID",
        "AZURE_NSG_ID",
        "AZURE_IMAGE_ID",
        "AZURE_INSTANCE_SIZE",
        "AZURE_INSTANCE_SIZES",
        "SSH_USERNAME",
        "DISABLECVM",
        "ENABLE_SECURE_BOOT",
        "USE_PUBLIC_IP",
        "ROOT_VOLUME_SIZE",
        "TAGS",
        "AZURE_AUTHORITY_HOST",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_RESOURCE_MANAGER_ENDPOINT",
        "AZURE_IMDS_ENDPOINT",
        "NODE_NAME",
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(env); i++)
        unsetenv(env[i]);
    const char *base[] = {"-clientid",
                          "client-1",
                          "-secret",
                          "s3cr3t-value",
                          "-tenantid",
                          "tenant-1",
                          "-subscriptionid",
                          "sub-1",
                          "-region",
                          "eastus",
                          "-resourcegroup",
                          "rg-1",
                          "-subnetid",
                          "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/"
                          "virtualNetworks/vnet/subnets/default",
                          "-imageid",
                          "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/images/podvm",
                          "-authority-host",
                          f->url,
                          "-resource-manager-endpoint",
                          f->url,
                          "-imds-endpoint",
                          f->url,
                          "-node-name",
                          "node-a",
                          "-poll-interval",
                          "10ms",
                          "-retry-max-delay",
                          "50ms",
                          "-request-timeout",
                          "10s",
                          NULL};
    _cleanup_strv_ char **argv = NULL;
    for (size_t i = 0; base[i]; i++)
        caa_strv_push(&argv, base[i]);
    for (size_t i = 0; extra && extra[i]; i++)
        caa_strv_push(&argv, extra[i]);
    /* The statically linked provider, not the registry's loadable module. */
    caa_provider *p = caa_provider_new(&caa_azure_provider, loop);
    caa_option_set set = caa_provider_option_set(p);
    int r = caa_options_parse(&set, 1, (int)caa_strv_len(argv), argv, err);
    if (r == 0)
        r = caa_provider_init(p, err);
    if (r < 0) {
        caa_provider_free(p);
        return NULL;
    }
    return p;
}

void az_test_provider_free(uv_loop_t *loop, caa_provider *p)
{
    caa_provider_free(p);
    uv_run(loop, UV_RUN_DEFAULT);
}

void az_result_done(az_result *r)
{
    caa_instance_free(r->inst);
    caa_instance_list_free(r->list);
    caa_error_free(r->err);
    *r = (az_result){0};
}

void az_run_until(uv_loop_t *loop, const bool *flag)
{
    while (!*flag)
        uv_run(loop, UV_RUN_ONCE);
}

static void on_timer(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

void az_run_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_timer, ms, 0);
    az_run_until(loop, &fired);
    uv_close((uv_handle_t *)&t, on_closed);
    uv_run(loop, UV_RUN_NOWAIT);
}

void az_create_cb(int status, caa_instance *inst, caa_error *err, void *opaque)
{
    az_result *r = opaque;
    assert(!r->done);
    r->done = true;
    r->status = status;
    r->inst = inst;
    r->err = err;
}

static void done_cb(int status, caa_error *err, void *opaque)
{
    az_result *r = opaque;
    assert(!r->done);
    r->done = true;
    r->status = status;
    r->err = err;
}

static void list_cb(int status, caa_instance **list, caa_error *err, void *opaque)
{
    az_result *r = opaque;
    assert(!r->done);
    r->done = true;
    r->status = status;
    r->list = list;
    r->err = err;
}

int az_test_create(uv_loop_t *loop, caa_provider *p, const caa_instance_spec *spec, az_result *r)
{
    *r = (az_result){0};
    int rc = caa_provider_create_instance(p, spec, az_create_cb, r, &r->err);
    if (rc < 0) {
        r->status = rc;
        return rc;
    }
    assert(!r->done); /* never from inside the call */
    az_run_until(loop, &r->done);
    return r->status;
}

int az_test_delete(uv_loop_t *loop, caa_provider *p, const char *id, az_result *r)
{
    *r = (az_result){0};
    int rc = caa_provider_delete_instance(p, id, done_cb, r, &r->err);
    if (rc < 0) {
        r->status = rc;
        return rc;
    }
    assert(!r->done);
    az_run_until(loop, &r->done);
    return r->status;
}

int az_test_get(uv_loop_t *loop, caa_provider *p, const char *id, az_result *r)
{
    *r = (az_result){0};
    int rc = caa_provider_get_instance(p, id, az_create_cb, r, &r->err);
    if (rc < 0) {
        r->status = rc;
        return rc;
    }
    assert(!r->done);
    az_run_until(loop, &r->done);
    return r->status;
}

int az_test_list(uv_loop_t *loop, caa_provider *p, az_result *r)
{
    *r = (az_result){0};
    int rc = caa_provider_list_instances(p, list_cb, r, &r->err);
    if (rc < 0) {
        r->status = rc;
        return rc;
    }
    assert(!r->done);
    az_run_until(loop, &r->done);
    return r->status;
}

caa_instance_spec az_test_spec(int n)
{
    static char names[64][64], sids[64][80];
    static const char ud[] =
        "#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: |\n      {}\n";
    int k = n & 63;
    snprintf(sids[k], sizeof(sids[k]), "%08x0000111122223333444455556666777788889999aaaabbbbcccc",
             (unsigned)n);
    snprintf(names[k], sizeof(names[k]), "podvm-test-%d-%.8s", n, sids[k]);
    return (caa_instance_spec){
        .instance_name = names[k],
        .sandbox_id = sids[k],
        .pod_name = "test",
        .pod_namespace = "default",
        .user_data = ud,
        .user_data_len = sizeof(ud) - 1,
        .idempotency_key = "00000000-0000-0000-0000-000000000000",
    };
}
