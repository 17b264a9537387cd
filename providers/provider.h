/* The provider interface: how the daemon creates, deletes and finds pod VMs.
 *
 * One `static const caa_provider_ops` table per provider, filled with
 * designated initializers. Callers use only the caa_provider_*() wrappers in
 * provider.c, which validate arguments and answer -EOPNOTSUPP for empty slots.
 *
 * Async contract for every call taking a callback: either it returns a
 * negative code synchronously and never calls cb, or it returns 0 and calls cb
 * exactly once, later, on the loop thread. Objects and errors handed to a
 * callback belong to the callback. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"
#include "options.h"

/* What the daemon asks a provider to create for one pod. All strings are
 * owned by the caller and valid until the create callback has run. */
typedef struct caa_instance_spec {
    const char *instance_name; /* podvm-<pod>-<first 8 of sandbox id>, [a-z0-9-], <= 63 */
    const char *sandbox_id;
    const char *pod_name;
    const char *pod_namespace;
    int64_t vcpus;             /* 0: provider default */
    int64_t memory_mib;        /* 0: provider default */
    int64_t gpus;              /* 0: none */
    const char *instance_type; /* machine_type annotation, or NULL */
    const char *image;         /* image annotation, or NULL */
    const char *user_data;     /* cloud-config document (plain text) */
    size_t user_data_len;
    char *const *tags;           /* "key=value" items, NULL-terminated, may be NULL */
    const char *idempotency_key; /* stable per pod: a retried create must not make a second VM */
    /* external-net-via-pod-vm: the VM needs a second NIC for the pod's external
     * traffic (upstream's InstanceTypeSpec.MultiNic). */
    bool multi_nic;
} caa_instance_spec;

typedef struct caa_instance {
    char *id;   /* provider instance id (domain UUID, i-..., ARM id) */
    char *name; /* instance name */
    char **ips; /* NULL-terminated; ips[0] is what the daemon tunnels to and dials */
} caa_instance;

caa_instance *caa_instance_new(const char *id, const char *name);
void caa_instance_add_ip(caa_instance *inst, const char *ip);
void caa_instance_free(caa_instance *inst);
CAA_DEFINE_CLEANUP(caa_instance *, caa_instance_free)

/* status 0: inst is the new/found instance. status < 0: err says why; inst may
 * still be non-NULL (with at least an id) when something was created that the
 * caller must delete. */
typedef void (*caa_instance_cb)(int status, caa_instance *inst, caa_error *err, void *opaque);
typedef void (*caa_done_cb)(int status, caa_error *err, void *opaque);
/* list is a NULL-terminated array owned by the callback (free with caa_instance_list_free). */
typedef void (*caa_list_cb)(int status, caa_instance **list, caa_error *err, void *opaque);
void caa_instance_list_free(caa_instance **list);

typedef struct caa_provider_ops {
    const char *name;
    /* Option table; offsets point into a config struct of config_size bytes
     * that the daemon allocates, fills and hands to init(). */
    const caa_option *options;
    size_t n_options;
    size_t config_size;

    /* Takes a reference to nothing: config stays owned by the daemon and
     * outlives the provider. */
    int (*init)(uv_loop_t *loop, const void *config, void **ret_priv, caa_error **err);
    /* Startup checks (-cloud-config-verify); may block briefly. */
    int (*verify_config)(void *priv, caa_error **err);
    /* Rejects a spec the provider cannot take (e.g. user-data over its size limit). Synchronous, optional. */
    int (*validate_spec)(void *priv, const caa_instance_spec *spec, caa_error **err);
    int (*create_instance)(void *priv, const caa_instance_spec *spec, caa_instance_cb cb, void *opaque,
                           caa_error **err);
    /* Idempotent: an instance that is already gone is success. */
    int (*delete_instance)(void *priv, const char *instance_id, caa_done_cb cb, void *opaque,
                           caa_error **err);
    /* Instances this node created (ownership tags); for orphan collection. Optional.
     * A provider may list other leftovers of its own among them (AWS: unattached add-on
     * ENIs and Elastic IPs), named after their pod's instance; delete_instance takes
     * them by the id listed. */
    int (*list_instances)(void *priv, caa_list_cb cb, void *opaque, caa_error **err);
    /* Looks up one instance (re-adoption after restart); -ENOENT when gone. Optional. */
    int (*get_instance)(void *priv, const char *instance_id, caa_instance_cb cb, void *opaque,
                        caa_error **err);
    /* Synchronous, NULL-safe, tolerates a half-done init. */
    void (*teardown)(void *priv);
    /* Asks the operations in flight that were started with `opaque` to stop
     * early (StopVM during a create): a wait for a lease, a boot or a
     * long-running operation ends now, a request on the wire is abandoned.
     * Each callback still runs exactly once, later, on the loop: -ECANCELED
     * unless the result was already decided. A cancelled create hands back
     * the instance it made (at least its id) for the caller to delete; when
     * the request was sent but no id came back, none: the caller looks the
     * instance up by name. Optional: without it the operation runs to its end. */
    void (*cancel)(void *priv, void *opaque);
} caa_provider_ops;

/* A configured, initialised provider. */
typedef struct caa_provider {
    const caa_provider_ops *ops;
    void *config;
    void *priv;
    uv_loop_t *loop;
    bool torn_down; /* caa_provider_teardown() ran: calls fail with -ESHUTDOWN */
} caa_provider;

/* Registry: providers registered at start (the test provider lives under
 * tests/ and is registered by its own main), then provider modules loaded on
 * first lookup (providers/module.h, docs/provider-modules.md). */
const caa_provider_ops *caa_provider_lookup(const char *name);
/* Like caa_provider_lookup, saying why not: -ENOENT unknown provider (the
 * message lists the available ones), others: a module that was refused. */
const caa_provider_ops *caa_provider_find(const char *name, caa_error **err);
int caa_provider_register(const caa_provider_ops *ops, caa_error **err);
/* NULL-terminated list of names (registered, loaded, module files present), for help output. */
void caa_provider_names(const char **names, size_t max);

/* Allocates the config struct of ops (zeroed) for option parsing. */
caa_provider *caa_provider_new(const caa_provider_ops *ops, uv_loop_t *loop);
caa_option_set caa_provider_option_set(caa_provider *p);
int caa_provider_init(caa_provider *p, caa_error **err);
int caa_provider_verify_config(caa_provider *p, caa_error **err);
int caa_provider_validate_spec(caa_provider *p, const caa_instance_spec *spec, caa_error **err);
int caa_provider_create_instance(caa_provider *p, const caa_instance_spec *spec, caa_instance_cb cb,
                                 void *opaque, caa_error **err);
int caa_provider_delete_instance(caa_provider *p, const char *instance_id, caa_done_cb cb, void *opaque,
                                 caa_error **err);
int caa_provider_list_instances(caa_provider *p, caa_list_cb cb, void *opaque, caa_error **err);
int caa_provider_get_instance(caa_provider *p, const char *instance_id, caa_instance_cb cb, void *opaque,
                              caa_error **err);
/* Cancels the operations started with opaque (ops->cancel). 0: asked (the
 * callbacks still come); -EOPNOTSUPP: the provider cannot, they run to their
 * end; -ESHUTDOWN: torn down (teardown already cancelled everything). */
int caa_provider_cancel(caa_provider *p, void *opaque);
/* Tears the provider down but keeps the config, which cancelled work may
 * still read, until caa_provider_free(). Operations in flight are cancelled:
 * the libvirt, aws and azure providers (providers/common/provider-op.h) run
 * each callback exactly once, later on the loop, with -ECANCELED unless the
 * result was already decided. Callers must still cope with a callback that
 * never comes (the test provider's -test-drop-on-teardown checks that).
 * Later calls fail with -ESHUTDOWN. NULL-safe, idempotent. */
void caa_provider_teardown(caa_provider *p);
/* Tears down and frees (config included). NULL-safe. */
void caa_provider_free(caa_provider *p);
