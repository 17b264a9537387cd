/* Secure comms in the pod VM: when apf.json says `sc: true`, the forwarder
 * writes an sshd configuration from it (agent-protocol/securecomms/sc-sshd.h)
 * and runs Debian's sshd as its child, restarting it (with backoff) if it
 * dies, and stopping it (SIGTERM to its PID) when the forwarder stops. The
 * agent listener is then bound to 127.0.0.1 only: SSH is the way in.
 *
 * With -secure-comms (Trustee mode) sshd first runs an attestation-phase
 * configuration (any client key, only the KBS tunnel); once the keys came
 * from the KBS (forwarder-sc-fetch.h) the attestation connection is ended
 * and sshd restarts with them. Inbounds in another network namespace are
 * relayed by forwarder-sc-netns.h. */
#pragma once

#include <stdint.h>

#include <uv.h>

#include "apf-config.h"
#include "error.h"
#include "forwarder-options.h"

typedef struct fwd_sc fwd_sc;

/* Checks the flags and apf.json, writes the sshd files and starts sshd. */
int fwd_sc_start(uv_loop_t *loop, const fwd_options *o, const caa_apf_config *apf, uint16_t agent_port,
                 fwd_sc **ret, caa_error **err);
/* Stops sshd and closes the handles; done runs later, once. */
void fwd_sc_stop(fwd_sc *s, void (*done)(void *opaque), void *opaque);
