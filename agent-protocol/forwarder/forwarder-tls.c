/* TLS server context of the forwarder (agent-protocol/tls builds it). */
#define LOG_COMPONENT "forwarder"

#include <errno.h>
#include <stdbool.h>

#include "forwarder-setup.h"
#include "log.h"
#include "tls-cert.h"
#include "tls-context.h"
#include "tls-profile.h"

static bool is_set(const char *s)
{
    return s && *s;
}

int fwd_tls_server_ctx(const fwd_options *o, const caa_apf_config *apf, SSL_CTX **ret, caa_error **err)
{
    int r = caa_tls_check_flags(o->ca_cert_file, o->cert_file, o->cert_key, o->tls_skip_verify, err);
    if (r < 0)
        return r;

    /* As upstream (forwarder.NewDaemon): -cert-file/-cert-key and
     * -ca-cert-file win; apf.json's material fills in what they leave unset. */
    _cleanup_tls_identity_ caa_tls_identity *id = NULL;
    if (is_set(o->cert_file))
        r = caa_tls_identity_load_files(o->cert_file, o->cert_key, &id, err);
    else if (is_set(apf->tls_server_cert) && is_set(apf->tls_server_key))
        r = caa_tls_identity_from_pem(apf->tls_server_cert, apf->tls_server_key, &id, err);
    else
        r = caa_error_set(err, -EINVAL,
                          "TLS is on but there is no server certificate: apf.json has no tls-server-cert/"
                          "tls-server-key and -cert-file/-cert-key are not set (-disable-tls turns TLS off)");
    if (r < 0)
        return caa_error_prefix(err, "server certificate");

    _cleanup_tls_trust_ caa_tls_trust *ca = NULL;
    if (is_set(o->ca_cert_file))
        r = caa_tls_trust_load_file(o->ca_cert_file, &ca, err);
    else if (is_set(apf->tls_client_ca))
        r = caa_tls_trust_from_pem(apf->tls_client_ca, &ca, err);
    if (r < 0)
        return caa_error_prefix(err, "client CA");

    bool skip = o->tls_skip_verify || !ca;
    if (o->tls_skip_verify)
        log_warn("-tls-skip-verify: client certificates are not checked");
    else if (!ca)
        log_warn("no client CA (apf.json tls-client-ca, -ca-cert-file): client certificates are not checked");

    caa_tls_profile profile = {0};
    r = caa_tls_profile_parse(apf->tls_min_version, apf->tls_cipher_suites, &profile, err);
    if (r < 0)
        return caa_error_prefix(err, "apf.json TLS profile");
    for (char **s = profile.insecure; s && *s; s++)
        log_warn("apf.json tls-cipher-suites: %s is insecure (accepted as upstream does)", *s);
    caa_tls_server_config cfg = {
        .profile = &profile,
        .identity = id,
        .client_ca = skip ? NULL : ca,
        .skip_verify = skip,
    };
    r = caa_tls_server_ctx_new(&cfg, ret, err);
    caa_tls_profile_done(&profile);
    return r;
}
