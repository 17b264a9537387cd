/* The pod network module (adaptor/podnetwork/podnet-module.h), loaded at the
 * first call from the one compiled-in directory: <build>/adaptor/podnetwork
 * for an uninstalled binary, <libdir>/cloud-api-adaptor otherwise. */
#pragma once

#include "error.h"
#include "podnet-module.h"

/* The module's operations; loads it at the first call. A failure (missing,
 * unsafe or mismatched module) is returned with the path named, and the next
 * call tries again. Loop thread only. */
int caa_podnet_worker(const caa_podnet_worker_ops **ret, caa_error **err);
