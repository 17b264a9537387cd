/* sshd configuration for the pod VM (see sc-sshd.h). */
#include "sc-sshd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "codec.h"
#include "fs.h"
#include "sc-keys.h"
#include "strv.h"
#include "xalloc.h"

/* The VM side's built-in tunnels, as upstream's forwarder has them. */
#define BUILTIN_INBOUNDS "BOTH_PHASES:KBS:8080"

static char *join_targets(const caa_sc_tags *outbounds, const char *sep, const char *prefix,
                          const char *suffix)
{
    _cleanup_strv_ char **v = NULL;
    for (size_t i = 0; i < outbounds->n; i++) {
        _cleanup_free_ char *s = xasprintf("%s%s:%u%s", prefix, outbounds->items[i].host,
                                           (unsigned)outbounds->items[i].port, suffix);
        caa_strv_push(&v, s);
    }
    return v ? caa_strv_join(v, sep) : xstrdup("");
}

static char *join_listens(const caa_sc_tags *inbounds, const char *sep, const char *prefix,
                          const char *suffix)
{
    _cleanup_strv_ char **v = NULL;
    for (size_t i = 0; i < inbounds->n; i++) {
        _cleanup_free_ char *s =
            xasprintf("%s127.0.0.1:%u%s", prefix, (unsigned)inbounds->items[i].port, suffix);
        caa_strv_push(&v, s);
    }
    return v ? caa_strv_join(v, sep) : xstrdup("");
}

/* auth: the lines that say which client keys are accepted. */
static char *config_text(const caa_sc_sshd_params *p, const caa_sc_tags *inbounds,
                         const caa_sc_tags *outbounds, const char *auth)
{
    _cleanup_free_ char *opens = join_targets(outbounds, " ", "", "");
    _cleanup_free_ char *listens = join_listens(inbounds, " ", "", "");
    return xasprintf("# Written by agent-protocol-forwarder from apf.json (secure comms); do not edit.\n"
                     "Port %u\n"
                     "ListenAddress %s\n"
                     "HostKey %s/host_key\n"
                     "PidFile none\n"
                     "%s"
                     "AllowUsers %s\n"
                     "PermitRootLogin prohibit-password\n"
                     "AuthenticationMethods publickey\n"
                     "PubkeyAuthentication yes\n"
                     "PasswordAuthentication no\n"
                     "KbdInteractiveAuthentication no\n"
                     "PermitEmptyPasswords no\n"
                     "HostbasedAuthentication no\n"
                     "UsePAM no\n"
                     "HostKeyAlgorithms ssh-ed25519\n"
                     "PubkeyAcceptedAlgorithms ssh-ed25519\n"
                     "AllowTcpForwarding yes\n"
                     "GatewayPorts no\n"
                     "AllowStreamLocalForwarding no\n"
                     "AllowAgentForwarding no\n"
                     "X11Forwarding no\n"
                     "PermitTunnel no\n"
                     "PermitTTY no\n"
                     "PermitUserRC no\n"
                     "PermitUserEnvironment no\n"
                     "ForceCommand /bin/false\n"
                     "PermitOpen %s\n"
                     "PermitListen %s\n"
                     "StrictModes no\n"
                     "MaxAuthTries 2\n"
                     "LoginGraceTime 30\n"
                     "ClientAliveInterval 15\n"
                     "ClientAliveCountMax 3\n"
                     "LogLevel VERBOSE\n",
                     (unsigned)p->port, p->listen_addr, p->dir, auth, p->user, *opens ? opens : "none",
                     *listens ? listens : "none");
}

char *caa_sc_sshd_config_text(const caa_sc_sshd_params *p, const caa_sc_tags *inbounds,
                              const caa_sc_tags *outbounds)
{
    _cleanup_free_ char *auth = xasprintf("AuthorizedKeysFile %s/authorized_keys\n", p->dir);
    return config_text(p, inbounds, outbounds, auth);
}

static int write_files(const caa_sc_sshd_params *p, const caa_sc_key *host, const char *auth_line,
                       const char *config, caa_error **err)
{
    const struct {
        const char *name;
        const char *text;
    } files[] = {
        {"host_key", host->private_pem},
        {"sshd_config", config},
        {"authorized_keys", auth_line},
    };
    size_t n = auth_line ? CAA_ARRAY_SIZE(files) : CAA_ARRAY_SIZE(files) - 1;
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *path = xasprintf("%s/%s", p->dir, files[i].name);
        int r = caa_write_file_atomic(path, files[i].text, strlen(files[i].text), 0600, err);
        if (r < 0) {
            for (size_t j = 0; j <= i; j++) {
                _cleanup_free_ char *q = xasprintf("%s/%s", p->dir, files[j].name);
                unlink(q);
            }
            return caa_error_prefix(err, "secure comms: writing %s", path);
        }
    }
    return 0;
}

static int private_dir(const char *dir, caa_error **err)
{
    int r = caa_mkdir_p(dir, 0700, err);
    if (r < 0)
        return r;
    if (chmod(dir, 0700) < 0)
        return caa_error_set_errno(err, -errno, "chmod %s", dir);
    return 0;
}

int caa_sc_sshd_write_attestation_config(const caa_sc_sshd_params *p, const char *keys_command_user,
                                         caa_error **err)
{
    caa_sc_key host;
    int r = caa_sc_key_generate("podvm-attestation", &host, err);
    if (r < 0)
        return r;
    caa_sc_tags in, all, out;
    caa_sc_tags_init(&in, CAA_SC_INBOUND);
    caa_sc_tags_init(&all, CAA_SC_INBOUND);
    caa_sc_tags_init(&out, CAA_SC_OUTBOUND);
    _cleanup_free_ char *config = NULL, *auth = NULL, *old = NULL;
    if ((r = caa_sc_tags_parse_append(&all, BUILTIN_INBOUNDS, err)) < 0 ||
        (r = caa_sc_tags_parse_append(&all, p->extra_inbounds, err)) < 0)
        goto out;
    /* Only what is live before the keys: the KBS tunnel (BOTH_PHASES) and
     * ATTESTATION_PHASE inbounds. */
    for (size_t i = 0; i < all.n; i++)
        if (caa_sc_phase_matches(all.items[i].phase, CAA_SC_PHASE_ATTESTATION)) {
            _cleanup_free_ char *tag =
                xasprintf("BOTH_PHASES:%s:%u", all.items[i].name, (unsigned)all.items[i].port);
            if ((r = caa_sc_tags_parse_append(&in, tag, err)) < 0)
                goto out;
        }
    /* Any client key, as upstream's attestation phase (NoClientAuth): the
     * worker cannot be known before the KBS released its key. sshd runs
     * the command for each offered key; it prints that key back, confined
     * to remote forwarding (PermitListen below). */
    auth = xasprintf("AuthorizedKeysFile none\n"
                     "AuthorizedKeysCommand /bin/echo restrict,port-forwarding %%t %%k\n"
                     "AuthorizedKeysCommandUser %s\n",
                     keys_command_user);
    config = config_text(p, &in, &out, auth);
    if ((r = private_dir(p->dir, err)) < 0)
        goto out;
    old = xasprintf("%s/authorized_keys", p->dir);
    if (unlink(old) < 0 && errno != ENOENT) {
        r = caa_error_set_errno(err, -errno, "removing %s", old);
        goto out;
    }
    r = write_files(p, &host, NULL, config, err);
out:
    caa_sc_tags_done(&in);
    caa_sc_tags_done(&all);
    caa_sc_tags_done(&out);
    caa_sc_key_done(&host);
    return r;
}

int caa_sc_sshd_write_config(const caa_sc_sshd_params *p, caa_error **err)
{
    const caa_apf_securecomms *sc = p->sc;
    if (!sc->pp_private_key_len || !sc->wn_public_key_len)
        return caa_error_set(
            err, -EINVAL,
            "secure comms: apf.json has no sc-pp-prv or sc-wn-pub (for keys from the KBS, Trustee "
            "mode, run the forwarder with -secure-comms)");
    caa_sc_key host;
    int r = caa_sc_key_from_private((const char *)sc->pp_private_key, sc->pp_private_key_len, &host, err);
    if (r < 0)
        return caa_error_prefix(err, "apf.json sc-pp-prv");
    uint8_t blob[CAA_SC_ED25519_BLOB_LEN];
    _cleanup_free_ char *auth_line = NULL, *config = NULL;
    caa_sc_tags in, out;
    caa_sc_tags_init(&in, CAA_SC_INBOUND);
    caa_sc_tags_init(&out, CAA_SC_OUTBOUND);
    _cleanup_free_ char *agent =
        xasprintf("KUBERNETES_PHASE:KATAAGENT:127.0.0.1:%u", (unsigned)p->agent_port);
    if ((r = caa_sc_public_line_blob((const char *)sc->wn_public_key, sc->wn_public_key_len, blob, err)) <
        0) {
        caa_error_prefix(err, "apf.json sc-wn-pub");
        goto out;
    }
    /* Order as upstream: built-ins, then the flags, then apf.json. */
    if ((r = caa_sc_tags_parse_append(&in, BUILTIN_INBOUNDS, err)) < 0 ||
        (r = caa_sc_tags_parse_append(&in, p->extra_inbounds, err)) < 0 ||
        (r = caa_sc_tags_parse_append(&in, sc->inbounds, err)) < 0 ||
        (r = caa_sc_tags_parse_append(&out, agent, err)) < 0 ||
        (r = caa_sc_tags_parse_append(&out, p->extra_outbounds, err)) < 0 ||
        (r = caa_sc_tags_parse_append(&out, sc->outbounds, err)) < 0)
        goto out;
    /* sshd listens on 127.0.0.1:<port> of the VM's own namespace; an
     * inbound in another namespace is relayed there by the forwarder
     * (forwarder-sc-netns.c), on the same port. */
    for (size_t i = 0; i < in.n; i++)
        if (in.items[i].port == 0) {
            r = caa_error_set(err, -EINVAL, "secure comms: inbound '%s' needs a fixed port",
                              in.items[i].name);
            goto out;
        }
    {
        _cleanup_free_ char *b64 = caa_bootdata_base64_encode(blob, sizeof(blob));
        _cleanup_free_ char *opens = join_targets(&out, ",", "permitopen=\"", "\"");
        _cleanup_free_ char *listens = join_listens(&in, ",", "permitlisten=\"", "\"");
        auth_line = xasprintf("restrict,port-forwarding%s%s%s%s ssh-ed25519 %s worker\n", *opens ? "," : "",
                              opens, *listens ? "," : "", listens, b64);
    }
    config = caa_sc_sshd_config_text(p, &in, &out);
    if ((r = private_dir(p->dir, err)) < 0)
        goto out;
    r = write_files(p, &host, auth_line, config, err);
out:
    caa_sc_tags_done(&in);
    caa_sc_tags_done(&out);
    caa_sc_key_done(&host);
    return r;
}
