#include "node-name.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int caa_node_name(const char *configured, char *buf, size_t size)
{
    if (configured && *configured) {
        if (strlen(configured) > CAA_NODE_NAME_MAX || strlen(configured) >= size)
            return -E2BIG;
        snprintf(buf, size, "%s", configured);
        return 0;
    }
    buf[0] = '\0';
    if (gethostname(buf, size - 1) < 0 || !*buf) {
        buf[0] = '\0';
        return -ENOENT;
    }
    buf[size - 1] = '\0';
    return 0;
}
