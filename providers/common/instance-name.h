/* Pod VM names, as upstream: "podvm-<pod>-<first 8 of sandbox id>", where pod
 * and sandbox id are lower-cased and every character outside [a-z0-9-] becomes
 * '-', and the pod part is cut so the name fits 63 characters. */
#pragma once

#define CAA_INSTANCE_NAME_MAX 63

/* Returns a new string; never fails. */
char *caa_instance_name(const char *pod_name, const char *sandbox_id);
