/* The blocking half of the provider: everything here runs on a worker
 * thread (lv_worker) and talks to libvirt through lv_conn_call, so a lost
 * connection is reopened once and the operation repeated. Operations look
 * up their objects by name each time, which makes that repetition safe. */
#define LOG_COMPONENT "provider/libvirt"
#include "libvirt-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libvirt/virterror.h>

#include "cidata-iso.h"
#include "cleanup.h"
#include "domain-xml.h"
#include "fs.h"
#include "libvirt-parse.h"
#include "log.h"
#include "pod-volumes.h"
#include "strv.h"
#include "xalloc.h"

#define GIB (UINT64_C(1) << 30)
#define UPLOAD_CHUNK (256u * 1024)

CAA_DEFINE_CLEANUP(virDomainPtr, virDomainFree)
CAA_DEFINE_CLEANUP(virStoragePoolPtr, virStoragePoolFree)
CAA_DEFINE_CLEANUP(virStorageVolPtr, virStorageVolFree)
CAA_DEFINE_CLEANUP(virNetworkPtr, virNetworkFree)
#define _cleanup_dom_ _cleanup_(virDomainFreep)
#define _cleanup_pool_ _cleanup_(virStoragePoolFreep)
#define _cleanup_vol_ _cleanup_(virStorageVolFreep)
#define _cleanup_net_ _cleanup_(virNetworkFreep)

void lv_create_state_done(lv_create_state *st)
{
    free(st->name);
    free(st->sandbox_id);
    free(st->pod_name);
    free(st->pod_namespace);
    free(st->image);
    free(st->idempotency_key);
    caa_strv_free(st->tags);
    memset(st, 0, sizeof(*st));
}

static bool faulty(lv_provider *p, unsigned fault)
{
    return (atomic_load(&p->faults) & fault) != 0;
}

static bool is_test_driver(virConnectPtr conn)
{
    const char *type = virConnectGetType(conn);
    return type && strcasecmp(type, "test") == 0;
}

/* ---- host facts (probed once per provider) ---- */

static int probe_host(lv_provider *p, virConnectPtr conn, lv_host *ret, caa_error **err)
{
    _cleanup_free_ char *caps_xml = virConnectGetCapabilities(conn);
    if (!caps_xml)
        return lv_error(err, conn, "reading host capabilities");
    lv_caps caps = {0};
    int r = lv_parse_capabilities(caps_xml, strlen(caps_xml), &caps, err);
    if (r < 0)
        return caa_error_prefix(err, "libvirt host capabilities");

    /* Domain capabilities only matter for confidential VMs (SEV C-bit
     * position, SNP/TDX firmware); drivers without them use defaults. */
    lv_domcaps domcaps = {0};
    bool have_domcaps = false;
    if (p->set.launch != LV_LAUNCH_NONE || !p->cfg->disable_cvm) {
        _cleanup_free_ char *dc_xml =
            virConnectGetDomainCapabilities(conn, NULL, caps.host_arch, NULL, "kvm", 0);
        if (dc_xml) {
            caa_error *ignored = NULL;
            have_domcaps = lv_parse_domcaps(dc_xml, strlen(dc_xml), &domcaps, &ignored) >= 0;
            caa_error_free(ignored);
        } else {
            caa_error *e = NULL;
            r = lv_error(&e, conn, "reading domain capabilities");
            if (r == LV_ECONN) {
                lv_caps_done(&caps);
                return caa_error_propagate(err, &e);
            }
            log_debug("%s; using defaults", caa_error_msg(e));
            caa_error_free(e);
        }
    }

    /* The vmx/svm check is only possible when the libvirt host is this machine. */
    _cleanup_free_ char *cpuinfo = NULL;
    size_t cpuinfo_len = 0;
    if (lv_uri_is_local(p->cfg->uri) && !is_test_driver(conn)) {
        caa_error *ignored = NULL;
        if (caa_read_file("/proc/cpuinfo", 4u << 20, 0, &cpuinfo, &cpuinfo_len, &ignored) < 0) {
            caa_error_free(ignored);
            cpuinfo = NULL;
        }
    }

    r = lv_host_resolve(p->cfg, &p->set, &caps, have_domcaps ? &domcaps : NULL, cpuinfo, cpuinfo_len, ret,
                        err);
    if (r >= 0)
        log_debug("libvirt host: arch %s, domain type %s (%s), launch security \"%s\", loader %s",
                  caps.host_arch, ret->domain_type, ret->domain_type_reason,
                  lv_launch_security_name(ret->launch), ret->loader ? ret->loader : "(autoselect)");
    lv_caps_done(&caps);
    lv_domcaps_done(&domcaps);
    return r;
}

int lv_host_get(lv_provider *p, virConnectPtr conn, const lv_host **ret, caa_error **err)
{
    int r = 0;
    pthread_mutex_lock(&p->host_lock);
    if (!p->host_ready) {
        r = probe_host(p, conn, &p->host, err);
        p->host_ready = r >= 0;
    }
    pthread_mutex_unlock(&p->host_lock);
    if (r >= 0)
        *ret = &p->host;
    return r;
}

/* ---- small helpers over libvirt objects ---- */

/* Deletes a volume by name; a volume that is not there is success. */
static int delete_volume(virConnectPtr conn, virStoragePoolPtr pool, const char *name, caa_error **err)
{
    _cleanup_vol_ virStorageVolPtr vol = virStorageVolLookupByName(pool, name);
    if (!vol) {
        if (lv_last_error_code() == VIR_ERR_NO_STORAGE_VOL) {
            virResetLastError();
            return 0;
        }
        return lv_error(err, conn, "looking up volume %s", name);
    }
    if (virStorageVolDelete(vol, 0) < 0) {
        if (lv_last_error_code() == VIR_ERR_NO_STORAGE_VOL) {
            virResetLastError();
            return 0;
        }
        return lv_error(err, conn, "deleting volume %s", name);
    }
    return 0;
}

static int lookup_pool(virConnectPtr conn, const char *name, virStoragePoolPtr *ret, caa_error **err)
{
    *ret = virStoragePoolLookupByName(conn, name);
    if (!*ret)
        return lv_error(err, conn, "storage pool %s", name);
    return 0;
}

/* Destroys (if running) and undefines a domain, deleting the pod's two
 * volumes in between: the domain stays as the handle to find them again
 * until they are gone. */
static int remove_domain(virConnectPtr conn, virDomainPtr dom, const char *pool_name, caa_error **err)
{
    const char *name = virDomainGetName(dom);
    if (!name)
        return lv_error(err, conn, "reading domain name");
    _cleanup_free_ char *dom_name = xstrdup(name);

    int active = virDomainIsActive(dom);
    if (active < 0)
        return lv_error(err, conn, "domain %s state", dom_name);
    if (active && virDomainDestroy(dom) < 0) {
        /* It may have stopped by itself in the meantime. */
        if (lv_last_error_code() != VIR_ERR_OPERATION_INVALID)
            return lv_error(err, conn, "destroying domain %s", dom_name);
        virResetLastError();
    }

    _cleanup_pool_ virStoragePoolPtr pool = NULL;
    _cleanup_error_ caa_error *pool_err = NULL;
    int r = lookup_pool(conn, pool_name, &pool, &pool_err);
    if (r < 0 && r != -ENOENT)
        return caa_error_propagate(err, &pool_err);
    /* Without the pool there are no volumes to leak. */
    if (pool) {
        _cleanup_free_ char *root = lv_root_volume_name(dom_name);
        _cleanup_free_ char *iso = lv_cidata_volume_name(dom_name);
        if ((r = delete_volume(conn, pool, iso, err)) < 0 || (r = delete_volume(conn, pool, root, err)) < 0)
            return r;
    }

    if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_NVRAM) < 0) {
        caa_error *e = NULL;
        r = lv_error(&e, conn, "undefining domain %s with its NVRAM", dom_name);
        if (r == LV_ECONN)
            return caa_error_propagate(err, &e);
        /* Drivers without NVRAM support reject the flag. */
        log_debug("%s; retrying without the flag", caa_error_msg(e));
        caa_error_free(e);
        if (virDomainUndefine(dom) < 0) {
            if (lv_last_error_code() == VIR_ERR_NO_DOMAIN) {
                virResetLastError();
                return 0;
            }
            return lv_error(err, conn, "undefining domain %s", dom_name);
        }
    }
    return 0;
}

/* Reads our metadata of a domain. -ENOENT: not an adaptor domain. */
static int read_metadata(virConnectPtr conn, virDomainPtr dom, lv_metadata *ret, caa_error **err)
{
    /* Every libvirt call resets the thread's last error: name first. */
    const char *name = virDomainGetName(dom);
    _cleanup_free_ char *dom_name = xstrdup(name ? name : "?");
    _cleanup_free_ char *md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, LV_METADATA_NS, 0);
    if (!md)
        return lv_error(err, conn, "reading metadata of domain %s", dom_name);
    return lv_parse_metadata(md, strlen(md), ret, err);
}

/* ---- create ---- */

typedef struct create_ctx {
    lv_provider *p;
    lv_create_state *st;
} create_ctx;

/* The adaptor's metadata of dom into *md: 0; 1 when dom carries none (not
 * ours); negative (err set) when the connection broke. */
static int read_own_metadata(virConnectPtr conn, virDomainPtr dom, lv_metadata *md, caa_error **err)
{
    caa_error *e = NULL;
    int r = read_metadata(conn, dom, md, &e);
    if (r == LV_ECONN)
        return caa_error_propagate(err, &e);
    caa_error_free(e);
    return r < 0 ? 1 : 0;
}

/* A domain with our name exists: ours from an earlier attempt (same sandbox)
 * is adopted and started if needed; anything else is a conflict. */
static int take_existing(create_ctx *c, virConnectPtr conn, virDomainPtr dom, caa_error **err)
{
    lv_create_state *st = c->st;
    lv_metadata md = {0};
    int r = read_own_metadata(conn, dom, &md, err);
    if (r < 0)
        return r;
    if (r > 0)
        return caa_error_set(err, -EEXIST, "a domain named %s exists and was not created by the adaptor",
                             st->name);
    bool same = strcmp(md.sandbox_id, st->sandbox_id) == 0;
    lv_metadata_done(&md);
    if (!same)
        return caa_error_set(err, -EEXIST, "a domain named %s exists for another sandbox", st->name);
    if (virDomainGetUUIDString(dom, st->uuid) < 0)
        return lv_error(err, conn, "reading UUID of domain %s", st->name);
    if (st->define_attempted)
        st->defined = true; /* our define went through before the connection dropped */
    else
        st->adopted = true;
    int active = virDomainIsActive(dom);
    if (active < 0)
        return lv_error(err, conn, "domain %s state", st->name);
    if (!active) {
        if (virDomainCreate(dom) < 0)
            return lv_error(err, conn, "starting domain %s", st->name);
        st->started = !st->adopted;
    }
    return 0;
}

static int lookup_base(create_ctx *c, virConnectPtr conn, virStoragePoolPtr pool, virStorageVolPtr *ret,
                       caa_error **err)
{
    const char *base = c->st->image ? c->st->image : c->p->cfg->vol_name;
    *ret = virStorageVolLookupByName(pool, base);
    if (*ret)
        return 0;
    if (lv_last_error_code() != VIR_ERR_NO_STORAGE_VOL)
        return lv_error(err, conn, "looking up base volume %s", base);
    virResetLastError();
    /* Upstream also accepts a volume key (the path in a directory pool). */
    *ret = virStorageVolLookupByKey(conn, base);
    if (*ret)
        return 0;
    if (lv_last_error_code() != VIR_ERR_NO_STORAGE_VOL)
        return lv_error(err, conn, "looking up base volume %s", base);
    virResetLastError();
    return caa_error_set(err, -ENOENT, "base volume %s not found in storage pool %s", base,
                         c->p->cfg->pool_name);
}

static int create_root_volume(create_ctx *c, virConnectPtr conn, virStoragePoolPtr pool,
                              virStorageVolPtr base, const char *root_name, caa_error **err)
{
    virStorageVolInfo info;
    if (virStorageVolGetInfo(base, &info) < 0)
        return lv_error(err, conn, "reading base volume info");
    _cleanup_free_ char *path = virStorageVolGetPath(base);
    if (!path)
        return lv_error(err, conn, "reading base volume path");
    _cleanup_free_ char *vol_xml = virStorageVolGetXMLDesc(base, 0);
    if (!vol_xml)
        return lv_error(err, conn, "reading base volume description");
    _cleanup_free_ char *format = NULL;
    int r = lv_parse_volume_format(vol_xml, strlen(vol_xml), &format, err);
    if (r < 0)
        return caa_error_prefix(err, "base volume");

    uint64_t capacity = (uint64_t)c->p->cfg->root_disk_size * GIB;
    if (info.capacity > capacity)
        capacity = info.capacity;
    _cleanup_free_ char *xml = lv_root_volume_xml(root_name, capacity, path, format, err);
    if (!xml)
        return -EINVAL;
    _cleanup_vol_ virStorageVolPtr vol = virStorageVolCreateXML(pool, xml, 0);
    if (!vol)
        return lv_error(err, conn, "creating volume %s", root_name);
    c->st->created_root = true;
    return 0;
}

static int upload(virConnectPtr conn, virStorageVolPtr vol, const char *name, const uint8_t *data, size_t len,
                  caa_error **err)
{
    virStreamPtr stream = virStreamNew(conn, 0);
    if (!stream)
        return lv_error(err, conn, "creating upload stream");
    int r = 0;
    if (virStorageVolUpload(vol, stream, 0, len, 0) < 0) {
        int code = lv_last_error_code();
        caa_error *e = NULL;
        r = lv_error(&e, conn, "uploading %s", name);
        /* The test driver stores no volume contents and cannot upload. */
        if (code == VIR_ERR_NO_SUPPORT && is_test_driver(conn)) {
            log_debug("test driver: not uploading %s", name);
            caa_error_free(e);
            r = 0;
        } else {
            caa_error_propagate(err, &e);
        }
        virStreamFree(stream);
        return r;
    }
    for (size_t off = 0; off < len;) {
        size_t n = len - off < UPLOAD_CHUNK ? len - off : UPLOAD_CHUNK;
        int sent = virStreamSend(stream, (const char *)data + off, n);
        if (sent < 0) {
            r = lv_error(err, conn, "uploading %s", name);
            virStreamAbort(stream);
            virStreamFree(stream);
            return r;
        }
        off += (size_t)sent;
    }
    if (virStreamFinish(stream) < 0)
        r = lv_error(err, conn, "finishing upload of %s", name);
    virStreamFree(stream);
    return r;
}

static int create_cidata_volume(create_ctx *c, virConnectPtr conn, virStoragePoolPtr pool,
                                const char *iso_name, caa_error **err)
{
    _cleanup_free_ uint8_t *image = NULL;
    size_t len = 0;
    int r = caa_cidata_iso_build_seed(c->st->name, c->st->user_data, c->st->user_data_len, &image, &len, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *xml = lv_raw_volume_xml(iso_name, len, err);
    if (!xml)
        return -EINVAL;
    _cleanup_vol_ virStorageVolPtr vol = virStorageVolCreateXML(pool, xml, 0);
    if (!vol)
        return lv_error(err, conn, "creating volume %s", iso_name);
    c->st->created_iso = true;
    return upload(conn, vol, iso_name, image, len, err);
}

static int define_and_start(create_ctx *c, virConnectPtr conn, const lv_host *host, const char *root_name,
                            const char *iso_name, caa_error **err)
{
    lv_create_state *st = c->st;
    const lv_config *cfg = c->p->cfg;
    /* Derived from the name, so volumes left without their domain can be
     * matched to the UUID the daemon kept (delete_op). */
    if (!st->uuid[0] && lv_instance_uuid(st->name, st->uuid) < 0)
        return caa_error_set(err, -EIO, "deriving the UUID of domain %s", st->name);
    _cleanup_free_ char *console = cfg->console_log_dir && *cfg->console_log_dir
                                       ? xasprintf("%s/%s-console.log", cfg->console_log_dir, st->name)
                                       : NULL;
    lv_domain_params dp = {
        .name = st->name,
        .uuid = st->uuid,
        .domain_type = host->domain_type,
        .arch = host->arch,
        .machine = host->machine,
        .vcpus = st->vcpus > 0 ? st->vcpus : cfg->cpu,
        .memory_mib = st->memory_mib > 0 ? st->memory_mib : cfg->memory,
        .cpuset = cfg->cpuset,
        .loader = host->loader,
        .launch = host->launch,
        .sev_cbitpos = host->cbitpos,
        .sev_reduced_phys_bits = host->reduced_phys_bits,
        .snp_policy = LV_SNP_DEFAULT_POLICY,
        .tdx_policy = LV_TDX_DEFAULT_POLICY,
        .pool = cfg->pool_name,
        .root_volume = root_name,
        .cidata_volume = iso_name,
        .network = cfg->network_name,
        .console_log = console,
        .sandbox_id = st->sandbox_id,
        .pod_name = st->pod_name,
        .pod_namespace = st->pod_namespace,
        .image = st->image ? st->image : cfg->vol_name,
        .idempotency_key = st->idempotency_key,
        .node = c->p->set.node,
        .tags = st->tags,
    };
    _cleanup_free_ char *xml = lv_domain_xml(&dp, err);
    if (!xml)
        return -EINVAL;
    st->define_attempted = true;
    _cleanup_dom_ virDomainPtr dom = virDomainDefineXML(conn, xml);
    if (!dom)
        return lv_error(err, conn, "defining domain %s", st->name);
    st->defined = true;
    if (faulty(c->p, LV_FAULT_START_RACE) && virDomainCreate(dom) < 0)
        virResetLastError();
    if (virDomainCreate(dom) < 0)
        return lv_error(err, conn, "starting domain %s", st->name);
    st->started = true;
    return 0;
}

static int create_op(virConnectPtr conn, void *arg, caa_error **err)
{
    create_ctx *c = arg;
    lv_create_state *st = c->st;
    const lv_host *host = NULL;
    int r = lv_host_get(c->p, conn, &host, err);
    if (r < 0)
        return r;

    _cleanup_dom_ virDomainPtr existing = virDomainLookupByName(conn, st->name);
    if (existing)
        return take_existing(c, conn, existing, err);
    if (lv_last_error_code() != VIR_ERR_NO_DOMAIN)
        return lv_error(err, conn, "looking up domain %s", st->name);
    virResetLastError();

    _cleanup_pool_ virStoragePoolPtr pool = NULL;
    if ((r = lookup_pool(conn, c->p->cfg->pool_name, &pool, err)) < 0)
        return r;
    /* Picks up base images copied into the pool directory behind libvirt's
     * back. Best effort: a pool busy with another upload refuses refreshes. */
    if (virStoragePoolRefresh(pool, 0) < 0) {
        caa_error *e = NULL;
        if (lv_error(&e, conn, "refreshing storage pool %s", c->p->cfg->pool_name) == LV_ECONN)
            return caa_error_propagate(err, &e);
        log_debug("%s, ignoring", caa_error_msg(e));
        caa_error_free(e);
    }
    _cleanup_vol_ virStorageVolPtr base = NULL;
    if ((r = lookup_base(c, conn, pool, &base, err)) < 0)
        return r;

    _cleanup_free_ char *root_name = lv_root_volume_name(st->name);
    _cleanup_free_ char *iso_name = lv_cidata_volume_name(st->name);
    /* No domain of this name exists, so volumes of these names are leftovers
     * of an earlier attempt for this very pod (or of our own first try
     * before a reconnect): replace them. */
    if ((r = delete_volume(conn, pool, root_name, err)) < 0 ||
        (r = delete_volume(conn, pool, iso_name, err)) < 0)
        return r;
    if ((r = create_root_volume(c, conn, pool, base, root_name, err)) < 0)
        return r;
    if ((r = create_cidata_volume(c, conn, pool, iso_name, err)) < 0)
        return r;
    return define_and_start(c, conn, host, root_name, iso_name, err);
}

int lv_do_create(lv_provider *p, lv_create_state *st, caa_error **err)
{
    create_ctx c = {.p = p, .st = st};
    return lv_conn_call(&p->conn, create_op, &c, err);
}

/* ---- cleanup of a failed create ---- */

static int cleanup_op(virConnectPtr conn, void *arg, caa_error **err)
{
    create_ctx *c = arg;
    lv_create_state *st = c->st;
    const char *pool_name = c->p->cfg->pool_name;
    if (faulty(c->p, LV_FAULT_CLEANUP))
        return caa_error_set(err, -EIO, "injected cleanup failure");
    int r;
    if (st->defined) {
        _cleanup_dom_ virDomainPtr dom = virDomainLookupByUUIDString(conn, st->uuid);
        if (dom) {
            if ((r = remove_domain(conn, dom, pool_name, err)) < 0)
                return r;
        } else if (lv_last_error_code() != VIR_ERR_NO_DOMAIN) {
            return lv_error(err, conn, "looking up domain %s", st->name);
        }
        virResetLastError();
        st->defined = st->started = false;
        st->created_root = st->created_iso = false; /* removed with the domain */
    }
    if (st->created_root || st->created_iso) {
        _cleanup_pool_ virStoragePoolPtr pool = NULL;
        if ((r = lookup_pool(conn, pool_name, &pool, err)) < 0)
            return r;
        _cleanup_free_ char *root_name = lv_root_volume_name(st->name);
        _cleanup_free_ char *iso_name = lv_cidata_volume_name(st->name);
        if (st->created_iso) {
            if ((r = delete_volume(conn, pool, iso_name, err)) < 0)
                return r;
            st->created_iso = false;
        }
        if (st->created_root) {
            if ((r = delete_volume(conn, pool, root_name, err)) < 0)
                return r;
            st->created_root = false;
        }
    }
    return 0;
}

int lv_do_cleanup(lv_provider *p, lv_create_state *st, caa_error **err)
{
    if (st->adopted)
        return 0;
    create_ctx c = {.p = p, .st = st};
    return lv_conn_call(&p->conn, cleanup_op, &c, err);
}

/* ---- addresses ---- */

typedef struct addr_ctx {
    lv_provider *p;
    const char *uuid;
    char **ips;
} addr_ctx;

static void collect_ips(virDomainInterfacePtr *ifaces, int n, char ***ips)
{
    for (int family = VIR_IP_ADDR_TYPE_IPV4; family <= VIR_IP_ADDR_TYPE_IPV6; family++)
        for (int i = 0; i < n; i++)
            for (unsigned j = 0; j < ifaces[i]->naddrs; j++)
                if (ifaces[i]->addrs[j].type == family && ifaces[i]->addrs[j].addr)
                    caa_strv_push(ips, ifaces[i]->addrs[j].addr);
}

static int domain_ips(lv_provider *p, virConnectPtr conn, virDomainPtr dom, char ***ret, caa_error **err)
{
    if (faulty(p, LV_FAULT_NO_ADDRESS))
        return 0;
    const char *name = virDomainGetName(dom);
    _cleanup_free_ char *dom_name = xstrdup(name ? name : "?");
    virDomainInterfacePtr *ifaces = NULL;
    int n = virDomainInterfaceAddresses(dom, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
    if (n < 0)
        return lv_error(err, conn, "reading DHCP leases of domain %s", dom_name);
    collect_ips(ifaces, n, ret);
    for (int i = 0; i < n; i++)
        virDomainInterfaceFree(ifaces[i]);
    free(ifaces);
    return 0;
}

static int addresses_op(virConnectPtr conn, void *arg, caa_error **err)
{
    addr_ctx *c = arg;
    _cleanup_dom_ virDomainPtr dom = virDomainLookupByUUIDString(conn, c->uuid);
    if (!dom)
        return lv_error(err, conn, "looking up domain %s", c->uuid);
    int active = virDomainIsActive(dom);
    if (active < 0)
        return lv_error(err, conn, "domain %s state", c->uuid);
    if (!active)
        return caa_error_set(err, -ESRCH, "domain %s stopped while waiting for its address",
                             virDomainGetName(dom));
    caa_strv_free(c->ips);
    c->ips = NULL;
    return domain_ips(c->p, conn, dom, &c->ips, err);
}

int lv_do_addresses(lv_provider *p, const char *uuid, char ***ret_ips, caa_error **err)
{
    addr_ctx c = {.p = p, .uuid = uuid};
    int r = lv_conn_call(&p->conn, addresses_op, &c, err);
    if (r < 0) {
        caa_strv_free(c.ips);
        return r;
    }
    *ret_ips = c.ips;
    return 0;
}

/* ---- volumes without their domain ---- */

/* Instance names (deduplicated, NULL-terminated, maybe NULL) that have a
 * volume of ours in the pool and no domain of that name, ours or anyone's:
 * the leftovers of a create killed before its define, or of a domain
 * undefined by someone else. A missing pool has none. */
static int stray_volume_owners(lv_provider *p, virConnectPtr conn, char ***ret, caa_error **err)
{
    _cleanup_pool_ virStoragePoolPtr pool = NULL;
    _cleanup_error_ caa_error *pool_err = NULL;
    int r = lookup_pool(conn, p->cfg->pool_name, &pool, &pool_err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return caa_error_propagate(err, &pool_err);
    virStorageVolPtr *vols = NULL;
    int n = virStoragePoolListAllVolumes(pool, &vols, 0);
    if (n < 0)
        return lv_error(err, conn, "listing volumes of storage pool %s", p->cfg->pool_name);
    char **names = NULL;
    r = 0;
    for (int i = 0; i < n; i++) {
        const char *vol_name = r < 0 ? NULL : virStorageVolGetName(vols[i]);
        _cleanup_free_ char *name = vol_name ? lv_volume_instance_name(vol_name) : NULL;
        if (name && !caa_strv_contains(names, name)) {
            _cleanup_dom_ virDomainPtr dom = virDomainLookupByName(conn, name);
            if (!dom && lv_last_error_code() == VIR_ERR_NO_DOMAIN) {
                virResetLastError();
                caa_strv_push(&names, name);
            } else if (!dom) {
                r = lv_error(err, conn, "looking up domain %s", name);
            }
        }
        virStorageVolFree(vols[i]);
    }
    free(vols);
    if (r < 0) {
        caa_strv_free(names);
        return r;
    }
    *ret = names;
    return 0;
}

/* Deletes the volumes of the domain-less instance whose derived UUID is
 * uuid; volumes of any other name stay. */
static int delete_stray_volumes(lv_provider *p, virConnectPtr conn, const char *uuid, caa_error **err)
{
    _cleanup_strv_ char **names = NULL;
    int r = stray_volume_owners(p, conn, &names, err);
    for (size_t i = 0; r >= 0 && names && names[i]; i++) {
        char derived[VIR_UUID_STRING_BUFLEN];
        if (lv_instance_uuid(names[i], derived) < 0 || strcasecmp(derived, uuid) != 0)
            continue;
        _cleanup_pool_ virStoragePoolPtr pool = NULL;
        if ((r = lookup_pool(conn, p->cfg->pool_name, &pool, err)) < 0)
            return r;
        _cleanup_free_ char *root = lv_root_volume_name(names[i]);
        _cleanup_free_ char *iso = lv_cidata_volume_name(names[i]);
        if ((r = delete_volume(conn, pool, iso, err)) < 0 || (r = delete_volume(conn, pool, root, err)) < 0)
            return r;
        log_info("deleted the volumes of %s, which has no domain", names[i]);
    }
    return r < 0 ? r : 0;
}

/* ---- delete ---- */

typedef struct id_ctx {
    lv_provider *p;
    const char *uuid;
    caa_instance *inst;
    caa_instance **list;
} id_ctx;

static int delete_op(virConnectPtr conn, void *arg, caa_error **err)
{
    id_ctx *c = arg;
    _cleanup_dom_ virDomainPtr dom = virDomainLookupByUUIDString(conn, c->uuid);
    if (!dom) {
        if (lv_last_error_code() == VIR_ERR_NO_DOMAIN) {
            virResetLastError();
            return delete_stray_volumes(c->p, conn, c->uuid, err); /* the domain is gone; its volumes? */
        }
        return lv_error(err, conn, "looking up domain %s", c->uuid);
    }
    lv_metadata md = {0};
    int r = read_own_metadata(conn, dom, &md, err);
    if (r < 0)
        return r;
    if (r > 0)
        return caa_error_set(err, -EPERM, "refusing to delete domain %s: it was not created by the adaptor",
                             c->uuid);
    r = remove_domain(conn, dom, md.pool ? md.pool : c->p->cfg->pool_name, err);
    lv_metadata_done(&md);
    return r;
}

int lv_do_delete(lv_provider *p, const char *uuid, caa_error **err)
{
    id_ctx c = {.p = p, .uuid = uuid};
    return lv_conn_call(&p->conn, delete_op, &c, err);
}

/* ---- list / get ---- */

/* Builds an instance for an adaptor domain; -ENOENT when it is not ours, or
 * (this_node_only) when another worker node made it: several workers may
 * share one libvirt host, and the orphan sweep must never see another node's
 * pods. Domains without a recorded node predate it and are left out too. */
static int instance_of(lv_provider *p, virConnectPtr conn, virDomainPtr dom, bool with_ips,
                       bool this_node_only, caa_instance **ret, caa_error **err)
{
    lv_metadata md = {0};
    int r = read_metadata(conn, dom, &md, err);
    if (r < 0)
        return r;
    bool other_node = !md.node || strcmp(md.node, p->set.node) != 0;
    lv_metadata_done(&md);
    if (this_node_only && other_node)
        return caa_error_set(err, -ENOENT, "domain %s belongs to another node", virDomainGetName(dom));
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(dom, uuid) < 0)
        return lv_error(err, conn, "reading domain UUID");
    _cleanup_(caa_instance_freep) caa_instance *inst = caa_instance_new(uuid, virDomainGetName(dom));
    if (with_ips && virDomainIsActive(dom) == 1) {
        caa_error *e = NULL;
        r = domain_ips(p, conn, dom, &inst->ips, &e);
        if (r == LV_ECONN)
            return caa_error_propagate(err, &e);
        caa_error_free(e); /* an instance without a lease yet is still an instance */
    }
    *ret = TAKE_PTR(inst);
    return 0;
}

/* Lists the domain-less volumes of instances too (with the UUID their domain
 * has or would have had), so a teardown looking for its instance by name and
 * the orphan sweep find them. */
static int add_stray_instances(id_ctx *c, virConnectPtr conn, size_t k, caa_error **err)
{
    _cleanup_strv_ char **names = NULL;
    int r = stray_volume_owners(c->p, conn, &names, err);
    if (r < 0 || !names)
        return r;
    c->list = xrealloc(c->list, (k + caa_strv_len(names) + 1) * sizeof(*c->list));
    for (size_t i = 0; names[i]; i++) {
        char uuid[VIR_UUID_STRING_BUFLEN];
        if (lv_instance_uuid(names[i], uuid) < 0)
            continue;
        c->list[k++] = caa_instance_new(uuid, names[i]);
    }
    c->list[k] = NULL;
    return 0;
}

static int list_op(virConnectPtr conn, void *arg, caa_error **err)
{
    id_ctx *c = arg;
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0)
        return lv_error(err, conn, "listing domains");
    caa_instance_list_free(c->list);
    c->list = xnew0(caa_instance *, (size_t)n + 1);
    size_t k = 0;
    int r = 0;
    for (int i = 0; i < n; i++) {
        caa_error *e = NULL;
        caa_instance *inst = NULL;
        int q = r < 0 ? 0 : instance_of(c->p, conn, doms[i], false, true, &inst, &e);
        if (q >= 0 && inst)
            c->list[k++] = inst;
        else if (q == LV_ECONN)
            r = caa_error_propagate(err, &e);
        caa_error_free(e); /* foreign domains, and domains that vanished meanwhile */
        virDomainFree(doms[i]);
    }
    free(doms);
    if (r < 0)
        return r;
    return add_stray_instances(c, conn, k, err);
}

/* Runs a list or get op; a failure drops what it gathered. */
static int id_ctx_call(id_ctx *c, lv_op_fn op, caa_error **err)
{
    int r = lv_conn_call(&c->p->conn, op, c, err);
    if (r < 0) {
        caa_instance_list_free(TAKE_PTR(c->list));
        caa_instance_free(TAKE_PTR(c->inst));
    }
    return r;
}

int lv_do_list(lv_provider *p, caa_instance ***ret, caa_error **err)
{
    id_ctx c = {.p = p};
    int r = id_ctx_call(&c, list_op, err);
    if (r == 0)
        *ret = c.list;
    return r;
}

static int get_op(virConnectPtr conn, void *arg, caa_error **err)
{
    id_ctx *c = arg;
    _cleanup_dom_ virDomainPtr dom = virDomainLookupByUUIDString(conn, c->uuid);
    if (!dom)
        return lv_error(err, conn, "looking up domain %s", c->uuid);
    caa_error *e = NULL;
    int r = instance_of(c->p, conn, dom, true, false, &c->inst, &e);
    if (r == -ENOENT || r == -EPROTO) {
        caa_error_free(e);
        return caa_error_set(err, -ENOENT, "domain %s is not an adaptor instance", c->uuid);
    }
    return r < 0 ? caa_error_propagate(err, &e) : 0;
}

int lv_do_get(lv_provider *p, const char *uuid, caa_instance **ret, caa_error **err)
{
    id_ctx c = {.p = p, .uuid = uuid};
    int r = id_ctx_call(&c, get_op, err);
    if (r == 0)
        *ret = c.inst;
    return r;
}

/* ---- verify ---- */

static int verify_op(virConnectPtr conn, void *arg, caa_error **err)
{
    lv_provider *p = arg;
    const lv_host *host = NULL;
    int r = lv_host_get(p, conn, &host, err);
    if (r < 0)
        return r;
    _cleanup_pool_ virStoragePoolPtr pool = NULL;
    if ((r = lookup_pool(conn, p->cfg->pool_name, &pool, err)) < 0)
        return r;
    _cleanup_net_ virNetworkPtr net = virNetworkLookupByName(conn, p->cfg->network_name);
    if (!net)
        return lv_error(err, conn, "network %s", p->cfg->network_name);
    create_ctx c = {.p = p, .st = &(lv_create_state){0}};
    _cleanup_vol_ virStorageVolPtr base = NULL;
    return lookup_base(&c, conn, pool, &base, err);
}

int lv_do_verify(lv_provider *p, caa_error **err)
{
    return lv_conn_call(&p->conn, verify_op, p, err);
}
