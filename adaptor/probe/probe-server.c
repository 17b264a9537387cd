/* The probe endpoint on the daemon's loop, served by the small HTTP/1.1
 * server the cluster components use (cluster/http). Each request is answered
 * in full from the handler (small bodies). */
#define LOG_COMPONENT "adaptor/probe"
#include "probe-server.h"

#include <stdlib.h>
#include <string.h>

#include "http-server.h"
#include "metrics.h"
#include "xalloc.h"

#define PROBE_CONNECTION_LIMIT 16
#define PROBE_IDLE_TIMEOUT_MS 10000

struct caa_probe_server {
    caa_http_server *http;
    bool serving;
    bool node_needed;
    bool node_done;
};

static void answer(caa_http_response *resp, int status, const char *type, char *body)
{
    resp->status = status;
    resp->content_type = type;
    resp->body = body;
    resp->body_len = strlen(body);
}

static void on_request(const caa_http_request *req, caa_http_response *resp, void *opaque)
{
    caa_probe_server *p = opaque;
    bool head = strcmp(req->method, "HEAD") == 0;
    if (!head && strcmp(req->method, "GET") != 0)
        answer(resp, 405, "text/plain", xstrdup("method not allowed\n"));
    else if (strcmp(req->path, "/healthz") == 0)
        answer(resp, 200, "text/plain", xstrdup("ok\n"));
    else if (strcmp(req->path, "/startup") == 0) {
        bool ready = p->serving && (!p->node_needed || p->node_done);
        answer(resp, ready ? 200 : 503, "text/plain", xstrdup(ready ? "ready\n" : "starting\n"));
    } else if (strcmp(req->path, "/metrics") == 0)
        answer(resp, 200, "text/plain; version=0.0.4; charset=utf-8", caa_metrics_render());
    else
        answer(resp, 404, "text/plain", xstrdup("not found\n"));
    /* HEAD: the status and type without the body (Content-Length 0). */
    if (head)
        resp->body_len = 0;
}

int caa_probe_server_start(uv_loop_t *loop, const char *address, uint16_t port, caa_probe_server **ret,
                           caa_error **err)
{
    caa_probe_server *p = xnew0(caa_probe_server, 1);
    caa_http_server_config cfg = {
        .host = address,
        .port = port,
        .handler = on_request,
        .opaque = p,
        .max_body = 0, /* a request with a body is refused (400) */
        .max_connections = PROBE_CONNECTION_LIMIT,
        .idle_timeout_ms = PROBE_IDLE_TIMEOUT_MS,
        .background = true,
        .reuse_port = true,
    };
    int r = caa_http_server_start(loop, &cfg, &p->http, err);
    if (r < 0) {
        free(p);
        return caa_error_prefix(err, "probe endpoint");
    }
    *ret = p;
    return 0;
}

uint16_t caa_probe_server_port(const caa_probe_server *p)
{
    return (uint16_t)caa_http_server_port(p->http);
}

void caa_probe_server_stop(caa_probe_server *p)
{
    if (!p)
        return;
    caa_http_server_close(p->http);
    free(p);
}

void caa_probe_set_serving(caa_probe_server *p, bool serving)
{
    if (p)
        p->serving = serving;
}

void caa_probe_set_node_resource(caa_probe_server *p, bool needed, bool done)
{
    if (!p)
        return;
    p->node_needed = needed;
    p->node_done = done;
}
