/* Network namespaces by path: the one way every part of the tree opens and
 * enters one (the pod network, secure comms tunnels in a namespace, the
 * forwarder's key fetch). No libnl here, so anything can link it.
 *
 * A namespace path comes from outside (the shim's CreateVM, flags, tunnel
 * tags), so opening it must not hang on a FIFO nor act on a file that only
 * looks like a namespace. Entering one changes the calling thread only; the
 * thread comes back with caa_netns_return(), which aborts when it cannot:
 * a thread left in a pod's namespace would create sockets, devices and rules
 * in the wrong place without anyone noticing. */
#pragma once

#include "error.h"

/* Opens a network namespace file and returns the fd (O_RDONLY, close-on-exec).
 * The open is non-blocking (a FIFO cannot stall it) and what was opened is
 * checked before use: a regular file on nsfs, of type CLONE_NEWNET.
 * -ENOENT: path does not exist; -EINVAL: it is not a network namespace (the
 * message says what it is: a FIFO, a directory, a regular file, a namespace
 * of another type...); other errors as open() gives them. */
int caa_netns_open(const char *path, caa_error **err);

/* Moves the calling thread into the network namespace of nsfd (from
 * caa_netns_open) and stores an fd on the namespace it was in to
 * *ret_origin. `what` names the namespace in messages. -EPERM without
 * CAP_SYS_ADMIN. On failure the thread has not moved and nothing is open. */
int caa_netns_enter(int nsfd, const char *what, int *ret_origin, caa_error **err);

/* Opens path and enters it (the two above); -ENOENT/-EINVAL as caa_netns_open. */
int caa_netns_enter_path(const char *path, int *ret_origin, caa_error **err);

/* Brings the calling thread back to origin (from caa_netns_enter) and closes
 * it. Aborts the process when the kernel refuses. */
void caa_netns_return(int origin);
