/* The provider's libvirt connection: opened lazily on a worker thread,
 * shared by the workers, reopened once when a call finds it broken (libvirtd
 * restarted, SSH transport dropped). Also the translation of libvirt errors,
 * which must be read on the thread that made the failing call. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include <libvirt/libvirt.h>

#include "error.h"

/* A libvirt call failed because the connection is gone; lv_conn_call retries. */
#define LV_ECONN (-ECONNRESET)

typedef struct lv_conn {
    pthread_mutex_t lock;
    char *uri;
    virConnectPtr conn;
    unsigned reconnects;
    /* Test hook: the next n lv_conn_get calls hand out no connection, so the
     * call fails inside libvirt with an invalid-connection error. */
    unsigned test_broken_gets;
} lv_conn;

void lv_conn_init(lv_conn *c, const char *uri);
void lv_conn_done(lv_conn *c);

/* A new reference to the shared connection (release with virConnectClose),
 * opening it first when needed. */
int lv_conn_get(lv_conn *c, virConnectPtr *ret, caa_error **err);
/* Forgets the shared connection if it is still `broken`. */
void lv_conn_drop(lv_conn *c, virConnectPtr broken);

typedef int (*lv_op_fn)(virConnectPtr conn, void *arg, caa_error **err);
/* Runs op with the shared connection. When op fails with LV_ECONN the
 * connection is reopened and op runs once more; op must therefore be safe to
 * repeat (every op in this provider looks up its objects by name). */
int lv_conn_call(lv_conn *c, lv_op_fn op, void *arg, caa_error **err);

/* Turns virGetLastError() of the calling thread into *err, prefixed with the
 * formatted context, and returns the class code: -ENOENT for missing
 * objects, -EEXIST, -EINVAL for rejected XML/values, -EOPNOTSUPP, -EACCES,
 * LV_ECONN for a lost connection, -EIO otherwise. conn may be NULL. */
int lv_error(caa_error **err, virConnectPtr conn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The libvirt error code of the calling thread's last error (VIR_ERR_OK if none). */
int lv_last_error_code(void);
