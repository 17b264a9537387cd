#include "instance-name.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Lower-cases and replaces each character (a whole UTF-8 sequence counts as
 * one, as Go ranges over runes) outside [a-z0-9-] by '-'. */
static char *sanitize(const char *in)
{
    char *out = xmalloc(strlen(in) + 1);
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)in; *p;) {
        unsigned char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            *o++ = (char)c;
            p++;
            continue;
        }
        *o++ = '-';
        p++;
        if (c >= 0xc0)
            while ((*p & 0xc0) == 0x80)
                p++;
    }
    *o = '\0';
    return out;
}

char *caa_instance_name(const char *pod_name, const char *sandbox_id)
{
    char *pod = sanitize(pod_name ? pod_name : "");
    char *sid = sanitize(sandbox_id ? sandbox_id : "");
    /* "podvm" + '-' + pod + '-' + 8 */
    const int max_pod = CAA_INSTANCE_NAME_MAX - 5 - 10;
    char *name = xasprintf("podvm-%.*s-%.8s", max_pod, pod, sid);
    free(pod);
    free(sid);
    return name;
}
