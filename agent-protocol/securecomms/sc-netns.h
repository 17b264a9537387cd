/* A listening TCP socket inside another network namespace, for tunnel tags
 * with a namespace (`Phase:Name:Namespace:Port`, the namespace a name under
 * /run/netns as upstream). A socket stays in the namespace it was created
 * in, so a short-lived thread enters the namespace, creates and binds the
 * socket and ends; the caller's threads never change namespace. The wait is
 * for socket(), bind() and listen() only. The path is opened as lib/netns.h
 * does: a FIFO, a plain file or another kind of namespace there is refused
 * with a message that says what it is, before anything is created. */
#pragma once

#include <stdint.h>

#include "error.h"

#define CAA_SC_NETNS_DIR "/run/netns"

/* A non-blocking, close-on-exec socket listening on 127.0.0.1:port (0: any
 * free port) in /run/netns/<netns>; returns the fd or < 0 with err. */
int caa_sc_netns_listen(const char *netns, uint16_t port, int backlog, caa_error **err);
