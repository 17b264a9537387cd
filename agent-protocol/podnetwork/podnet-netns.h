/* Network namespaces for the pod network: netlink sockets bound to them, and
 * creating a named one the way `ip netns add` does (opening one by path, and
 * entering it, is lib/netns.h's).
 *
 * Netlink sockets keep the namespace they were created in, so a socket for a
 * pod's namespace is opened by switching the calling thread into it, creating
 * the socket and switching back; everything else stays on the calling thread. */
#pragma once

#include <stdbool.h>

#include "error.h"

struct nl_sock;

/* Opens a NETLINK_ROUTE socket in the namespace of netns_fd (-1: the calling
 * thread's own). -EPERM when entering the namespace is not allowed. */
int caa_podnet_nl_open_fd(int netns_fd, struct nl_sock **ret, caa_error **err);
/* Same, by path (NULL: the calling thread's namespace). */
int caa_podnet_nl_open(const char *netns_path, struct nl_sock **ret, caa_error **err);
void caa_podnet_nl_close(struct nl_sock *sk);
static inline void caa_podnet_nl_closep(struct nl_sock **sk)
{
    if (*sk)
        caa_podnet_nl_close(*sk);
    *sk = NULL;
}
#define _cleanup_nl_sock_ _cleanup_(caa_podnet_nl_closep)

/* Makes sure path names a network namespace. When it does not exist, creates
 * a new empty namespace on a helper thread and bind-mounts it at path (the
 * parent directory is created; /run/netns is made a shared mount point like
 * iproute2 does). *ret_created tells whether it was made here. */
int caa_podnet_netns_ensure(const char *path, bool *ret_created, caa_error **err);
/* Unmounts and removes a namespace made by caa_podnet_netns_ensure (missing is success). */
int caa_podnet_netns_remove(const char *path, caa_error **err);
