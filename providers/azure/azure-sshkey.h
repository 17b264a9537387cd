/* SSH public keys for the pod VM admin user.
 *
 * Azure requires a key (or a password) for a Linux VM even though nothing
 * logs in to a pod VM. Upstream generates an RSA-4096 key per VM and throws
 * the private half away; we generate ed25519 by default (microseconds instead
 * of seconds of CPU per VM; Azure accepts ED25519 keys for Linux VMs) and
 * RSA-4096 on request. Keys are written in OpenSSH public-key format. */
#pragma once

#include "azure-config.h"
#include "error.h"

/* Checks one authorized_keys line ("<type> <base64> [comment]", no options)
 * and returns it trimmed: known type, base64 blob whose first string is that
 * type, RSA modulus of at least 2048 bits. */
int az_ssh_pubkey_check(const char *text, char **ret_line, caa_error **err);
/* Reads -ssh-key-path: first non-empty, non-comment line, checked as above. */
int az_ssh_pubkey_read(const char *path, char **ret_line, caa_error **err);
/* Upstream's ConfigVerifier rule: the key file has mode 0600. */
int az_ssh_key_file_mode_check(const char *path, caa_error **err);
/* A fresh key pair; returns the public key line, discards the private key.
 * RSA-4096 takes seconds of CPU: call it off the loop thread. */
int az_ssh_keygen(az_key_type type, char **ret_line, caa_error **err);
