/* The scripted provider (scripted-provider.h): provider calls queue up until
 * the test answers them. */
#include "scripted-provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

typedef struct scripted_call {
    struct scripted_call *next;
    scripted_kind kind;
    char *name; /* create: instance name */
    char *key;  /* create: idempotency key */
    /* create: what the instance is asked to be */
    char *user_data;
    size_t user_data_len;
    int64_t vcpus, memory_mib;
    char *image, *machine_type;
    scripted_create_request view; /* the fields above, for the test */
    char *id;                     /* delete: instance id */
    caa_instance_cb inst_cb;
    caa_done_cb done_cb;
    caa_list_cb list_cb;
    void *opaque;
} scripted_call;

typedef struct scripted_instance {
    char *id;
    char *name;
} scripted_instance;

struct scripted_provider {
    scripted_call *queue[SCRIPTED_KIND_COUNT]; /* FIFO per kind */
    size_t calls[SCRIPTED_KIND_COUNT];
    int fail_next[SCRIPTED_KIND_COUNT];
    bool torn_down;
    size_t cancels;
    scripted_instance *instances;
    size_t n_instances;
};

/* The provider's config: where init finds the test's state. */
typedef struct scripted_config {
    scripted_provider *sp;
} scripted_config;

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "scripted provider: %s\n", what);
    abort();
}

static void call_free(scripted_call *c)
{
    free(c->name);
    free(c->key);
    free(c->user_data);
    free(c->image);
    free(c->machine_type);
    free(c->id);
    free(c);
}

scripted_provider *scripted_provider_new(void)
{
    return xnew0(scripted_provider, 1);
}

void scripted_provider_free(scripted_provider *sp)
{
    if (!sp)
        return;
    for (int k = 0; k < SCRIPTED_KIND_COUNT; k++) {
        while (sp->queue[k]) {
            scripted_call *c = sp->queue[k];
            sp->queue[k] = c->next;
            call_free(c);
        }
    }
    for (size_t i = 0; i < sp->n_instances; i++) {
        free(sp->instances[i].id);
        free(sp->instances[i].name);
    }
    free(sp->instances);
    free(sp);
}

static int scripted_init(uv_loop_t *loop, const void *config, void **ret_priv, caa_error **err)
{
    (void)loop;
    const scripted_config *cfg = config;
    if (!cfg->sp)
        return caa_error_set(err, -EINVAL, "scripted provider without state (use scripted_provider_wrap)");
    *ret_priv = cfg->sp;
    return 0;
}

caa_provider *scripted_provider_wrap(scripted_provider *sp, uv_loop_t *loop)
{
    sp->torn_down = false; /* a restarted daemon's provider */
    caa_provider *p = caa_provider_new(&caa_scripted_provider, loop);
    ((scripted_config *)p->config)->sp = sp;
    if (caa_provider_init(p, NULL) < 0)
        die("init failed");
    return p;
}

/* Queues a call unless the test asked the next one of its kind to fail now. */
static int enqueue(scripted_provider *sp, scripted_call *c, caa_error **err)
{
    sp->calls[c->kind]++;
    int status = sp->fail_next[c->kind];
    if (status < 0) {
        sp->fail_next[c->kind] = 0;
        call_free(c);
        return caa_error_set(err, status, "scripted failure");
    }
    scripted_call **tail = &sp->queue[c->kind];
    while (*tail)
        tail = &(*tail)->next;
    *tail = c;
    return 0;
}

static scripted_call *dequeue(scripted_provider *sp, scripted_kind kind)
{
    scripted_call *c = sp->queue[kind];
    if (!c)
        die("answer without a pending call of that kind");
    sp->queue[kind] = c->next;
    return c;
}

static int scripted_create(void *priv, const caa_instance_spec *spec, caa_instance_cb cb, void *opaque,
                           caa_error **err)
{
    scripted_call *c = xnew0(scripted_call, 1);
    *c = (scripted_call){
        .kind = SCRIPTED_CREATE,
        .name = xstrdup(spec->instance_name),
        .key = spec->idempotency_key ? xstrdup(spec->idempotency_key) : NULL,
        .user_data = spec->user_data ? xmemdup(spec->user_data, spec->user_data_len) : NULL,
        .user_data_len = spec->user_data_len,
        .vcpus = spec->vcpus,
        .memory_mib = spec->memory_mib,
        .image = spec->image ? xstrdup(spec->image) : NULL,
        .machine_type = spec->instance_type ? xstrdup(spec->instance_type) : NULL,
        .inst_cb = cb,
        .opaque = opaque,
    };
    c->view = (scripted_create_request){c->user_data,  c->user_data_len, c->vcpus,
                                        c->memory_mib, c->image,         c->machine_type};
    return enqueue(priv, c, err);
}

static int scripted_delete(void *priv, const char *instance_id, caa_done_cb cb, void *opaque, caa_error **err)
{
    scripted_call *c = xnew0(scripted_call, 1);
    *c =
        (scripted_call){.kind = SCRIPTED_DELETE, .id = xstrdup(instance_id), .done_cb = cb, .opaque = opaque};
    return enqueue(priv, c, err);
}

static int scripted_list(void *priv, caa_list_cb cb, void *opaque, caa_error **err)
{
    scripted_call *c = xnew0(scripted_call, 1);
    *c = (scripted_call){.kind = SCRIPTED_LIST, .list_cb = cb, .opaque = opaque};
    return enqueue(priv, c, err);
}

static int scripted_get(void *priv, const char *instance_id, caa_instance_cb cb, void *opaque,
                        caa_error **err)
{
    scripted_call *c = xnew0(scripted_call, 1);
    *c = (scripted_call){.kind = SCRIPTED_GET, .id = xstrdup(instance_id), .inst_cb = cb, .opaque = opaque};
    return enqueue(priv, c, err);
}

/* Teardown does not answer anything: the test decides whether the calls in
 * flight are answered late (-ECANCELED or otherwise) or dropped. */
static void scripted_teardown(void *priv)
{
    scripted_provider *sp = priv;
    if (sp)
        sp->torn_down = true;
}

static void scripted_cancel(void *priv, void *opaque)
{
    (void)opaque;
    ((scripted_provider *)priv)->cancels++;
}

const caa_provider_ops caa_scripted_provider = {
    .name = "scripted",
    .config_size = sizeof(scripted_config),
    .init = scripted_init,
    .create_instance = scripted_create,
    .delete_instance = scripted_delete,
    .list_instances = scripted_list,
    .get_instance = scripted_get,
    .teardown = scripted_teardown,
    .cancel = scripted_cancel,
};

void scripted_fail_next(scripted_provider *sp, scripted_kind kind, int status)
{
    sp->fail_next[kind] = status;
}

size_t scripted_pending(const scripted_provider *sp, scripted_kind kind)
{
    size_t n = 0;
    for (const scripted_call *c = sp->queue[kind]; c; c = c->next)
        n++;
    return n;
}

size_t scripted_calls(const scripted_provider *sp, scripted_kind kind)
{
    return sp->calls[kind];
}

size_t scripted_cancels(const scripted_provider *sp)
{
    return sp->cancels;
}

bool scripted_torn_down(const scripted_provider *sp)
{
    return sp->torn_down;
}

size_t scripted_live_instances(const scripted_provider *sp)
{
    return sp->n_instances;
}

const char *scripted_create_name(const scripted_provider *sp)
{
    return sp->queue[SCRIPTED_CREATE] ? sp->queue[SCRIPTED_CREATE]->name : NULL;
}

const scripted_create_request *scripted_create_request_of(const scripted_provider *sp)
{
    return sp->queue[SCRIPTED_CREATE] ? &sp->queue[SCRIPTED_CREATE]->view : NULL;
}

const char *scripted_create_key(const scripted_provider *sp)
{
    return sp->queue[SCRIPTED_CREATE] ? sp->queue[SCRIPTED_CREATE]->key : NULL;
}

const char *scripted_delete_target(const scripted_provider *sp)
{
    return sp->queue[SCRIPTED_DELETE] ? sp->queue[SCRIPTED_DELETE]->id : NULL;
}

void scripted_add_instance(scripted_provider *sp, const char *id, const char *name)
{
    sp->instances = xrealloc(sp->instances, (sp->n_instances + 1) * sizeof(*sp->instances));
    sp->instances[sp->n_instances++] = (scripted_instance){xstrdup(id), xstrdup(name)};
}

static void remove_instance(scripted_provider *sp, const char *id)
{
    for (size_t i = 0; i < sp->n_instances; i++) {
        if (strcmp(sp->instances[i].id, id) == 0) {
            free(sp->instances[i].id);
            free(sp->instances[i].name);
            sp->instances[i] = sp->instances[--sp->n_instances];
            return;
        }
    }
}

static caa_instance *make_instance(scripted_provider *sp, const scripted_call *c, const char *id,
                                   const char *ip)
{
    scripted_add_instance(sp, id, c->name);
    caa_instance *inst = caa_instance_new(id, c->name);
    if (ip)
        caa_instance_add_ip(inst, ip);
    return inst;
}

void scripted_create_ok(scripted_provider *sp, const char *id, const char *ip)
{
    scripted_call *c = dequeue(sp, SCRIPTED_CREATE);
    caa_instance *inst = make_instance(sp, c, id, ip);
    caa_instance_cb cb = c->inst_cb;
    void *opaque = c->opaque;
    call_free(c);
    cb(0, inst, NULL, opaque);
}

void scripted_create_fail(scripted_provider *sp, int status, const char *partial_id)
{
    scripted_call *c = dequeue(sp, SCRIPTED_CREATE);
    caa_instance *inst = partial_id ? make_instance(sp, c, partial_id, NULL) : NULL;
    caa_instance_cb cb = c->inst_cb;
    void *opaque = c->opaque;
    caa_error *e = caa_error_new(status, "scripted create of %s failed", c->name);
    call_free(c);
    cb(status, inst, e, opaque);
}

void scripted_delete_done(scripted_provider *sp, int status)
{
    scripted_call *c = dequeue(sp, SCRIPTED_DELETE);
    if (status == 0)
        remove_instance(sp, c->id);
    caa_done_cb cb = c->done_cb;
    void *opaque = c->opaque;
    caa_error *e = status < 0 ? caa_error_new(status, "scripted delete of %s failed", c->id) : NULL;
    call_free(c);
    cb(status, e, opaque);
}

void scripted_list_answer(scripted_provider *sp, int status)
{
    scripted_call *c = dequeue(sp, SCRIPTED_LIST);
    caa_instance **list = NULL;
    caa_error *e = NULL;
    if (status == 0) {
        list = xnew0(caa_instance *, sp->n_instances + 1);
        for (size_t i = 0; i < sp->n_instances; i++)
            list[i] = caa_instance_new(sp->instances[i].id, sp->instances[i].name);
    } else {
        e = caa_error_new(status, "scripted list failed");
    }
    caa_list_cb cb = c->list_cb;
    void *opaque = c->opaque;
    call_free(c);
    cb(status, list, e, opaque);
}

static const scripted_instance *find_live(const scripted_provider *sp, const char *id)
{
    for (size_t i = 0; i < sp->n_instances; i++)
        if (strcmp(sp->instances[i].id, id) == 0)
            return &sp->instances[i];
    return NULL;
}

void scripted_get_answer(scripted_provider *sp, int status)
{
    scripted_call *c = dequeue(sp, SCRIPTED_GET);
    const scripted_instance *live = status == 0 ? find_live(sp, c->id) : NULL;
    if (status == 0 && !live)
        status = -ENOENT;
    caa_instance *inst = live ? caa_instance_new(live->id, live->name) : NULL;
    caa_error *e =
        status < 0 ? caa_error_new(status, "scripted get: %s", live ? "failed" : "no such instance") : NULL;
    caa_instance_cb cb = c->inst_cb;
    void *opaque = c->opaque;
    call_free(c);
    cb(status, inst, e, opaque);
}

void scripted_remove_instance(scripted_provider *sp, const char *id)
{
    remove_instance(sp, id);
}
