/* Drives the AWS provider through its ops table on a libuv loop, for the
 * integration tests and the benchmark. Provider flags on the command line
 * (environment variables as in the daemon); commands on stdin, one per line;
 * one JSON object per command on stdout.
 *
 *   verify | create NAME SANDBOX [k=v...] | create-async NAME SANDBOX [k=v...]
 *   delete ID | get ID | list | create-many N [k=v...] | wait | teardown
 *   rusage | quit
 *
 * create keys: vcpus= memory= gpus= type= image= key= userdata= userdata_size= tag=K=V
 * Exit status: 0, 2 when init failed, 3 when a libuv handle leaked. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "log.h"
#include "options.h"
#include "provider.h"
#include "strv.h"
#include "xalloc.h"

extern const caa_provider_ops caa_aws_provider;

static uv_loop_t loop;
static caa_provider *prov;
static int outstanding;

typedef struct op {
    char *name;
    int done;
    int status;
    char *error;
    caa_instance *inst;
    caa_instance **list;
    double ms;
    uint64_t t0;
    /* spec storage */
    char *sandbox, *type, *image, *key, *userdata;
    size_t ud_len;
    char **tags;
    caa_instance_spec spec;
} op;

static void emit(json_t *o)
{
    json_dumpf(o, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(o);
}

static json_t *instance_json(const caa_instance *inst)
{
    json_t *ips = json_array();
    for (size_t i = 0; inst->ips && inst->ips[i]; i++)
        json_array_append_new(ips, json_string(inst->ips[i]));
    return json_pack("{s:s?, s:s?, s:o}", "id", inst->id, "name", inst->name, "ips", ips);
}

static json_t *op_json(const op *o)
{
    json_t *j = json_pack("{s:s?, s:i, s:f}", "name", o->name, "status", o->status, "ms", o->ms);
    if (o->error)
        json_object_set_new(j, "error", json_string(o->error));
    if (o->inst)
        json_object_set_new(j, "instance", instance_json(o->inst));
    if (o->list) {
        json_t *arr = json_array();
        for (size_t i = 0; o->list[i]; i++)
            json_array_append_new(arr, instance_json(o->list[i]));
        json_object_set_new(j, "instances", arr);
    }
    return j;
}

static void finish(op *o, int status, caa_error *err)
{
    o->done = 1;
    o->status = status;
    o->error = err ? xstrdup(caa_error_msg(err)) : NULL;
    o->ms = (double)(uv_hrtime() - o->t0) / 1e6;
    caa_error_free(err);
    outstanding--;
}

static void on_instance(int status, caa_instance *inst, caa_error *err, void *opaque)
{
    op *o = opaque;
    o->inst = inst;
    finish(o, status, err);
}

static void on_done(int status, caa_error *err, void *opaque)
{
    finish(opaque, status, err);
}

static void on_list(int status, caa_instance **list, caa_error *err, void *opaque)
{
    op *o = opaque;
    o->list = list;
    finish(o, status, err);
}

static op *op_new(const char *name)
{
    op *o = xcalloc(1, sizeof(*o));
    o->name = name ? xstrdup(name) : NULL;
    o->t0 = uv_hrtime();
    return o;
}

static void op_free(op *o)
{
    free(o->name);
    free(o->error);
    caa_instance_free(o->inst);
    caa_instance_list_free(o->list);
    free(o->sandbox);
    free(o->type);
    free(o->image);
    free(o->key);
    free(o->userdata);
    caa_strv_free(o->tags);
    free(o);
}

static void run_until_done(const op *o)
{
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
}

static void fill_spec(op *o, const char *name, const char *sandbox, char **kv)
{
    o->sandbox = xstrdup(sandbox);
    memset(&o->spec, 0, sizeof(o->spec));
    o->spec.instance_name = o->name;
    o->spec.sandbox_id = o->sandbox;
    o->spec.pod_name = name;
    o->spec.pod_namespace = "default";
    for (size_t i = 0; kv && kv[i]; i++) {
        char *eq = strchr(kv[i], '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *k = kv[i], *v = eq + 1;
        if (!strcmp(k, "vcpus"))
            o->spec.vcpus = atoll(v);
        else if (!strcmp(k, "memory"))
            o->spec.memory_mib = atoll(v);
        else if (!strcmp(k, "gpus"))
            o->spec.gpus = atoll(v);
        else if (!strcmp(k, "multi_nic"))
            o->spec.multi_nic = !strcmp(v, "1");
        else if (!strcmp(k, "type"))
            o->type = xstrdup(v);
        else if (!strcmp(k, "image"))
            o->image = xstrdup(v);
        else if (!strcmp(k, "key"))
            o->key = xstrdup(v);
        else if (!strcmp(k, "userdata")) {
            o->userdata = xstrdup(v);
            o->ud_len = strlen(v);
        } else if (!strcmp(k, "userdata_size")) {
            o->ud_len = (size_t)atoll(v);
            o->userdata = xmalloc(o->ud_len + 1);
            memset(o->userdata, 'u', o->ud_len);
            o->userdata[o->ud_len] = '\0';
        } else if (!strcmp(k, "tag")) {
            caa_strv_push(&o->tags, v); /* tag=KEY=VALUE */
        }
        *eq = '=';
    }
    o->spec.instance_type = o->type;
    o->spec.image = o->image;
    o->spec.idempotency_key = o->key;
    o->spec.user_data = o->userdata ? o->userdata : "#cloud-config\n";
    o->spec.user_data_len = o->userdata ? o->ud_len : 14;
    o->spec.tags = o->tags;
}

static op **async_ops;
static size_t n_async;

static int start_create(op *o, caa_error **err)
{
    int r = caa_provider_create_instance(prov, &o->spec, on_instance, o, err);
    if (r >= 0)
        outstanding++;
    return r;
}

static void cmd_create(char **w, bool wait)
{
    op *o = op_new(w[1]);
    fill_spec(o, w[1], w[2] ? w[2] : "0000000000000000", w[2] ? w + 3 : NULL);
    caa_error *e = NULL;
    if (start_create(o, &e) < 0) {
        o->done = 1;
        o->status = e->code;
        o->error = xstrdup(caa_error_msg(e));
        caa_error_free(e);
        json_t *j = op_json(o);
        json_object_set_new(j, "sync", json_true());
        emit(j);
        op_free(o);
        return;
    }
    if (!wait) {
        async_ops = xrealloc(async_ops, (n_async + 1) * sizeof(*async_ops));
        async_ops[n_async++] = o;
        emit(json_pack("{s:s, s:b}", "started", w[1], "done", o->done));
        return;
    }
    run_until_done(o);
    emit(op_json(o));
    op_free(o);
}

static void cmd_simple(char **w)
{
    op *o = op_new(w[0]);
    caa_error *e = NULL;
    int r;
    if (!strcmp(w[0], "delete"))
        r = caa_provider_delete_instance(prov, w[1] ? w[1] : "", on_done, o, &e);
    else if (!strcmp(w[0], "get"))
        r = caa_provider_get_instance(prov, w[1] ? w[1] : "", on_instance, o, &e);
    else
        r = caa_provider_list_instances(prov, on_list, o, &e);
    if (r < 0) {
        o->status = r;
        o->error = xstrdup(caa_error_msg(e));
        caa_error_free(e);
        json_t *j = op_json(o);
        json_object_set_new(j, "sync", json_true());
        emit(j);
        op_free(o);
        return;
    }
    outstanding++;
    run_until_done(o);
    emit(op_json(o));
    op_free(o);
}

static void cmd_create_many(char **w)
{
    int n = atoi(w[1]);
    op **ops = xnew0(op *, (size_t)n);
    uint64_t t0 = uv_hrtime();
    int started = 0;
    for (int i = 0; i < n; i++) {
        char name[64], sb[64];
        snprintf(name, sizeof(name), "podvm-many-%d", i);
        snprintf(sb, sizeof(sb), "%016x", i);
        ops[i] = op_new(name);
        fill_spec(ops[i], name, sb, w + 2);
        caa_error *e = NULL;
        if (start_create(ops[i], &e) < 0) {
            ops[i]->done = 1;
            ops[i]->status = e->code;
            ops[i]->error = xstrdup(caa_error_msg(e));
            caa_error_free(e);
        } else {
            started++;
        }
    }
    while (outstanding > 0)
        uv_run(&loop, UV_RUN_ONCE);
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    int ok = 0;
    json_t *errors = json_array(), *ids = json_array();
    for (int i = 0; i < n; i++) {
        if (ops[i]->status == 0) {
            ok++;
            json_array_append_new(ids, json_string(ops[i]->inst->id));
        } else if (json_array_size(errors) < 5) {
            json_array_append_new(errors, json_string(ops[i]->error ? ops[i]->error : "?"));
        }
        op_free(ops[i]);
    }
    free(ops);
    emit(json_pack("{s:i, s:i, s:i, s:f, s:o, s:o}", "n", n, "ok", ok, "started", started, "ms", ms, "errors",
                   errors, "ids", ids));
}

static void cmd_wait(void)
{
    while (outstanding > 0)
        uv_run(&loop, UV_RUN_ONCE);
    json_t *arr = json_array();
    for (size_t i = 0; i < n_async; i++) {
        json_array_append_new(arr, op_json(async_ops[i]));
        op_free(async_ops[i]);
    }
    free(async_ops);
    async_ops = NULL;
    n_async = 0;
    emit(json_pack("{s:o}", "results", arr));
}

/* kB value of a /proc/self/status field (VmHWM is this process's own peak:
 * ru_maxrss would include the forking parent's RSS carried over exec). */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = atol(line + n + 1);
    if (f)
        fclose(f);
    return v;
}

static void cmd_rusage(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    emit(json_pack("{s:I, s:I, s:I, s:I, s:f, s:f}", "vm_hwm_kib", (json_int_t)status_kb("VmHWM"),
                   "vm_rss_kib", (json_int_t)status_kb("VmRSS"), "rss_anon_kib",
                   (json_int_t)status_kb("RssAnon"), "rss_file_kib", (json_int_t)status_kb("RssFile"),
                   "utime_s", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, "stime_s",
                   ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6));
}

int main(int argc, char **argv)
{
    const char *lvl = getenv("CAA_LOG_LEVEL");
    caa_log_level level = CAA_LOG_INFO;
    if (lvl)
        caa_log_parse_level(lvl, &level);
    caa_log_set_level(level);
    uv_loop_init(&loop);
    prov = caa_provider_new(&caa_aws_provider, &loop);
    caa_option_set set = caa_provider_option_set(prov);
    caa_error *e = NULL;
    if (caa_options_parse(&set, 1, argc - 1, argv + 1, &e) < 0 || caa_provider_init(prov, &e) < 0) {
        emit(json_pack("{s:s, s:i}", "init_error", caa_error_msg(e), "status", e->code));
        caa_error_free(e);
        caa_provider_free(prov);
        uv_run(&loop, UV_RUN_DEFAULT);
        return uv_loop_close(&loop) == 0 ? 2 : 3;
    }
    emit(json_pack("{s:b}", "ready", 1));
    char line[8192];
    bool torn_down = false;
    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\n")] = '\0';
        char **w = NULL;
        caa_strv_split_append(&w, line, ' ');
        if (!w) {
            continue;
        }
        if (!strcmp(w[0], "verify")) {
            int r = caa_provider_verify_config(prov, &e);
            emit(json_pack("{s:i, s:s?}", "status", r, "error", r < 0 ? caa_error_msg(e) : NULL));
            caa_error_free(e);
            e = NULL;
        } else if (!strcmp(w[0], "create") && w[1]) {
            cmd_create(w, true);
        } else if (!strcmp(w[0], "create-async") && w[1]) {
            cmd_create(w, false);
        } else if (!strcmp(w[0], "delete") || !strcmp(w[0], "get") || !strcmp(w[0], "list")) {
            cmd_simple(w);
        } else if (!strcmp(w[0], "create-many") && w[1]) {
            cmd_create_many(w);
        } else if (!strcmp(w[0], "wait")) {
            cmd_wait();
        } else if (!strcmp(w[0], "teardown")) {
            caa_provider_free(prov);
            prov = NULL;
            torn_down = true;
            cmd_wait();
        } else if (!strcmp(w[0], "rusage")) {
            cmd_rusage();
        } else if (!strcmp(w[0], "quit")) {
            caa_strv_free(w);
            break;
        } else {
            emit(json_pack("{s:s}", "unknown", line));
        }
        caa_strv_free(w);
        if (torn_down)
            break;
    }
    if (prov) {
        caa_provider_free(prov);
        while (outstanding > 0)
            uv_run(&loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < n_async; i++)
        op_free(async_ops[i]);
    free(async_ops);
    uv_run(&loop, UV_RUN_DEFAULT);
    int r = uv_loop_close(&loop);
    if (r != 0) {
        fprintf(stderr, "aws-provider-driver: a libuv handle was left open\n");
        return 3;
    }
    return 0;
}
