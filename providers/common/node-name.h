/* The worker node a provider records on the instances it creates (AWS and
 * Azure tags, libvirt domain metadata): the orphan sweep lists by it. */
#pragma once

#include <stddef.h>

/* An Azure tag value holds at most 256 characters; the same bound for all. */
#define CAA_NODE_NAME_MAX 256

/* The configured name when set (non-empty), else the host name, into buf
 * (size > CAA_NODE_NAME_MAX). 0; -ENOENT: nothing configured and the host
 * name is unknown; -E2BIG: the configured name is longer than
 * CAA_NODE_NAME_MAX. What to do then is the provider's call. */
int caa_node_name(const char *configured, char *buf, size_t size);
