/* VM deletion and lookup (see azure-vm-ops.h). */
#define LOG_COMPONENT "provider/azure"
#include "azure-vm-ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "azure-lro.h"
#include "cleanup.h"
#include "log.h"
#include "strv.h"
#include "xalloc.h"

/* NICs and public IPs read per VM at most. */
#define MAX_NICS 8

char *az_url(const az_ctx *ctx, const char *path, const char *api_version)
{
    return xasprintf("%s%s?api-version=%s", ctx->set->arm, path, api_version);
}

/* ---- delete ---- */

struct az_vm_delete {
    az_ctx *ctx;
    char *url;
    uint64_t deadline;
    az_arm_call *call;
    az_lro *lro;
    bool cancelled;
    az_vm_delete_cb cb;
    void *opaque;
};

static void delete_finish(az_vm_delete *d, int status, caa_error *err)
{
    az_vm_delete_cb cb = d->cb;
    void *opaque = d->opaque;
    free(d->url);
    free(d);
    cb(status, err, opaque);
}

static void on_delete_lro(int status, caa_error *err, void *opaque)
{
    az_vm_delete *d = opaque;
    d->lro = NULL;
    if (status == -ENOENT) {
        caa_error_free(err);
        status = 0;
        err = NULL;
    }
    delete_finish(d, status, err);
}

static void on_delete(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    az_vm_delete *d = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    d->call = NULL;
    if (status < 0 && r && r->status == 404) {
        caa_error_free(err);
        delete_finish(d, 0, NULL);
        return;
    }
    if (status < 0) {
        delete_finish(d, status, err);
        return;
    }
    if (d->cancelled) {
        delete_finish(d, -ECANCELED, caa_error_new(-ECANCELED, "deleting the VM: cancelled"));
        return;
    }
    caa_error *e = NULL;
    int rc = az_lro_start(d->ctx, "DELETE", d->url, r, d->deadline, on_delete_lro, d, &d->lro, &e);
    if (rc < 0)
        delete_finish(d, rc, e);
}

int az_vm_delete_start(az_ctx *ctx, const char *vm_path, uint64_t deadline, az_vm_delete_cb cb, void *opaque,
                       az_vm_delete **ret, caa_error **err)
{
    az_vm_delete *d = xcalloc(1, sizeof(*d));
    d->ctx = ctx;
    d->url = az_url(ctx, vm_path, AZ_COMPUTE_API_VERSION);
    d->deadline = deadline;
    d->cb = cb;
    d->opaque = opaque;
    int r = az_arm_start(ctx, "DELETE", d->url, NULL, deadline, AZ_ARM_RETRY_CONFLICT, on_delete, d, &d->call,
                         err);
    if (r < 0) {
        free(d->url);
        free(d);
        return r;
    }
    if (ret)
        *ret = d;
    return 0;
}

void az_vm_delete_cancel(az_vm_delete *d)
{
    if (!d || d->cancelled)
        return;
    d->cancelled = true;
    if (d->call)
        az_arm_cancel(d->call);
    else if (d->lro)
        az_lro_cancel(d->lro);
}

/* ---- lookup ---- */

typedef enum lookup_step {
    STEP_VM,
    STEP_NIC,
    STEP_PIP,
} lookup_step;

struct az_vm_lookup {
    az_ctx *ctx;
    char *vm_path;
    bool public_ip;
    uint64_t deadline;
    lookup_step step;
    az_arm_call *call;
    bool cancelled;

    az_vm vm;
    size_t next; /* index into vm.nic_ids or pip_ids */
    char **private_ips;
    char **pip_ids;
    char **public_ips;

    az_vm_lookup_cb cb;
    void *opaque;
};

static void lookup_finish(az_vm_lookup *l, int status, caa_error *err)
{
    caa_instance *inst = NULL;
    az_vm *vm = NULL;
    if (status == 0) {
        inst = caa_instance_new(l->vm_path, l->vm.name);
        for (size_t i = 0; l->public_ips && l->public_ips[i]; i++)
            caa_instance_add_ip(inst, l->public_ips[i]);
        for (size_t i = 0; l->private_ips && l->private_ips[i]; i++)
            caa_instance_add_ip(inst, l->private_ips[i]);
        vm = xmemdup(&l->vm, sizeof(l->vm));
        l->vm = (az_vm){0};
    }
    az_vm_lookup_cb cb = l->cb;
    void *opaque = l->opaque;
    az_vm_done(&l->vm);
    caa_strv_free(l->private_ips);
    caa_strv_free(l->pip_ids);
    caa_strv_free(l->public_ips);
    free(l->vm_path);
    free(l);
    cb(status, inst, vm, err, opaque);
}

static void lookup_next(az_vm_lookup *l);

static void on_lookup(int status, caa_http_response *resp, caa_error *err, void *opaque)
{
    az_vm_lookup *l = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    l->call = NULL;
    if (status < 0) {
        lookup_finish(l, status, err);
        return;
    }
    if (l->cancelled) {
        lookup_finish(l, -ECANCELED, caa_error_new(-ECANCELED, "looking up the VM: cancelled"));
        return;
    }
    caa_error *e = NULL;
    int rc = 0;
    switch (l->step) {
    case STEP_VM:
        rc = az_parse_vm(r->body, r->body_len, &l->vm, &e);
        l->next = 0;
        l->step = STEP_NIC;
        break;
    case STEP_NIC: {
        _cleanup_strv_ char **priv = NULL, **pips = NULL;
        bool primary = false;
        rc = az_parse_nic(r->body, r->body_len, &priv, &pips, &primary, &e);
        /* As upstream's getIPs: the primary NIC's addresses first, whatever
         * order the VM lists its NICs in (the tunnel goes to ips[0]). */
        if (rc >= 0 && primary && l->private_ips) {
            for (size_t i = 0; l->private_ips[i]; i++)
                caa_strv_push(&priv, l->private_ips[i]);
            caa_strv_free(l->private_ips);
            l->private_ips = TAKE_PTR(priv);
        }
        for (size_t i = 0; rc >= 0 && priv && priv[i]; i++)
            caa_strv_push(&l->private_ips, priv[i]);
        for (size_t i = 0; rc >= 0 && pips && pips[i]; i++)
            caa_strv_push(&l->pip_ids, pips[i]);
        l->next++;
        break;
    }
    case STEP_PIP: {
        _cleanup_free_ char *ip = NULL;
        rc = az_parse_public_ip(r->body, r->body_len, &ip, &e);
        if (rc >= 0 && ip)
            caa_strv_push(&l->public_ips, ip);
        else if (rc >= 0)
            log_debug("public IP %s has no address yet, ignoring", l->pip_ids[l->next]);
        l->next++;
        break;
    }
    }
    if (rc < 0) {
        lookup_finish(l, rc, e);
        return;
    }
    lookup_next(l);
}

static void lookup_get(az_vm_lookup *l, const char *path, const char *api_version)
{
    _cleanup_free_ char *url = az_url(l->ctx, path, api_version);
    caa_error *e = NULL;
    int r = az_arm_start(l->ctx, "GET", url, NULL, l->deadline, 0, on_lookup, l, &l->call, &e);
    if (r < 0) {
        l->call = NULL;
        lookup_finish(l, r, e);
    }
}

/* Issues the next GET, or finishes. */
static void lookup_next(az_vm_lookup *l)
{
    if (l->step == STEP_NIC) {
        const char *nic = l->vm.nic_ids && l->next < MAX_NICS ? l->vm.nic_ids[l->next] : NULL;
        if (nic) {
            if (!az_arm_id_valid(nic, "Microsoft.Network/networkInterfaces")) {
                lookup_finish(
                    l, -EPROTO,
                    caa_error_new(-EPROTO, "VM %s: network interface id is not a NIC id", l->vm.name));
                return;
            }
            lookup_get(l, nic, AZ_NETWORK_API_VERSION);
            return;
        }
        if (!l->public_ip || !l->pip_ids) {
            lookup_finish(l, 0, NULL);
            return;
        }
        l->step = STEP_PIP;
        l->next = 0;
    }
    const char *pip = l->next < MAX_NICS ? l->pip_ids[l->next] : NULL;
    if (!pip) {
        lookup_finish(l, 0, NULL);
        return;
    }
    if (!az_arm_id_valid(pip, "Microsoft.Network/publicIPAddresses")) {
        lookup_finish(l, -EPROTO,
                      caa_error_new(-EPROTO, "VM %s: public IP id is not a public IP id", l->vm.name));
        return;
    }
    lookup_get(l, pip, AZ_NETWORK_API_VERSION);
}

int az_vm_lookup_start(az_ctx *ctx, const char *vm_path, bool public_ip, uint64_t deadline,
                       az_vm_lookup_cb cb, void *opaque, az_vm_lookup **ret, caa_error **err)
{
    az_vm_lookup *l = xcalloc(1, sizeof(*l));
    l->ctx = ctx;
    l->vm_path = xstrdup(vm_path);
    l->public_ip = public_ip;
    l->deadline = deadline;
    l->step = STEP_VM;
    l->cb = cb;
    l->opaque = opaque;
    _cleanup_free_ char *url = az_url(ctx, vm_path, AZ_COMPUTE_API_VERSION);
    int r = az_arm_start(ctx, "GET", url, NULL, deadline, 0, on_lookup, l, &l->call, err);
    if (r < 0) {
        free(l->vm_path);
        free(l);
        return r;
    }
    if (ret)
        *ret = l;
    return 0;
}

void az_vm_lookup_cancel(az_vm_lookup *l)
{
    if (!l || l->cancelled)
        return;
    l->cancelled = true;
    if (l->call)
        az_arm_cancel(l->call);
}
