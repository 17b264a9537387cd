#define LOG_COMPONENT "provider/test"
#include "test-provider.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fs.h"
#include "log.h"
#include "strv.h"
#include "xalloc.h"

#define INSTANCE_FILE_MAX (64 * 1024)
#define NS_PER_MS 1000000LL

typedef struct test_config {
    char *state_dir;
    int64_t create_delay_ns;
    int64_t delete_delay_ns;
    bool fail_create;
    bool fail_delete;
    bool fail_after_create;
    char *ip;
    int64_t user_data_limit;
    bool drop_on_teardown;
} test_config;

static const caa_option test_options[] = {
    CAA_OPTION(test_config, "test-state-dir", "CAA_TEST_STATE_DIR", CAA_OPT_STRING, state_dir, "",
               "directory holding one JSON file per instance"),
    CAA_OPTION(test_config, "test-create-delay", NULL, CAA_OPT_DURATION, create_delay_ns, "0",
               "time a create takes"),
    CAA_OPTION(test_config, "test-delete-delay", NULL, CAA_OPT_DURATION, delete_delay_ns, "0",
               "time a delete takes"),
    CAA_OPTION(test_config, "test-fail-create", NULL, CAA_OPT_BOOL, fail_create, "false",
               "creates fail, nothing is created"),
    CAA_OPTION(test_config, "test-fail-delete", NULL, CAA_OPT_BOOL, fail_delete, "false", "deletes fail"),
    CAA_OPTION(test_config, "test-fail-after-create", NULL, CAA_OPT_BOOL, fail_after_create, "false",
               "creates make the instance, then fail and return it"),
    CAA_OPTION(test_config, "test-ip", NULL, CAA_OPT_STRING, ip, "198.18.0.2",
               "IP of every instance (empty: none)"),
    CAA_OPTION_INT(test_config, "test-user-data-limit", NULL, user_data_limit, "0", 0, INT32_MAX,
                   "largest user-data in bytes the provider accepts (0: no limit), checked by validate_spec"),
    CAA_OPTION(
        test_config, "test-drop-on-teardown", NULL, CAA_OPT_BOOL, drop_on_teardown, "false",
        "teardown drops the callbacks of operations in flight instead of running them with -ECANCELED"),
};

typedef struct test_priv {
    uv_loop_t *loop;
    const test_config *cfg;
    unsigned ops_in_flight;
    struct test_op *ops; /* scheduled, not yet run: teardown cancels them */
} test_priv;

typedef enum op_kind { OP_CREATE, OP_DELETE, OP_LIST, OP_GET } op_kind;

typedef struct test_op {
    uv_timer_t timer;
    struct test_op *prev, *next;
    bool drop; /* cancelled by teardown: free without calling back */
    test_priv *priv;
    op_kind kind;
    caa_instance_cb inst_cb;
    caa_done_cb done_cb;
    caa_list_cb list_cb;
    void *opaque;
    /* create */
    char *name, *sandbox_id, *key;
    int64_t vcpus, memory_mib;
    char *user_data;
    size_t user_data_len;
    /* delete/get */
    char *instance_id;
} test_op;

/* ---------------------------------------------------------------- files */

static bool id_safe(const char *id)
{
    if (!*id || strlen(id) > 64 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    return true;
}

static char *instance_path(const test_priv *p, const char *id)
{
    return xasprintf("%s/%s.json", p->cfg->state_dir, id);
}

/* The user-data the create received, next to the instance file (tests read it). */
static char *user_data_path(const test_priv *p, const char *id)
{
    return xasprintf("%s/%s.user-data", p->cfg->state_dir, id);
}

static caa_instance *instance_from_json(json_t *o)
{
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!id || !name)
        return NULL;
    caa_instance *inst = caa_instance_new(id, name);
    size_t i;
    json_t *ip;
    json_array_foreach(json_object_get(o, "ips"), i, ip) if (json_is_string(ip))
        caa_instance_add_ip(inst, json_string_value(ip));
    return inst;
}

static json_t *read_instance_json(const test_priv *p, const char *file)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", p->cfg->state_dir, file);
    _cleanup_free_ char *data = NULL;
    size_t len;
    if (caa_read_file(path, INSTANCE_FILE_MAX, 1, &data, &len, NULL) < 0)
        return NULL;
    json_t *o = json_loadb(data, len, 0, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Calls fn for every instance file; stops when fn returns true. */
static json_t *find_instance(const test_priv *p, const char *key, const char *value)
{
    DIR *d = opendir(p->cfg->state_dir);
    if (!d)
        return NULL;
    json_t *found = NULL;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        json_t *o = read_instance_json(p, de->d_name);
        const char *v = o ? json_string_value(json_object_get(o, key)) : NULL;
        if (v && strcmp(v, value) == 0)
            found = o;
        else
            json_decref(o);
    }
    closedir(d);
    return found;
}

static char *new_instance_id(void)
{
    uint8_t b[8];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        abort();
    return xasprintf("test-%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
}

static int write_instance(test_priv *p, test_op *op, caa_instance **ret, caa_error **err)
{
    /* Idempotency: a create retried with the same key returns the same instance. */
    json_auto_t *existing = find_instance(p, "idempotency_key", op->key);
    if (existing) {
        *ret = instance_from_json(existing);
        return *ret ? 0 : caa_error_set(err, -EIO, "test provider: corrupt instance file");
    }
    _cleanup_free_ char *id = new_instance_id();
    json_auto_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "name", json_string(op->name));
    json_object_set_new(o, "sandbox_id", json_string(op->sandbox_id));
    json_object_set_new(o, "idempotency_key", json_string(op->key));
    json_object_set_new(o, "vcpus", json_integer(op->vcpus));
    json_object_set_new(o, "memory_mib", json_integer(op->memory_mib));
    json_object_set_new(o, "user_data_len", json_integer((json_int_t)op->user_data_len));
    json_t *ips = json_array();
    if (p->cfg->ip && *p->cfg->ip)
        json_array_append_new(ips, json_string(p->cfg->ip));
    json_object_set_new(o, "ips", ips);
    _cleanup_free_ char *doc = json_dumps(o, JSON_INDENT(2));
    _cleanup_free_ char *ud_path = user_data_path(p, id);
    int r = caa_write_file_atomic(ud_path, op->user_data ? op->user_data : "", op->user_data_len, 0600, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = instance_path(p, id);
    r = caa_write_file_atomic(path, doc, strlen(doc), 0644, err);
    if (r < 0)
        return r;
    *ret = instance_from_json(o);
    return 0;
}

/* ---------------------------------------------------------------- ops */

static void on_op_closed(uv_handle_t *h)
{
    test_op *op = h->data;
    free(op->name);
    free(op->sandbox_id);
    free(op->key);
    free(op->user_data);
    free(op->instance_id);
    free(op);
}

static void run_create(test_op *op)
{
    test_priv *p = op->priv;
    if (p->cfg->fail_create) {
        op->inst_cb(-EIO, NULL, caa_error_new(-EIO, "test provider: create failed (as configured)"),
                    op->opaque);
        return;
    }
    caa_instance *inst = NULL;
    caa_error *e = NULL;
    int r = write_instance(p, op, &inst, &e);
    if (r < 0) {
        op->inst_cb(r, NULL, e, op->opaque);
        return;
    }
    if (p->cfg->fail_after_create) {
        op->inst_cb(-EIO, inst,
                    caa_error_new(-EIO, "test provider: failed after creating %s (as configured)", inst->id),
                    op->opaque);
        return;
    }
    op->inst_cb(0, inst, NULL, op->opaque);
}

static void run_delete(test_op *op)
{
    test_priv *p = op->priv;
    if (p->cfg->fail_delete) {
        op->done_cb(
            -EIO, caa_error_new(-EIO, "test provider: delete of %s failed (as configured)", op->instance_id),
            op->opaque);
        return;
    }
    _cleanup_free_ char *ud_path = user_data_path(p, op->instance_id);
    (void)unlink(ud_path);
    _cleanup_free_ char *path = instance_path(p, op->instance_id);
    if (unlink(path) < 0 && errno != ENOENT) {
        int r = -errno;
        op->done_cb(r, caa_error_new(r, "test provider: removing %s: %s", path, strerror(-r)), op->opaque);
        return;
    }
    op->done_cb(0, NULL, op->opaque);
}

static void run_list(test_op *op)
{
    test_priv *p = op->priv;
    caa_instance **list = xnew0(caa_instance *, 1);
    size_t n = 0;
    DIR *d = opendir(p->cfg->state_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        json_auto_t *o = read_instance_json(p, de->d_name);
        caa_instance *inst = o ? instance_from_json(o) : NULL;
        if (!inst)
            continue;
        list = xrealloc(list, (n + 2) * sizeof(*list));
        list[n++] = inst;
        list[n] = NULL;
    }
    if (d)
        closedir(d);
    op->list_cb(0, list, NULL, op->opaque);
}

static void run_get(test_op *op)
{
    test_priv *p = op->priv;
    json_auto_t *o = find_instance(p, "id", op->instance_id);
    caa_instance *inst = o ? instance_from_json(o) : NULL;
    if (!inst) {
        op->inst_cb(-ENOENT, NULL,
                    caa_error_new(-ENOENT, "test provider: instance %s not found", op->instance_id),
                    op->opaque);
        return;
    }
    op->inst_cb(0, inst, NULL, op->opaque);
}

static void op_unlink(test_op *op)
{
    test_priv *p = op->priv;
    if (op->prev)
        op->prev->next = op->next;
    else
        p->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    p->ops_in_flight--;
}

/* A cancelled op calls back with -ECANCELED from its close callback, after
 * teardown returned; the provider (priv) is gone by then. */
static void on_op_cancelled(uv_handle_t *h)
{
    test_op *op = h->data;
    if (!op->drop) {
        caa_error *e = caa_error_new(-ECANCELED, "test provider: torn down");
        switch (op->kind) {
        case OP_CREATE:
        case OP_GET:
            op->inst_cb(-ECANCELED, NULL, e, op->opaque);
            break;
        case OP_DELETE:
            op->done_cb(-ECANCELED, e, op->opaque);
            break;
        case OP_LIST:
            op->list_cb(-ECANCELED, NULL, e, op->opaque);
            break;
        }
    }
    on_op_closed(h);
}

static void on_op_timer(uv_timer_t *t)
{
    test_op *op = t->data;
    op_unlink(op);
    switch (op->kind) {
    case OP_CREATE:
        run_create(op);
        break;
    case OP_DELETE:
        run_delete(op);
        break;
    case OP_LIST:
        run_list(op);
        break;
    case OP_GET:
        run_get(op);
        break;
    }
    uv_close((uv_handle_t *)&op->timer, on_op_closed);
}

static test_op *op_new(test_priv *p, op_kind kind, void *opaque)
{
    test_op *op = xnew0(test_op, 1);
    op->priv = p;
    op->kind = kind;
    op->opaque = opaque;
    uv_timer_init(p->loop, &op->timer);
    op->timer.data = op;
    op->next = p->ops;
    if (p->ops)
        p->ops->prev = op;
    p->ops = op;
    p->ops_in_flight++;
    return op;
}

static void op_schedule(test_op *op, int64_t delay_ns)
{
    uv_timer_start(&op->timer, on_op_timer, (uint64_t)((delay_ns + NS_PER_MS - 1) / NS_PER_MS), 0);
}

static int test_init(uv_loop_t *loop, const void *config, void **ret_priv, caa_error **err)
{
    const test_config *cfg = config;
    if (!cfg->state_dir || !*cfg->state_dir)
        return caa_error_set(err, -EINVAL, "-test-state-dir is required");
    int r = caa_mkdir_p(cfg->state_dir, 0755, err);
    if (r < 0)
        return r;
    test_priv *p = xnew0(test_priv, 1);
    p->loop = loop;
    p->cfg = cfg;
    *ret_priv = p;
    return 0;
}

static int test_create(void *priv, const caa_instance_spec *spec, caa_instance_cb cb, void *opaque,
                       caa_error **err)
{
    test_priv *p = priv;
    if (!spec->idempotency_key || !*spec->idempotency_key)
        return caa_error_set(err, -EINVAL, "test provider: no idempotency key");
    test_op *op = op_new(p, OP_CREATE, opaque);
    op->inst_cb = cb;
    op->name = xstrdup(spec->instance_name);
    op->sandbox_id = xstrdup(spec->sandbox_id);
    op->key = xstrdup(spec->idempotency_key);
    op->vcpus = spec->vcpus;
    op->memory_mib = spec->memory_mib;
    op->user_data_len = spec->user_data ? spec->user_data_len : 0;
    op->user_data = spec->user_data ? xmemdup(spec->user_data, spec->user_data_len) : NULL;
    op_schedule(op, p->cfg->create_delay_ns);
    return 0;
}

static int test_validate(void *priv, const caa_instance_spec *spec, caa_error **err)
{
    test_priv *p = priv;
    if (p->cfg->user_data_limit > 0 && spec->user_data &&
        spec->user_data_len > (size_t)p->cfg->user_data_limit)
        return caa_error_set(err, -EINVAL,
                             "test provider: user-data of %zu bytes is over the limit of %lld bytes",
                             spec->user_data_len, (long long)p->cfg->user_data_limit);
    return 0;
}

static int test_delete(void *priv, const char *instance_id, caa_done_cb cb, void *opaque, caa_error **err)
{
    test_priv *p = priv;
    if (!id_safe(instance_id))
        return caa_error_set(err, -EINVAL, "test provider: invalid instance id");
    test_op *op = op_new(p, OP_DELETE, opaque);
    op->done_cb = cb;
    op->instance_id = xstrdup(instance_id);
    op_schedule(op, p->cfg->delete_delay_ns);
    return 0;
}

static int test_list(void *priv, caa_list_cb cb, void *opaque, caa_error **err)
{
    (void)err;
    test_op *op = op_new(priv, OP_LIST, opaque);
    op->list_cb = cb;
    op_schedule(op, 0);
    return 0;
}

static int test_get(void *priv, const char *instance_id, caa_instance_cb cb, void *opaque, caa_error **err)
{
    if (!id_safe(instance_id))
        return caa_error_set(err, -EINVAL, "test provider: invalid instance id");
    test_op *op = op_new(priv, OP_GET, opaque);
    op->inst_cb = cb;
    op->instance_id = xstrdup(instance_id);
    op_schedule(op, 0);
    return 0;
}

static void test_teardown(void *priv)
{
    test_priv *p = priv;
    if (!p)
        return;
    if (p->ops_in_flight)
        log_debug("test provider torn down with %u operation(s) in flight: %s them", p->ops_in_flight,
                  p->cfg->drop_on_teardown ? "dropping" : "cancelling");
    while (p->ops) {
        test_op *op = p->ops;
        op_unlink(op);
        op->drop = p->cfg->drop_on_teardown;
        op->priv = NULL;
        uv_close((uv_handle_t *)&op->timer, on_op_cancelled);
    }
    free(p);
}

const caa_provider_ops caa_test_provider = {
    .name = "test",
    .options = test_options,
    .n_options = CAA_ARRAY_SIZE(test_options),
    .config_size = sizeof(test_config),
    .init = test_init,
    .validate_spec = test_validate,
    .create_instance = test_create,
    .delete_instance = test_delete,
    .list_instances = test_list,
    .get_instance = test_get,
    .teardown = test_teardown,
};
