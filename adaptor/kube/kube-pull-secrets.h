/* A pod's image-pull credentials for /run/peerpod/auth.json, as upstream's
 * k8sops.GetImagePullSecrets: GET the pod, GET its service account
 * (spec.serviceAccountName, default "default"), GET every secret named in the
 * account's and then the pod's imagePullSecrets (each name once), and merge
 * their .dockerconfigjson / .dockercfg registries into {"auths": {...}}
 * (later secrets win; "auth" made from username:password when missing;
 * entries with neither are skipped). Requests: 2 + one per secret.
 *
 * A secret that does not exist (or cannot be read) is skipped, as the kubelet
 * does; one with malformed base64 or JSON fails with -EINVAL naming the
 * secret. The credentials are never logged. */
#pragma once

#include <stddef.h>

#include "kube-client.h"

typedef struct caa_kube_pull_secrets caa_kube_pull_secrets;

/* status 0: auth_json is the document (NULL: the pod has no credentials);
 * it belongs to the callback (wipe it: caa_kube_secret_free). status < 0:
 * err says why (-EINVAL bad secret; API errors of the pod or account GET). */
typedef void (*caa_kube_pull_secrets_cb)(int status, char *auth_json, size_t len, caa_error *err,
                                         void *opaque);

/* Fails synchronously (-EINVAL: names that are not valid object names) or
 * calls cb exactly once, later. */
int caa_kube_pull_secrets_fetch(caa_kube_client *c, const char *pod_name, const char *pod_namespace,
                                caa_kube_pull_secrets_cb cb, void *opaque, caa_kube_pull_secrets **ret,
                                caa_error **err);
/* Before cb ran: cb then runs later with -ECANCELED. */
void caa_kube_pull_secrets_cancel(caa_kube_pull_secrets *op);

/* Pure parts (fuzzed): merges one Secret object into registries (a JSON
 * object registry -> {"auth": ...}); -EINVAL naming `what` on bad data. */
int caa_kube_auths_merge_secret(json_t *registries, const json_t *secret, const char *what, caa_error **err);
/* {"auths": registries} as compact JSON with sorted keys; NULL when empty. */
char *caa_kube_auths_to_json(const json_t *registries, size_t *ret_len);
/* Wipes and frees a string holding credentials. NULL-safe. */
void caa_kube_secret_free(char *s);
