/* Secure comms on the worker: keys, per-pod apf.json fields, one SSH
 * connection per pod and the agent dialer over it (see daemon-sc.h). */
#define LOG_COMPONENT "adaptor/securecomms"
#include "daemon-sc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent-dialer.h"
#include "fs.h"
#include "kbs-admin.h"
#include "log.h"
#include "sandbox-id.h"
#include "sc-client.h"
#include "sc-keys.h"
#include "sc-netns.h"
#include "sc-splice.h"
#include "sc-tags.h"
#include "tls-store.h"
#include "xalloc.h"

/* The VM side's built-in tunnels (upstream's agent-protocol-forwarder). */
#define PP_BUILTIN_INBOUNDS "BOTH_PHASES:KBS:8080"

/* A worker inbound of one pod: 127.0.0.1:<port> here, each connection a
 * direct-tcpip channel to the VM outbound of the same name. */
typedef struct inbound {
    uv_tcp_t tcp;
    struct pod_conn *pc;
    char *name;
    char *target_host;
    uint16_t target_port;
} inbound;

/* Trustee mode: a pod's keys on their way to the KBS (StartVM). */
typedef struct kbs_prep {
    struct kbs_prep *next;
    caa_daemon_sc *sc; /* NULL once the daemon is closing */
    char *sandbox_id;
    char *pub_path;
    caa_sc_key key;
    caa_kbs_call *call;
    bool pp_sent; /* the private key may be in the KBS: delete it on failure */
    bool cancelled;
    caa_daemon_sc_ready_cb cb;
    void *opaque;
} kbs_prep;

typedef struct pod_conn {
    struct pod_conn *next;
    inbound **inbounds;
    size_t n_inbounds;
    char *sandbox_id;
    char *host;
    caa_sc_client *client;
} pod_conn;

struct caa_daemon_sc {
    uv_loop_t *loop;
    char *pods_dir;
    uint16_t ssh_port;
    char *key_dir; /* <pods-dir>/.tls */
    caa_sc_key worker;
    char *pp_inbounds;  /* apf.json sc-inbounds */
    char *pp_outbounds; /* apf.json sc-outbounds */
    caa_sc_tags wn_outbounds;
    caa_sc_tags pp_inbound_tags;  /* built-ins + pp inbounds: what the VM listens on */
    caa_sc_tags pp_outbound_tags; /* built-in KATAAGENT + pp outbounds: what the VM lets us open */
    caa_sc_tags wn_inbounds;      /* worker listeners, one set per pod */
    caa_agent_dialer *dialer;
    pod_conn *conns;
    caa_kbs_admin *kbs; /* Trustee mode */
    kbs_prep *preps;
};

static int parse_lists(const caa_daemon_config *cfg, caa_sc_tags *wn_in, caa_sc_tags *wn_out,
                       caa_sc_tags *pp_in, caa_sc_tags *pp_out, caa_error **err)
{
    caa_sc_tags_init(wn_in, CAA_SC_INBOUND);
    caa_sc_tags_init(wn_out, CAA_SC_OUTBOUND);
    caa_sc_tags_init(pp_in, CAA_SC_INBOUND);
    caa_sc_tags_init(pp_out, CAA_SC_OUTBOUND);
    int r;
    _cleanup_free_ char *kbs = xasprintf("BOTH_PHASES:KBS:%s", cfg->secure_comms_kbs_addr);
    /* As upstream: the VM's own tags travel in apf.json, NoTrustee only. */
    const char *pp_inbounds = cfg->secure_comms_no_trustee ? cfg->secure_comms_pp_inbounds : "";
    const char *pp_outbounds = cfg->secure_comms_no_trustee ? cfg->secure_comms_pp_outbounds : "";
    if ((r = caa_sc_tags_parse_append(wn_in, cfg->secure_comms_inbounds, err)) < 0)
        return caa_error_prefix(err, "-secure-comms-inbounds");
    if ((r = caa_sc_tags_parse_append(wn_out, cfg->secure_comms_outbounds, err)) < 0)
        return caa_error_prefix(err, "-secure-comms-outbounds");
    if ((r = caa_sc_tags_parse_append(wn_out, kbs, err)) < 0)
        return caa_error_prefix(err, "-secure-comms-kbs (host:port)");
    if ((r = caa_sc_tags_parse_append(pp_in, PP_BUILTIN_INBOUNDS, err)) < 0 ||
        (r = caa_sc_tags_parse_append(pp_in, pp_inbounds, err)) < 0)
        return caa_error_prefix(err, "-secure-comms-pp-inbounds");
    _cleanup_free_ char *agent =
        xasprintf("KUBERNETES_PHASE:KATAAGENT:127.0.0.1:%u", (unsigned)cfg->forwarder_port);
    if ((r = caa_sc_tags_parse_append(pp_out, agent, err)) < 0 ||
        (r = caa_sc_tags_parse_append(pp_out, pp_outbounds, err)) < 0)
        return caa_error_prefix(err, "-secure-comms-pp-outbounds");
    return 0;
}

static void done_lists(caa_sc_tags *a, caa_sc_tags *b, caa_sc_tags *c, caa_sc_tags *d)
{
    caa_sc_tags_done(a);
    caa_sc_tags_done(b);
    caa_sc_tags_done(c);
    caa_sc_tags_done(d);
}

/* What this implementation cannot serve is refused here, by name, rather
 * than accepted and ignored. */
static int check_servable(const caa_sc_tags *wn_in, const caa_sc_tags *pp_in, const caa_sc_tags *pp_out,
                          caa_error **err)
{
    for (size_t i = 0; i < wn_in->n; i++) {
        const caa_sc_tag *t = &wn_in->items[i];
        if (!caa_sc_tags_find(pp_out, t->name))
            return caa_error_set(err, -EINVAL,
                                 "-secure-comms-inbounds: tunnel '%s' has no pod VM outbound of that name "
                                 "(-secure-comms-pp-outbounds)",
                                 t->name);
    }
    for (size_t i = 0; i < pp_in->n; i++)
        if (pp_in->items[i].port == 0)
            return caa_error_set(err, -EINVAL, "-secure-comms-pp-inbounds: tunnel '%s' needs a port",
                                 pp_in->items[i].name);
    return 0;
}

int caa_daemon_sc_check_config(const caa_daemon_config *cfg, caa_error **err)
{
    if (!cfg->secure_comms)
        return 0;
    if (!cfg->secure_comms_no_trustee && !*cfg->secure_comms_kbs_admin_key)
        return caa_error_set(err, -EINVAL,
                             "-secure-comms (Trustee mode) needs the KBS admin key: mount Secret kbs-client "
                             "(data key privateKey) and set -secure-comms-kbs-admin-key "
                             "(SECURE_COMMS_KBS_ADMIN_KEY), or set -secure-comms-no-trustee to send the keys "
                             "in the user-data");
    caa_sc_tags a, b, c, d;
    int r = parse_lists(cfg, &a, &b, &c, &d, err);
    if (r == 0)
        r = check_servable(&a, &c, &d, err);
    done_lists(&a, &b, &c, &d);
    return r;
}

/* ------------------------------------------------------------ connections */

static void on_inbound_closed(uv_handle_t *h)
{
    inbound *in = h->data;
    free(in->name);
    free(in->target_host);
    free(in);
}

/* One accepted connection waiting for its channel; owns copies of what it logs. */
typedef struct inbound_conn {
    ttrpc_transport *tcp;
    char *id;
    char *name;
} inbound_conn;

static void inbound_conn_free(inbound_conn *ic)
{
    free(ic->id);
    free(ic->name);
    free(ic);
}

static void on_inbound_open(int status, ttrpc_transport *chan, caa_error *err, void *opaque)
{
    inbound_conn *ic = opaque;
    if (status < 0) {
        log_pod_warn(ic->id, "tunnel %s: %s; closing the local connection", ic->name,
                     err ? caa_error_msg(err) : "channel refused");
        caa_error_free(err);
        ttrpc_transport_close(ic->tcp);
    } else {
        caa_sc_splice(ic->id, ic->name, ic->tcp, chan);
    }
    inbound_conn_free(ic);
}

static void on_inbound_connection(uv_stream_t *server, int status)
{
    inbound *in = server->data;
    if (status < 0)
        return;
    ttrpc_transport *tcp = ttrpc_transport_uv_new(server->loop, UV_TCP, NULL);
    if (uv_accept(server, ttrpc_transport_uv_stream(tcp)) < 0) {
        ttrpc_transport_close(tcp);
        return;
    }
    inbound_conn *ic = xnew0(inbound_conn, 1);
    ic->tcp = tcp;
    ic->id = xstrdup(in->pc->sandbox_id);
    ic->name = xstrdup(in->name);
    caa_error *err = NULL;
    if (caa_sc_client_open(in->pc->client, in->target_host, in->target_port, on_inbound_open, ic, NULL,
                           &err) < 0) {
        log_pod_warn(ic->id, "tunnel %s: %s", ic->name, caa_error_msg(err));
        caa_error_free(err);
        ttrpc_transport_close(tcp);
        inbound_conn_free(ic);
    }
}

/* Opens the worker listeners of a pod; a port in use is logged, not fatal. */
static void inbounds_open(caa_daemon_sc *sc, pod_conn *pc)
{
    pc->inbounds = xnew0(inbound *, sc->wn_inbounds.n + 1);
    for (size_t i = 0; i < sc->wn_inbounds.n; i++) {
        const caa_sc_tag *t = &sc->wn_inbounds.items[i];
        const caa_sc_tag *out = caa_sc_tags_find(&sc->pp_outbound_tags, t->name); /* checked at start */
        inbound *in = xnew0(inbound, 1);
        in->pc = pc;
        in->name = xstrdup(t->name);
        in->target_host = xstrdup(out->host);
        in->target_port = out->port;
        uv_tcp_init(sc->loop, &in->tcp);
        in->tcp.data = in;
        int r;
        if (t->netns) {
            /* The listener lives in that namespace: its clients (e.g. a pod's
             * containers) reach the tunnel there, nowhere else. */
            _cleanup_error_ caa_error *e = NULL;
            int fd = caa_sc_netns_listen(t->netns, t->port, 64, &e);
            if (fd < 0) {
                log_pod_error(pc->sandbox_id, "tunnel %s: %s", t->name, caa_error_msg(e));
                pc->inbounds[pc->n_inbounds++] = in;
                continue;
            }
            if ((r = uv_tcp_open(&in->tcp, fd)) < 0)
                close(fd);
        } else {
            struct sockaddr_in addr;
            uv_ip4_addr("127.0.0.1", t->port, &addr);
            r = uv_tcp_bind(&in->tcp, (const struct sockaddr *)&addr, 0);
        }
        if (r == 0)
            r = uv_listen((uv_stream_t *)&in->tcp, 64, on_inbound_connection);
        if (r < 0)
            log_pod_error(pc->sandbox_id, "tunnel %s: cannot listen on 127.0.0.1:%u%s%s: %s", t->name,
                          (unsigned)t->port, t->netns ? " in namespace " : "", t->netns ? t->netns : "",
                          uv_strerror(r));
        else
            log_pod_info(pc->sandbox_id, "tunnel %s: worker 127.0.0.1:%u%s%s -> VM %s:%u", t->name,
                         (unsigned)t->port, t->netns ? " in namespace " : "", t->netns ? t->netns : "",
                         out->host, (unsigned)out->port);
        pc->inbounds[pc->n_inbounds++] = in;
    }
}

static void conn_free(pod_conn *pc)
{
    for (size_t i = 0; i < pc->n_inbounds; i++)
        uv_close((uv_handle_t *)&pc->inbounds[i]->tcp, on_inbound_closed);
    free(pc->inbounds);
    caa_sc_client_free(pc->client);
    free(pc->sandbox_id);
    free(pc->host);
    free(pc);
}

static void conn_drop(caa_daemon_sc *sc, const char *sandbox_id)
{
    for (pod_conn **pp = &sc->conns; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->sandbox_id, sandbox_id) == 0) {
            pod_conn *pc = *pp;
            *pp = pc->next;
            log_pod_info(sandbox_id, "closing the SSH connection to %s", pc->host);
            conn_free(pc);
            return;
        }
}

/* The remote forwards of a pod: every VM inbound with a worker outbound of
 * the same name. */
static caa_sc_remote_forward *forwards_for(const caa_daemon_sc *sc, const char *sandbox_id, size_t *ret_n)
{
    caa_sc_remote_forward *fw = xnew0(caa_sc_remote_forward, sc->pp_inbound_tags.n + 1);
    size_t n = 0;
    for (size_t i = 0; i < sc->pp_inbound_tags.n; i++) {
        const caa_sc_tag *in = &sc->pp_inbound_tags.items[i];
        const caa_sc_tag *out = caa_sc_tags_find(&sc->wn_outbounds, in->name);
        if (!out)
            continue;
        /* Trustee mode has two phases (a tunnel is live where both ends'
         * tags say so); NoTrustee has one connection that carries every tag. */
        caa_sc_phase phase = sc->kbs ? (caa_sc_phase)(in->phase & out->phase) : 0;
        if (sc->kbs && !phase)
            continue;
        fw[n++] = (caa_sc_remote_forward){in->name, in->port, out->host, out->port, phase, NULL};
        if (sc->kbs && strcmp(in->name, "KBS") == 0)
            fw[n - 1].kbs_sid = sandbox_id;
    }
    *ret_n = n;
    return fw;
}

static int conn_for(caa_daemon_sc *sc, const char *sandbox_id, const char *host, caa_sc_client **ret,
                    caa_error **err)
{
    for (pod_conn *pc = sc->conns; pc; pc = pc->next)
        if (strcmp(pc->sandbox_id, sandbox_id) == 0) {
            if (strcmp(pc->host, host) == 0) {
                *ret = pc->client;
                return 0;
            }
            conn_drop(sc, sandbox_id); /* the VM has a new address */
            break;
        }
    if (caa_sandbox_id_check(sandbox_id, NULL) < 0)
        return caa_error_set(err, -EINVAL, "secure comms: invalid sandbox id");
    _cleanup_free_ char *path = xasprintf("%s/%s/%s", sc->pods_dir, sandbox_id, CAA_SC_HOST_KEY_PUB_FILE);
    _cleanup_free_ char *line = NULL;
    size_t len = 0;
    int r = caa_read_file(path, CAA_SC_KEY_MAX_TEXT, 1, &line, &len, err);
    if (r < 0)
        return caa_error_prefix(err, "the pod's SSH host key");
    uint8_t blob[CAA_SC_ED25519_BLOB_LEN];
    if ((r = caa_sc_public_line_blob(line, len, blob, err)) < 0)
        return caa_error_prefix(err, "%s", path);
    size_t n_fw = 0;
    _cleanup_free_ caa_sc_remote_forward *fw = forwards_for(sc, sandbox_id, &n_fw);
    caa_sc_client_config cc = {
        .id = sandbox_id,
        .host = host,
        .port = sc->ssh_port,
        .user = CAA_SC_VM_USER,
        .client_private_pem = sc->worker.private_pem,
        .host_key_blob = blob,
        .forwards = fw,
        .n_forwards = n_fw,
        .attestation_phase = sc->kbs != NULL,
    };
    caa_sc_client *client = NULL;
    if ((r = caa_sc_client_new(sc->loop, &cc, &client, err)) < 0)
        return r;
    pod_conn *pc = xnew0(pod_conn, 1);
    pc->sandbox_id = xstrdup(sandbox_id);
    pc->host = xstrdup(host);
    pc->client = client;
    pc->next = sc->conns;
    sc->conns = pc;
    inbounds_open(sc, pc);
    _cleanup_free_ char *fp = caa_sc_blob_fingerprint(blob, sizeof(blob));
    log_pod_info(sandbox_id, "SSH to %s:%u, host key %s pinned", host, (unsigned)sc->ssh_port, fp);
    *ret = client;
    return 0;
}

/* ------------------------------------------------------------ KBS (Trustee mode) */

#define KBS_WORKER_KEY "default/sshclient/publicKey"

static char *pp_resource(const char *sandbox_id)
{
    return xasprintf("default/pp-%s/privateKey", sandbox_id);
}

static void on_kbs_deleted(int status, caa_error *err, void *opaque)
{
    char *sid = opaque;
    if (status == 0)
        log_pod_info(sid, "KBS: deleted the pod's SSH host key (default/pp-%s/privateKey)", sid);
    else if (status != -ECANCELED)
        log_pod_warn(sid, "KBS: could not delete the pod's SSH host key: %s", caa_error_msg(err));
    caa_error_free(err);
    free(sid);
}

static void kbs_delete_pp(caa_daemon_sc *sc, const char *sandbox_id)
{
    _cleanup_free_ char *res = pp_resource(sandbox_id);
    caa_error *err = NULL;
    char *sid = xstrdup(sandbox_id);
    if (caa_kbs_admin_delete(sc->kbs, res, on_kbs_deleted, sid, NULL, &err) < 0) {
        log_pod_warn(sid, "KBS: could not delete the pod's SSH host key: %s", caa_error_msg(err));
        caa_error_free(err);
        free(sid);
    }
}

static void prep_finish(kbs_prep *p, int status, caa_error *err)
{
    caa_daemon_sc *sc = p->sc;
    if (sc) {
        for (kbs_prep **pp = &sc->preps; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        /* The key may be in the KBS without a pod to use it. */
        if ((status < 0 || p->cancelled) && p->pp_sent)
            kbs_delete_pp(sc, p->sandbox_id);
    }
    if (p->cancelled) {
        caa_error_free(err);
        status = -ECANCELED;
        err = caa_error_new(-ECANCELED, "secure comms: the pod stopped while its keys went to the KBS");
    }
    if (sc)
        p->cb(status, err, p->opaque);
    else
        caa_error_free(err); /* the daemon is closing: nobody waits any more */
    caa_sc_key_done(&p->key);
    free(p->sandbox_id);
    free(p->pub_path);
    free(p);
}

static void on_pp_posted(int status, caa_error *err, void *opaque)
{
    kbs_prep *p = opaque;
    p->call = NULL;
    if (status == 0 && !p->cancelled) {
        /* Pinned only now: a pod whose key never reached the KBS keeps nothing. */
        status =
            caa_write_file_atomic(p->pub_path, p->key.public_line, strlen(p->key.public_line), 0600, &err);
        if (status < 0)
            caa_error_prefix(&err, "saving the pod's SSH host key");
        else
            log_pod_info(p->sandbox_id, "KBS: the pod's SSH host key is in default/pp-%s/privateKey",
                         p->sandbox_id);
    }
    prep_finish(p, status, err);
}

static void on_wn_posted(int status, caa_error *err, void *opaque)
{
    kbs_prep *p = opaque;
    p->call = NULL;
    if (status < 0 || p->cancelled || !p->sc) {
        prep_finish(p, status, err);
        return;
    }
    _cleanup_free_ char *res = pp_resource(p->sandbox_id);
    p->pp_sent = true;
    if ((status = caa_kbs_admin_post(p->sc->kbs, res, p->key.private_pem, strlen(p->key.private_pem),
                                     on_pp_posted, p, &p->call, &err)) < 0)
        prep_finish(p, status, err);
}

int caa_daemon_sc_prepare(caa_daemon_sc *sc, const char *sandbox_id, const char *pod_dir,
                          caa_daemon_sc_ready_cb cb, void *opaque, caa_error **err)
{
    if (!sc || !sc->kbs)
        return 1;
    if (caa_sandbox_id_check(sandbox_id, NULL) < 0)
        return caa_error_set(err, -EINVAL, "secure comms: invalid sandbox id");
    _cleanup_free_ char *path = xasprintf("%s/%s", pod_dir, CAA_SC_HOST_KEY_PUB_FILE);
    if (access(path, F_OK) == 0)
        return 1; /* done before (a restarted daemon): the KBS holds the matching key */
    kbs_prep *p = xnew0(kbs_prep, 1);
    int r = caa_sc_key_generate("podvm", &p->key, err);
    if (r < 0) {
        free(p);
        return r;
    }
    p->sc = sc;
    p->sandbox_id = xstrdup(sandbox_id);
    p->pub_path = TAKE_PTR(path);
    p->cb = cb;
    p->opaque = opaque;
    /* Upstream posted the worker key once at start; per pod it also
     * survives a KBS that lost its resources. */
    r = caa_kbs_admin_post(sc->kbs, KBS_WORKER_KEY, sc->worker.public_line, strlen(sc->worker.public_line),
                           on_wn_posted, p, &p->call, err);
    if (r < 0) {
        caa_sc_key_done(&p->key);
        free(p->sandbox_id);
        free(p->pub_path);
        free(p);
        return r;
    }
    p->next = sc->preps;
    sc->preps = p;
    log_pod_info(sandbox_id, "KBS: sending the worker's public key and the pod's SSH host key");
    return 0;
}

void caa_daemon_sc_forget(caa_daemon_sc *sc, const char *sandbox_id, bool pod_gone)
{
    if (!sc)
        return;
    conn_drop(sc, sandbox_id);
    if (!sc->kbs)
        return;
    for (kbs_prep *p = sc->preps; p; p = p->next)
        if (strcmp(p->sandbox_id, sandbox_id) == 0 && !p->cancelled) {
            p->cancelled = true; /* prep_finish deletes what may have been stored */
            if (p->call)
                caa_kbs_call_cancel(p->call);
            return;
        }
    /* A daemon that stops leaves its VMs running: they still need their
     * keys after a reboot. */
    if (pod_gone && caa_sandbox_id_check(sandbox_id, NULL) == 0)
        kbs_delete_pp(sc, sandbox_id);
}

/* ------------------------------------------------------------ dialer */

/* The agent dialer's lookup: the proxy passes the sandbox id as server_name. */
static int lookup(void *opaque, const char *host, const char *sandbox_id, caa_sc_client **ret,
                  caa_error **err)
{
    if (!sandbox_id)
        return caa_error_set(err, -EINVAL, "secure comms dial without a sandbox id");
    return conn_for(opaque, sandbox_id, host, ret, err);
}

const caa_agent_dialer *caa_daemon_sc_dialer(const caa_daemon_sc *sc)
{
    return sc->dialer;
}

/* ------------------------------------------------------------ life cycle */

static int load_or_generate_worker_key(caa_daemon_sc *sc, caa_error **err)
{
    int r = caa_tls_store_prepare_dir(sc->key_dir, err);
    if (r < 0)
        return caa_error_prefix(err, "secure comms key directory");
    _cleanup_free_ char *path = xasprintf("%s/%s", sc->key_dir, CAA_SC_WORKER_KEY_FILE);
    char *pem = NULL;
    size_t len = 0;
    r = caa_read_file(path, CAA_SC_KEY_MAX_TEXT, 1, &pem, &len, NULL);
    if (r == 0) {
        r = caa_sc_key_from_private(pem, len, &sc->worker, err);
        caa_sc_key_done(&(caa_sc_key){.private_pem = pem});
        if (r < 0)
            return caa_error_prefix(err, "%s", path);
        log_info("secure comms: using the worker SSH key kept in %s", path);
        return 0;
    }
    if (r != -ENOENT)
        return caa_error_set_errno(err, r, "reading %s", path);
    if ((r = caa_sc_key_generate("cloud-api-adaptor", &sc->worker, err)) < 0)
        return r;
    if ((r = caa_write_file_atomic(path, sc->worker.private_pem, strlen(sc->worker.private_pem), 0600, err)) <
        0)
        return caa_error_prefix(err, "saving the worker SSH key");
    log_info("secure comms: generated the worker SSH key (%s)", path);
    return 0;
}

int caa_daemon_sc_new(uv_loop_t *loop, const caa_daemon_config *cfg, caa_daemon_sc **ret, caa_error **err)
{
    caa_daemon_sc *sc = xnew0(caa_daemon_sc, 1);
    sc->loop = loop;
    sc->pods_dir = xstrdup(cfg->pods_dir);
    sc->ssh_port = (uint16_t)cfg->secure_comms_ssh_port;
    sc->key_dir = xasprintf("%s/%s", cfg->pods_dir, CAA_PODS_DIR_TLS_NAME);
    sc->dialer = caa_agent_dialer_ssh_new(lookup, sc);
    int r = parse_lists(cfg, &sc->wn_inbounds, &sc->wn_outbounds, &sc->pp_inbound_tags, &sc->pp_outbound_tags,
                        err);
    if (r == 0)
        r = check_servable(&sc->wn_inbounds, &sc->pp_inbound_tags, &sc->pp_outbound_tags, err);
    if (r == 0)
        r = load_or_generate_worker_key(sc, err);
    if (r == 0 && !cfg->secure_comms_no_trustee)
        r = caa_kbs_admin_new(loop, cfg->secure_comms_kbs_addr, cfg->secure_comms_kbs_admin_key, &sc->kbs,
                              err);
    if (r < 0) {
        caa_daemon_sc_free(sc);
        return r;
    }
    sc->pp_inbounds = xstrdup(cfg->secure_comms_pp_inbounds ? cfg->secure_comms_pp_inbounds : "");
    sc->pp_outbounds = xstrdup(cfg->secure_comms_pp_outbounds ? cfg->secure_comms_pp_outbounds : "");
    log_info("secure comms (SSH, %s) replaces TLS to the pod VMs: -ca-cert-file, -cert-file, -cert-key, "
             "-tls-* and -disable-tls are ignored",
             sc->kbs ? "Trustee: keys through the KBS" : "NoTrustee");
    if (sc->kbs && (*sc->pp_inbounds || *sc->pp_outbounds))
        log_warn(
            "secure comms: -secure-comms-pp-inbounds/-outbounds travel in apf.json, NoTrustee mode only; "
            "ignored in Trustee mode (as upstream)");
    *ret = sc;
    return 0;
}

void caa_daemon_sc_free(caa_daemon_sc *sc)
{
    if (!sc)
        return;
    while (sc->conns) {
        pod_conn *pc = sc->conns;
        sc->conns = pc->next;
        conn_free(pc);
    }
    for (kbs_prep *p = sc->preps; p; p = p->next) {
        p->sc = NULL; /* their callbacks run later with -ECANCELED and only clean up */
        if (p->call)
            caa_kbs_call_cancel(p->call);
    }
    sc->preps = NULL;
    caa_kbs_admin_free(sc->kbs);
    caa_agent_dialer_ssh_free(sc->dialer);
    caa_sc_tags_done(&sc->wn_outbounds);
    caa_sc_tags_done(&sc->pp_inbound_tags);
    caa_sc_tags_done(&sc->pp_outbound_tags);
    caa_sc_tags_done(&sc->wn_inbounds);
    caa_sc_key_done(&sc->worker);
    free(sc->pp_inbounds);
    free(sc->pp_outbounds);
    free(sc->key_dir);
    free(sc->pods_dir);
    free(sc);
}

int caa_daemon_sc_fill_apf(caa_daemon_sc *sc, const char *pod_dir, caa_apf_config *apf, caa_error **err)
{
    if (sc->kbs)
        return 0; /* Trustee mode: as upstream, no secure comms field in apf.json */
    caa_sc_key host;
    int r = caa_sc_key_generate("podvm", &host, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = xasprintf("%s/%s", pod_dir, CAA_SC_HOST_KEY_PUB_FILE);
    r = caa_write_file_atomic(path, host.public_line, strlen(host.public_line), 0600, err);
    if (r < 0) {
        caa_sc_key_done(&host);
        return caa_error_prefix(err, "saving the pod's SSH host key");
    }
    apf->sc.enabled = true;
    apf->sc.pp_private_key_len = strlen(host.private_pem);
    apf->sc.pp_private_key = (uint8_t *)TAKE_PTR(host.private_pem);
    apf->sc.wn_public_key = (uint8_t *)xstrdup(sc->worker.public_line);
    apf->sc.wn_public_key_len = strlen(sc->worker.public_line);
    apf->sc.inbounds = xstrdup(sc->pp_inbounds);
    apf->sc.outbounds = xstrdup(sc->pp_outbounds);
    caa_sc_key_done(&host);
    return 0;
}
