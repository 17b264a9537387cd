/* Shared between the files of the libvirt provider (and its unit tests). */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libvirt/libvirt.h>
#include <uv.h>

#include "conn.h"
#include "host.h"
#include "libvirt-config.h"
#include "libvirt-provider.h"
#include "provider-op.h"
#include "provider.h"
#include "refcount.h"
#include "worker.h"

/* Two threads: a slow call (upload, a wedged host) does not hold up every
 * other pod, and the shared connection is not hammered. */
#define LV_WORKER_THREADS 2
/* Between DHCP lease lookups while a pod VM boots. */
#define LV_ADDRESS_POLL_MS 1000
#define LV_USER_DATA_MAX (64u << 20)

/* Test hooks (caa_libvirt_test_set_faults). */
enum {
    /* Someone else starts the domain between our define and start, so our
     * virDomainCreate fails for real ("domain is already running"). */
    LV_FAULT_START_RACE = 1u << 0,
    /* DHCP lease lookups find no address. */
    LV_FAULT_NO_ADDRESS = 1u << 1,
    /* Cleanup after a failed create fails. */
    LV_FAULT_CLEANUP = 1u << 2,
};

typedef struct lv_create_req lv_create_req;

typedef struct lv_provider {
    uv_loop_t *loop;
    const lv_config *cfg;
    lv_settings set;
    lv_conn conn;
    lv_worker *worker;

    pthread_mutex_t host_lock;
    bool host_ready;
    lv_host host;

    /* Loop thread only. */
    caa_op_set ops;       /* requests in flight */
    caa_refcount pending; /* the op set and the worker, each until closed */
    bool stopping;

    atomic_uint faults;
} lv_provider;

/* What a create has done so far; survives a reconnect-and-retry so the
 * cleanup knows exactly what to remove. */
typedef struct lv_create_state {
    char *name;
    char *sandbox_id;
    char *pod_name;
    char *pod_namespace;
    char *image;
    char *idempotency_key;
    char **tags;
    int64_t vcpus;
    int64_t memory_mib;
    const char *user_data; /* caller's, valid until the callback */
    size_t user_data_len;

    char uuid[VIR_UUID_STRING_BUFLEN];
    bool adopted; /* the domain existed before this create: never removed by cleanup */
    bool created_root, created_iso, define_attempted, defined, started;
} lv_create_state;

void lv_create_state_done(lv_create_state *st);

/* Worker-thread actions (blocking libvirt calls). */
int lv_host_get(lv_provider *p, virConnectPtr conn, const lv_host **ret, caa_error **err);
int lv_do_create(lv_provider *p, lv_create_state *st, caa_error **err);
int lv_do_cleanup(lv_provider *p, lv_create_state *st, caa_error **err);
/* *ret_ips: IPv4 first, then IPv6; NULL when the lease is not there yet. */
int lv_do_addresses(lv_provider *p, const char *uuid, char ***ret_ips, caa_error **err);
int lv_do_delete(lv_provider *p, const char *uuid, caa_error **err);
int lv_do_list(lv_provider *p, caa_instance ***ret, caa_error **err);
int lv_do_get(lv_provider *p, const char *uuid, caa_instance **ret, caa_error **err);
int lv_do_verify(lv_provider *p, caa_error **err);

/* Test hooks; priv is the provider's private pointer. */
void caa_libvirt_test_set_faults(void *priv, unsigned faults);
/* The provider's own connection (opened if needed); the test driver keeps
 * its state per connection, so tests seed and inspect through this one.
 * Release with virConnectClose. Use only while no job runs. */
virConnectPtr caa_libvirt_test_connection(void *priv, caa_error **err);
/* The next n connection hand-outs close the shared connection and give the
 * caller none, as if libvirtd had gone away. */
void caa_libvirt_test_break_connection(void *priv, unsigned n);
unsigned caa_libvirt_test_reconnects(void *priv);
