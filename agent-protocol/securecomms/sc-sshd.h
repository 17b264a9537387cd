/* The pod VM's side of secure comms: Debian's OpenSSH sshd, configured
 * from apf.json so that it accepts only the worker's key and allows only
 * the named tunnels (docs/secure-comms.md explains the choice).
 *
 * Files written into a private directory (0700), all 0600:
 *   host_key         the VM's ed25519 host key (apf.json sc-pp-prv)
 *   authorized_keys  one line: restrict,port-forwarding,permitopen=...,
 *                    permitlisten=... and the worker's key, rebuilt from its
 *                    parsed blob (nothing from apf.json is pasted verbatim)
 *   sshd_config      publickey only, ed25519 only, no session, no pty, no
 *                    agent/X11/unix-socket forwarding, PermitOpen and
 *                    PermitListen repeating the same lists. */
#pragma once

#include <stdint.h>

#include "apf-securecomms.h"
#include "error.h"
#include "sc-tags.h"

typedef struct caa_sc_sshd_params {
    const char *dir;         /* private directory for the files (created 0700) */
    const char *listen_addr; /* sshd ListenAddress, e.g. "0.0.0.0" */
    uint16_t port;           /* upstream: 2222 */
    const char *user;        /* the account the worker logs in as */
    uint16_t agent_port;     /* the forwarder's loopback port (built-in KATAAGENT) */
    const caa_apf_securecomms *sc;
    const char *extra_inbounds; /* -secure-comms-inbounds of the forwarder */
    const char *extra_outbounds;
} caa_sc_sshd_params;

/* Validates everything (keys, tags, what sshd can serve) and writes the
 * three files. On failure nothing is left in dir that was written now. */
int caa_sc_sshd_write_config(const caa_sc_sshd_params *p, caa_error **err);

/* Trustee mode, before the keys came from the KBS (the attestation phase):
 * a fresh host key, any client key accepted (AuthorizedKeysCommand, run as
 * keys_command_user), no channel to the VM (PermitOpen none) and only the
 * inbounds live in that phase (the built-in KBS:8080 and ATTESTATION_PHASE
 * or BOTH_PHASES extra inbounds) as remote forwards. Removes a previous
 * authorized_keys. */
int caa_sc_sshd_write_attestation_config(const caa_sc_sshd_params *p, const char *keys_command_user,
                                         caa_error **err);

/* The sshd_config text alone (tests, docs). */
char *caa_sc_sshd_config_text(const caa_sc_sshd_params *p, const caa_sc_tags *inbounds,
                              const caa_sc_tags *outbounds);
