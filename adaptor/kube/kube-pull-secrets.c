/* Image-pull secrets: the API walk (pod -> service account -> secrets, the
 * secrets fetched in parallel and merged in upstream's order) and the merge. */
#define LOG_COMPONENT "adaptor/kube"
#include "kube-pull-secrets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kube-base64.h"
#include "kube-status.h"
#include "log.h"
#include "xalloc.h"

/* The CreateVM path waits for these: fewer attempts, shorter timeouts. */
#define FETCH_ATTEMPTS 3
#define FETCH_TIMEOUT_MS 10000
/* More names than this in one pod is not a real pod. */
#define MAX_SECRETS 64

void caa_kube_secret_free(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

/* ---------------------------------------------------------------- merge */

static const char *string_field(const json_t *creds, const char *key, bool *bad)
{
    json_t *v = json_object_get(creds, key);
    if (!v || json_is_null(v))
        return "";
    if (!json_is_string(v)) {
        *bad = true;
        return "";
    }
    return json_string_value(v);
}

static int merge_registries(json_t *registries, const json_t *from, const char *what, caa_error **err)
{
    if (!from || json_is_null(from))
        return 0;
    if (!json_is_object(from))
        return caa_error_set(err, -EINVAL, "image pull secret %s: the registries are not a JSON object",
                             what);
    const char *registry;
    json_t *creds;
    json_object_foreach((json_t *)from, registry, creds)
    {
        if (!json_is_object(creds))
            return caa_error_set(err, -EINVAL, "image pull secret %s: a registry entry is not a JSON object",
                                 what);
        bool bad = false;
        const char *auth = string_field(creds, "auth", &bad);
        const char *user = string_field(creds, "username", &bad);
        const char *pass = string_field(creds, "password", &bad);
        if (bad)
            return caa_error_set(err, -EINVAL,
                                 "image pull secret %s: a registry entry has a non-string field", what);
        char *made = NULL;
        if (!*auth) {
            if (!*user || !*pass)
                continue;
            size_t ul = strlen(user), pl = strlen(pass);
            char *pair = xmalloc(ul + pl + 2);
            memcpy(pair, user, ul);
            pair[ul] = ':';
            memcpy(pair + ul + 1, pass, pl + 1);
            made = caa_kube_base64_encode(pair, ul + pl + 1);
            caa_kube_secret_free(pair);
            auth = made;
        }
        json_object_set_new(registries, registry, json_pack("{s:s}", "auth", auth));
        caa_kube_secret_free(made);
    }
    return 0;
}

int caa_kube_auths_merge_secret(json_t *registries, const json_t *secret, const char *what, caa_error **err)
{
    json_t *data = json_object_get(secret, "data");
    if (!data || json_is_null(data))
        return 0;
    if (!json_is_object(data))
        return caa_error_set(err, -EINVAL, "image pull secret %s: data is not an object", what);
    const char *key = ".dockerconfigjson";
    json_t *b64 = json_object_get(data, key);
    if (!b64) {
        key = ".dockercfg";
        b64 = json_object_get(data, key);
    }
    if (!b64)
        return 0;
    if (!json_is_string(b64))
        return caa_error_set(err, -EINVAL, "image pull secret %s: %s is not a string", what, key);
    char *raw;
    size_t raw_len;
    if (caa_kube_base64_decode(json_string_value(b64), json_string_length(b64), &raw, &raw_len, NULL) < 0)
        return caa_error_set(err, -EINVAL, "image pull secret %s: %s is not valid base64", what, key);
    json_t *doc = json_loadb(raw, raw_len, JSON_REJECT_DUPLICATES, NULL);
    explicit_bzero(raw, raw_len);
    free(raw);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return caa_error_set(err, -EINVAL, "image pull secret %s: %s is not a JSON object", what, key);
    }
    int r = merge_registries(registries, strcmp(key, ".dockercfg") == 0 ? doc : json_object_get(doc, "auths"),
                             what, err);
    json_decref(doc);
    return r;
}

char *caa_kube_auths_to_json(const json_t *registries, size_t *ret_len)
{
    if (!json_is_object(registries) || json_object_size(registries) == 0)
        return NULL;
    json_t *doc = json_pack("{s:O}", "auths", (json_t *)registries);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    if (!text)
        caa_oom();
    *ret_len = strlen(text);
    return text;
}

/* ---------------------------------------------------------------- the walk */

typedef struct secret_slot {
    caa_kube_pull_secrets *op;
    char *name;
    caa_kube_call *call;
    json_t *secret; /* NULL: missing or unreadable */
    bool done;
} secret_slot;

struct caa_kube_pull_secrets {
    caa_kube_client *c;
    char *pod_name, *ns;
    caa_kube_call *call; /* pod or account GET */
    json_t *pod_secrets; /* names from the pod, kept until the account answered */
    secret_slot *slots;
    size_t n_slots, n_pending;
    bool cancelled;
    caa_kube_pull_secrets_cb cb;
    void *opaque;
};

static void op_free(caa_kube_pull_secrets *op)
{
    for (size_t i = 0; i < op->n_slots; i++) {
        free(op->slots[i].name);
        json_decref(op->slots[i].secret);
    }
    free(op->slots);
    json_decref(op->pod_secrets);
    free(op->pod_name);
    free(op->ns);
    free(op);
}

static void op_finish(caa_kube_pull_secrets *op, int status, char *auth, size_t len, caa_error *err)
{
    if (op->cancelled && status == 0) {
        caa_kube_secret_free(auth);
        auth = NULL;
        status = -ECANCELED;
        err = caa_error_new(-ECANCELED, "fetching image pull secrets: cancelled");
    }
    op->cb(status, auth, len, err, op->opaque);
    op_free(op);
}

static void add_name(caa_kube_pull_secrets *op, const char *name)
{
    if (!caa_kube_name_valid(name)) {
        log_warn("pod %s/%s: an imagePullSecrets entry is not a valid secret name; skipped", op->ns,
                 op->pod_name);
        return;
    }
    for (size_t i = 0; i < op->n_slots; i++)
        if (strcmp(op->slots[i].name, name) == 0)
            return;
    if (op->n_slots == MAX_SECRETS)
        return;
    op->slots[op->n_slots++] = (secret_slot){.op = op, .name = xstrdup(name)};
}

static void add_names(caa_kube_pull_secrets *op, const json_t *list)
{
    size_t i;
    json_t *ref;
    json_array_foreach(list, i, ref)
    {
        const char *name = json_string_value(json_object_get(ref, "name"));
        if (name)
            add_name(op, name);
    }
}

static void merge_all(caa_kube_pull_secrets *op)
{
    json_t *registries = json_object();
    caa_error *err = NULL;
    for (size_t i = 0; i < op->n_slots; i++) {
        if (!op->slots[i].secret)
            continue;
        _cleanup_free_ char *what = xasprintf("%s/%s", op->ns, op->slots[i].name);
        if (caa_kube_auths_merge_secret(registries, op->slots[i].secret, what, &err) < 0) {
            json_decref(registries);
            op_finish(op, err->code, NULL, 0, err);
            return;
        }
    }
    size_t len = 0;
    char *auth = caa_kube_auths_to_json(registries, &len);
    json_decref(registries); /* the merged values are wiped only as jansson frees them */
    op_finish(op, 0, auth, len, NULL);
}

static void on_secret(int status, json_t *obj, caa_error *err, void *opaque)
{
    secret_slot *slot = opaque;
    caa_kube_pull_secrets *op = slot->op;
    slot->call = NULL;
    slot->done = true;
    if (status == 0) {
        slot->secret = obj;
    } else {
        /* As upstream (and the kubelet): a secret that cannot be read is skipped. */
        if (status != -ECANCELED)
            log_warn("pod %s/%s: image pull secret %s skipped: %s", op->ns, op->pod_name, slot->name,
                     caa_error_msg(err));
        json_decref(obj);
    }
    caa_error_free(err);
    if (--op->n_pending == 0)
        merge_all(op);
}

static void start_secrets(caa_kube_pull_secrets *op)
{
    if (op->n_slots == 0) {
        op_finish(op, 0, NULL, 0, NULL);
        return;
    }
    op->n_pending = op->n_slots;
    for (size_t i = 0; i < op->n_slots; i++) {
        secret_slot *slot = &op->slots[i];
        _cleanup_free_ char *path = xasprintf("/api/v1/namespaces/%s/secrets/%s", op->ns, slot->name);
        caa_kube_request req = {
            .verb = "GET", .path = path, .max_attempts = FETCH_ATTEMPTS, .timeout_ms = FETCH_TIMEOUT_MS};
        caa_error *err = NULL;
        if (caa_kube_call_start(op->c, &req, on_secret, slot, &slot->call, &err) < 0) {
            /* Only when the client is closing: count it as answered. */
            caa_error_free(err);
            slot->done = true;
            if (--op->n_pending == 0) {
                merge_all(op);
                return;
            }
        }
    }
}

static void on_account(int status, json_t *obj, caa_error *err, void *opaque)
{
    caa_kube_pull_secrets *op = opaque;
    op->call = NULL;
    if (status < 0) {
        caa_error_prefix(&err, "reading the service account of pod %s/%s", op->ns, op->pod_name);
        op_finish(op, status, NULL, 0, err);
        return;
    }
    if (op->cancelled) {
        json_decref(obj);
        op_finish(op, -ECANCELED, NULL, 0, NULL);
        return;
    }
    add_names(op, json_object_get(obj, "imagePullSecrets"));
    add_names(op, op->pod_secrets);
    json_decref(obj);
    start_secrets(op);
}

static void on_pod(int status, json_t *obj, caa_error *err, void *opaque)
{
    caa_kube_pull_secrets *op = opaque;
    op->call = NULL;
    if (status < 0) {
        caa_error_prefix(&err, "reading pod %s/%s for its image pull secrets", op->ns, op->pod_name);
        op_finish(op, status, NULL, 0, err);
        return;
    }
    json_t *spec = json_object_get(obj, "spec");
    const char *sa = json_string_value(json_object_get(spec, "serviceAccountName"));
    if (!sa || !*sa)
        sa = "default";
    op->pod_secrets = json_incref(json_object_get(spec, "imagePullSecrets"));
    if (!caa_kube_name_valid(sa) || op->cancelled) {
        json_decref(obj);
        op_finish(op, op->cancelled ? -ECANCELED : -EINVAL, NULL, 0,
                  op->cancelled ? NULL
                                : caa_error_new(-EINVAL, "pod %s/%s: the service account name is not valid",
                                                op->ns, op->pod_name));
        return;
    }
    _cleanup_free_ char *path = xasprintf("/api/v1/namespaces/%s/serviceaccounts/%s", op->ns, sa);
    json_decref(obj);
    caa_kube_request req = {
        .verb = "GET", .path = path, .max_attempts = FETCH_ATTEMPTS, .timeout_ms = FETCH_TIMEOUT_MS};
    caa_error *e = NULL;
    if (caa_kube_call_start(op->c, &req, on_account, op, &op->call, &e) < 0)
        op_finish(op, e->code, NULL, 0, e);
}

int caa_kube_pull_secrets_fetch(caa_kube_client *c, const char *pod_name, const char *pod_namespace,
                                caa_kube_pull_secrets_cb cb, void *opaque, caa_kube_pull_secrets **ret,
                                caa_error **err)
{
    if (!caa_kube_name_valid(pod_name) || !caa_kube_name_valid(pod_namespace))
        return caa_error_set(err, -EINVAL, "pod name or namespace is not a valid Kubernetes name");
    caa_kube_pull_secrets *op = xnew0(caa_kube_pull_secrets, 1);
    op->c = c;
    op->pod_name = xstrdup(pod_name);
    op->ns = xstrdup(pod_namespace);
    op->slots = xnew0(secret_slot, MAX_SECRETS);
    op->cb = cb;
    op->opaque = opaque;
    _cleanup_free_ char *path = xasprintf("/api/v1/namespaces/%s/pods/%s", pod_namespace, pod_name);
    caa_kube_request req = {
        .verb = "GET", .path = path, .max_attempts = FETCH_ATTEMPTS, .timeout_ms = FETCH_TIMEOUT_MS};
    int r = caa_kube_call_start(c, &req, on_pod, op, &op->call, err);
    if (r < 0) {
        op_free(op);
        return r;
    }
    if (ret)
        *ret = op;
    return 0;
}

void caa_kube_pull_secrets_cancel(caa_kube_pull_secrets *op)
{
    if (!op || op->cancelled)
        return;
    op->cancelled = true;
    if (op->call)
        caa_kube_call_cancel(op->call);
    for (size_t i = 0; i < op->n_slots; i++)
        if (op->slots[i].call)
            caa_kube_call_cancel(op->slots[i].call);
}
