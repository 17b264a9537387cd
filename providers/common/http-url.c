/* Which URLs the HTTP client may fetch: https anywhere, plain http only where
 * the traffic cannot leave the machine (loopback) or, on request, to the
 * link-local instance metadata services. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "xalloc.h"

/* Copies host without IPv6 brackets into buf. */
static const char *strip_brackets(const char *host, char *buf, size_t len)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        if (n - 2 >= len)
            return NULL;
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        return buf;
    }
    return host;
}

bool caa_http_host_is_loopback(const char *host)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (!host)
        return false;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    const char *h = strip_brackets(host, buf, sizeof(buf));
    if (!h)
        return false;
    struct in_addr a4;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, h, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static bool host_is_link_local(const char *host)
{
    char buf[INET6_ADDRSTRLEN + 1];
    const char *h = strip_brackets(host, buf, sizeof(buf));
    if (!h)
        return false;
    struct in_addr a4;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 16) == 0xa9fe; /* 169.254.0.0/16 */
    struct in6_addr a6;
    if (inet_pton(AF_INET6, h, &a6) == 1) {
        static const uint8_t ec2_imds[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                             0,    0,    0,    0,    0, 0, 0x02, 0x54};
        return IN6_IS_ADDR_LINKLOCAL(&a6) || memcmp(&a6, ec2_imds, 16) == 0;
    }
    return false;
}

static void url_freep(CURLU **u)
{
    if (*u)
        curl_url_cleanup(*u);
}

static void curl_freep(char **p)
{
    if (*p)
        curl_free(*p);
}

int caa_http_url_check(const char *url, unsigned flags, caa_error **err)
{
    if (!url || !*url)
        return caa_error_set(err, -EINVAL, "empty URL");
    _cleanup_(url_freep) CURLU *u = curl_url();
    if (!u)
        caa_oom();
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        return caa_error_set(err, -EINVAL, "malformed URL \"%.200s\"", url);
    _cleanup_(curl_freep) char *scheme = NULL;
    _cleanup_(curl_freep) char *host = NULL;
    _cleanup_(curl_freep) char *user = NULL;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
        return caa_error_set(err, -EINVAL, "URL \"%.200s\" has no host", url);
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user)
        return caa_error_set(err, -EINVAL, "URL with user information is not allowed");
    if (strcasecmp(scheme, "https") == 0)
        return 0;
    if (strcasecmp(scheme, "http") != 0)
        return caa_error_set(
            err, -EINVAL, "URL scheme \"%s\" is not supported (only https, and http for loopback)", scheme);
    if (caa_http_host_is_loopback(host))
        return 0;
    if ((flags & CAA_HTTP_ALLOW_LINK_LOCAL) && host_is_link_local(host))
        return 0;
    return caa_error_set(err, -EACCES, "plain http to %s is refused: use https (http is for loopback only)",
                         host);
}
