/* Connection attempts to the agent-protocol-forwarder through a pod's SSH
 * connection (secure comms): a direct-tcpip channel to the forwarder's
 * loopback port in the VM. */
#include "agent-dialer.h"

#include <errno.h>
#include <stdlib.h>

#include "xalloc.h"

typedef struct ssh_dialer {
    caa_agent_dialer base;
    caa_agent_ssh_lookup lookup;
    void *opaque;
} ssh_dialer;

struct caa_agent_dial {
    caa_sc_open *open;
    caa_agent_dial_cb cb;
    void *opaque;
};

static void on_open(int status, ttrpc_transport *t, caa_error *err, void *opaque)
{
    caa_agent_dial *d = opaque;
    caa_agent_dial_cb cb = d->cb;
    void *cb_opaque = d->opaque;
    free(d);
    cb(status, t, err, cb_opaque);
}

static int ssh_dial(const caa_agent_dialer *dialer, uv_loop_t *loop, const char *host, uint16_t port,
                    const char *server_name, caa_agent_dial_cb cb, void *opaque, caa_agent_dial **ret,
                    caa_error **err)
{
    (void)loop;
    const ssh_dialer *sd = (const ssh_dialer *)dialer;
    caa_sc_client *client = NULL;
    int r = sd->lookup(sd->opaque, host, server_name, &client, err);
    if (r < 0)
        return r;
    caa_agent_dial *d = xnew0(caa_agent_dial, 1);
    d->cb = cb;
    d->opaque = opaque;
    /* The forwarder listens on loopback in the VM; the channel ends there. */
    r = caa_sc_client_open(client, "127.0.0.1", port, on_open, d, &d->open, err);
    if (r < 0) {
        free(d);
        return r;
    }
    *ret = d;
    return 0;
}

static void ssh_cancel(caa_agent_dial *d)
{
    caa_sc_open_cancel(d->open);
}

caa_agent_dialer *caa_agent_dialer_ssh_new(caa_agent_ssh_lookup lookup, void *opaque)
{
    ssh_dialer *d = xnew0(ssh_dialer, 1);
    d->base = (caa_agent_dialer){.name = "ssh", .dial = ssh_dial, .cancel = ssh_cancel, .priv = d};
    d->lookup = lookup;
    d->opaque = opaque;
    return &d->base;
}

void caa_agent_dialer_ssh_free(caa_agent_dialer *d)
{
    free(d ? d->priv : NULL);
}
