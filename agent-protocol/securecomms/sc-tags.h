/* Secure comms tunnel tags, in upstream's grammar:
 *
 *   list  = tag *( "," tag )         each tag trimmed; empty tags skipped
 *   tag   = phase ":" name ":" port
 *         / phase ":" name ":" third ":" port
 *   phase = ATTESTATION_PHASE / KUBERNETES_PHASE / BOTH_PHASES
 *
 * For an inbound (a local listener) `third` names a network namespace under
 * /run/netns (empty: the process's own); for an outbound (a dial target) it
 * is a host name or IPv4 address (empty or absent: 127.0.0.1). Names are
 * case-sensitive and may not contain ':' or ','.
 *
 * Unlike upstream, a bad tag is an error returned to the caller (never
 * fatal), and the third field is checked: a netns name is one path
 * component, a host is letters, digits, '.', '-' and '_' only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CAA_SC_TAG_MAX_NAME 64
#define CAA_SC_TAG_MAX_THIRD 253 /* a DNS name */
#define CAA_SC_TAGS_MAX 64       /* tags in one list */

typedef enum caa_sc_phase {
    CAA_SC_PHASE_ATTESTATION = 1,
    CAA_SC_PHASE_KUBERNETES = 2,
    CAA_SC_PHASE_BOTH = 3, /* the bitwise union of the two */
} caa_sc_phase;

typedef enum caa_sc_direction {
    CAA_SC_INBOUND,
    CAA_SC_OUTBOUND,
} caa_sc_direction;

typedef struct caa_sc_tag {
    caa_sc_phase phase;
    char *name;
    char *netns; /* inbound: namespace name, NULL = own namespace */
    char *host;  /* outbound: never NULL ("127.0.0.1" by default) */
    uint16_t port;
} caa_sc_tag;

typedef struct caa_sc_tags {
    caa_sc_direction direction;
    caa_sc_tag *items;
    size_t n;
} caa_sc_tags;

void caa_sc_tags_init(caa_sc_tags *tags, caa_sc_direction direction);
void caa_sc_tags_done(caa_sc_tags *tags);

/* Parses a comma-separated list and appends it to tags (all or nothing).
 * Outbounds: a later tag with the same name replaces the earlier one (as
 * upstream's map). Inbounds: a repeated name or a repeated non-zero port is
 * -EINVAL (upstream failed later, binding the port). */
int caa_sc_tags_parse_append(caa_sc_tags *tags, const char *text, caa_error **err);

/* The tag of that name, or NULL. */
const caa_sc_tag *caa_sc_tags_find(const caa_sc_tags *tags, const char *name);

/* Whether a tag of `phase` is live on a connection in `connection_phase`
 * (CAA_SC_PHASE_ATTESTATION or CAA_SC_PHASE_KUBERNETES). */
static inline bool caa_sc_phase_matches(caa_sc_phase tag_phase, caa_sc_phase connection_phase)
{
    return (tag_phase & connection_phase) != 0;
}

const char *caa_sc_phase_name(caa_sc_phase phase);

/* The list written back in the grammar above (canonical form: the third
 * field always present for outbounds, present for inbounds with a netns). */
char *caa_sc_tags_format(const caa_sc_tags *tags);
