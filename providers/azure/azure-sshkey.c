/* SSH public keys: checking authorized_keys lines, generating keys. */
#include "azure-sshkey.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "cleanup.h"
#include "fs.h"
#include "buf.h"
#include "xalloc.h"

#define KEY_FILE_MAX (64u << 10)

static const char *const key_types[] = {
    "ssh-rsa",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    NULL,
};

/* An SSH wire "string" at *p: 4-byte big-endian length, then the bytes. */
static bool read_string(const unsigned char **p, size_t *left, const unsigned char **ret, size_t *ret_len)
{
    if (*left < 4)
        return false;
    uint32_t n = ((uint32_t)(*p)[0] << 24) | ((uint32_t)(*p)[1] << 16) | ((uint32_t)(*p)[2] << 8) | (*p)[3];
    if (n > *left - 4)
        return false;
    *ret = *p + 4;
    *ret_len = n;
    *p += 4 + (size_t)n;
    *left -= 4 + (size_t)n;
    return true;
}

static int check_blob(const char *type, const unsigned char *blob, size_t len, caa_error **err)
{
    const unsigned char *s;
    size_t n;
    if (!read_string(&blob, &len, &s, &n) || n != strlen(type) || memcmp(s, type, n) != 0)
        return caa_error_set(err, -EINVAL, "SSH public key: the key data does not match the type %s", type);
    if (strcmp(type, "ssh-rsa") == 0) {
        const unsigned char *e, *m;
        size_t en, mn;
        if (!read_string(&blob, &len, &e, &en) || !read_string(&blob, &len, &m, &mn))
            return caa_error_set(err, -EINVAL, "SSH public key: truncated RSA key");
        while (mn > 0 && *m == 0) {
            m++;
            mn--;
        }
        if (mn * 8 < 2048 - 7)
            return caa_error_set(err, -EINVAL, "SSH public key: RSA keys need at least 2048 bits (Azure)");
    } else if (strcmp(type, "ssh-ed25519") == 0) {
        const unsigned char *k;
        size_t kn;
        if (!read_string(&blob, &len, &k, &kn) || kn != 32)
            return caa_error_set(err, -EINVAL, "SSH public key: bad ed25519 key");
    }
    return 0;
}

int az_ssh_pubkey_check(const char *text, char **ret_line, caa_error **err)
{
    while (*text == ' ' || *text == '\t')
        text++;
    size_t n = strcspn(text, "\r\n");
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    _cleanup_free_ char *line = xstrndup(text, n);
    size_t tlen = strcspn(line, " \t");
    const char *type = NULL;
    for (size_t i = 0; key_types[i]; i++)
        if (strlen(key_types[i]) == tlen && strncmp(line, key_types[i], tlen) == 0)
            type = key_types[i];
    if (!type)
        return caa_error_set(
            err, -EINVAL,
            "SSH public key: not an authorized_keys line with a known key type (options are not "
            "accepted)");
    const char *b64 = line + tlen;
    while (*b64 == ' ' || *b64 == '\t')
        b64++;
    size_t blen = strcspn(b64, " \t");
    if (blen == 0 || blen % 4 != 0 || blen > 16384)
        return caa_error_set(err, -EINVAL, "SSH public key: missing or malformed base64 key data");
    for (size_t i = 0; i < blen; i++)
        if (!isalnum((unsigned char)b64[i]) && b64[i] != '+' && b64[i] != '/' && b64[i] != '=')
            return caa_error_set(err, -EINVAL, "SSH public key: key data is not base64");
    _cleanup_free_ unsigned char *blob = xmalloc(blen / 4 * 3 + 1);
    int dl = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)blen);
    if (dl < 0)
        return caa_error_set(err, -EINVAL, "SSH public key: key data is not base64");
    size_t pad = 0;
    while (pad < 2 && b64[blen - 1 - pad] == '=')
        pad++;
    int r = check_blob(type, blob, (size_t)dl - pad, err);
    if (r < 0)
        return r;
    *ret_line = TAKE_PTR(line);
    return 0;
}

int az_ssh_pubkey_read(const char *path, char **ret_line, caa_error **err)
{
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = caa_read_file(path, KEY_FILE_MAX, 0, &data, &len, err);
    if (r < 0)
        return caa_error_prefix(err, "-ssh-key-path");
    if (strlen(data) != len)
        return caa_error_set(err, -EINVAL, "-ssh-key-path %s: the file contains NUL bytes", path);
    for (const char *p = data; *p;) {
        const char *q = p;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q && *q != '\n' && *q != '\r' && *q != '#') {
            r = az_ssh_pubkey_check(q, ret_line, err);
            return r < 0 ? caa_error_prefix(err, "-ssh-key-path %s", path) : 0;
        }
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    return caa_error_set(err, -EINVAL, "-ssh-key-path %s: no public key in the file", path);
}

int az_ssh_key_file_mode_check(const char *path, caa_error **err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return caa_error_set_errno(err, -errno, "-ssh-key-path %s", path);
    if (!S_ISREG(st.st_mode))
        return caa_error_set(err, -EINVAL, "-ssh-key-path %s is not a regular file", path);
    if ((st.st_mode & 07777) != 0600)
        return caa_error_set(err, -EPERM, "-ssh-key-path %s has mode %04o, it must be 0600", path,
                             (unsigned)(st.st_mode & 07777));
    return 0;
}

/* ---- generation ---- */

static void blob_string(caa_buf *b, const void *p, size_t n)
{
    unsigned char hdr[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                            (unsigned char)n};
    caa_buf_append(b, hdr, 4);
    caa_buf_append(b, p, n);
}

/* SSH mpint: big-endian, a leading zero byte when the top bit is set. */
static void blob_mpint(caa_buf *b, const BIGNUM *bn)
{
    int n = BN_num_bytes(bn);
    _cleanup_free_ unsigned char *buf = xmalloc((size_t)n + 1);
    buf[0] = 0;
    BN_bn2bin(bn, buf + 1);
    size_t off = (n > 0 && (buf[1] & 0x80)) ? 0 : 1;
    blob_string(b, buf + off, (size_t)n + 1 - off);
}

static int ssl_error(caa_error **err, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return caa_error_set(err, -EIO, "%s: %s", what, *buf ? buf : "OpenSSL error");
}

CAA_DEFINE_CLEANUP(EVP_PKEY *, EVP_PKEY_free)
CAA_DEFINE_CLEANUP(BIGNUM *, BN_free)

int az_ssh_keygen(az_key_type type, char **ret_line, caa_error **err)
{
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
    caa_buf b = {0};
    const char *name;
    if (type == AZ_KEY_RSA4096) {
        name = "ssh-rsa";
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        if (!pkey)
            return ssl_error(err, "generating an RSA-4096 key");
        _cleanup_(BN_freep) BIGNUM *n = NULL;
        _cleanup_(BN_freep) BIGNUM *e = NULL;
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e))
            return ssl_error(err, "reading the RSA public key");
        blob_string(&b, name, strlen(name));
        blob_mpint(&b, e);
        blob_mpint(&b, n);
    } else {
        name = "ssh-ed25519";
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!pkey)
            return ssl_error(err, "generating an ed25519 key");
        unsigned char pub[32];
        size_t publen = sizeof(pub);
        if (!EVP_PKEY_get_raw_public_key(pkey, pub, &publen) || publen != 32)
            return ssl_error(err, "reading the ed25519 public key");
        blob_string(&b, name, strlen(name));
        blob_string(&b, pub, publen);
    }
    size_t b64len = 4 * ((b.len + 2) / 3);
    size_t nlen = strlen(name);
    static const char comment[] = " cloud-api-adaptor";
    char *line = xmalloc(nlen + 1 + b64len + sizeof(comment));
    memcpy(line, name, nlen);
    line[nlen] = ' ';
    EVP_EncodeBlock((unsigned char *)line + nlen + 1, (const unsigned char *)b.data, (int)b.len);
    memcpy(line + nlen + 1 + b64len, comment, sizeof(comment));
    caa_buf_done(&b);
    *ret_line = line;
    return 0;
}
