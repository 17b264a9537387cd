/* Where the Kubernetes API server is and how to authenticate, found as
 * client-go does: in-cluster (KUBERNETES_SERVICE_HOST/_PORT and the service
 * account files), else a kubeconfig ($KUBECONFIG or -kubeconfig; the
 * current context's cluster and user).
 *
 * Supported kubeconfig fields: server, certificate-authority(-data),
 * insecure-skip-tls-verify, client-certificate(-data), client-key(-data),
 * token, tokenFile, and the context's namespace. exec and auth-provider
 * plugins are refused with a clear error. Relative paths are relative to the
 * kubeconfig's directory. No field's value is ever logged. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define CAA_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define CAA_KUBECONFIG_MAX (1u << 20)
#define CAA_KUBE_PEM_MAX (256u << 10)
#define CAA_KUBE_TOKEN_MAX (64u << 10)

typedef struct caa_kube_config {
    char *server; /* scheme://host[:port][/prefix], no trailing slash */
    bool insecure_skip_verify;
    /* File names as written in the kubeconfig (made absolute), or NULL. */
    char *ca_file, *cert_file, *key_file;
    /* PEM text (from *-data, or read from the files by _resolve), or NULL. */
    char *ca_pem, *cert_pem, *key_pem;
    char *token;      /* static bearer token, or NULL */
    char *token_file; /* bearer token re-read when it rotates, or NULL */
    char *namespace;  /* default namespace ("default" when none given) */
    char *source;     /* "in-cluster" or the kubeconfig's path (for logs) */
} caa_kube_config;

/* Parses kubeconfig YAML (pure: reads no files). base_dir makes relative
 * file names absolute (NULL: keep them). -EINVAL with the field's name. */
int caa_kubeconfig_parse(const char *text, size_t len, const char *base_dir, caa_kube_config *ret,
                         caa_error **err);

/* The in-cluster configuration from host/port and the service account
 * directory (token, ca.crt, namespace); 1 (not in a cluster) when host or
 * port is empty or there is no token file, as client-go. */
int caa_kube_config_in_cluster(const char *host, const char *port, const char *sa_dir, caa_kube_config *ret,
                               caa_error **err);

/* Reads the certificate files named by ca_file/cert_file/key_file into the
 * *_pem fields and checks the combination (a client certificate needs its
 * key, http:// only to loopback). */
int caa_kube_config_resolve(caa_kube_config *cfg, caa_error **err);

/* What the daemon uses: in-cluster when KUBERNETES_SERVICE_HOST is set,
 * else kubeconfig_path (the -kubeconfig flag), else $KUBECONFIG.
 * Returns 1 (cfg untouched) when none is configured. */
int caa_kube_config_load(const char *kubeconfig_path, caa_kube_config *ret, caa_error **err);

void caa_kube_config_done(caa_kube_config *cfg);
