/* apf.json secure comms fields: base64 keys and tag strings. */
#include "apf-securecomms.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "codec.h"
#include "xalloc.h"

void caa_apf_securecomms_done(caa_apf_securecomms *sc)
{
    if (!sc)
        return;
    if (sc->pp_private_key)
        OPENSSL_cleanse(sc->pp_private_key, sc->pp_private_key_len);
    free(sc->pp_private_key);
    free(sc->wn_public_key);
    free(sc->inbounds);
    free(sc->outbounds);
    memset(sc, 0, sizeof(*sc));
}

static int set_new(json_t *root, const char *key, json_t *value, caa_error **err)
{
    if (!value)
        return caa_error_set(err, -EINVAL, "apf.json: field '%s' is not valid UTF-8", key);
    if (json_object_set_new(root, key, value) < 0)
        caa_oom();
    return 0;
}

static int set_bytes(json_t *root, const char *key, const uint8_t *data, size_t len, caa_error **err)
{
    if (!data || !len)
        return 0;
    char *b64 = caa_bootdata_base64_encode(data, len);
    int r = set_new(root, key, json_string(b64), err);
    OPENSSL_cleanse(b64, strlen(b64));
    free(b64);
    return r;
}

int caa_apf_securecomms_to_json(const caa_apf_securecomms *sc, json_t *root, caa_error **err)
{
    int r = 0;
    if (sc->enabled)
        r = set_new(root, "sc", json_true(), err);
    if (r == 0)
        r = set_bytes(root, "sc-pp-prv", sc->pp_private_key, sc->pp_private_key_len, err);
    if (r == 0)
        r = set_bytes(root, "sc-wn-pub", sc->wn_public_key, sc->wn_public_key_len, err);
    if (r == 0 && sc->inbounds && *sc->inbounds)
        r = set_new(root, "sc-inbounds", json_string(sc->inbounds), err);
    if (r == 0 && sc->outbounds && *sc->outbounds)
        r = set_new(root, "sc-outbounds", json_string(sc->outbounds), err);
    return r;
}

static int get_bytes(const json_t *root, const char *key, uint8_t **ret, size_t *ret_len, caa_error **err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return caa_error_set(err, -EINVAL, "apf.json: field '%s' must be a base64 string", key);
    void *data = NULL;
    size_t len = 0;
    int r = caa_bootdata_base64_decode(json_string_value(v), json_string_length(v), CAA_APF_SC_KEY_MAX_SIZE,
                                       &data, &len, err);
    if (r < 0)
        return caa_error_prefix(err, "apf.json: field '%s'", key);
    *ret = data;
    *ret_len = len;
    return 0;
}

static int get_text(const json_t *root, const char *key, char **ret, caa_error **err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return caa_error_set(err, -EINVAL, "apf.json: field '%s' must be a string without NUL characters",
                             key);
    *ret = xstrdup(json_string_value(v));
    return 0;
}

int caa_apf_securecomms_from_json(const json_t *root, caa_apf_securecomms *ret, caa_error **err)
{
    caa_apf_securecomms sc = {0};
    memset(ret, 0, sizeof(*ret));
    json_t *on = json_object_get(root, "sc");
    if (on && !json_is_null(on) && !json_is_boolean(on))
        return caa_error_set(err, -EINVAL, "apf.json: field 'sc' must be a boolean");
    sc.enabled = on && json_is_true(on);
    int r = get_bytes(root, "sc-pp-prv", &sc.pp_private_key, &sc.pp_private_key_len, err);
    if (r == 0)
        r = get_bytes(root, "sc-wn-pub", &sc.wn_public_key, &sc.wn_public_key_len, err);
    if (r == 0)
        r = get_text(root, "sc-inbounds", &sc.inbounds, err);
    if (r == 0)
        r = get_text(root, "sc-outbounds", &sc.outbounds, err);
    if (r < 0) {
        caa_apf_securecomms_done(&sc);
        return r;
    }
    *ret = sc;
    return 0;
}
