#include "pod-volumes.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "xalloc.h"

#define INSTANCE_PREFIX "podvm-"
#define ROOT_SUFFIX "-root.qcow2"
#define CIDATA_SUFFIX "-cloudinit.iso"
/* Keeps these UUIDs apart from any other name-derived ones. */
#define UUID_NAMESPACE "cloud-api-adaptor/libvirt/domain:"

char *lv_root_volume_name(const char *instance_name)
{
    return xasprintf("%s" ROOT_SUFFIX, instance_name);
}

char *lv_cidata_volume_name(const char *instance_name)
{
    return xasprintf("%s" CIDATA_SUFFIX, instance_name);
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len > n && memcmp(s + len - n, suffix, n) == 0;
}

char *lv_volume_instance_name(const char *volume_name)
{
    size_t len = strlen(volume_name);
    size_t prefix = strlen(INSTANCE_PREFIX);
    if (len <= prefix || strncmp(volume_name, INSTANCE_PREFIX, prefix) != 0)
        return NULL;
    size_t base;
    if (ends_with(volume_name, len, ROOT_SUFFIX))
        base = len - strlen(ROOT_SUFFIX);
    else if (ends_with(volume_name, len, CIDATA_SUFFIX))
        base = len - strlen(CIDATA_SUFFIX);
    else
        return NULL;
    if (base <= prefix)
        return NULL;
    return xstrndup(volume_name, base);
}

int lv_instance_uuid(const char *instance_name, char out[VIR_UUID_STRING_BUFLEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, UUID_NAMESPACE, strlen(UUID_NAMESPACE)) == 1 &&
              EVP_DigestUpdate(ctx, instance_name, strlen(instance_name)) == 1 &&
              EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len >= 16;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EIO;
    /* RFC 9562 version 8 (vendor-specific), variant 10. */
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x80);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    snprintf(out, VIR_UUID_STRING_BUFLEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2],
             md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12], md[13], md[14], md[15]);
    return 0;
}
