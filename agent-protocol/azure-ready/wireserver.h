/* The Azure WireServer's "report ready" exchange, as a pod VM without the
 * Azure guest agent must do it for its VM creation to finish (upstream's
 * cmd/azure-ready; the same three steps as WALinuxAgent and Afterburn):
 *
 *   GET  <endpoint>/?comp=versions           -> <Versions><Supported><Version>...
 *   GET  <endpoint>/machine/?comp=goalstate  -> <GoalState><Incarnation>, <Container>
 *                                               <ContainerId>, <RoleInstanceList>
 *                                               <RoleInstance><InstanceId>
 *   POST <endpoint>/machine?comp=health      <- <Health> ... <State>Ready</State>
 *
 * Every request carries `x-ms-agent-name: azure-ready`, the last two also
 * `x-ms-version`. XML is parsed and built with libxml2 (no network, no
 * entity expansion). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The protocol version upstream asks for when the WireServer offers it. */
#define CAA_WIRE_VERSION "2015-04-05"
/* The WireServer's fixed address on Azure (tests pass their own endpoint). */
#define CAA_WIRE_DEFAULT_ENDPOINT "http://168.63.129.16"
#define CAA_WIRE_AGENT_NAME "azure-ready"
/* Answers larger than this are an error. */
#define CAA_WIRE_MAX_BODY (1024 * 1024)

typedef struct caa_wire_goal_state {
    char *incarnation;
    char *container_id;
    char *instance_id;
} caa_wire_goal_state;

void caa_wire_goal_state_done(caa_wire_goal_state *gs);

/* CAA_WIRE_VERSION when <Supported> lists it, else the first one listed.
 * -EINVAL for bad XML or no version. */
int caa_wire_pick_version(const char *xml, size_t len, char **ret, caa_error **err);
/* Incarnation, container id and the first role instance id; all three are
 * required (-EINVAL naming what is missing). */
int caa_wire_parse_goal_state(const char *xml, size_t len, caa_wire_goal_state *ret, caa_error **err);
/* The Health document reporting Ready for that goal state (UTF-8, with an
 * XML declaration). Values are escaped by libxml2. NULL on failure. */
char *caa_wire_health_ready(const caa_wire_goal_state *gs, size_t *ret_len, caa_error **err);

typedef struct caa_wire_opts {
    const char *endpoint;       /* base URL without a trailing slash */
    int64_t request_timeout_ms; /* each HTTP request */
    bool verbose;               /* log each request */
} caa_wire_opts;

/* One attempt of the three steps. 0 when the WireServer accepted Ready. */
int caa_wire_report_ready(const caa_wire_opts *o, caa_error **err);
