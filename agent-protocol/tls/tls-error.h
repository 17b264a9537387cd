/* OpenSSL's thread-local error queue, translated into caa_error messages.
 *
 * OpenSSL reports failures by pushing entries on a per-thread queue. The
 * helpers here drain it into readable text ("reason (detail); reason") so a
 * caa_error carries what OpenSSL said, and clear it so a later call does not
 * pick up stale entries. */
#pragma once

#include <stdbool.h>

#include "error.h"

/* Drains the queue; returns its entries joined by "; ", or NULL when empty.
 * The text never holds key material (OpenSSL does not put any there). */
char *caa_tls_error_queue_text(void);
/* Same, also storing the packed codes (ERR_GET_LIB/ERR_GET_REASON) of up to
 * max_codes entries, oldest first, in codes[0..*ret_n). */
char *caa_tls_error_queue_drain(unsigned long *codes, unsigned max_codes, unsigned *ret_n);

/* Sets *err to "<fmt...>: <queue text>" (or just "<fmt...>" when the queue
 * is empty), clears the queue and returns code. */
int caa_tls_error_set(caa_error **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Drops whatever is on the queue (before an operation whose failure we
 * want to report on its own). */
void caa_tls_error_clear(void);
