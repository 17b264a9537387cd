/* The Azure provider: ops table, VM sizes, create / delete / list / get.
 *
 * Every operation is a small state machine on the loop thread built from
 * ARM calls (azure-arm.c), operation followers (azure-lro.c) and the VM
 * delete / lookup blocks (azure-vm-ops.c). A create that fails after the VM
 * PUT may have created something deletes the VM before it reports. */
#define LOG_COMPONENT "provider/azure"
#include "azure-provider.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "azure-arm.h"
#include "azure-config.h"
#include "azure-json.h"
#include "azure-lro.h"
#include "azure-sshkey.h"
#include "azure-token.h"
#include "azure-vm-body.h"
#include "azure-vm-ops.h"
#include "cleanup.h"
#include "instance-type.h"
#include "log.h"
#include "provider-op.h"
#include "refcount.h"
#include "strv.h"
#include "xalloc.h"

/* A listing holds this node's VMs in memory (a few hundred bytes each) and
 * one page at a time: at most MAX_LISTED_VMS of ours (some 30 MB). The page
 * cap only stops a nextLink chain that never ends (empty pages included):
 * 10,000,000 VMs at ARM's usual 50 a page. */
#define MAX_LISTED_VMS 100000
#define MAX_LIST_PAGES 200000

typedef struct az_provider az_provider;

typedef struct az_create az_create;

struct az_provider {
    az_ctx ctx;
    const az_config *cfg;
    az_settings set;
    char *ssh_key; /* from -ssh-key-path, or NULL */

    caa_instance_type *types;
    size_t n_types;
    bool sizes_ready;
    az_arm_call *sizes_call;
    az_create *sizes_waiters;

    caa_op_set ops;       /* operations in flight; teardown cancels them */
    caa_refcount pending; /* the op set, the sizes call, the token source, init's own */
    bool stopping;
};

static void provider_release(az_provider *p)
{
    if (!caa_unref(&p->pending) || !p->stopping)
        return;
    caa_instance_types_free(p->types, p->n_types);
    free(p->ssh_key);
    az_settings_done(&p->set);
    free(p);
}

static uint64_t deadline_in(az_provider *p, uint64_t ms)
{
    return uv_now(p->ctx.loop) + ms;
}

char *az_vm_name_of_id(const char *id)
{
    static const char *const parts[] = {"/subscriptions/", "/resourceGroups/",
                                        "/providers/Microsoft.Compute/virtualMachines/"};
    if (!az_arm_id_valid(id, "Microsoft.Compute/virtualMachines"))
        return NULL;
    const char *p = id;
    for (size_t i = 0; i < CAA_ARRAY_SIZE(parts); i++) {
        size_t n = strlen(parts[i]);
        if (strncasecmp(p, parts[i], n) != 0)
            return NULL;
        p += n;
        if (i + 1 < CAA_ARRAY_SIZE(parts)) {
            size_t seg = strcspn(p, "/");
            if (seg == 0)
                return NULL;
            p += seg;
        }
    }
    if (!*p || strchr(p, '/'))
        return NULL;
    return xstrdup(p);
}

static bool vm_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n && s[0] != '-';
}

static bool image_valid(const char *s)
{
    if (!s || s[0] != '/' || strlen(s) > 1024)
        return false;
    if (strncmp(s, AZ_COMMUNITY_GALLERY_PREFIX, strlen(AZ_COMMUNITY_GALLERY_PREFIX)) == 0) {
        for (const char *q = s; *q; q++)
            if (!(*q == '/' || *q == '-' || *q == '_' || *q == '.' || (*q >= '0' && *q <= '9') ||
                  (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
                return false;
        return strstr(s, "//") == NULL;
    }
    return az_arm_id_valid(s, NULL);
}

typedef enum create_phase {
    C_SIZES,
    C_KEYGEN,
    C_PUT,
    C_ADOPT,
    C_LRO,
    C_LOOKUP,
    C_CLEANUP,
} create_phase;

struct az_create {
    caa_op op;
    az_create *wnext; /* sizes waiters */
    az_provider *p;
    create_phase phase;
    bool cancelled;
    /* The VM may exist: a failure must delete it (or hand back its id). */
    bool may_exist;

    char *name;
    char *sandbox_id;
    char *image;
    char *explicit_type;
    int64_t vcpus, memory_mib, gpus;
    bool multi_nic;
    char *user_data;
    size_t user_data_len;
    char **tags;
    char *vm_path;
    char *vm_url;
    char *size;
    char *ssh_key;
    uint64_t deadline;

    uv_work_t work;
    int keygen_status;
    caa_error *keygen_error;
    az_arm_call *call;
    az_lro *lro;
    az_vm_lookup *lookup;
    az_vm_delete *del;

    caa_error *error; /* the failure being reported */
};

/* ------------------------------------------------------------ VM sizes */

static void create_sizes_ready(az_create *c, int status, const caa_error *err);

static void on_sizes(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    az_provider *p = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    p->sizes_call = NULL;
    caa_instance_type *all = NULL;
    size_t n_all = 0;
    if (status == 0)
        status = az_parse_vm_sizes(r->body, r->body_len, &all, &n_all, &err);
    if (status == 0) {
        /* Keep the allowed sizes (always the default one). */
        caa_instance_type *keep = xnew0(caa_instance_type, n_all ? n_all : 1);
        size_t k = 0;
        for (size_t i = 0; i < n_all; i++) {
            bool allowed = strcmp(all[i].name, p->cfg->instance_size) == 0 ||
                           caa_strv_contains(p->cfg->instance_sizes, all[i].name);
            if (allowed && !caa_instance_type_find(keep, k, all[i].name)) {
                keep[k] = all[i];
                all[i].name = NULL;
                k++;
            }
        }
        caa_instance_types_free(all, n_all);
        caa_instance_types_sort(keep, k);
        caa_instance_types_free(p->types, p->n_types);
        p->types = keep;
        p->n_types = k;
        p->sizes_ready = true;
        log_debug("region %s offers %zu of the allowed VM sizes", p->cfg->region, k);
    } else if (!p->stopping) {
        /* (After teardown the options, p->cfg, may already be freed.) */
        caa_error_prefix(&err, "listing the VM sizes of region %s", p->cfg->region);
        log_debug("%s", caa_error_msg(err));
    }
    /* Each waiter goes on, or fails with a copy of the error. Creates
     * started from these callbacks queue on a new list (and a new load). */
    az_create *c = TAKE_PTR(p->sizes_waiters), *next;
    for (; c; c = next) {
        next = c->wnext;
        create_sizes_ready(c, status, err);
    }
    caa_error_free(err);
    provider_release(p);
}

static int sizes_load(az_provider *p, caa_error **err)
{
    if (p->sizes_call)
        return 0;
    _cleanup_free_ char *path =
        xasprintf("/subscriptions/%s/providers/Microsoft.Compute/locations/%s/vmSizes",
                  p->cfg->subscription_id, p->cfg->region);
    _cleanup_free_ char *url = az_url(&p->ctx, path, AZ_COMPUTE_API_VERSION);
    int r = az_arm_start(&p->ctx, "GET", url, NULL, deadline_in(p, p->set.create_timeout_ms), 0, on_sizes, p,
                         &p->sizes_call, err);
    if (r < 0)
        return r;
    caa_ref(&p->pending);
    return 0;
}

/* -------------------------------------------------------------- create */

static void create_free(caa_op *op)
{
    az_create *c = CAA_CONTAINER_OF(op, az_create, op);
    free(c->name);
    free(c->sandbox_id);
    free(c->image);
    free(c->explicit_type);
    free(c->user_data);
    caa_strv_free(c->tags);
    free(c->vm_path);
    free(c->vm_url);
    free(c->size);
    free(c->ssh_key);
    caa_error_free(c->keygen_error);
    caa_error_free(c->error);
    free(c);
}

static void create_deliver(az_create *c, int status, caa_instance *inst, caa_error *err)
{
    if (status < 0 && !err)
        err = caa_error_new(status, "creating the VM failed");
    caa_op_finish_instance(&c->op, status, inst, err);
}

static void on_cleanup(int status, caa_error *err, void *opaque)
{
    az_create *c = opaque;
    c->del = NULL;
    caa_error *e = TAKE_PTR(c->error);
    caa_instance *inst = NULL;
    if (status < 0) {
        /* The VM may still be there: hand its id back for a later delete. */
        char *msg = xasprintf("%s; deleting VM %s failed too: %s", e->msg, c->name, caa_error_msg(err));
        free(e->msg);
        e->msg = msg;
        inst = caa_instance_new(c->vm_path, c->name);
    } else {
        log_debug("deleted VM %s after the failed create", c->name);
    }
    caa_error_free(err);
    create_deliver(c, e->code, inst, e);
}

/* The create failed: delete the VM when it may exist, then report err. */
static void create_fail(az_create *c, caa_error *err)
{
    az_provider *p = c->p;
    caa_error_prefix(&err, "creating VM %s", c->name);
    if (!c->may_exist) {
        create_deliver(c, err->code, NULL, err);
        return;
    }
    if (c->cancelled || p->stopping) {
        /* No more requests: the caller gets the id to delete later. */
        create_deliver(c, err->code, caa_instance_new(c->vm_path, c->name), err);
        return;
    }
    c->error = err;
    c->phase = C_CLEANUP;
    caa_error *e = NULL;
    int r = az_vm_delete_start(&p->ctx, c->vm_path, deadline_in(p, p->set.delete_timeout_ms), on_cleanup, c,
                               &c->del, &e);
    if (r < 0)
        on_cleanup(r, e, c);
}

static void on_lookup(int status, caa_instance *inst, az_vm *vm, caa_error *err, void *opaque)
{
    az_create *c = opaque;
    c->lookup = NULL;
    if (vm) {
        az_vm_done(vm);
        free(vm);
    }
    if (status < 0) {
        caa_error_prefix(&err, "reading the addresses of the new VM");
        create_fail(c, err);
        return;
    }
    if (!inst->ips || !inst->ips[0]) {
        caa_instance_free(inst);
        create_fail(c, caa_error_new(-EPROTO, "the VM has no IP address"));
        return;
    }
    create_deliver(c, 0, inst, NULL);
}

static void create_lookup(az_create *c)
{
    az_provider *p = c->p;
    if (c->cancelled) {
        create_fail(c, caa_error_new(-ECANCELED, "cancelled"));
        return;
    }
    c->phase = C_LOOKUP;
    caa_error *e = NULL;
    int r = az_vm_lookup_start(&p->ctx, c->vm_path, p->cfg->use_public_ip, c->deadline, on_lookup, c,
                               &c->lookup, &e);
    if (r < 0)
        create_fail(c, e);
}

static void on_lro(int status, caa_error *err, void *opaque)
{
    az_create *c = opaque;
    c->lro = NULL;
    if (status < 0) {
        create_fail(c, err);
        return;
    }
    create_lookup(c);
}

static void follow(az_create *c, const char *method, const caa_http_response *r)
{
    c->phase = C_LRO;
    caa_error *e = NULL;
    int rc = az_lro_start(&c->p->ctx, method, c->vm_url, r, c->deadline, on_lro, c, &c->lro, &e);
    if (rc < 0)
        create_fail(c, e);
}

/* 409 on the PUT: a VM of that name exists. Ours (same sandbox) is adopted
 * (a retried create); anything else is reported and left alone. */
static void on_adopt(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    az_create *c = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    c->call = NULL;
    caa_error *put_err = TAKE_PTR(c->error);
    az_vm vm = {0};
    caa_error *e = NULL;
    if (status == 0 && !c->cancelled && az_parse_vm(r->body, r->body_len, &vm, &e) == 0 && vm.tag_sandbox &&
        strcmp(vm.tag_sandbox, c->sandbox_id) == 0) {
        log_debug("VM %s exists for this sandbox already; adopting it", c->name);
        az_vm_done(&vm);
        caa_error_free(put_err);
        caa_error_free(err);
        c->may_exist = true;
        /* Follow its provisioning state (body mode). */
        follow(c, "PUT", r);
        return;
    }
    az_vm_done(&vm);
    caa_error_free(e);
    caa_error_free(err);
    create_fail(c, put_err);
}

static void on_put(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    az_create *c = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    c->call = NULL;
    if (status < 0) {
        /* A definite ARM rejection (4xx) created nothing; anything else
         * (timeout, network, 5xx, cancel) may have. */
        long http = r ? r->status : 0;
        c->may_exist = !(http >= 400 && http < 500);
        if (http == 409 && !c->cancelled) {
            c->phase = C_ADOPT;
            c->error = err;
            caa_error *e = NULL;
            if (az_arm_start(&c->p->ctx, "GET", c->vm_url, NULL, c->deadline, 0, on_adopt, c, &c->call, &e) <
                0) {
                caa_error_free(e);
                c->error = NULL;
                create_fail(c, err);
            }
            return;
        }
        create_fail(c, err);
        return;
    }
    c->may_exist = true;
    if (c->cancelled) {
        create_fail(c, caa_error_new(-ECANCELED, "cancelled"));
        return;
    }
    follow(c, "PUT", r);
}

static int create_put(az_create *c, caa_error **err)
{
    az_provider *p = c->p;
    const char *key = c->ssh_key ? c->ssh_key : p->ssh_key;
    az_vm_params vp = {
        .name = c->name,
        .location = p->cfg->region,
        .size = c->size,
        .image_id = c->image ? c->image : p->cfg->image_id,
        .admin_user = p->cfg->ssh_username,
        .ssh_public_key = key,
        .subnet_id = p->cfg->subnet_id,
        .secondary_subnet_id = c->multi_nic ? p->cfg->secondary_subnet_id : NULL,
        .nsg_id = p->cfg->nsg_id,
        .cvm = !p->cfg->disable_cvm,
        .secure_boot = p->cfg->enable_secure_boot,
        .public_ip = p->cfg->use_public_ip,
        .disk_size_gb = p->cfg->root_volume_size,
        .tags = c->tags,
        .node = p->set.node_name,
        .sandbox_id = c->sandbox_id,
        .user_data = c->user_data,
        .user_data_len = c->user_data_len,
    };
    json_t *body = az_vm_body(&vp);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        caa_oom();
    c->phase = C_PUT;
    int r = az_arm_start(&p->ctx, "PUT", c->vm_url, text, c->deadline, 0, on_put, c, &c->call, err);
    free(text);
    return r;
}

static void keygen_run(uv_work_t *w)
{
    az_create *c = CAA_CONTAINER_OF(w, az_create, work);
    c->keygen_status = az_ssh_keygen(AZ_KEY_RSA4096, &c->ssh_key, &c->keygen_error);
    /* Free OpenSSL's per-thread state (its DRBG): the pool thread lives on. */
    OPENSSL_thread_stop();
}

static void keygen_done(uv_work_t *w, int status)
{
    az_create *c = CAA_CONTAINER_OF(w, az_create, work);
    if (status == UV_ECANCELED || c->cancelled) {
        create_fail(c, caa_error_new(-ECANCELED, "cancelled"));
        return;
    }
    if (c->keygen_status < 0) {
        create_fail(c, TAKE_PTR(c->keygen_error));
        return;
    }
    caa_error *e = NULL;
    if (create_put(c, &e) < 0)
        create_fail(c, e);
}

/* Picks the size and the key, then sends the PUT. Fails synchronously. */
static int create_proceed(az_create *c, caa_error **err)
{
    az_provider *p = c->p;
    caa_instance_type_request req = {
        .explicit_type = c->explicit_type,
        .vcpus = c->vcpus,
        .memory_mib = c->memory_mib,
        .gpus = c->gpus,
    };
    int r = caa_instance_type_select(p->types, p->n_types, p->cfg->instance_size, p->cfg->instance_sizes,
                                     &req, &c->size, err);
    if (r < 0)
        return r;
    if (!p->ssh_key && p->set.key_type == AZ_KEY_ED25519) {
        r = az_ssh_keygen(AZ_KEY_ED25519, &c->ssh_key, err);
        if (r < 0)
            return r;
    } else if (!p->ssh_key) {
        /* RSA-4096 takes seconds: on the thread pool. */
        c->phase = C_KEYGEN;
        r = uv_queue_work(p->ctx.loop, &c->work, keygen_run, keygen_done);
        if (r < 0)
            return caa_error_set(err, -EIO, "queueing the key generation: %s", uv_strerror(r));
        return 0;
    }
    return create_put(c, err);
}

static void create_sizes_ready(az_create *c, int status, const caa_error *err)
{
    c->wnext = NULL;
    if (c->cancelled) {
        create_fail(c, caa_error_new(-ECANCELED, "cancelled"));
        return;
    }
    if (status < 0) {
        create_fail(c, caa_error_copy(err));
        return;
    }
    caa_error *e = NULL;
    if (create_proceed(c, &e) < 0)
        create_fail(c, e);
}

static void sizes_unwait(az_create *c)
{
    for (az_create **w = &c->p->sizes_waiters; *w; w = &(*w)->wnext)
        if (*w == c) {
            *w = c->wnext;
            c->wnext = NULL;
            return;
        }
}

static void create_cancel(caa_op *op)
{
    az_create *c = CAA_CONTAINER_OF(op, az_create, op);
    if (c->cancelled)
        return;
    c->cancelled = true;
    switch (c->phase) {
    case C_SIZES:
        /* At shutdown the sizes call is cancelled and its callback wakes us;
         * a caller's cancel leaves the call to the other waiters. */
        if (!c->p->stopping) {
            sizes_unwait(c);
            create_fail(c, caa_error_new(-ECANCELED, "cancelled"));
        }
        break;
    case C_KEYGEN:
        uv_cancel((uv_req_t *)&c->work);
        break;
    case C_PUT:
    case C_ADOPT:
        az_arm_cancel(c->call);
        break;
    case C_LRO:
        az_lro_cancel(c->lro);
        break;
    case C_LOOKUP:
        az_vm_lookup_cancel(c->lookup);
        break;
    case C_CLEANUP:
        az_vm_delete_cancel(c->del);
        break;
    }
}

static const caa_op_class create_class = {.cancel = create_cancel, .free = create_free};

static int az_validate_spec(void *priv, const caa_instance_spec *spec, caa_error **err)
{
    az_provider *p = priv;
    if (!vm_name_valid(spec->instance_name))
        return caa_error_set(err, -EINVAL, "instance name \"%.80s\" is not a valid Azure VM name",
                             spec->instance_name ? spec->instance_name : "");
    size_t sl = spec->sandbox_id ? strlen(spec->sandbox_id) : 0;
    if (sl == 0 || sl > 256 ||
        strspn(spec->sandbox_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != sl)
        return caa_error_set(err, -EINVAL, "sandbox id is not usable as an Azure tag value");
    size_t b64 = az_base64_len(spec->user_data ? spec->user_data_len : 0);
    if (b64 > AZ_USERDATA_MAX_B64)
        return caa_error_set(err, -EINVAL,
                             "user data is %zu bytes after base64, Azure takes at most %u (64 KiB)", b64,
                             AZ_USERDATA_MAX_B64);
    if (spec->multi_nic && !(p->cfg->secondary_subnet_id && *p->cfg->secondary_subnet_id))
        return caa_error_set(err, -EINVAL,
                             "multi-NIC pod networking (external-net-via-pod-vm) was requested but "
                             "-secondary-subnetid (AZURE_SECONDARY_SUBNET_ID) is not configured");
    if (spec->image && *spec->image && !image_valid(spec->image))
        return caa_error_set(err, -EINVAL,
                             "image \"%.200s\" is not an Azure image id or /CommunityGalleries/ id",
                             spec->image);
    if (spec->instance_type && *spec->instance_type) {
        caa_instance_type_request req = {.explicit_type = spec->instance_type};
        _cleanup_free_ char *chosen = NULL;
        int r = caa_instance_type_select(NULL, 0, p->cfg->instance_size, p->cfg->instance_sizes, &req,
                                         &chosen, err);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; spec->tags && spec->tags[i]; i++)
        if (!strchr(spec->tags[i], '='))
            return caa_error_set(err, -EINVAL, "tag \"%.64s\" is not key=value", spec->tags[i]);
    return az_tags_validate(spec->tags, err);
}

static int az_create_instance(void *priv, const caa_instance_spec *spec, caa_instance_cb cb, void *opaque,
                              caa_error **err)
{
    az_provider *p = priv;
    if (p->stopping)
        return caa_error_set(err, -ESHUTDOWN, "the Azure provider is shutting down");
    int r = az_validate_spec(p, spec, err);
    if (r < 0)
        return r;
    az_create *c = xcalloc(1, sizeof(*c));
    c->p = p;
    c->name = xstrdup(spec->instance_name);
    c->sandbox_id = xstrdup(spec->sandbox_id);
    c->image = spec->image && *spec->image ? xstrdup(spec->image) : NULL;
    c->explicit_type = spec->instance_type && *spec->instance_type ? xstrdup(spec->instance_type) : NULL;
    c->vcpus = spec->vcpus;
    c->memory_mib = spec->memory_mib;
    c->gpus = spec->gpus;
    c->multi_nic = spec->multi_nic;
    c->user_data_len = spec->user_data ? spec->user_data_len : 0;
    c->user_data = xmalloc(c->user_data_len + 1);
    if (c->user_data_len)
        memcpy(c->user_data, spec->user_data, c->user_data_len);
    c->user_data[c->user_data_len] = '\0';
    /* Configured tags first; the pod's own override them. */
    c->tags = caa_strv_copy(p->cfg->tags);
    for (size_t i = 0; spec->tags && spec->tags[i]; i++)
        caa_strv_push(&c->tags, spec->tags[i]);
    c->vm_path = xasprintf("%s/%s", p->set.vm_base_path, spec->instance_name);
    c->vm_url = az_url(&p->ctx, c->vm_path, AZ_COMPUTE_API_VERSION);
    c->deadline = deadline_in(p, p->set.create_timeout_ms);

    bool need_sizes = !c->explicit_type && (c->gpus > 0 || (c->vcpus > 0 && c->memory_mib > 0));
    if (need_sizes && !p->sizes_ready) {
        r = sizes_load(p, err);
        if (r < 0) {
            create_free(&c->op);
            return r;
        }
        c->phase = C_SIZES;
        c->wnext = p->sizes_waiters;
        p->sizes_waiters = c;
    } else {
        r = create_proceed(c, err);
        if (r < 0) {
            create_free(&c->op);
            return r;
        }
    }
    caa_op_add_create(&p->ops, &c->op, &create_class, cb, opaque);
    log_debug("creating VM %s (size %s)", c->name, c->size ? c->size : "after the size list");
    return 0;
}

/* -------------------------------------------------------- delete, get */

/* delete and get: one block of azure-vm-ops.c each. */
typedef struct az_vm_req {
    caa_op op;
    az_vm_delete *del;
    az_vm_lookup *lookup;
} az_vm_req;

static void on_deleted(int status, caa_error *err, void *opaque)
{
    az_vm_req *d = opaque;
    d->del = NULL;
    caa_op_finish_done(&d->op, status, err);
}

static void on_got(int status, caa_instance *inst, az_vm *vm, caa_error *err, void *opaque)
{
    az_vm_req *g = opaque;
    g->lookup = NULL;
    if (vm) {
        az_vm_done(vm);
        free(vm);
    }
    caa_op_finish_instance(&g->op, status, inst, err);
}

static void vm_req_cancel(caa_op *op)
{
    az_vm_req *r = CAA_CONTAINER_OF(op, az_vm_req, op);
    if (r->del)
        az_vm_delete_cancel(r->del);
    if (r->lookup)
        az_vm_lookup_cancel(r->lookup);
}

static void vm_req_free(caa_op *op)
{
    free(CAA_CONTAINER_OF(op, az_vm_req, op));
}

static const caa_op_class vm_req_class = {.cancel = vm_req_cancel, .free = vm_req_free};

/* Starts a delete or a get; cb set through the member of its kind. */
static int vm_req_start(az_provider *p, caa_op_kind kind, const char *instance_id, caa_op_cb cb, void *opaque,
                        caa_error **err)
{
    if (p->stopping)
        return caa_error_set(err, -ESHUTDOWN, "the Azure provider is shutting down");
    _cleanup_free_ char *name = az_vm_name_of_id(instance_id);
    if (!name)
        return caa_error_set(err, -EINVAL, "\"%.200s\" is not the ARM id of a virtual machine", instance_id);
    az_vm_req *req = xcalloc(1, sizeof(*req));
    int r =
        kind == CAA_OP_DELETE
            ? az_vm_delete_start(&p->ctx, instance_id, deadline_in(p, p->set.delete_timeout_ms), on_deleted,
                                 req, &req->del, err)
            : az_vm_lookup_start(&p->ctx, instance_id, p->cfg->use_public_ip,
                                 deadline_in(p, p->set.create_timeout_ms), on_got, req, &req->lookup, err);
    if (r < 0) {
        free(req);
        return kind == CAA_OP_DELETE ? caa_error_prefix(err, "deleting VM %s", name) : r;
    }
    caa_op_add(&p->ops, &req->op, &vm_req_class, kind, cb, opaque);
    return 0;
}

static int az_delete_instance(void *priv, const char *instance_id, caa_done_cb cb, void *opaque,
                              caa_error **err)
{
    return vm_req_start(priv, CAA_OP_DELETE, instance_id, (caa_op_cb){.done = cb}, opaque, err);
}

static int az_get_instance(void *priv, const char *instance_id, caa_instance_cb cb, void *opaque,
                           caa_error **err)
{
    return vm_req_start(priv, CAA_OP_GET, instance_id, (caa_op_cb){.instance = cb}, opaque, err);
}

/* ---------------------------------------------------------------- list */

typedef struct az_list {
    caa_op op;
    az_provider *p;
    az_arm_call *call;
    unsigned pages;
    caa_instance **found;
    size_t n_found;
    uint64_t deadline;
} az_list;

static void list_finish(az_list *l, int status, caa_error *err)
{
    caa_op_finish_list(&l->op, status, TAKE_PTR(l->found), err);
}

static void on_list_page(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    az_list *l = opaque;
    az_provider *p = l->p;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    l->call = NULL;
    if (status < 0) {
        caa_error_prefix(&err, "listing the VMs of resource group %s", p->cfg->resource_group);
        list_finish(l, status, err);
        return;
    }
    az_vm *vms = NULL;
    size_t n = 0;
    _cleanup_free_ char *next = NULL;
    caa_error *e = NULL;
    if (az_parse_vm_list(r->body, r->body_len, &vms, &n, &next, &e) < 0) {
        list_finish(l, e->code, e);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!vms[i].tag_node || strcmp(vms[i].tag_node, p->set.node_name) != 0)
            continue;
        if (!vm_name_valid(vms[i].name))
            continue;
        if (l->n_found >= MAX_LISTED_VMS) {
            az_vm_list_free(vms, n);
            log_warn("VM list of resource group %s: more than %d VMs of node %s, not listing further",
                     p->cfg->resource_group, MAX_LISTED_VMS, p->set.node_name);
            list_finish(l, -E2BIG,
                        caa_error_new(-E2BIG, "VM list: more than %d VMs of this node", MAX_LISTED_VMS));
            return;
        }
        l->found = xrealloc(l->found, (l->n_found + 2) * sizeof(*l->found));
        _cleanup_free_ char *path = xasprintf("%s/%s", p->set.vm_base_path, vms[i].name);
        l->found[l->n_found++] = caa_instance_new(path, vms[i].name);
        l->found[l->n_found] = NULL;
    }
    az_vm_list_free(vms, n);
    if (!next) {
        log_debug("VM list: %zu VMs of node %s in %u page(s)", l->n_found, p->set.node_name, l->pages + 1);
        list_finish(l, 0, NULL);
        return;
    }
    if (++l->pages >= MAX_LIST_PAGES) {
        log_warn("VM list of resource group %s: more than %d pages (%zu VMs of node %s so far), giving up",
                 p->cfg->resource_group, MAX_LIST_PAGES, l->n_found, p->set.node_name);
        list_finish(l, -EPROTO, caa_error_new(-EPROTO, "VM list has more than %d pages", MAX_LIST_PAGES));
        return;
    }
    if (az_arm_start(&p->ctx, "GET", next, NULL, l->deadline, 0, on_list_page, l, &l->call, &e) < 0) {
        caa_error_prefix(&e, "VM list nextLink");
        list_finish(l, e->code, e);
    }
}

static void list_cancel(caa_op *op)
{
    az_list *l = CAA_CONTAINER_OF(op, az_list, op);
    az_arm_cancel(l->call);
}

static void list_free(caa_op *op)
{
    az_list *l = CAA_CONTAINER_OF(op, az_list, op);
    caa_instance_list_free(l->found);
    free(l);
}

static const caa_op_class list_class = {.cancel = list_cancel, .free = list_free};

static int az_list_instances(void *priv, caa_list_cb cb, void *opaque, caa_error **err)
{
    az_provider *p = priv;
    if (p->stopping)
        return caa_error_set(err, -ESHUTDOWN, "the Azure provider is shutting down");
    az_list *l = xcalloc(1, sizeof(*l));
    l->p = p;
    l->deadline = deadline_in(p, p->set.create_timeout_ms);
    _cleanup_free_ char *url = az_url(&p->ctx, p->set.vm_base_path, AZ_COMPUTE_API_VERSION);
    int r = az_arm_start(&p->ctx, "GET", url, NULL, l->deadline, 0, on_list_page, l, &l->call, err);
    if (r < 0) {
        free(l);
        return r;
    }
    caa_op_add_list(&p->ops, &l->op, &list_class, cb, opaque);
    return 0;
}

/* ---------------------------------------------------- init / teardown */

static int az_init(uv_loop_t *loop, const void *config, void **ret_priv, caa_error **err)
{
    const az_config *cfg = config;
    az_settings set;
    int r = az_config_validate(cfg, &set, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *key = NULL;
    if (cfg->ssh_key_path && *cfg->ssh_key_path) {
        r = az_ssh_pubkey_read(cfg->ssh_key_path, &key, err);
        if (r < 0) {
            az_settings_done(&set);
            return r;
        }
    }
    caa_http_client_options ho = {
        .max_active = (unsigned)cfg->max_requests,
        .timeout_ms = set.request_timeout_ms,
        .user_agent = "cloud-api-adaptor/azure",
    };
    caa_http_client *http = NULL;
    r = caa_http_client_new(loop, &ho, &http, err);
    if (r < 0) {
        az_settings_done(&set);
        return r;
    }
    az_provider *p = xcalloc(1, sizeof(*p));
    p->cfg = cfg;
    p->set = set;
    p->ssh_key = TAKE_PTR(key);
    p->ctx = (az_ctx){.loop = loop, .http = http, .cfg = cfg, .set = &p->set};
    p->ctx.tokens = az_tokens_new(loop, http, cfg, &p->set);
    caa_refcount_init(&p->pending, 3); /* init's own reference, the token source and the op set */
    caa_op_set_init(&p->ops, loop, "azure");
    /* Start with the size list (and so the first token) right away; a
     * failure shows up in the first create that needs the list. */
    caa_error *e = NULL;
    if (sizes_load(p, &e) < 0) {
        log_debug("listing the VM sizes: %s", caa_error_msg(e));
        caa_error_free(e);
    }
    *ret_priv = p;
    return 0;
}

static int az_verify_config(void *priv, caa_error **err)
{
    az_provider *p = priv;
    az_settings s;
    int r = az_config_validate(p->cfg, &s, err);
    if (r < 0)
        return r;
    az_settings_done(&s);
    if (!image_valid(p->cfg->image_id))
        return caa_error_set(err, -EINVAL,
                             "-imageid \"%s\" is not an Azure image id or /CommunityGalleries/ id",
                             p->cfg->image_id);
    if (p->cfg->ssh_key_path && *p->cfg->ssh_key_path) {
        r = az_ssh_key_file_mode_check(p->cfg->ssh_key_path, err);
        if (r < 0)
            return r;
        _cleanup_free_ char *line = NULL;
        r = az_ssh_pubkey_read(p->cfg->ssh_key_path, &line, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static void tokens_closed(void *opaque)
{
    provider_release(opaque);
}

static void ops_closed(void *opaque)
{
    provider_release(opaque);
}

static void az_cancel(void *priv, void *opaque)
{
    az_provider *p = priv;
    if (!p->stopping)
        caa_op_set_cancel(&p->ops, opaque);
}

static void az_teardown(void *priv)
{
    az_provider *p = priv;
    if (!p || p->stopping)
        return;
    p->stopping = true;
    caa_op_set_close(&p->ops, ops_closed, p);
    if (p->sizes_call)
        az_arm_cancel(p->sizes_call);
    az_tokens_close(p->ctx.tokens, tokens_closed, p);
    caa_http_client_close(p->ctx.http);
    provider_release(p);
}

const caa_provider_ops caa_azure_provider = {
    .name = "azure",
    .options = az_options,
    .n_options = AZ_N_OPTIONS,
    .config_size = sizeof(az_config),
    .init = az_init,
    .verify_config = az_verify_config,
    .validate_spec = az_validate_spec,
    .create_instance = az_create_instance,
    .delete_instance = az_delete_instance,
    .list_instances = az_list_instances,
    .get_instance = az_get_instance,
    .teardown = az_teardown,
    .cancel = az_cancel,
};
