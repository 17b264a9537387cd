/* The probe endpoint on libmicrohttpd's own thread. Each request is answered
 * in full from the access handler (small bodies); nothing here blocks on the
 * daemon's loop. */
#define LOG_COMPONENT "adaptor/probe"
#include "probe-server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#define PROBE_CONNECTION_LIMIT 16
#define PROBE_CONNECTION_TIMEOUT_S 10

struct caa_probe_server {
    struct MHD_Daemon *mhd;
    uint16_t port;
    atomic_bool serving;
    atomic_bool node_needed;
    atomic_bool node_done;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body,
                             enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, mode);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)version;
    (void)upload_data;
    caa_probe_server *p = cls;
    /* First call per request: headers only. Bodies are not accepted. */
    if (!*req_cls) {
        *req_cls = p;
        return MHD_YES;
    }
    if (*upload_data_size)
        return MHD_NO;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n",
                     MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/healthz") == 0)
        return reply(conn, MHD_HTTP_OK, "text/plain", "ok\n", MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/startup") == 0) {
        bool ready =
            atomic_load(&p->serving) && (!atomic_load(&p->node_needed) || atomic_load(&p->node_done));
        return ready ? reply(conn, MHD_HTTP_OK, "text/plain", "ready\n", MHD_RESPMEM_PERSISTENT)
                     : reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "starting\n",
                             MHD_RESPMEM_PERSISTENT);
    }
    if (strcmp(url, "/metrics") == 0)
        return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", caa_metrics_render(),
                     MHD_RESPMEM_MUST_FREE);
    return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", MHD_RESPMEM_PERSISTENT);
}

int caa_probe_server_start(const char *address, uint16_t port, caa_probe_server **ret, caa_error **err)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, address, &sin.sin_addr) != 1)
        return caa_error_set(err, -EINVAL, "probe address %s is not an IPv4 address", address);
    caa_probe_server *p = xnew0(caa_probe_server, 1);
    p->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, port, NULL,
                              NULL, on_request, p, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)PROBE_CONNECTION_LIMIT,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)PROBE_CONNECTION_TIMEOUT_S,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!p->mhd) {
        free(p);
        return caa_error_set(err, -EADDRINUSE, "cannot listen on %s:%u for the probe endpoint", address,
                             (unsigned)port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(p->mhd, MHD_DAEMON_INFO_BIND_PORT);
    p->port = info ? info->port : port;
    *ret = p;
    return 0;
}

uint16_t caa_probe_server_port(const caa_probe_server *p)
{
    return p->port;
}

void caa_probe_server_stop(caa_probe_server *p)
{
    if (!p)
        return;
    MHD_stop_daemon(p->mhd);
    free(p);
}

void caa_probe_set_serving(caa_probe_server *p, bool serving)
{
    if (p)
        atomic_store(&p->serving, serving);
}

void caa_probe_set_node_resource(caa_probe_server *p, bool needed, bool done)
{
    if (!p)
        return;
    atomic_store(&p->node_needed, needed);
    atomic_store(&p->node_done, done);
}
