/* Kubernetes client configuration: kubeconfig YAML (libyaml's document
 * loader), in-cluster service account files, certificate files. */
#include "kube-config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "fs.h"
#include "http.h"
#include "kube-base64.h"
#include "parse.h"
#include "xalloc.h"

#define FREE_AND_NULL(p)                                                                                     \
    do {                                                                                                     \
        free(p);                                                                                             \
        (p) = NULL;                                                                                          \
    } while (0)

/* ---------------------------------------------------------------- YAML */

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
            memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

/* A scalar field as a new string: 0 found, 1 absent, -EINVAL when it is not
 * a scalar or holds a NUL byte. */
static int scalar_dup(yaml_document_t *doc, yaml_node_t *map, const char *key, const char *where, char **ret,
                      caa_error **err)
{
    yaml_node_t *n = map_get(doc, map, key);
    if (!n)
        return 1;
    if (n->type != YAML_SCALAR_NODE)
        return caa_error_set(err, -EINVAL, "kubeconfig: %s.%s is not a string", where, key);
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (memchr(v, '\0', len))
        return caa_error_set(err, -EINVAL, "kubeconfig: %s.%s contains a NUL byte", where, key);
    if (len == 0)
        return 1;
    free(*ret);
    *ret = xstrndup(v, len);
    return 0;
}

/* The entry of a named list (clusters, users, contexts) whose name matches:
 * its inner mapping under `inner`. */
static yaml_node_t *named_entry(yaml_document_t *doc, yaml_node_t *root, const char *list, const char *inner,
                                const char *name)
{
    yaml_node_t *seq = map_get(doc, root, list);
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *entry = yaml_document_get_node(doc, *it);
        yaml_node_t *n = map_get(doc, entry, "name");
        if (n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(name) &&
            memcmp(n->data.scalar.value, name, n->data.scalar.length) == 0) {
            yaml_node_t *in = map_get(doc, entry, inner);
            return in && in->type == YAML_MAPPING_NODE ? in : NULL;
        }
    }
    return NULL;
}

static int absolute_path(const char *base_dir, char **path)
{
    if (!*path || (*path)[0] == '/' || !base_dir)
        return 0;
    char *abs = xasprintf("%s/%s", base_dir, *path);
    free(*path);
    *path = abs;
    return 0;
}

/* A *-data field: base64 PEM, decoded into *ret. */
static int data_field(yaml_document_t *doc, yaml_node_t *map, const char *key, const char *where, char **ret,
                      caa_error **err)
{
    _cleanup_free_ char *b64 = NULL;
    int r = scalar_dup(doc, map, key, where, &b64, err);
    if (r != 0)
        return r;
    char *pem;
    size_t len;
    if (caa_kube_base64_decode(b64, strlen(b64), &pem, &len, err) < 0)
        return caa_error_prefix(err, "kubeconfig: %s.%s", where, key);
    if (strlen(pem) != len) {
        free(pem);
        return caa_error_set(err, -EINVAL, "kubeconfig: %s.%s contains a NUL byte", where, key);
    }
    free(*ret);
    *ret = pem;
    return 0;
}

static int parse_document(yaml_document_t *doc, const char *base_dir, caa_kube_config *cfg, caa_error **err)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        return caa_error_set(err, -EINVAL, "kubeconfig: not a mapping");
    _cleanup_free_ char *ctx_name = NULL;
    int r = scalar_dup(doc, root, "current-context", "kubeconfig", &ctx_name, err);
    if (r < 0)
        return r;
    if (r == 1)
        return caa_error_set(err, -EINVAL, "kubeconfig: no current-context");
    yaml_node_t *ctx = named_entry(doc, root, "contexts", "context", ctx_name);
    if (!ctx)
        return caa_error_set(err, -EINVAL, "kubeconfig: the current context is not defined");
    _cleanup_free_ char *cluster_name = NULL, *user_name = NULL;
    if ((r = scalar_dup(doc, ctx, "cluster", "context", &cluster_name, err)) < 0)
        return r;
    if (r == 1)
        return caa_error_set(err, -EINVAL, "kubeconfig: the current context names no cluster");
    if ((r = scalar_dup(doc, ctx, "user", "context", &user_name, err)) < 0)
        return r;
    if ((r = scalar_dup(doc, ctx, "namespace", "context", &cfg->namespace, err)) < 0)
        return r;

    yaml_node_t *cluster = named_entry(doc, root, "clusters", "cluster", cluster_name);
    if (!cluster)
        return caa_error_set(err, -EINVAL, "kubeconfig: the context's cluster is not defined");
    if ((r = scalar_dup(doc, cluster, "server", "cluster", &cfg->server, err)) < 0)
        return r;
    if (r == 1)
        return caa_error_set(err, -EINVAL, "kubeconfig: cluster.server is missing");
    if ((r = scalar_dup(doc, cluster, "certificate-authority", "cluster", &cfg->ca_file, err)) < 0 ||
        (r = data_field(doc, cluster, "certificate-authority-data", "cluster", &cfg->ca_pem, err)) < 0)
        return r;
    _cleanup_free_ char *insecure = NULL;
    if ((r = scalar_dup(doc, cluster, "insecure-skip-tls-verify", "cluster", &insecure, err)) < 0)
        return r;
    if (insecure && caa_parse_bool(insecure, &cfg->insecure_skip_verify) < 0)
        return caa_error_set(err, -EINVAL, "kubeconfig: cluster.insecure-skip-tls-verify is not a boolean");

    yaml_node_t *user = user_name ? named_entry(doc, root, "users", "user", user_name) : NULL;
    if (user_name && !user)
        return caa_error_set(err, -EINVAL, "kubeconfig: the context's user is not defined");
    if (user) {
        if (map_get(doc, user, "exec") || map_get(doc, user, "auth-provider"))
            return caa_error_set(err, -ENOTSUP,
                                 "kubeconfig: exec and auth-provider credential plugins are not supported");
        if ((r = scalar_dup(doc, user, "client-certificate", "user", &cfg->cert_file, err)) < 0 ||
            (r = data_field(doc, user, "client-certificate-data", "user", &cfg->cert_pem, err)) < 0 ||
            (r = scalar_dup(doc, user, "client-key", "user", &cfg->key_file, err)) < 0 ||
            (r = data_field(doc, user, "client-key-data", "user", &cfg->key_pem, err)) < 0 ||
            (r = scalar_dup(doc, user, "token", "user", &cfg->token, err)) < 0 ||
            (r = scalar_dup(doc, user, "tokenFile", "user", &cfg->token_file, err)) < 0)
            return r;
        if (map_get(doc, user, "username") || map_get(doc, user, "password"))
            return caa_error_set(err, -ENOTSUP, "kubeconfig: basic authentication is not supported");
    }
    /* As client-go: inline data wins over the file. */
    if (cfg->ca_pem)
        FREE_AND_NULL(cfg->ca_file);
    if (cfg->cert_pem)
        FREE_AND_NULL(cfg->cert_file);
    if (cfg->key_pem)
        FREE_AND_NULL(cfg->key_file);
    if (cfg->token)
        FREE_AND_NULL(cfg->token_file);
    absolute_path(base_dir, &cfg->ca_file);
    absolute_path(base_dir, &cfg->cert_file);
    absolute_path(base_dir, &cfg->key_file);
    absolute_path(base_dir, &cfg->token_file);
    return 0;
}

int caa_kubeconfig_parse(const char *text, size_t len, const char *base_dir, caa_kube_config *ret,
                         caa_error **err)
{
    if (len > CAA_KUBECONFIG_MAX)
        return caa_error_set(err, -EFBIG, "kubeconfig: larger than %u bytes", CAA_KUBECONFIG_MAX);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return caa_error_set(err, -ENOMEM, "kubeconfig: cannot initialise the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) {
        int r = caa_error_set(err, -EINVAL, "kubeconfig: YAML error at line %zu: %s",
                              parser.problem_mark.line + 1, parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        return r;
    }
    caa_kube_config cfg = {0};
    int r = parse_document(&doc, base_dir, &cfg, err);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (r < 0) {
        caa_kube_config_done(&cfg);
        return r;
    }
    if (!cfg.namespace)
        cfg.namespace = xstrdup("default");
    /* No trailing slash: paths are appended. */
    size_t n = strlen(cfg.server);
    while (n > 0 && cfg.server[n - 1] == '/')
        cfg.server[--n] = '\0';
    *ret = cfg;
    return 0;
}

/* ---------------------------------------------------------------- files */

static int read_pem(const char *path, const char *what, char **ret, caa_error **err)
{
    size_t len;
    char *text;
    int r = caa_read_file(path, CAA_KUBE_PEM_MAX, 0, &text, &len, err);
    if (r < 0)
        return caa_error_prefix(err, "reading the %s", what);
    if (strlen(text) != len || !strstr(text, "-----BEGIN ")) {
        free(text);
        return caa_error_set(err, -EINVAL, "the %s %s is not PEM", what, path);
    }
    free(*ret);
    *ret = text;
    return 0;
}

int caa_kube_config_resolve(caa_kube_config *cfg, caa_error **err)
{
    int r;
    if (cfg->ca_file && !cfg->ca_pem &&
        (r = read_pem(cfg->ca_file, "certificate authority", &cfg->ca_pem, err)) < 0)
        return r;
    if (cfg->cert_file && !cfg->cert_pem &&
        (r = read_pem(cfg->cert_file, "client certificate", &cfg->cert_pem, err)) < 0)
        return r;
    if (cfg->key_file && !cfg->key_pem && (r = read_pem(cfg->key_file, "client key", &cfg->key_pem, err)) < 0)
        return r;
    if (!cfg->cert_pem != !cfg->key_pem)
        return caa_error_set(err, -EINVAL,
                             "kubeconfig: a client certificate needs its key and the key its certificate");
    if (strncmp(cfg->server, "https://", 8) != 0 && strncmp(cfg->server, "http://", 7) != 0)
        return caa_error_set(err, -EINVAL,
                             "the API server address must start with https:// (or http:// for loopback)");
    return caa_http_url_check(cfg->server, 0, err);
}

int caa_kube_config_in_cluster(const char *host, const char *port, const char *sa_dir, caa_kube_config *ret,
                               caa_error **err)
{
    if (!host || !*host || !port || !*port)
        return 1;
    /* As client-go's InClusterConfig: without the token file this is not a
     * pod with a service account (automountServiceAccountToken: false). */
    _cleanup_free_ char *token_path = xasprintf("%s/token", sa_dir);
    if (access(token_path, F_OK) < 0)
        return 1;
    int64_t port_num;
    if (caa_parse_int64(port, 1, 65535, &port_num) < 0)
        return caa_error_set(err, -EINVAL, "KUBERNETES_SERVICE_PORT is not a port number");
    caa_kube_config cfg = {0};
    /* IPv6 service addresses need brackets in a URL. */
    cfg.server = strchr(host, ':') ? xasprintf("https://[%s]:%" PRId64, host, port_num)
                                   : xasprintf("https://%s:%" PRId64, host, port_num);
    cfg.token_file = xasprintf("%s/token", sa_dir);
    cfg.ca_file = xasprintf("%s/ca.crt", sa_dir);
    cfg.source = xstrdup("in-cluster");
    _cleanup_free_ char *ns_path = xasprintf("%s/namespace", sa_dir);
    char *ns = NULL;
    size_t ns_len;
    if (caa_read_file(ns_path, 256, 0, &ns, &ns_len, NULL) == 0) {
        ns[strcspn(ns, " \t\r\n")] = '\0';
        if (*ns)
            cfg.namespace = ns;
        else
            free(ns);
    }
    if (!cfg.namespace)
        cfg.namespace = xstrdup("default");
    *ret = cfg;
    return 0;
}

static int load_kubeconfig_file(const char *path, caa_kube_config *cfg, caa_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = caa_read_file(path, CAA_KUBECONFIG_MAX, 0, &text, &len, err);
    if (r < 0)
        return caa_error_prefix(err, "reading the kubeconfig");
    _cleanup_free_ char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    if ((r = caa_kubeconfig_parse(text, len, slash ? dir : ".", cfg, err)) < 0)
        return caa_error_prefix(err, "%s", path);
    cfg->source = xstrdup(path);
    return 0;
}

int caa_kube_config_load(const char *kubeconfig_path, caa_kube_config *ret, caa_error **err)
{
    caa_kube_config cfg = {0};
    int r;
    if (kubeconfig_path && *kubeconfig_path) {
        r = load_kubeconfig_file(kubeconfig_path, &cfg, err);
    } else {
        r = caa_kube_config_in_cluster(getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT"),
                                       CAA_KUBE_SA_DIR, &cfg, err);
        if (r == 1) {
            const char *env = getenv("KUBECONFIG");
            /* Of a list, client-go merges; the daemon uses the first file. */
            _cleanup_free_ char *first = env && *env ? xstrndup(env, strcspn(env, ":")) : NULL;
            if (!first || !*first)
                return 1;
            r = load_kubeconfig_file(first, &cfg, err);
        }
    }
    if (r >= 0)
        r = caa_kube_config_resolve(&cfg, err);
    if (r < 0) {
        caa_kube_config_done(&cfg);
        return r;
    }
    *ret = cfg;
    return 0;
}

static void free_secret(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

void caa_kube_config_done(caa_kube_config *cfg)
{
    free(cfg->server);
    free(cfg->ca_file);
    free(cfg->cert_file);
    free(cfg->key_file);
    free(cfg->ca_pem);
    free(cfg->cert_pem);
    free_secret(cfg->key_pem);
    free_secret(cfg->token);
    free(cfg->token_file);
    free(cfg->namespace);
    free(cfg->source);
    *cfg = (caa_kube_config){0};
}
