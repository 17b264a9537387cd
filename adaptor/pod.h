/* The pod API: one pod sandbox and its lifecycle (CreateVM / StartVM / StopVM),
 * as the manager, the ttRPC services and observers see it.
 *
 * struct caa_pod is opaque here; only the pod layer (adaptor/pod*.c and the
 * hooks, through pod-internal.h) sees inside. Read a pod through the
 * accessors; follow its changes with a pod observer (manager.h). The state
 * machine is described in pod-state.h and docs/pod-lifecycle.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "annotations.h"
#include "manager.h"
#include "pod-state.h"
#include "provider.h"
#include "state-store.h"

#define CAA_AGENT_SOCKET_NAME "agent.ttrpc"

/* ---------------------------------------------------------------- reading a pod */

const char *caa_pod_id(const caa_pod *pod); /* the sandbox id */
caa_pod_state caa_pod_get_state(const caa_pod *pod);
const char *caa_pod_name(const caa_pod *pod);      /* Kubernetes pod name */
const char *caa_pod_namespace(const caa_pod *pod); /* Kubernetes namespace */
/* Kubernetes pod UID from the CreateVM annotations; NULL when not given or recovered. */
const char *caa_pod_uid(const caa_pod *pod);
const char *caa_pod_instance_name(const caa_pod *pod);
/* NULL until the provider reported the instance, and again after its deletion. */
const char *caa_pod_instance_id(const caa_pod *pod);
/* The instance's first IP (what the daemon tunnels to and dials), or NULL. */
const char *caa_pod_instance_ip(const caa_pod *pod);
const char *caa_pod_agent_socket(const caa_pod *pod); /* <pods-dir>/<id>/agent.ttrpc */
/* Loaded from a state file at start (its CreateVM request is not known). */
bool caa_pod_is_recovered(const caa_pod *pod);
/* The agent proxy's link to the VM's forwarder: "connected", "reconnecting"
 * (a (re)connect cycle runs), "down" (gave up; the next call retries), or ""
 * (no agent proxy). */
const char *caa_pod_agent_connection(const caa_pod *pod);

/* ---------------------------------------------------------------- finding pods */

caa_pod *caa_pod_find(caa_manager *m, const char *sandbox_id);
/* Does a registered pod account for this instance: its recorded id is id, or
 * (name non-NULL) its instance name is name (a create in flight, or a
 * recovered pod whose create had no answer)? For the orphan sweep. */
bool caa_pod_knows_instance(caa_manager *m, const char *id, const char *name);
/* The newest pod with this name and namespace whose instance id is known. */
const caa_pod *caa_pod_find_by_name(caa_manager *m, const char *pod_name, const char *pod_namespace);

/* ---------------------------------------------------------------- lifecycle */

/* CreateVM: validates, parses annotations, runs network_inspect, creates the
 * pod dir (0700), runs build_boot_data, lets the provider check the instance
 * spec (validate_spec: user-data size, ...), writes the state file and
 * registers the pod. -EINVAL bad input, -EEXIST duplicate id. Synchronous;
 * on failure nothing is left behind. auth_json: the pod's registry
 * credentials for /run/peerpod/auth.json (copied; NULL: none). */
int caa_pod_create(caa_manager *m, const char *sandbox_id, const caa_annotation *ann, size_t n_ann,
                   const char *netns_path, const char *auth_json, caa_pod **ret, caa_error **err);

/* StartVM: provider create -> network_setup -> proxy_start -> ready. cb gets
 * 0, or the error (-ECANCELED when StopVM or the caller cut it short) after
 * everything created so far is deleted. -EBUSY/-EALREADY synchronously when
 * the pod is not in the created state. */
int caa_pod_start(caa_pod *pod, caa_done_cb cb, void *opaque, caa_error **err);
/* The StartVM caller disconnected: fail the start at the next step (an agent
 * proxy still connecting is stopped at once) and clean up. */
void caa_pod_cancel_start(caa_pod *pod);
/* StopVM: tears down whatever exists; a StartVM in flight is cancelled first.
 * cb may be NULL (resumed stop of a recovered pod). Never fails synchronously;
 * cb runs later on the loop, never from inside this call. */
void caa_pod_stop(caa_pod *pod, caa_done_cb cb, void *opaque);

/* ---------------------------------------------------------------- the pod table (manager) */

/* Registers a pod loaded from its state file. Takes the record's contents. */
caa_pod *caa_pod_recover(caa_manager *m, caa_pod_record *rec);
/* After the start-up scan: resumes the StopVM of `stopping` pods, serves the
 * agent socket of `ready` ones again (the VM and its pod network outlived the
 * previous daemon; failures are logged, StopVM still deletes the pod). */
void caa_pods_resume(caa_manager *m);
/* Shutdown began (m->shutting_down is set): stops every agent proxy, so that a
 * StartVM whose proxy is still connecting ends now with -ESHUTDOWN. */
void caa_pods_shutdown(caa_manager *m);
/* After the loop ran dry at shutdown: answers what a provider callback the
 * torn-down provider dropped left open (StartVM, StopVM: -ESHUTDOWN), stops
 * the agent proxies and frees every pod. */
void caa_pods_release_all(caa_manager *m);
/* Calls fn for every registered pod, read-only: fn must not start, stop, add
 * or remove pods. */
void caa_pods_foreach(caa_manager *m, void (*fn)(const caa_pod *pod, void *opaque), void *opaque);
/* Frees every pod without answering anything (tests, and after release_all). */
void caa_pod_free_all(caa_manager *m);
/* Drops the observer registrations (caa_manager_done). */
void caa_pod_observers_free(caa_manager *m);
