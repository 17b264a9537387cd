/* One pod sandbox and its lifecycle (CreateVM / StartVM / StopVM).
 *
 * The persisted part (caa_pod_record) is written to <pods-dir>/<id>/state.json
 * before each side effect it announces (pod-state.h has the state machine).
 * The lifecycle talks to the provider and the hooks (pod-hooks.h) and reports
 * through caa_done_cb callbacks; the ttRPC glue lives in hypervisor-service.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "annotations.h"
#include "list.h"
#include "manager.h"
#include "pod-state.h"
#include "provider.h"
#include "state-store.h"

#define CAA_AGENT_SOCKET_NAME "agent.ttrpc"

typedef struct caa_pod_waiter {
    caa_done_cb cb;
    void *opaque;
} caa_pod_waiter;

struct caa_pod {
    caa_list node;
    caa_manager *mgr;
    caa_pod_record rec; /* persisted */
    char *dir;          /* <pods-dir>/<id> */
    char *agent_socket; /* <dir>/agent.ttrpc */
    caa_pod_spec spec;  /* from CreateVM annotations; empty for recovered pods */
    char *netns_path;   /* CreateVM networkNamespacePath; NULL for recovered pods */
    char *user_data;    /* boot data from the build_boot_data hook; never logged */
    size_t user_data_len;
    bool recovered; /* loaded from a state file at start */

    /* StartVM in flight. */
    caa_done_cb start_cb;
    void *start_opaque;
    bool start_cancelled;   /* the caller went away */
    bool network_set_up;    /* network_setup hook succeeded */
    bool proxy_started;     /* proxy_start hook succeeded (or in progress) */
    caa_error *start_error; /* why the start is failing, reported after cleanup */

    /* StopVM in flight: every caller waits for the same teardown. */
    bool stop_requested;
    caa_pod_waiter *stop_waiters;
    size_t n_stop_waiters;
    caa_error *stop_error; /* first teardown error */

    unsigned busy; /* async operations referencing this pod */
    bool in_table; /* linked in mgr->pods */

    void *network; /* pod network hook data */
    void *proxy;   /* agent proxy hook data */
};

/* CreateVM: validates, parses annotations, runs network_inspect, creates the
 * pod dir (0700), runs build_boot_data, lets the provider check the instance
 * spec (validate_spec: user-data size, ...), writes the state file and
 * registers the pod. -EINVAL bad input, -EEXIST duplicate id. Synchronous;
 * on failure nothing is left behind. */
int caa_pod_create(caa_manager *m, const char *sandbox_id, const caa_annotation *ann, size_t n_ann,
                   const char *netns_path, caa_pod **ret, caa_error **err);
/* Registers a pod loaded from its state file. Takes the record's contents. */
caa_pod *caa_pod_recover(caa_manager *m, caa_pod_record *rec);

/* StartVM: provider create -> network_setup -> proxy_start -> ready. cb gets
 * 0, or the error (-ECANCELED when StopVM or the caller cut it short) after
 * everything created so far is deleted. -EBUSY/-EALREADY synchronously when
 * the pod is not in the created state. */
int caa_pod_start(caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err);
/* The StartVM caller disconnected: fail the start at the next step (an agent
 * proxy still connecting is stopped at once) and clean up. */
void caa_pod_cancel_start(caa_pod *pod);
/* After the loop ran dry at shutdown: answers a StartVM or StopVM whose
 * provider callback the torn-down provider dropped (-ESHUTDOWN). */
void caa_pod_abandon(caa_pod *pod);
/* A ready pod recovered at start: starts its agent proxy again (the VM and
 * its tunnel outlive the daemon). Failures are logged; the pod stays ready
 * and StopVM still deletes it. */
void caa_pod_reconnect(caa_pod *pod);
/* What the provider is asked to create for this pod (pointers into pod). */
void caa_pod_instance_spec(const caa_pod *pod, caa_instance_spec *ret);
/* StopVM: tears down whatever exists; a StartVM in flight is cancelled first.
 * cb may be NULL (resumed stop of a recovered pod). Never fails synchronously. */
void caa_pod_stop(caa_pod *pod, caa_done_cb cb, void *opaque);

/* Moves the state machine to `to` and writes the state file first; on a
 * write failure the state is unchanged. -EINVAL for a forbidden transition. */
int caa_pod_transition(caa_pod *pod, caa_pod_state to, caa_error **err);
/* Rewrites the state file after a field change (same state). */
int caa_pod_persist(caa_pod *pod, caa_error **err);

/* Async operations on a pod hold it (and count as manager work); the last
 * release of a pod no longer in the table frees it. */
void caa_pod_hold(caa_pod *pod);
void caa_pod_release(caa_pod *pod);

/* Frees a pod that is no longer in the table and has nothing in flight. */
void caa_pod_free(caa_pod *pod);
/* Frees every pod at shutdown (after in-flight work drained). */
void caa_pod_free_all(caa_manager *m);

/* Called when the pod's instance id becomes known (podvminfo wakes waiters). */
void caa_podvminfo_instance_known(caa_manager *m, caa_pod *pod);
