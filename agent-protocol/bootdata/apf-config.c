#include "apf-config.h"

#include <errno.h>
#include <string.h>

#include "strv.h"
#include "strcheck.h"
#include "xalloc.h"

void caa_apf_config_done(caa_apf_config *c)
{
    if (!c)
        return;
    json_decref(c->pod_network);
    free(c->pod_namespace);
    free(c->pod_name);
    free(c->tls_server_key);
    free(c->tls_server_cert);
    free(c->tls_client_ca);
    free(c->tls_min_version);
    caa_strv_free(c->tls_cipher_suites);
    caa_apf_securecomms_done(&c->sc);
    memset(c, 0, sizeof(*c));
}

static void set_string(json_t *obj, const char *key, const char *value)
{
    if (json_object_set_new(obj, key, json_string(value ? value : "")) < 0)
        caa_oom();
}

json_t *caa_apf_config_to_json(const caa_apf_config *c, caa_error **err)
{
    if (c->pod_network && !json_is_object(c->pod_network)) {
        caa_error_set(err, -EINVAL, "apf.json: pod-network must be a JSON object");
        return NULL;
    }
    const char *strings[] = {c->pod_namespace,   c->pod_name,      c->tls_server_key,
                             c->tls_server_cert, c->tls_client_ca, c->tls_min_version};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(strings); i++) {
        json_t *probe = strings[i] ? json_string(strings[i]) : json_null();
        if (!probe) {
            caa_error_set(err, -EINVAL, "apf.json: a string field is not valid UTF-8");
            return NULL;
        }
        json_decref(probe);
    }
    json_auto_t *root = json_object();
    if (!root)
        caa_oom();
    /* Insertion order is the output order (JSON_PRESERVE_ORDER is the default since jansson 2.8). */
    if (json_object_set(root, "pod-network", c->pod_network ? c->pod_network : json_null()) < 0)
        caa_oom();
    set_string(root, "pod-namespace", c->pod_namespace);
    set_string(root, "pod-name", c->pod_name);
    /* Upstream's forwarder.Config marks every TLS field omitempty: an
     * empty one is left out, as upstream writes apf.json. */
    const struct {
        const char *key, *value;
    } tls[] = {
        {"tls-server-key", c->tls_server_key},
        {"tls-server-cert", c->tls_server_cert},
        {"tls-client-ca", c->tls_client_ca},
        {"tls-min-version", c->tls_min_version},
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(tls); i++)
        if (tls[i].value && *tls[i].value)
            set_string(root, tls[i].key, tls[i].value);
    if (c->tls_cipher_suites && *c->tls_cipher_suites) {
        json_t *suites = json_array();
        if (!suites || json_object_set_new(root, "tls-cipher-suites", suites) < 0)
            caa_oom();
        for (char **s = c->tls_cipher_suites; *s; s++) {
            json_t *item = json_string(*s);
            if (!item) {
                caa_error_set(err, -EINVAL, "apf.json: a cipher suite name is not valid UTF-8");
                return NULL;
            }
            if (json_array_append_new(suites, item) < 0)
                caa_oom();
        }
    }
    if (caa_apf_securecomms_to_json(&c->sc, root, err) < 0)
        return NULL;
    return json_incref(root);
}

char *caa_apf_config_to_string(const caa_apf_config *c, caa_error **err)
{
    json_auto_t *root = caa_apf_config_to_json(c, err);
    if (!root)
        return NULL;
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        caa_oom();
    return s;
}

/* Reads an optional string field; null and absent leave *ret NULL. */
static int get_string(const json_t *root, const char *key, char **ret, caa_error **err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return caa_error_set(err, -EINVAL, "apf.json: field '%s' must be a string", key);
    if (caa_str_from_bytes(key, json_string_value(v), json_string_length(v), ret, err) < 0)
        return caa_error_prefix(err, "apf.json");
    return 0;
}

int caa_apf_config_from_json(const json_t *root, caa_apf_config *ret, caa_error **err)
{
    caa_apf_config c = {0};
    int r = 0;
    if (!json_is_object(root))
        return caa_error_set(err, -EINVAL, "apf.json: top level must be a JSON object");

    json_t *net = json_object_get(root, "pod-network");
    if (net && !json_is_null(net)) {
        if (!json_is_object(net))
            return caa_error_set(err, -EINVAL, "apf.json: field 'pod-network' must be an object");
        c.pod_network = json_incref(net);
    }
    struct {
        const char *key;
        char **dst;
    } fields[] = {
        {"pod-namespace", &c.pod_namespace},   {"pod-name", &c.pod_name},
        {"tls-server-key", &c.tls_server_key}, {"tls-server-cert", &c.tls_server_cert},
        {"tls-client-ca", &c.tls_client_ca},   {"tls-min-version", &c.tls_min_version},
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(fields) && r == 0; i++)
        r = get_string(root, fields[i].key, fields[i].dst, err);

    json_t *suites = json_object_get(root, "tls-cipher-suites");
    if (r == 0 && suites && !json_is_null(suites)) {
        if (!json_is_array(suites)) {
            r = caa_error_set(err, -EINVAL,
                              "apf.json: field 'tls-cipher-suites' must be an array of strings");
        } else {
            size_t i;
            json_t *item;
            c.tls_cipher_suites = xnew0(char *, 1);
            json_array_foreach(suites, i, item)
            {
                if (!json_is_string(item)) {
                    r = caa_error_set(err, -EINVAL,
                                      "apf.json: field 'tls-cipher-suites' must be an array of strings");
                    break;
                }
                if ((r = caa_str_check("apf.json: tls-cipher-suites", json_string_value(item),
                                       json_string_length(item), err)) < 0)
                    break;
                caa_strv_push(&c.tls_cipher_suites, json_string_value(item));
            }
        }
    }
    if (r == 0)
        r = caa_apf_securecomms_from_json(root, &c.sc, err);
    if (r < 0) {
        caa_apf_config_done(&c);
        return r;
    }
    *ret = c;
    return 0;
}

int caa_apf_config_parse(const char *text, size_t len, caa_apf_config *ret, caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    if (len > CAA_APF_CONFIG_MAX_SIZE)
        return caa_error_set(err, -EFBIG, "apf.json: %zu bytes, more than the %d allowed", len,
                             CAA_APF_CONFIG_MAX_SIZE);
    json_error_t jerr;
    json_auto_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return caa_error_set(err, -EINVAL, "apf.json: invalid JSON at line %d: %s", jerr.line, jerr.text);
    return caa_apf_config_from_json(root, ret, err);
}
