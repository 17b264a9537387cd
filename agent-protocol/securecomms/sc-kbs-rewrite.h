/* Trustee mode's KBS tunnel on the worker: the VM's HTTP/1.x requests to the
 * KBS pass through this filter, which binds "the key this VM may fetch" to
 * "the VM at the end of this SSH connection" as upstream's proxy did: a
 * request whose path ends in "pp-sid/privateKey" has its first "pp-sid/"
 * replaced by "pp-<sid>/" (this pod's sandbox id). Everything else passes
 * unchanged; answers are not touched.
 *
 * The stream is cut into requests by their heads (at most 16 KiB) and
 * Content-Length bodies. Transfer-Encoding, conflicting lengths, a malformed
 * request line or an oversized head are errors: the tunnel is closed rather
 * than guessed at (a KBS client sends none of these). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

#define CAA_SC_KBS_HEAD_MAX (16 * 1024)

typedef struct caa_sc_kbs_rewriter {
    char *sid;
    caa_buf head;       /* the request head read so far */
    uint64_t body_left; /* bytes of the current body still to pass */
    unsigned rewritten; /* requests rewritten so far */
    int failed;
} caa_sc_kbs_rewriter;

void caa_sc_kbs_rewriter_init(caa_sc_kbs_rewriter *w, const char *sid);
void caa_sc_kbs_rewriter_done(caa_sc_kbs_rewriter *w);

/* Takes the next bytes from the VM and appends what goes to the KBS to out.
 * 0, or -EPROTO with err (and every later call fails too). */
int caa_sc_kbs_rewrite_feed(caa_sc_kbs_rewriter *w, const uint8_t *data, size_t len, caa_buf *out,
                            caa_error **err);
