/* libnl-route helpers: error translation, links, VXLAN, tc mirred bridge. */
#define LOG_COMPONENT "podnetwork/netlink"
#include <errno.h>
#include <linux/capability.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "podnet-nl.h"
#include "xalloc.h"

#ifndef NETLINK_EXT_ACK
#    define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#    define NETLINK_CAP_ACK 10
#endif

/* libnl folds kernel errnos into a few NLE_* codes and drops the kernel's
 * extended-ack text. The error callback installed by caa_podnet_nl_track()
 * keeps both for the last failed request on this thread, so messages can say
 * "File exists (A VXLAN device with the specified VNI already exists)". */
static _Thread_local struct {
    int sys_errno; /* positive */
    char msg[160];
} last_kernel_error;

static int err_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
    (void)nla;
    (void)arg;
    const struct nlmsghdr *h = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
    last_kernel_error.sys_errno = -e->error;
    last_kernel_error.msg[0] = '\0';
    /* With NETLINK_CAP_ACK the request is not echoed: TLVs follow nlmsgerr. */
    if ((h->nlmsg_flags & NLM_F_ACK_TLVS) && (h->nlmsg_flags & NLM_F_CAPPED)) {
        size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*e));
        while (off + NLA_HDRLEN <= h->nlmsg_len) {
            const struct nlattr *a = (const struct nlattr *)((const char *)h + off);
            if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len)
                break;
            if (a->nla_type == NLMSGERR_ATTR_MSG) {
                size_t n = a->nla_len - NLA_HDRLEN;
                if (n >= sizeof(last_kernel_error.msg))
                    n = sizeof(last_kernel_error.msg) - 1;
                memcpy(last_kernel_error.msg, (const char *)a + NLA_HDRLEN, n);
                last_kernel_error.msg[n] = '\0';
                last_kernel_error.msg[strcspn(last_kernel_error.msg, "\n")] = '\0';
                break;
            }
            off += NLA_ALIGN(a->nla_len);
        }
    }
    return NL_STOP; /* libnl then reports the error as usual */
}

void caa_podnet_nl_track(struct nl_sock *sk)
{
    int one = 1;
    int fd = nl_socket_get_fd(sk);
    /* Best effort: old kernels simply send no extended ack. */
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    nl_socket_modify_err_cb(sk, NL_CB_CUSTOM, err_cb, NULL);
}

static int nle_to_errno(int nle)
{
    switch (nle) {
    case NLE_EXIST:
        return EEXIST;
    case NLE_INVAL:
    case NLE_MISSING_ATTR:
        return EINVAL;
    case NLE_RANGE:
        return ERANGE;
    case NLE_OPNOTSUPP:
    case NLE_AF_NOSUPPORT:
        return EOPNOTSUPP;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
        return ENOENT;
    case NLE_NOADDR:
        return EADDRNOTAVAIL;
    case NLE_BUSY:
        return EBUSY;
    case NLE_AGAIN:
    case NLE_INTR:
        return EAGAIN;
    case NLE_PERM:
        return EPERM;
    case NLE_NOACCESS:
        return EACCES;
    case NLE_NOMEM:
        caa_oom();
    default:
        return EIO;
    }
}

int caa_podnet_nl_error(caa_error **err, int nlerr, const char *fmt, ...)
{
    if (nlerr < 0)
        nlerr = -nlerr;
    int code = nle_to_errno(nlerr);
    char detail[256];
    /* Prefer the kernel's own errno when it maps to the code libnl returned. */
    if (last_kernel_error.sys_errno > 0 && nl_syserr2nlerr(last_kernel_error.sys_errno) == nlerr) {
        code = last_kernel_error.sys_errno;
        if (last_kernel_error.msg[0])
            snprintf(detail, sizeof(detail), "%s (%s)", strerror(code), last_kernel_error.msg);
        else
            snprintf(detail, sizeof(detail), "%s", strerror(code));
    } else {
        snprintf(detail, sizeof(detail), "%s", nl_geterror(nlerr));
    }
    last_kernel_error.sys_errno = 0;
    last_kernel_error.msg[0] = '\0';

    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *what = xvasprintf(fmt, ap);
    va_end(ap);
    if (code == EPERM || code == EACCES)
        return caa_error_set(err, -EPERM, "%s: %s (CAP_NET_ADMIN is needed)", what, detail);
    if (code == ENODEV)
        code = ENOENT;
    return caa_error_set(err, -code, "%s: %s", what, detail);
}

int caa_podnet_require_net_admin(caa_error **err)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
    memset(d, 0, sizeof(d));
    if (syscall(SYS_capget, &h, d) < 0)
        return caa_error_set_errno(err, -errno, "reading capabilities");
    if (!(d[CAP_TO_INDEX(CAP_NET_ADMIN)].effective & CAP_TO_MASK(CAP_NET_ADMIN)))
        return caa_error_set(err, -EPERM, "configuring the pod network needs CAP_NET_ADMIN");
    return 0;
}

int caa_podnet_link_get(struct nl_sock *sk, const char *name, struct rtnl_link **ret, caa_error **err)
{
    int r = rtnl_link_get_kernel(sk, 0, name, ret);
    if (r == -NLE_NODEV || r == -NLE_OBJ_NOTFOUND) {
        last_kernel_error.sys_errno = 0;
        return caa_error_set(err, -ENOENT, "no network device named \"%s\"", name);
    }
    if (r < 0)
        return caa_podnet_nl_error(err, r, "looking up device \"%s\"", name);
    return 0;
}

int caa_podnet_link_ifindex(struct nl_sock *sk, const char *name, caa_error **err)
{
    struct rtnl_link *link;
    int r = caa_podnet_link_get(sk, name, &link, err);
    if (r < 0)
        return r;
    int ifindex = rtnl_link_get_ifindex(link);
    rtnl_link_put(link);
    return ifindex;
}

int caa_podnet_link_set_up(struct nl_sock *sk, int ifindex, caa_error **err)
{
    struct rtnl_link *orig = rtnl_link_alloc(), *change = rtnl_link_alloc();
    if (!orig || !change)
        caa_oom();
    rtnl_link_set_ifindex(orig, ifindex);
    rtnl_link_set_flags(change, IFF_UP);
    int r = rtnl_link_change(sk, orig, change, 0);
    rtnl_link_put(orig);
    rtnl_link_put(change);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "setting device %d up", ifindex);
    return 0;
}

int caa_podnet_link_set_netns(struct nl_sock *sk, int ifindex, int netns_fd, caa_error **err)
{
    struct rtnl_link *orig = rtnl_link_alloc(), *change = rtnl_link_alloc();
    if (!orig || !change)
        caa_oom();
    rtnl_link_set_ifindex(orig, ifindex);
    rtnl_link_set_ns_fd(change, netns_fd);
    int r = rtnl_link_change(sk, orig, change, 0);
    rtnl_link_put(orig);
    rtnl_link_put(change);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "moving device %d to another network namespace", ifindex);
    return 0;
}

int caa_podnet_link_rename(struct nl_sock *sk, const char *from, const char *to, caa_error **err)
{
    int ifindex = caa_podnet_link_ifindex(sk, from, err);
    if (ifindex < 0)
        return ifindex;
    struct rtnl_link *orig = rtnl_link_alloc(), *change = rtnl_link_alloc();
    if (!orig || !change)
        caa_oom();
    rtnl_link_set_ifindex(orig, ifindex);
    rtnl_link_set_name(change, to);
    int r = rtnl_link_change(sk, orig, change, 0);
    rtnl_link_put(orig);
    rtnl_link_put(change);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "renaming device \"%s\" to \"%s\"", from, to);
    return 0;
}

int caa_podnet_link_delete(struct nl_sock *sk, const char *name, caa_error **err)
{
    struct rtnl_link *link = rtnl_link_alloc();
    if (!link)
        caa_oom();
    rtnl_link_set_name(link, name);
    int r = rtnl_link_delete(sk, link);
    rtnl_link_put(link);
    if (r == -NLE_NODEV || r == -NLE_OBJ_NOTFOUND) {
        last_kernel_error.sys_errno = 0;
        return 0;
    }
    if (r < 0)
        return caa_podnet_nl_error(err, r, "deleting device \"%s\"", name);
    log_debug("deleted device %s", name);
    return 0;
}

int caa_podnet_vxlan_create(struct nl_sock *sk, const caa_podnet_vxlan_spec *spec, caa_error **err)
{
    struct rtnl_link *link = rtnl_link_vxlan_alloc();
    struct nl_addr *remote = nl_addr_build(AF_INET, &spec->remote, sizeof(spec->remote));
    struct nl_addr *mac = spec->hw_addr ? nl_addr_build(AF_LLC, spec->hw_addr, 6) : NULL;
    if (!link || !remote || (spec->hw_addr && !mac))
        caa_oom();
    rtnl_link_set_name(link, spec->name);
    rtnl_link_vxlan_set_id(link, spec->vni);
    /* A unicast "group" is the remote end (IFLA_VXLAN_GROUP). */
    rtnl_link_vxlan_set_group(link, remote);
    rtnl_link_vxlan_set_port(link, spec->port);
    rtnl_link_vxlan_set_learning(link, 0);
    if (mac)
        rtnl_link_set_addr(link, mac);
    if (spec->mtu)
        rtnl_link_set_mtu(link, spec->mtu);
    if (spec->netns_fd >= 0)
        rtnl_link_set_ns_fd(link, spec->netns_fd);
    int r = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(link);
    nl_addr_put(remote);
    if (mac)
        nl_addr_put(mac);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "creating VXLAN device \"%s\" (id %u, dstport %u)", spec->name,
                                   spec->vni, spec->port);
    log_debug("created VXLAN device %s id %u port %u", spec->name, spec->vni, spec->port);
    return 0;
}

int caa_podnet_vxlan_get_id(struct nl_sock *sk, const char *name, uint32_t *ret_vni, caa_error **err)
{
    struct rtnl_link *link;
    int r = caa_podnet_link_get(sk, name, &link, err);
    if (r < 0)
        return r;
    uint32_t vni = 0;
    if (!rtnl_link_is_vxlan(link) || rtnl_link_vxlan_get_id(link, &vni) < 0) {
        rtnl_link_put(link);
        return caa_error_set(err, -EINVAL, "device \"%s\" is not a VXLAN device", name);
    }
    rtnl_link_put(link);
    *ret_vni = vni;
    return 0;
}

/* ---- tc ---- */

#define INGRESS_QDISC_HANDLE TC_H_MAKE(TC_H_INGRESS, 0)
#define CLSACT_INGRESS_PARENT TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)

/* Finds the ingress-side qdisc of ifindex. *ret_parent is where filters go;
 * *ret_kind "ingress", "clsact" or NULL when there is none. */
static int find_ingress(struct nl_sock *sk, int ifindex, const char **ret_kind, uint32_t *ret_parent,
                        caa_error **err)
{
    struct nl_cache *cache;
    int r = rtnl_qdisc_alloc_cache(sk, &cache);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "listing qdiscs");
    struct rtnl_qdisc *q = rtnl_qdisc_get_by_parent(cache, ifindex, TC_H_INGRESS);
    *ret_kind = NULL;
    *ret_parent = INGRESS_QDISC_HANDLE;
    if (q) {
        const char *kind = rtnl_tc_get_kind(TC_CAST(q));
        if (kind && !strcmp(kind, "clsact")) {
            *ret_kind = "clsact";
            *ret_parent = CLSACT_INGRESS_PARENT;
        } else if (kind && !strcmp(kind, "ingress")) {
            *ret_kind = "ingress";
        }
        rtnl_qdisc_put(q);
    }
    nl_cache_free(cache);
    return 0;
}

int caa_podnet_tc_redirect_add(struct nl_sock *sk, int from_ifindex, int to_ifindex, caa_error **err)
{
    const char *kind;
    uint32_t parent;
    int r = find_ingress(sk, from_ifindex, &kind, &parent, err);
    if (r < 0)
        return r;
    if (!kind) {
        struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        if (!q)
            caa_oom();
        rtnl_tc_set_ifindex(TC_CAST(q), from_ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_INGRESS);
        rtnl_tc_set_handle(TC_CAST(q), INGRESS_QDISC_HANDLE);
        rtnl_tc_set_kind(TC_CAST(q), "ingress");
        r = rtnl_qdisc_add(sk, q, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_qdisc_put(q);
        if (r < 0)
            return caa_podnet_nl_error(err, r, "adding an ingress qdisc to device %d", from_ifindex);
    }

    struct rtnl_cls *cls = rtnl_cls_alloc();
    struct rtnl_act *act = rtnl_act_alloc();
    if (!cls || !act)
        caa_oom();
    rtnl_tc_set_ifindex(TC_CAST(cls), from_ifindex);
    rtnl_tc_set_parent(TC_CAST(cls), parent);
    r = rtnl_tc_set_kind(TC_CAST(cls), "u32");
    if (r >= 0) {
        rtnl_cls_set_prio(cls, CAA_PODNET_TC_PRIO);
        rtnl_cls_set_protocol(cls, ETH_P_ALL);
        /* "match u32 0 0": one key that matches every frame. */
        r = rtnl_u32_add_key_uint32(cls, 0, 0, 0, 0);
    }
    if (r >= 0)
        r = rtnl_u32_set_cls_terminal(cls);
    if (r >= 0)
        r = rtnl_tc_set_kind(TC_CAST(act), "mirred");
    if (r >= 0) {
        rtnl_mirred_set_action(act, TCA_EGRESS_REDIR);
        rtnl_mirred_set_policy(act, TC_ACT_STOLEN);
        rtnl_mirred_set_ifindex(act, (uint32_t)to_ifindex);
        r = rtnl_u32_add_action(cls, act);
    }
    if (r >= 0)
        r = rtnl_cls_add(sk, cls, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_act_put(act);
    rtnl_cls_put(cls);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "adding a redirect filter from device %d to %d", from_ifindex,
                                   to_ifindex);
    log_debug("redirecting device %d ingress to %d", from_ifindex, to_ifindex);
    return 0;
}

int caa_podnet_tc_redirect_remove(struct nl_sock *sk, int ifindex, caa_error **err)
{
    const char *kind;
    uint32_t parent;
    int r = find_ingress(sk, ifindex, &kind, &parent, err);
    if (r < 0 || !kind)
        return r;

    struct rtnl_cls *cls = rtnl_cls_alloc();
    if (!cls)
        caa_oom();
    rtnl_tc_set_ifindex(TC_CAST(cls), ifindex);
    rtnl_tc_set_parent(TC_CAST(cls), parent);
    rtnl_tc_set_kind(TC_CAST(cls), "u32");
    rtnl_cls_set_prio(cls, CAA_PODNET_TC_PRIO);
    rtnl_cls_set_protocol(cls, ETH_P_ALL);
    r = rtnl_cls_delete(sk, cls, 0);
    rtnl_cls_put(cls);
    if (r < 0 && r != -NLE_OBJ_NOTFOUND && r != -NLE_NODEV)
        return caa_podnet_nl_error(err, r, "deleting the redirect filter of device %d", ifindex);
    last_kernel_error.sys_errno = 0;

    /* Only an ingress qdisc with nothing left on it goes; clsact is never ours. */
    if (strcmp(kind, "ingress") != 0)
        return 0;
    struct nl_cache *filters;
    r = rtnl_cls_alloc_cache(sk, ifindex, parent, &filters);
    if (r < 0)
        return caa_podnet_nl_error(err, r, "listing filters of device %d", ifindex);
    int left = nl_cache_nitems(filters);
    nl_cache_free(filters);
    if (left > 0)
        return 0;
    struct rtnl_qdisc *q = rtnl_qdisc_alloc();
    if (!q)
        caa_oom();
    rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
    rtnl_tc_set_parent(TC_CAST(q), TC_H_INGRESS);
    rtnl_tc_set_handle(TC_CAST(q), INGRESS_QDISC_HANDLE);
    rtnl_tc_set_kind(TC_CAST(q), "ingress");
    r = rtnl_qdisc_delete(sk, q);
    rtnl_qdisc_put(q);
    if (r < 0 && r != -NLE_OBJ_NOTFOUND && r != -NLE_INVAL && r != -NLE_NODEV)
        return caa_podnet_nl_error(err, r, "deleting the ingress qdisc of device %d", ifindex);
    last_kernel_error.sys_errno = 0;
    return 0;
}
