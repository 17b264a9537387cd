/* Secure comms inbounds inside another network namespace of the pod VM
 * (`Phase:Name:Namespace:Port`, e.g. upstream's KUBERNETES_PHASE:x:podns:6666
 * for the pod's containers): sshd holds the remote forward on 127.0.0.1:<port>
 * of the VM's own namespace, and the forwarder listens on 127.0.0.1:<port>
 * inside /run/netns/<Namespace>, splicing each connection to sshd's. */
#pragma once

#include <uv.h>

#include "sc-tags.h"

typedef struct fwd_sc_relays fwd_sc_relays;

/* One relay per inbound with a namespace; one that cannot listen is logged
 * and left out (the namespace may not exist), never fatal. */
fwd_sc_relays *fwd_sc_relays_start(uv_loop_t *loop, const caa_sc_tags *inbounds);
/* Closes the listeners (spliced connections end on their own); done runs
 * once, at once when there was no relay. */
void fwd_sc_relays_close(fwd_sc_relays *r, void (*done)(void *opaque), void *opaque);
