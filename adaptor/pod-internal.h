/* Inside a pod: only the pod layer (adaptor/pod*.c) and the hooks
 * (pod-hooks.h: boot-data.c, pod-network.c, pod-proxy.c) include this.
 *
 * Who owns what:
 *  - rec.state changes only through caa_pod_set_state() (pod.c), which checks
 *    the transition table, writes the state file, logs and notifies observers;
 *  - the instance id/IPs change only through caa_pod_set_instance() /
 *    caa_pod_clear_instance() (persisted, then observers notified);
 *  - intent is what a caller asked of the pod that has not happened yet; the
 *    lifecycle (pod-lifecycle.c) reads it between steps. The daemon-wide
 *    shutdown is the manager's (m->shutting_down) and outranks any intent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "list.h"
#include "pod.h"
#include "refcount.h"

typedef enum caa_pod_intent {
    CAA_POD_INTENT_NONE = 0,
    CAA_POD_INTENT_CANCEL_START, /* the StartVM caller went away: fail the start at its next step */
    CAA_POD_INTENT_STOP,         /* StopVM asked: cancel any start, then tear everything down */
} caa_pod_intent;

const char *caa_pod_intent_name(caa_pod_intent i);

/* What may exist that a teardown must undo (besides the instance whose id is rec.instance_id). */
enum {
    CAA_POD_MADE_NETWORK = 1u << 0, /* network_setup succeeded */
    CAA_POD_MADE_PROXY = 1u << 1,   /* proxy_start called (the proxy may still be connecting) */
    /* A create was in flight without an answer when an earlier daemon stopped,
     * or it failed without reporting an instance: an instance may exist whose
     * id was never recorded; the teardown looks for it by name. Cleared by a
     * teardown that succeeded. */
    CAA_POD_MADE_UNKNOWN_INSTANCE = 1u << 2,
};

typedef struct caa_pod_waiter {
    caa_list node; /* in pod->stop_waiters */
    caa_done_cb cb;
    void *opaque;
} caa_pod_waiter;

struct caa_pod {
    caa_list node;       /* in mgr->pods while registered; unlinked (empty) otherwise */
    caa_pod *index_next; /* the next pod in its mgr->pod_index bucket */
    caa_manager *mgr;
    caa_pod_record rec; /* persisted */
    char *dir;          /* <pods-dir>/<id> */
    char *agent_socket; /* <dir>/agent.ttrpc */
    caa_pod_spec spec;  /* from CreateVM annotations; names only for recovered pods */
    char *netns_path;   /* CreateVM networkNamespacePath; NULL for recovered pods */
    char *user_data;    /* boot data from the build_boot_data hook; never logged */
    size_t user_data_len;
    bool multi_nic;  /* the VM gets a second NIC (external-net-via-pod-vm) */
    char *auth_json; /* registry credentials (/run/peerpod/auth.json) or NULL; never logged */
    bool recovered;  /* loaded from a state file at start */
    /* A recovered `created` pod whose start-request.json was read back: it can be started. */
    bool start_request_restored;
    /* user_data was dropped after start-request.json was written (or checked):
     * StartVM reads it back. */
    bool boot_data_on_disk;

    caa_pod_intent intent;
    unsigned made; /* CAA_POD_MADE_* */

    /* StartVM in flight (start_cb != NULL). */
    caa_done_cb start_cb;
    void *start_opaque;
    caa_error *start_error; /* why the start is failing, reported after cleanup */

    /* StopVM: every caller waits for the same teardown. */
    caa_list stop_waiters; /* of caa_pod_waiter */
    caa_error *stop_error; /* first teardown error */

    caa_refcount busy; /* async operations referencing this pod */

    void *network; /* pod network hook data */
    void *proxy;   /* agent proxy hook data */
};

/* The one place a pod's state changes: checks the transition table, writes
 * the state file (on a write failure nothing changes), logs, then notifies
 * observers. -EINVAL for a forbidden transition. Same state: no-op. */
int caa_pod_set_state(caa_pod *pod, caa_pod_state to, caa_error **err);
/* Records the instance the provider reported (id, up to CAA_STATE_MAX_IPS IPs),
 * persists, notifies observers. A failed write is logged: the id stays in
 * memory, so this daemon still deletes the instance. */
void caa_pod_set_instance(caa_pod *pod, const caa_instance *inst);
/* The instance was deleted: forgets it, persists, notifies observers. */
void caa_pod_clear_instance(caa_pod *pod);
/* Rewrites the state file after a field change (same state). */
int caa_pod_persist(caa_pod *pod, caa_error **err);

/* What the provider is asked to create for this pod (pointers into pod). */
void caa_pod_instance_spec(const caa_pod *pod, caa_instance_spec *ret);

/* Async operations on a pod hold it (and count as manager work); the last
 * release of a pod no longer in the table frees it. */
void caa_pod_hold(caa_pod *pod);
void caa_pod_release(caa_pod *pod);
/* Frees a pod that is no longer in the table and has nothing in flight. */
void caa_pod_free(caa_pod *pod);
/* Drops the pod from the table (after `gone`); observers hear pod_removed. */
void caa_pod_forget(caa_pod *pod);

/* pod-start-request.c: CreateVM saves what StartVM needs (start-request.h); a
 * pod recovered in `created` reads it back (a failure is logged and leaves the
 * pod unstartable). */
int caa_pod_save_start_request(caa_pod *pod, caa_error **err);
void caa_pod_restore_start_request(caa_pod *pod);
/* Reads start-request.json back into the pod (size, image, user-data); the
 * error names the file. StartVM calls it for a pod whose boot data waits on
 * disk. */
int caa_pod_load_start_request(caa_pod *pod, caa_error **err);
/* Wipes and frees the pod's user-data and registry credentials: a pod keeps
 * them in memory only while a StartVM needs them, not while it idles. */
void caa_pod_drop_boot_data(caa_pod *pod);

/* pod-lifecycle.c */
/* Answers a StartVM or StopVM whose provider callback the torn-down provider dropped (-ESHUTDOWN). */
void caa_pod_abandon(caa_pod *pod);
/* A ready pod recovered at start: starts its agent proxy again. */
void caa_pod_reconnect(caa_pod *pod);
/* Stops the agent proxy if one was started (also one still connecting: its
 * ready callback then runs with -ECANCELED). */
void caa_pod_stop_proxy(caa_pod *pod);

/* pod-observer.c */
void caa_pod_notify_added(caa_pod *pod);
void caa_pod_notify_state(caa_pod *pod, caa_pod_state from, caa_pod_state to);
void caa_pod_notify_instance(caa_pod *pod);
void caa_pod_notify_removed(caa_pod *pod);

/* VNIs of every registered pod (recovered ones included), for allocation. */
uint32_t *caa_pods_vnis_in_use(caa_manager *m, size_t *ret_n);
