/* Fuzz target securecomms-apf-fields: the apf.json secure comms fields alone
 * (the input is the JSON object); accepted fields survive build -> parse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apf-securecomms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return 0;
    }
    caa_apf_securecomms sc;
    caa_error *err = NULL;
    if (caa_apf_securecomms_from_json(root, &sc, &err) < 0) {
        if (!err || sc.pp_private_key || sc.inbounds)
            abort();
        caa_error_free(err);
        json_decref(root);
        return 0;
    }
    json_t *out = json_object();
    if (caa_apf_securecomms_to_json(&sc, out, NULL) < 0)
        abort();
    caa_apf_securecomms back;
    if (caa_apf_securecomms_from_json(out, &back, NULL) < 0)
        abort();
    if (back.enabled != sc.enabled || back.pp_private_key_len != sc.pp_private_key_len ||
        back.wn_public_key_len != sc.wn_public_key_len ||
        (sc.pp_private_key_len && memcmp(back.pp_private_key, sc.pp_private_key, sc.pp_private_key_len)) ||
        (sc.wn_public_key_len && memcmp(back.wn_public_key, sc.wn_public_key, sc.wn_public_key_len)))
        abort();
    caa_apf_securecomms_done(&back);
    caa_apf_securecomms_done(&sc);
    json_decref(out);
    json_decref(root);
    return 0;
}
