/* Fuzzes what the API server sends back: Status errors for any HTTP code
 * (the first byte picks it) and image-pull Secret objects through the merge
 * into auth.json. Never crash or leak; error text stays printable; an
 * accepted merge serialises to JSON that parses back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kube-pull-secrets.h"
#include "kube-status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long codes[] = {400, 401, 403, 404, 409, 410, 422, 429, 500, 502, 503, 504};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    long code = codes[data[0] % (sizeof(codes) / sizeof(codes[0]))];
    const char *body = (const char *)data + 1;
    caa_error *e = caa_kube_status_error(code, body, size - 1, "GET", "/api/v1/x");
    for (const char *p = e->msg; *p; p++)
        if ((unsigned char)*p < 0x20)
            abort();
    caa_error_free(e);

    json_t *secret = json_loadb(body, size - 1, 0, NULL);
    if (!secret)
        return 0;
    json_t *registries = json_object();
    caa_error *err = NULL;
    if (caa_kube_auths_merge_secret(registries, secret, "ns/fuzz", &err) == 0) {
        size_t len = 0;
        char *text = caa_kube_auths_to_json(registries, &len);
        if (text) {
            json_t *back = json_loadb(text, len, 0, NULL);
            if (!json_is_object(json_object_get(back, "auths")))
                abort();
            json_decref(back);
            caa_kube_secret_free(text);
        }
    } else {
        caa_error_free(err);
    }
    json_decref(registries);
    json_decref(secret);
    return 0;
}
