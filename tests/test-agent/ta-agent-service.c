/* grpc.AgentService: the methods a pod's life needs. Other methods are not
 * registered and get UNIMPLEMENTED from the fallback in main.c.
 *
 * Containers are only bookkeeping plus processes: the OCI process runs in
 * the VM's own root file system as the agent's user, joined to the network
 * namespace the spec names (the forwarder adds the pod's). */
#define LOG_COMPONENT "test-agent"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "agent.pb-c.h"
#include "caa-version.h"
#include "cleanup.h"
#include "log.h"
#include "strv.h"
#include "test-agent.h"
#include "xalloc.h"

/* Memory block size a VM reports for hotplug; plausible for x86-64. */
#define TA_MEM_BLOCK_SIZE (128ull << 20)

/* ------------------------------------------------------------ containers */

static ta_container *container_find(ta_agent *a, const char *id)
{
    for (ta_container *c = a->containers; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

void ta_container_remove(ta_agent *a, ta_container *ctr)
{
    for (ta_container **pp = &a->containers; *pp; pp = &(*pp)->next) {
        if (*pp == ctr) {
            *pp = ctr->next;
            break;
        }
    }
    while (ctr->procs) {
        ta_process *p = ctr->procs;
        ctr->procs = p->next;
        ta_process_detach(p);
    }
    log_info("container %s removed", ctr->id);
    free(ctr->id);
    free(ctr->exec_id);
    caa_strv_free(ctr->args);
    caa_strv_free(ctr->env);
    free(ctr->cwd);
    free(ctr->netns);
    free(ctr);
}

void ta_remove_all(ta_agent *a)
{
    while (a->containers)
        ta_container_remove(a, a->containers);
}

static char **strv_from(char **v, size_t n)
{
    char **out = xnew0(char *, n + 1);
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

/* Empty exec id, the container id or the CreateContainer exec id: the
 * container's own process (the shim uses the container id). */
static ta_process *process_find(ta_container *ctr, const char *exec_id)
{
    if (!exec_id || !*exec_id || strcmp(exec_id, ctr->id) == 0 || strcmp(exec_id, ctr->exec_id) == 0) {
        for (ta_process *p = ctr->procs; p; p = p->next)
            if (p->init)
                return p;
        return NULL;
    }
    return ta_process_find(ctr->procs, exec_id);
}

/* Finds a process or answers the call with code (NOT_FOUND for most
 * calls; the kata-agent uses others for CloseStdin and TtyWinResize). */
static ta_process *lookup_code(ta_agent *a, ttrpc_call *c, const char *cid, const char *eid, int code)
{
    ta_container *ctr = container_find(a, cid ? cid : "");
    if (!ctr) {
        ttrpc_call_reply_error(c, code, "container %s not found", cid ? cid : "");
        return NULL;
    }
    ta_process *p = process_find(ctr, eid);
    if (!p) {
        ttrpc_call_reply_error(c, code, "process '%s' of container %s not found", eid ? eid : "", ctr->id);
        return NULL;
    }
    return p;
}

static ta_process *lookup(ta_agent *a, ttrpc_call *c, const char *cid, const char *eid)
{
    return lookup_code(a, c, cid, eid, GRPC_NOT_FOUND);
}

/* OCI Process.Terminal and ConsoleSize. Our oci.proto declares Box empty:
 * Height (1) and Width (2) are in its unknown fields. */
static bool process_tty(const Grpc__Process *proc, ta_tty *ret)
{
    if (!proc->terminal)
        return false;
    *ret = (ta_tty){0};
    if (proc->consolesize) {
        uint64_t h = ta_unknown_varint(&proc->consolesize->base, 1, 0);
        uint64_t w = ta_unknown_varint(&proc->consolesize->base, 2, 0);
        ret->rows = h > UINT16_MAX ? UINT16_MAX : (uint16_t)h;
        ret->cols = w > UINT16_MAX ? UINT16_MAX : (uint16_t)w;
    }
    return true;
}

/* ------------------------------------------------------------ sandbox */

static void h_create_sandbox(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__CreateSandboxRequest *req =
        ta_unpack(c, &grpc__create_sandbox_request__descriptor);
    if (!req)
        return;
    a->sandbox_created = true;
    log_info("sandbox %s created (hostname %s, %zu dns entries)", req->sandbox_id, req->hostname, req->n_dns);
    ta_reply_empty(c);
}

static void h_destroy_sandbox(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__DestroySandboxRequest *req =
        ta_unpack(c, &grpc__destroy_sandbox_request__descriptor);
    if (!req)
        return;
    ta_remove_all(a);
    a->sandbox_created = false;
    /* As the kata-agent: the OOM event channel closes with the sandbox and
     * held GetOOMEvent calls end with INTERNAL and no message. */
    while (a->oom_waiters)
        ttrpc_call_reply_error(ta_unpark(&a->oom_waiters, NULL), GRPC_INTERNAL, "%s", "");
    log_info("sandbox destroyed");
    ta_reply_empty(c);
}

static void h_set_policy(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__SetPolicyRequest *req = ta_unpack(c, &grpc__set_policy_request__descriptor);
    if (!req)
        return;
    free(a->policy);
    a->policy = xstrdup(req->policy);
    log_info("policy set (%zu bytes, not enforced)", strlen(a->policy));
    ta_reply_empty(c);
}

static void h_get_guest_details(ttrpc_call *c, void *opaque)
{
    ta_begin(c, opaque);
    _cleanup_message_ Grpc__GuestDetailsRequest *req = ta_unpack(c, &grpc__guest_details_request__descriptor);
    if (!req)
        return;
    char *storage_handlers[] = {(char *)"image_guest_pull"};
    Grpc__AgentDetails details = GRPC__AGENT_DETAILS__INIT;
    details.version = (char *)(TA_NAME " " CAA_VERSION);
    details.init_daemon = false;
    details.n_storage_handlers = CAA_ARRAY_SIZE(storage_handlers);
    details.storage_handlers = storage_handlers;
    Grpc__GuestDetailsResponse resp = GRPC__GUEST_DETAILS_RESPONSE__INIT;
    resp.mem_block_size_bytes = req->mem_block_size ? TA_MEM_BLOCK_SIZE : 0;
    resp.agent_details = &details;
    resp.support_mem_hotplug_probe = false;
    ta_reply(c, &resp.base);
}

static void h_copy_file(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__CopyFileRequest *req = ta_unpack(c, &grpc__copy_file_request__descriptor);
    if (!req)
        return;
    _cleanup_error_ caa_error *e = NULL;
    if (ta_copy_file(a->scratch_dir, req->path, req->offset, req->file_mode, req->dir_mode, req->data.data,
                     req->data.len, &e) < 0) {
        log_warn("%s", caa_error_msg(e));
        ta_reply_error(c, e);
        return;
    }
    log_debug("CopyFile %s: %zu bytes at %lld", req->path, req->data.len, (long long)req->offset);
    ta_reply_empty(c);
}

/* ------------------------------------------------------------ containers */

static void h_create_container(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__CreateContainerRequest *req =
        ta_unpack(c, &grpc__create_container_request__descriptor);
    if (!req)
        return;
    if (!*req->container_id) {
        ttrpc_call_reply_error(c, GRPC_INVALID_ARGUMENT, "CreateContainer: container_id is empty");
        return;
    }
    if (container_find(a, req->container_id)) {
        ttrpc_call_reply_error(c, GRPC_ALREADY_EXISTS, "container %s already exists", req->container_id);
        return;
    }
    Grpc__Spec *spec = req->oci;
    if (!spec || !spec->process || spec->process->n_args == 0) {
        ttrpc_call_reply_error(c, GRPC_INVALID_ARGUMENT, "container %s: the OCI spec has no process args",
                               req->container_id);
        return;
    }
    /* The last network namespace with a path wins (the forwarder appends
     * the pod's). One without a path would be a new namespace: not offered. */
    const char *netns = NULL;
    if (spec->linux) {
        for (size_t i = 0; i < spec->linux->n_namespaces; i++) {
            const Grpc__LinuxNamespace *ns = spec->linux->namespaces[i];
            if (strcmp(ns->type, "network") == 0 && *ns->path)
                netns = ns->path;
        }
    }
    if (!netns && *a->pod_netns)
        netns = a->pod_netns;

    ta_container *ctr = xnew0(ta_container, 1);
    ctr->id = xstrdup(req->container_id);
    ctr->exec_id = xstrdup(*req->exec_id ? req->exec_id : req->container_id);
    ctr->args = strv_from(spec->process->args, spec->process->n_args);
    ctr->env = strv_from(spec->process->env, spec->process->n_env);
    ctr->cwd = xstrdup(spec->process->cwd);
    ctr->netns = netns ? xstrdup(netns) : NULL;
    ctr->terminal = process_tty(spec->process, &ctr->tty);
    ctr->next = a->containers;
    a->containers = ctr;
    log_info("container %s created (%s, network namespace %s)", ctr->id, ctr->args[0],
             ctr->netns ? ctr->netns : "of the agent");
    ta_reply_empty(c);
}

static void h_start_container(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__StartContainerRequest *req =
        ta_unpack(c, &grpc__start_container_request__descriptor);
    if (!req)
        return;
    ta_container *ctr = container_find(a, req->container_id);
    if (!ctr) {
        ttrpc_call_reply_error(c, GRPC_NOT_FOUND, "container %s not found", req->container_id);
        return;
    }
    if (ctr->started) {
        ttrpc_call_reply_error(c, GRPC_FAILED_PRECONDITION, "container %s already started", ctr->id);
        return;
    }
    _cleanup_error_ caa_error *e = NULL;
    if (ta_process_spawn(a, &ctr->procs, ctr->exec_id, true, ctr->args, ctr->env, ctr->cwd, ctr->netns,
                         ctr->terminal ? &ctr->tty : NULL, NULL, &e) < 0) {
        log_warn("container %s: %s", ctr->id, caa_error_msg(e));
        ta_reply_error(c, e);
        return;
    }
    ctr->started = true;
    ta_reply_empty(c);
}

static void h_exec_process(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__ExecProcessRequest *req = ta_unpack(c, &grpc__exec_process_request__descriptor);
    if (!req)
        return;
    ta_container *ctr = container_find(a, req->container_id);
    if (!ctr) {
        ttrpc_call_reply_error(c, GRPC_NOT_FOUND, "container %s not found", req->container_id);
        return;
    }
    if (!ctr->started) {
        ttrpc_call_reply_error(c, GRPC_FAILED_PRECONDITION, "container %s is not started", ctr->id);
        return;
    }
    if (!*req->exec_id || strcmp(req->exec_id, ctr->id) == 0 || strcmp(req->exec_id, ctr->exec_id) == 0) {
        ttrpc_call_reply_error(c, GRPC_INVALID_ARGUMENT, "ExecProcess: exec_id '%s' is not usable",
                               req->exec_id);
        return;
    }
    if (!req->process || req->process->n_args == 0) {
        ttrpc_call_reply_error(c, GRPC_INVALID_ARGUMENT, "ExecProcess %s: no process args", req->exec_id);
        return;
    }
    _cleanup_strv_ char **args = strv_from(req->process->args, req->process->n_args);
    _cleanup_strv_ char **env = strv_from(req->process->env, req->process->n_env);
    _cleanup_error_ caa_error *e = NULL;
    ta_tty tty;
    bool terminal = process_tty(req->process, &tty);
    if (ta_process_spawn(a, &ctr->procs, req->exec_id, false, args, env, req->process->cwd, ctr->netns,
                         terminal ? &tty : NULL, NULL, &e) < 0) {
        log_warn("container %s: %s", ctr->id, caa_error_msg(e));
        ta_reply_error(c, e);
        return;
    }
    ta_reply_empty(c);
}

static void h_wait_process(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__WaitProcessRequest *req = ta_unpack(c, &grpc__wait_process_request__descriptor);
    if (!req)
        return;
    ta_process *p = lookup(a, c, req->container_id, req->exec_id);
    if (p)
        ta_process_wait(p, c);
}

static void h_signal_process(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__SignalProcessRequest *req =
        ta_unpack(c, &grpc__signal_process_request__descriptor);
    if (!req)
        return;
    if (req->signal >= (uint32_t)SIGRTMAX + 1) {
        ttrpc_call_reply_error(c, GRPC_INVALID_ARGUMENT, "signal %u out of range", req->signal);
        return;
    }
    ta_process *p = lookup(a, c, req->container_id, req->exec_id);
    if (!p)
        return;
    _cleanup_error_ caa_error *e = NULL;
    if (ta_process_signal(p, (int)req->signal, &e) < 0) {
        ta_reply_error(c, e);
        return;
    }
    ta_reply_empty(c);
}

static void read_stream(ttrpc_call *c, void *opaque, bool err_stream)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__ReadStreamRequest *req = ta_unpack(c, &grpc__read_stream_request__descriptor);
    if (!req)
        return;
    ta_process *p = lookup(a, c, req->container_id, req->exec_id);
    if (p)
        ta_process_read(p, err_stream, req->len, c);
}

static void h_read_stdout(ttrpc_call *c, void *opaque)
{
    read_stream(c, opaque, false);
}

static void h_read_stderr(ttrpc_call *c, void *opaque)
{
    read_stream(c, opaque, true);
}

static void h_write_stdin(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__WriteStreamRequest *req = ta_unpack(c, &grpc__write_stream_request__descriptor);
    if (!req)
        return;
    ta_process *p = lookup(a, c, req->container_id, req->exec_id);
    if (p)
        ta_process_write(p, req->data.data, req->data.len, c);
}

static void h_close_stdin(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__CloseStdinRequest *req = ta_unpack(c, &grpc__close_stdin_request__descriptor);
    if (!req)
        return;
    /* Our agent.proto declares CloseStdinRequest empty; the agent's has
     * 1 container_id and 2 exec_id, which protobuf-c kept as unknown fields. */
    _cleanup_free_ char *cid = ta_unknown_string(&req->base, 1);
    _cleanup_free_ char *eid = ta_unknown_string(&req->base, 2);
    ta_process *p = lookup_code(a, c, cid, eid, GRPC_INVALID_ARGUMENT);
    if (!p)
        return;
    _cleanup_error_ caa_error *e = NULL;
    if (ta_process_close_stdin(p, &e) < 0) {
        ta_reply_error(c, e);
        return;
    }
    ta_reply_empty(c);
}

static void h_tty_win_resize(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__TtyWinResizeRequest *req =
        ta_unpack(c, &grpc__tty_win_resize_request__descriptor);
    if (!req)
        return;
    /* Declared empty in our agent.proto: 1 container_id, 2 exec_id,
     * 3 row, 4 column. The kata-agent answers UNAVAILABLE when the process
     * is unknown or has no terminal, INTERNAL when the ioctl fails. */
    _cleanup_free_ char *cid = ta_unknown_string(&req->base, 1);
    _cleanup_free_ char *eid = ta_unknown_string(&req->base, 2);
    uint64_t row = ta_unknown_varint(&req->base, 3, 0);
    uint64_t column = ta_unknown_varint(&req->base, 4, 0);
    ta_process *p = lookup_code(a, c, cid, eid, GRPC_UNAVAILABLE);
    if (!p)
        return;
    _cleanup_error_ caa_error *e = NULL;
    if (ta_process_resize(p, (uint16_t)row, (uint16_t)column, &e) < 0) {
        ttrpc_call_reply_error(c, e->code == -ENODEV ? GRPC_UNAVAILABLE : GRPC_INTERNAL, "%s",
                               caa_error_msg(e));
        return;
    }
    log_debug("process %s: terminal %llux%llu", p->exec_id, (unsigned long long)row,
              (unsigned long long)column);
    ta_reply_empty(c);
}

/* The kata-agent holds this call until a container hits its memory limit
 * or the sandbox ends. Nothing here runs under a memory cgroup, so only the
 * end comes (DestroySandbox); the shim's OOM watcher just waits, as with
 * the real agent. */
static void h_get_oom_event(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__GetOOMEventRequest *req = ta_unpack(c, &grpc__get_oomevent_request__descriptor);
    if (!req)
        return;
    ta_park(&a->oom_waiters, c, 0);
}

static void h_remove_container(ttrpc_call *c, void *opaque)
{
    ta_agent *a = ta_begin(c, opaque);
    _cleanup_message_ Grpc__RemoveContainerRequest *req =
        ta_unpack(c, &grpc__remove_container_request__descriptor);
    if (!req)
        return;
    ta_container *ctr = container_find(a, req->container_id);
    if (!ctr) {
        ttrpc_call_reply_error(c, GRPC_NOT_FOUND, "container %s not found", req->container_id);
        return;
    }
    ta_container_remove(a, ctr);
    ta_reply_empty(c);
}

static const ttrpc_method_entry agent_methods[] = {
    {"CreateSandbox", h_create_sandbox},
    {"DestroySandbox", h_destroy_sandbox},
    {"SetPolicy", h_set_policy},
    {"GetGuestDetails", h_get_guest_details},
    {"CopyFile", h_copy_file},
    {"CreateContainer", h_create_container},
    {"StartContainer", h_start_container},
    {"ExecProcess", h_exec_process},
    {"WaitProcess", h_wait_process},
    {"SignalProcess", h_signal_process},
    {"ReadStdout", h_read_stdout},
    {"ReadStderr", h_read_stderr},
    {"WriteStdin", h_write_stdin},
    {"CloseStdin", h_close_stdin},
    {"TtyWinResize", h_tty_win_resize},
    {"GetOOMEvent", h_get_oom_event},
    {"RemoveContainer", h_remove_container},
};

int ta_register_agent_service(ta_agent *a, caa_error **err)
{
    return ttrpc_server_register(a->server, "grpc.AgentService", agent_methods, CAA_ARRAY_SIZE(agent_methods),
                                 a, err);
}
