/* Trustee mode in the pod VM: fetching the two SSH keys the worker put into
 * the KBS, as upstream's forwarder did: GET <source>/sshclient/publicKey and
 * <source>/pp-sid/privateKey, where <source> is the CDH resource endpoint of
 * api-server-rest (http://127.0.0.1:8006/cdh/resource/default), reached
 * inside the pod network namespace. CDH fetches from the KBS through the
 * SSH tunnel (127.0.0.1:8080 in the VM) and the worker turns "pp-sid" into
 * this pod's resource (agent-protocol/securecomms/sc-kbs-rewrite.h).
 *
 * One thread does the blocking part (entering the namespace, libcurl):
 * each key is retried forever with backoff (1 s doubling to 30 s, as
 * upstream) until it arrives or fwd_sc_fetch_stop(). Plain http:// only to
 * a loopback host. The result is delivered on the loop. */
#pragma once

#include <stddef.h>

#include <uv.h>

#include "error.h"

#define FWD_SC_KEY_MAX 8192

typedef struct fwd_sc_fetch fwd_sc_fetch;

/* status 0: wn_pub (the worker's authorized_keys line) and pp_prv (the
 * VM's host private key) are valid during cb only (then wiped). */
typedef void (*fwd_sc_fetch_cb)(int status, const char *wn_pub, size_t wn_len, const char *pp_prv,
                                size_t pp_len, void *opaque);

/* netns: a namespace file (e.g. /run/netns/podns), or "" for the forwarder's own. */
int fwd_sc_fetch_start(uv_loop_t *loop, const char *source, const char *netns, uint64_t first_backoff_ms,
                       fwd_sc_fetch_cb cb, void *opaque, fwd_sc_fetch **ret, caa_error **err);
/* Stops the thread (waits for an attempt in progress, at most its timeout);
 * cb does not run after this. Only before cb ran: after cb, f is gone. */
void fwd_sc_fetch_stop(fwd_sc_fetch *f);
