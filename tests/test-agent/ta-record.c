/* Record file: one JSON object per request, one per line, flushed at once
 * so a test reading the file sees every request answered so far. */
#define LOG_COMPONENT "test-agent"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <jansson.h>

#include "cleanup.h"
#include "log.h"
#include "test-agent.h"
#include "xalloc.h"

int ta_record_open(const char *path, FILE **ret, caa_error **err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return caa_error_set_errno(err, -errno, "record file %s", path);
    FILE *f = fdopen(fd, "a");
    if (!f) {
        int r = -errno;
        close(fd);
        return caa_error_set_errno(err, r, "record file %s", path);
    }
    *ret = f;
    return 0;
}

static char *hex(const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = xmalloc(2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 0xf];
    }
    s[2 * len] = '\0';
    return s;
}

/* jansson takes UTF-8 only; a name that is not stays visible as a marker. */
static json_t *text(const char *s)
{
    json_t *v = json_string(s ? s : "");
    return v ? v : json_string("<not utf-8>");
}

void ta_record_call(FILE *f, const ttrpc_call *c)
{
    if (!f)
        return;
    size_t len;
    const uint8_t *payload = ttrpc_call_payload(c, &len);
    _cleanup_free_ char *payload_hex = hex(payload, payload ? len : 0);
    json_t *o = json_object();
    json_object_set_new(o, "service", text(ttrpc_call_service(c)));
    json_object_set_new(o, "method", text(ttrpc_call_method(c)));
    json_object_set_new(o, "payload_hex", json_string(payload_hex));
    json_object_set_new(o, "timeout_nano", json_integer(ttrpc_call_timeout_ns(c)));
    _cleanup_free_ char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line || fprintf(f, "%s\n", line) < 0 || fflush(f) != 0)
        log_warn("record file: write failed: %s", strerror(errno));
}
