/* peerpod-ctrl probes and metrics; see ctrl-http.h. */
#include "ctrl-http.h"

#include <inttypes.h>
#include <string.h>

#include "controller.h"
#include "xalloc.h"

static void text(caa_http_response *resp, int status, const char *body)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    resp->body = xstrdup(body);
    resp->body_len = strlen(body);
}

void ctrl_handle_probe(const caa_http_request *req, caa_http_response *resp, void *opaque)
{
    (void)opaque;
    if (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/readyz") == 0)
        text(resp, 200, "ok");
    else
        text(resp, 404, "not found\n");
}

void ctrl_handle_metrics(const caa_http_request *req, caa_http_response *resp, void *opaque)
{
    if (strcmp(req->path, "/metrics") != 0) {
        text(resp, 404, "not found\n");
        return;
    }
    const ctrl_stats *s = controller_stats(opaque);
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = xasprintf(
        "# HELP peerpod_ctrl_leader 1 while this replica holds the Lease (or runs without election).\n"
        "# TYPE peerpod_ctrl_leader gauge\n"
        "peerpod_ctrl_leader %d\n"
        "# HELP peerpod_ctrl_pending_peerpods PeerPods being deleted whose instance is not collected yet.\n"
        "# TYPE peerpod_ctrl_pending_peerpods gauge\n"
        "peerpod_ctrl_pending_peerpods %" PRIu64 "\n"
        "# HELP peerpod_ctrl_lists_total PeerPod list requests, by result.\n"
        "# TYPE peerpod_ctrl_lists_total counter\n"
        "peerpod_ctrl_lists_total{result=\"ok\"} %" PRIu64 "\n"
        "peerpod_ctrl_lists_total{result=\"error\"} %" PRIu64 "\n"
        "# HELP peerpod_ctrl_instance_deletions_total Instance deletions through the provider, by result.\n"
        "# TYPE peerpod_ctrl_instance_deletions_total counter\n"
        "peerpod_ctrl_instance_deletions_total{result=\"ok\"} %" PRIu64 "\n"
        "peerpod_ctrl_instance_deletions_total{result=\"error\"} %" PRIu64 "\n"
        "# HELP peerpod_ctrl_releases_total Finalizer releases, by result.\n"
        "# TYPE peerpod_ctrl_releases_total counter\n"
        "peerpod_ctrl_releases_total{result=\"ok\"} %" PRIu64 "\n"
        "peerpod_ctrl_releases_total{result=\"error\"} %" PRIu64 "\n"
        "# HELP peerpod_ctrl_superseded_deletions_total Older PeerPods of a Pod deleted (upstream's "
        "isOldPeerPod).\n"
        "# TYPE peerpod_ctrl_superseded_deletions_total counter\n"
        "peerpod_ctrl_superseded_deletions_total{result=\"ok\"} %" PRIu64 "\n"
        "peerpod_ctrl_superseded_deletions_total{result=\"error\"} %" PRIu64 "\n"
        "# HELP peerpod_ctrl_events_total Warning Events posted on PeerPods.\n"
        "# TYPE peerpod_ctrl_events_total counter\n"
        "peerpod_ctrl_events_total %" PRIu64 "\n"
        "# HELP peerpod_ctrl_watch_events_total PeerPod watch events received.\n"
        "# TYPE peerpod_ctrl_watch_events_total counter\n"
        "peerpod_ctrl_watch_events_total %" PRIu64 "\n"
        "# HELP peerpod_ctrl_watch_restarts_total Watches that broke or expired (410) and were restarted.\n"
        "# TYPE peerpod_ctrl_watch_restarts_total counter\n"
        "peerpod_ctrl_watch_restarts_total %" PRIu64 "\n",
        s->leader ? 1 : 0, s->pending, s->lists_ok, s->lists_failed, s->deletes_ok, s->deletes_failed,
        s->releases_ok, s->releases_failed, s->superseded_ok, s->superseded_failed, s->events_posted,
        s->watch_events, s->watch_restarts);
    resp->body_len = strlen(resp->body);
}
