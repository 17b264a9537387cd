/* Ed25519 SSH keys for secure comms, in OpenSSH's own formats so that both
 * libssh2 (1.10 reads "openssh-key-v1" ed25519 keys) and OpenSSH's sshd/ssh
 * use them as they are:
 *  - private: "-----BEGIN OPENSSH PRIVATE KEY-----" (unencrypted);
 *  - public: one authorized_keys line "ssh-ed25519 <base64 blob> <comment>\n".
 * Buffers holding private keys are wiped when freed (caa_sc_key_free). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CAA_SC_KEY_MAX_TEXT 4096
#define CAA_SC_ED25519_BLOB_LEN 51 /* string "ssh-ed25519" + string pub[32] */

typedef struct caa_sc_key {
    char *private_pem; /* secret */
    char *public_line; /* "ssh-ed25519 AAAA... comment\n" */
} caa_sc_key;

/* A fresh key pair; comment is put into both (letters, digits, "-_.@"). */
int caa_sc_key_generate(const char *comment, caa_sc_key *ret, caa_error **err);
/* Reads back a private key written by caa_sc_key_generate (or ssh-keygen
 * -t ed25519 without a passphrase): checks its structure, that the public
 * half matches the private one, and rebuilds the public line. */
int caa_sc_key_from_private(const char *pem, size_t len, caa_sc_key *ret, caa_error **err);
void caa_sc_key_done(caa_sc_key *k);

/* The wire blob (RFC 4253 6.6) of an "ssh-ed25519" public key line.
 * Other key types, bad base64 or a malformed blob are -EINVAL. */
int caa_sc_public_line_blob(const char *line, size_t len, uint8_t blob[CAA_SC_ED25519_BLOB_LEN],
                            caa_error **err);
/* "SHA256:<base64 without padding>", as ssh-keygen -l prints it. */
char *caa_sc_blob_fingerprint(const uint8_t *blob, size_t len);
