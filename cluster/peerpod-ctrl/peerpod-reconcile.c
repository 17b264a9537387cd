/* PeerPod classification and finalizer release; see peerpod-reconcile.h. */
#include "peerpod-reconcile.h"

#include <errno.h>
#include <string.h>

#include "xalloc.h"

/* A required non-empty string field of obj, or NULL. */
static const char *string_field(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && s[0] ? s : NULL;
}

static bool has_our_finalizer(const json_t *finalizers)
{
    size_t i;
    const json_t *f;
    json_array_foreach(finalizers, i,
                       f) if (json_is_string(f) &&
                              strcmp(json_string_value(f), CAA_PEERPOD_CTRL_FINALIZER) == 0) return true;
    return false;
}

int caa_peerpod_classify(const json_t *obj, caa_peerpod_action *action, caa_peerpod_ref *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    const json_t *md = json_object_get(obj, "metadata");
    if (!json_is_object(md))
        return caa_error_set(err, -EINVAL, "PeerPod without metadata");
    const char *ns = string_field(md, "namespace"), *name = string_field(md, "name");
    const char *uid = string_field(md, "uid"), *rv = string_field(md, "resourceVersion");
    if (!ns || !name || !uid || !rv)
        return caa_error_set(err, -EINVAL, "PeerPod without namespace, name, uid or resourceVersion");
    const json_t *finalizers = json_object_get(md, "finalizers");
    if (finalizers && !json_is_array(finalizers))
        return caa_error_set(err, -EINVAL, "PeerPod %s/%s: metadata.finalizers is not a list", ns, name);
    const json_t *deletion = json_object_get(md, "deletionTimestamp");
    if (deletion && !json_is_null(deletion) && !json_is_string(deletion))
        return caa_error_set(err, -EINVAL, "PeerPod %s/%s: metadata.deletionTimestamp is not a string", ns,
                             name);

    caa_peerpod_action a = CAA_PEERPOD_KEEP;
    const char *provider = NULL, *instance = NULL;
    if (json_is_string(deletion) && has_our_finalizer(finalizers)) {
        const json_t *spec = json_object_get(obj, "spec");
        if (spec && !json_is_object(spec))
            return caa_error_set(err, -EINVAL, "PeerPod %s/%s: spec is not an object", ns, name);
        const json_t *jid = json_object_get(spec, "instanceID");
        if (jid && !json_is_string(jid))
            return caa_error_set(err, -EINVAL, "PeerPod %s/%s: spec.instanceID is not a string", ns, name);
        provider = string_field(spec, "cloudProvider");
        instance = string_field(spec, "instanceID");
        if (!provider && instance)
            return caa_error_set(err, -EINVAL, "PeerPod %s/%s: spec.cloudProvider missing", ns, name);
        a = instance ? CAA_PEERPOD_DELETE_INSTANCE : CAA_PEERPOD_RELEASE_ONLY;
    }
    ret->ns = xstrdup(ns);
    ret->name = xstrdup(name);
    ret->uid = xstrdup(uid);
    ret->resource_version = xstrdup(rv);
    ret->cloud_provider = provider ? xstrdup(provider) : NULL;
    ret->instance_id = instance ? xstrdup(instance) : NULL;
    *action = a;
    return 0;
}

void caa_peerpod_ref_done(caa_peerpod_ref *r)
{
    free(r->ns);
    free(r->name);
    free(r->uid);
    free(r->resource_version);
    free(r->cloud_provider);
    free(r->instance_id);
    memset(r, 0, sizeof(*r));
}

json_t *caa_peerpod_release_patch(const json_t *obj)
{
    const json_t *finalizers = json_object_get(json_object_get(obj, "metadata"), "finalizers");
    if (!json_is_array(finalizers) || !has_our_finalizer(finalizers))
        return NULL;
    json_t *rest = json_array();
    size_t i;
    const json_t *f;
    json_array_foreach(finalizers, i, f) if (!(json_is_string(f) &&
                                               strcmp(json_string_value(f), CAA_PEERPOD_CTRL_FINALIZER) == 0))
        json_array_append(rest, (json_t *)f);
    return json_pack("[{s:s, s:s, s:O}, {s:s, s:s, s:o}]", "op", "test", "path", "/metadata/finalizers",
                     "value", finalizers, "op", "replace", "path", "/metadata/finalizers", "value", rest);
}
