#include "initdata.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "codec.h"
#include "xalloc.h"

/* Measured when a VM receives no initdata. Changing a single byte changes the
 * digest the VM reports, so this text is fixed (docs/bootdata.md). */
const char caa_initdata_default_toml[] = "algorithm = \"sha256\"\n"
                                         "version = \"0.1.0\"\n"
                                         "\n"
                                         "[data]\n"
                                         "\"aa.toml\" = ''\n";

static const char *const alg_names[] = {
    [CAA_INITDATA_SHA256] = "sha256",
    [CAA_INITDATA_SHA384] = "sha384",
    [CAA_INITDATA_SHA512] = "sha512",
};

void caa_initdata_free(caa_initdata *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_data; i++) {
        free(d->data[i].name);
        free(d->data[i].value);
    }
    free(d->data);
    free(d->version);
    free(d);
}

const caa_initdata_entry *caa_initdata_find(const caa_initdata *d, const char *name)
{
    for (size_t i = 0; i < d->n_data; i++)
        if (strcmp(d->data[i].name, name) == 0)
            return &d->data[i];
    return NULL;
}

const char *caa_initdata_alg_name(caa_initdata_alg alg)
{
    return (size_t)alg < CAA_ARRAY_SIZE(alg_names) ? alg_names[alg] : "unknown";
}

int caa_initdata_alg_from_name(const char *name, caa_initdata_alg *ret)
{
    for (size_t i = 0; i < CAA_ARRAY_SIZE(alg_names); i++)
        if (strcmp(name, alg_names[i]) == 0) {
            *ret = (caa_initdata_alg)i;
            return 0;
        }
    return -EINVAL;
}

char *caa_initdata_digest(caa_initdata_alg alg, const void *data, size_t len)
{
    const EVP_MD *md = alg == CAA_INITDATA_SHA512   ? EVP_sha512()
                       : alg == CAA_INITDATA_SHA384 ? EVP_sha384()
                                                    : EVP_sha256();
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    /* Failure here means a broken libcrypto; treat it like OOM. */
    if (!EVP_Digest(data, len, hash, &n, md, NULL))
        caa_oom();
    char *hex = xmalloc(2 * n + 1);
    for (unsigned int i = 0; i < n; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[hash[i] >> 4];
        hex[2 * i + 1] = digits[hash[i] & 0xf];
    }
    hex[2 * n] = '\0';
    return hex;
}

char *caa_initdata_encode(const void *toml, size_t len, caa_error **err)
{
    _cleanup_free_ void *gz = NULL;
    size_t gz_len = 0;
    if (caa_bootdata_gzip_compress(toml, len, &gz, &gz_len, err) < 0) {
        caa_error_prefix(err, "initdata");
        return NULL;
    }
    return caa_bootdata_base64_encode(gz, gz_len);
}

int caa_initdata_decode(const char *text, size_t len, char **ret_toml, size_t *ret_len, caa_error **err)
{
    _cleanup_free_ void *gz = NULL;
    size_t gz_len = 0;
    /* Compressed data never exceeds the text; the real bound is on the output. */
    int r = caa_bootdata_base64_decode(text, len, len, &gz, &gz_len, err);
    if (r < 0)
        return caa_error_prefix(err, "initdata");
    void *out = NULL;
    size_t out_len = 0;
    r = caa_bootdata_gzip_decompress(gz, gz_len, CAA_INITDATA_MAX_SIZE, &out, &out_len, err);
    if (r < 0)
        return caa_error_prefix(err, "initdata");
    *ret_toml = out;
    if (ret_len)
        *ret_len = out_len;
    return 0;
}

int caa_initdata_decode_parse(const char *text, size_t len, caa_initdata **ret, caa_error **err)
{
    _cleanup_free_ char *toml = NULL;
    size_t toml_len = 0;
    int r = caa_initdata_decode(text, len, &toml, &toml_len, err);
    if (r < 0)
        return r;
    caa_initdata *d = NULL;
    r = caa_initdata_parse(toml, toml_len, &d, err);
    if (r < 0)
        return r;
    if (ret)
        *ret = d;
    else
        caa_initdata_free(d);
    return 0;
}
