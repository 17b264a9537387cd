/* Kubernetes resource quantities ("500m", "4Gi", "1.5", "2e3") as exact
 * integers, for the webhook's sums of container requests and limits.
 *
 * A quantity is held in nano-units (1 = 10^-9 of the unit), exact for every
 * value Kubernetes can express down to that precision; finer fractions round
 * up to the next nano-unit, as Kubernetes' own Quantity does. Values above
 * 2^63-1 whole units and negative values are refused (the API server refuses
 * negative requests and limits; Kubernetes caps Value() at 2^63-1). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef __int128 caa_quantity; /* nano-units, 0 .. (2^63-1) * 10^9 */

/* Longest quantity text accepted (Kubernetes' own limit is looser; no sane
 * resource needs more). */
#define CAA_QUANTITY_MAX_TEXT 64

/* Parses the canonical Kubernetes quantity grammar: optional '+', decimal
 * number (digits with at most one '.'), then one suffix of n u m k M G T P E,
 * Ki Mi Gi Ti Pi Ei, or e/E with a signed exponent. -EINVAL with the text
 * quoted (it is not secret) on anything else; *ret written only on success. */
int caa_quantity_parse(const char *text, size_t len, caa_quantity *ret, caa_error **err);
/* a + b into *sum; -ERANGE past the maximum. */
int caa_quantity_add(caa_quantity a, caa_quantity b, caa_quantity *sum, caa_error **err);
/* Whole units rounded up (Kubernetes' Quantity.Value()). */
int64_t caa_quantity_ceil_units(caa_quantity q);
/* Bytes rounded up to MiB (Kubernetes' RoundUpToMiB, the memory annotation). */
int64_t caa_quantity_ceil_mib(caa_quantity q);
/* Canonical decimal-SI text ("1", "500m", "2k"), Quantity.String() for a
 * decimal quantity; buf of at least 48 bytes. */
void caa_quantity_format(caa_quantity q, char *buf, size_t size);
