/* The secure comms fields of apf.json (upstream's forwarder.Config names):
 *
 *   sc            bool    secure comms on (NoTrustee: keys in this file)
 *   sc-pp-prv     base64  the pod VM's SSH host private key (secret)
 *   sc-wn-pub     base64  the worker's SSH public key (authorized_keys line)
 *   sc-inbounds   string  pod VM inbound tags (agent-protocol/securecomms/sc-tags.h)
 *   sc-outbounds  string  pod VM outbound tags
 *
 * Every field is left out when empty, as upstream's omitempty. The bytes
 * fields are standard base64 with padding (Go's encoding of []byte); any
 * bytes are carried (the key parser judges them). The
 * tags are carried as text here; their grammar is checked by whoever uses
 * them, which keeps this library free of the tunnel code. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

#define CAA_APF_SC_KEY_MAX_SIZE (16 * 1024)

typedef struct caa_apf_securecomms {
    bool enabled;
    uint8_t *pp_private_key; /* NUL-terminated, secret: wiped by _done */
    size_t pp_private_key_len;
    uint8_t *wn_public_key; /* NUL-terminated */
    size_t wn_public_key_len;
    char *inbounds;
    char *outbounds;
} caa_apf_securecomms;

/* Wipes the private key, frees, zeroes. */
void caa_apf_securecomms_done(caa_apf_securecomms *sc);
/* Adds the non-empty fields to root. */
int caa_apf_securecomms_to_json(const caa_apf_securecomms *sc, json_t *root, caa_error **err);
/* Reads the fields from root into *ret (zeroed first; left empty on failure). */
int caa_apf_securecomms_from_json(const json_t *root, caa_apf_securecomms *ret, caa_error **err);
