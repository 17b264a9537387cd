/* The forwarder's one connection to the kata-agent's unix socket.
 *
 * Waits for the socket to appear (inotify on its directory, plus retries
 * with backoff up to 1 s for a socket that exists but does not accept
 * yet), connects, hands the client to the relay and reconnects the same way
 * whenever the connection drops. */
#pragma once

#include <stdbool.h>

#include <uv.h>

#include "error.h"
#include "relay.h"

typedef struct fwd_agent_link fwd_agent_link;

/* connected(opaque) runs after every successful (re)connection (first:
 * true for the first one). */
int fwd_agent_link_start(uv_loop_t *loop, const char *socket_path, caa_relay *relay,
                         void (*connected)(bool first, void *opaque), void *opaque, fwd_agent_link **ret,
                         caa_error **err);
/* The relay lost the connection (its upstream_lost callback): reconnect. */
void fwd_agent_link_lost(fwd_agent_link *l);
/* Stops; done(opaque) runs later, once. The relay is not touched. */
void fwd_agent_link_close(fwd_agent_link *l, void (*done)(void *opaque), void *opaque);
