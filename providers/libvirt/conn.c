/* Shared libvirt connection with reconnect-once, and error translation. */
#include "conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include <libvirt/virterror.h>

#include "cleanup.h"
#include "xalloc.h"

void lv_conn_init(lv_conn *c, const char *uri)
{
    pthread_mutex_init(&c->lock, NULL);
    c->uri = xstrdup(uri);
    c->conn = NULL;
    c->reconnects = 0;
    c->test_broken_gets = 0;
}

void lv_conn_done(lv_conn *c)
{
    if (c->conn)
        virConnectClose(c->conn);
    c->conn = NULL;
    free(c->uri);
    c->uri = NULL;
    pthread_mutex_destroy(&c->lock);
}

int lv_last_error_code(void)
{
    virErrorPtr e = virGetLastError();
    return e ? e->code : VIR_ERR_OK;
}

static bool connection_lost(const virError *e, virConnectPtr conn)
{
    switch (e->code) {
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_RPC:
        return true;
    case VIR_ERR_SYSTEM_ERROR:
        /* Also used for file errors on the libvirt host; only a broken
         * transport counts. */
        return e->domain == VIR_FROM_RPC || e->domain == VIR_FROM_REMOTE ||
               (conn && virConnectIsAlive(conn) == 0);
    default:
        return e->domain == VIR_FROM_RPC && conn && virConnectIsAlive(conn) == 0;
    }
}

static int class_of(const virError *e, virConnectPtr conn)
{
    if (connection_lost(e, conn))
        return LV_ECONN;
    switch (e->code) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_STORAGE_POOL:
    case VIR_ERR_NO_STORAGE_VOL:
    case VIR_ERR_NO_NETWORK:
    case VIR_ERR_NO_DOMAIN_METADATA:
        return -ENOENT;
    case VIR_ERR_DOM_EXIST:
    case VIR_ERR_STORAGE_VOL_EXIST:
        return -EEXIST;
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_INVALID_ARG:
    case VIR_ERR_CONFIG_UNSUPPORTED:
    case VIR_ERR_OPERATION_INVALID:
        return -EINVAL;
    case VIR_ERR_NO_SUPPORT:
        return -EOPNOTSUPP;
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_ACCESS_DENIED:
    case VIR_ERR_OPERATION_DENIED:
        return -EACCES;
    case VIR_ERR_OPERATION_TIMEOUT:
    case VIR_ERR_AGENT_UNRESPONSIVE:
        return -ETIMEDOUT;
    default:
        return -EIO;
    }
}

int lv_error(caa_error **err, virConnectPtr conn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *what = xvasprintf(fmt, ap);
    va_end(ap);
    /* Copy first: class_of may call libvirt, which resets the last error. */
    virError e = {0};
    if (virCopyLastError(&e) <= 0) {
        virResetError(&e);
        return caa_error_set(err, -EIO, "%s: libvirt reported no error", what);
    }
    int code = class_of(&e, conn);
    int r = caa_error_set(err, code, "%s: %s", what, e.message ? e.message : "unknown libvirt error");
    virResetError(&e);
    virResetLastError();
    return r;
}

int lv_conn_get(lv_conn *c, virConnectPtr *ret, caa_error **err)
{
    pthread_mutex_lock(&c->lock);
    if (c->test_broken_gets > 0) {
        c->test_broken_gets--;
        /* As if libvirtd went away: the shared connection is gone too. */
        if (c->conn)
            virConnectClose(c->conn);
        c->conn = NULL;
        pthread_mutex_unlock(&c->lock);
        *ret = NULL;
        return 0;
    }
    if (!c->conn) {
        /* Opening under the lock: concurrent callers wait for one attempt
         * instead of racing to open several connections. */
        c->conn = virConnectOpen(c->uri);
        if (!c->conn) {
            int r = lv_error(err, NULL, "connecting to %s", c->uri);
            pthread_mutex_unlock(&c->lock);
            /* A failed open is not a lost connection: do not retry it. */
            return r == LV_ECONN ? -EIO : r;
        }
    }
    virConnectRef(c->conn);
    *ret = c->conn;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

void lv_conn_drop(lv_conn *c, virConnectPtr broken)
{
    pthread_mutex_lock(&c->lock);
    if (c->conn && c->conn == broken) {
        virConnectClose(c->conn);
        c->conn = NULL;
    }
    c->reconnects++;
    pthread_mutex_unlock(&c->lock);
}

int lv_conn_call(lv_conn *c, lv_op_fn op, void *arg, caa_error **err)
{
    for (int attempt = 0;; attempt++) {
        virConnectPtr conn = NULL;
        int r = lv_conn_get(c, &conn, err);
        if (r < 0)
            return r;
        caa_error *e = NULL;
        r = op(conn, arg, &e);
        if (r == LV_ECONN && attempt == 0) {
            caa_error_free(e);
            lv_conn_drop(c, conn);
            if (conn)
                virConnectClose(conn);
            continue;
        }
        if (conn)
            virConnectClose(conn);
        if (r < 0)
            return caa_error_propagate(err, &e);
        caa_error_free(e);
        return r;
    }
}
