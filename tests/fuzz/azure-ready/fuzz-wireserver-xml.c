/* Fuzz target azure-ready-wireserver: the WireServer's versions and goal
 * state answers (libxml2 parse, element walk), and the Health report built
 * from whatever goal state was accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wireserver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    caa_error *err = NULL;
    char *version = NULL;
    if (caa_wire_pick_version((const char *)data, size, &version, &err) == 0) {
        if (!version || !*version)
            abort();
        free(version);
    } else if (!err || err->code >= 0) {
        abort();
    }
    caa_error_free(err);
    err = NULL;

    caa_wire_goal_state gs = {0};
    if (caa_wire_parse_goal_state((const char *)data, size, &gs, &err) == 0) {
        if (!*gs.incarnation || !*gs.container_id || !*gs.instance_id)
            abort();
        size_t len = 0;
        char *health = caa_wire_health_ready(&gs, &len, NULL);
        if (health && (len != strlen(health) || !strstr(health, "<State>Ready</State>")))
            abort();
        free(health);
        caa_wire_goal_state_done(&gs);
    } else if (!err || err->code >= 0) {
        abort();
    }
    caa_error_free(err);
    return 0;
}
