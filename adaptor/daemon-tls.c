/* TLS material of the daemon: start-up checks, loading or generating the
 * client identity and the CA, per-pod apf.json fields, the proxy dialer. */
#define LOG_COMPONENT "adaptor/tls"
#include "daemon-tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent-dialer.h"
#include "log.h"
#include "sandbox-id.h"
#include "strv.h"
#include "tls-cert.h"
#include "tls-context.h"
#include "tls-profile.h"
#include "tls-store.h"
#include "xalloc.h"

struct caa_daemon_tls {
    bool user_ca;     /* -ca-cert-file */
    bool user_client; /* -cert-file/-cert-key */
    bool skip_verify; /* -tls-skip-verify */
    bool ready;       /* the generated material, the SSL_CTX and the dialer are made */
    char *dir;        /* <pods-dir>/.tls */
    char *min_version;
    char **cipher_suites;
    caa_tls_profile profile;
    /* Made at the first use (caa_daemon_tls_ensure) unless user-supplied. */
    caa_tls_identity *client;
    char *client_cert_pem; /* shipped as tls-client-ca when generated */
    caa_tls_ca *ca;        /* built-in CA, NULL with -ca-cert-file */
    caa_tls_trust *trust;  /* verifies forwarders; NULL with -tls-skip-verify */
    SSL_CTX *ctx;
    caa_agent_dialer *dialer;
};

static bool is_set(const char *s)
{
    return s && *s;
}

static void profile_inputs(const caa_daemon_config *cfg, char ***ret_suites)
{
    *ret_suites = NULL;
    caa_strv_split_append(ret_suites, cfg->tls_cipher_suites, ',');
}

int caa_daemon_tls_check_config(const caa_daemon_config *cfg, caa_error **err)
{
    if (cfg->disable_tls)
        return 0;
    int r = caa_tls_check_flags(cfg->ca_cert_file, cfg->cert_file, cfg->cert_key, cfg->tls_skip_verify, err);
    if (r < 0)
        return r;
    _cleanup_strv_ char **suites = NULL;
    profile_inputs(cfg, &suites);
    caa_tls_profile p;
    r = caa_tls_profile_parse(cfg->tls_min_version, suites, &p, err);
    if (r < 0)
        return caa_error_prefix(err, "invalid TLS profile (-tls-min-version, -tls-cipher-suites)");
    caa_tls_profile_done(&p);
    return 0;
}

/* Forgets what caa_daemon_tls_ensure() makes, keeping the user's files, so
 * that a failed first use leaves nothing half made and the next one retries. */
static void drop_lazy(caa_daemon_tls *t)
{
    caa_agent_dialer_tls_free(t->dialer);
    t->dialer = NULL;
    SSL_CTX_free(t->ctx);
    t->ctx = NULL;
    if (!t->user_ca) {
        caa_tls_trust_free(t->trust);
        t->trust = NULL;
    }
    caa_tls_ca_free(t->ca);
    t->ca = NULL;
    free(t->client_cert_pem);
    t->client_cert_pem = NULL;
    if (!t->user_client) {
        caa_tls_identity_free(t->client);
        t->client = NULL;
    }
    t->ready = false;
}

void caa_daemon_tls_free(caa_daemon_tls *t)
{
    if (!t)
        return;
    drop_lazy(t);
    caa_tls_trust_free(t->trust);
    caa_tls_identity_free(t->client);
    caa_tls_profile_done(&t->profile);
    caa_strv_free(t->cipher_suites);
    free(t->min_version);
    free(t->dir);
    free(t);
}

/* The store's content, empty when there is no file yet (the directory is
 * made). Fails for a file that is not ours, naming it. */
static int read_store(caa_daemon_tls *t, caa_tls_material *m, caa_error **err)
{
    int r = caa_tls_store_prepare_dir(t->dir, err);
    if (r < 0)
        return caa_error_prefix(err, "TLS material directory");
    r = caa_tls_store_load(t->dir, m, err);
    return r == -ENOENT ? 0 : r;
}

/* Generated material: from the store when it is there, else new (and saved). */
static int load_or_generate(caa_daemon_tls *t, caa_error **err)
{
    bool need_client = !t->user_client, need_ca = !t->user_ca;
    if (!need_client && !need_ca)
        return 0;
    caa_tls_material m = {0};
    int r = read_store(t, &m, err);
    if (r < 0)
        goto out;
    bool dirty = false;

    if (need_client && m.client_cert) {
        r = caa_tls_identity_from_pem(m.client_cert, m.client_key, &t->client, err);
        if (r < 0) {
            caa_error_prefix(err, "client identity in %s/%s", t->dir, CAA_TLS_STORE_FILE);
            goto out;
        }
        log_info("using the client certificate kept in %s", t->dir);
    } else if (need_client) {
        if ((r = caa_tls_identity_generate_client(&t->client, err)) < 0)
            goto out;
        m.client_cert = caa_tls_identity_cert_pem(t->client);
        m.client_key = caa_tls_identity_key_pem(t->client);
        dirty = true;
        log_info("generated a client certificate for the agent connections");
    }

    if (need_ca && m.ca_cert) {
        r = caa_tls_ca_from_pem(m.ca_cert, m.ca_key, &t->ca, err);
        if (r < 0) {
            caa_error_prefix(err, "CA in %s/%s", t->dir, CAA_TLS_STORE_FILE);
            goto out;
        }
        log_info("using the CA kept in %s", t->dir);
    } else if (need_ca) {
        if ((r = caa_tls_ca_new(&t->ca, err)) < 0)
            goto out;
        m.ca_cert = caa_tls_ca_cert_pem(t->ca);
        m.ca_key = caa_tls_ca_key_pem(t->ca);
        dirty = true;
        log_info("generated a CA for the pod VMs' server certificates");
    }

    if (dirty && (r = caa_tls_store_save(t->dir, &m, err)) < 0) {
        caa_error_prefix(err, "saving the TLS material");
        goto out;
    }
    r = 0;
out:
    caa_tls_material_done(&m);
    return r;
}

/* At start: the store directory is made and the file, when there, is read
 * and checked as JSON, so a damaged store still stops the start. Its keys are
 * decoded only at the first use: OpenSSL's key and certificate code is not
 * paged in by a daemon that runs no pod. */
static int check_store(caa_daemon_tls *t, caa_error **err)
{
    if (t->user_client && t->user_ca)
        return 0;
    caa_tls_material m = {0};
    int r = read_store(t, &m, err);
    caa_tls_material_done(&m);
    return r;
}

int caa_daemon_tls_ensure(caa_daemon_tls *t, caa_error **err)
{
    if (t->ready)
        return 0;
    int r = load_or_generate(t, err);
    if (r < 0)
        goto fail;
    if (!t->user_client && !t->user_ca)
        t->client_cert_pem = caa_tls_identity_cert_pem(t->client);
    if (t->ca && !t->skip_verify)
        t->trust = caa_tls_ca_trust(t->ca);

    caa_tls_client_config cc = {
        .profile = &t->profile,
        .identity = t->client,
        .ca = t->skip_verify ? NULL : t->trust,
        .skip_verify = t->skip_verify,
    };
    if ((r = caa_tls_client_ctx_new(&cc, &t->ctx, err)) < 0) {
        caa_error_prefix(err, "TLS client context");
        goto fail;
    }
    /* An idle agent connection then holds no record buffers (2 x ~17 KiB). */
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
    t->dialer = caa_agent_dialer_tls_new(t->ctx);
    t->ready = true;
    return 0;
fail:
    drop_lazy(t);
    return caa_error_prefix(err, "making the TLS material for the pod VMs");
}

int caa_daemon_tls_new(const caa_daemon_config *cfg, caa_daemon_tls **ret, caa_error **err)
{
    caa_daemon_tls *t = xnew0(caa_daemon_tls, 1);
    t->user_ca = is_set(cfg->ca_cert_file);
    t->user_client = is_set(cfg->cert_file);
    t->skip_verify = cfg->tls_skip_verify;
    t->dir = xasprintf("%s/%s", cfg->pods_dir, CAA_PODS_DIR_TLS_NAME);
    t->min_version = xstrdup(cfg->tls_min_version ? cfg->tls_min_version : "");
    profile_inputs(cfg, &t->cipher_suites);
    int r = caa_tls_profile_parse(t->min_version, t->cipher_suites, &t->profile, err);
    if (r < 0) {
        caa_error_prefix(err, "invalid TLS profile (-tls-min-version, -tls-cipher-suites)");
        goto fail;
    }
    for (char **s = t->profile.insecure; s && *s; s++)
        log_warn("-tls-cipher-suites: %s is insecure (accepted as upstream does)", *s);
    if (t->profile.no_tls12)
        log_warn("-tls-cipher-suites names only TLS 1.3 suites: TLS 1.2 cannot be negotiated");

    if (t->user_client &&
        (r = caa_tls_identity_load_files(cfg->cert_file, cfg->cert_key, &t->client, err)) < 0)
        goto fail;
    if (t->user_ca && (r = caa_tls_trust_load_file(cfg->ca_cert_file, &t->trust, err)) < 0)
        goto fail;
    if ((r = check_store(t, err)) < 0)
        goto fail;
    if (cfg->tls_skip_verify)
        log_warn("-tls-skip-verify: the pod VMs' certificates are not checked");
    log_info("TLS to the pod VMs: client certificate %s, server certificates %s, minimum %s",
             t->user_client ? "from -cert-file" : "generated",
             t->user_ca ? "checked against -ca-cert-file (name podvm-server)" : "issued by the built-in CA",
             caa_tls_profile_min_version_name(&t->profile));
    *ret = t;
    return 0;
fail:
    caa_daemon_tls_free(t);
    return r;
}

int caa_daemon_tls_fill_apf(caa_daemon_tls *t, const char *instance_name, caa_apf_config *apf,
                            caa_error **err)
{
    int r = caa_daemon_tls_ensure(t, err);
    if (r < 0)
        return r;
    if (t->ca) {
        r = caa_tls_ca_issue_server(t->ca, instance_name, &apf->tls_server_cert, &apf->tls_server_key, err);
        if (r < 0)
            return caa_error_prefix(err, "issuing the server certificate for %s", instance_name);
    }
    if (t->client_cert_pem)
        apf->tls_client_ca = xstrdup(t->client_cert_pem);
    apf->tls_min_version = xstrdup(t->min_version);
    apf->tls_cipher_suites = caa_strv_copy(t->cipher_suites);
    return 0;
}

const char *caa_daemon_tls_server_name(const caa_daemon_tls *t, const char *instance_name)
{
    return caa_tls_server_name(t->user_ca, instance_name);
}

int caa_daemon_tls_dialer(caa_daemon_tls *t, const caa_agent_dialer **ret, caa_error **err)
{
    int r = caa_daemon_tls_ensure(t, err);
    if (r < 0)
        return r;
    *ret = t->dialer;
    return 0;
}

const char *caa_daemon_tls_dir(const caa_daemon_tls *t)
{
    return t->user_client && t->user_ca ? NULL : t->dir;
}
