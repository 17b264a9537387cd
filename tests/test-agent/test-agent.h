/* caa-test-agent: a stand-in for the kata-agent in local test pod VMs.
 *
 * It serves grpc.Health and the part of grpc.AgentService a pod's life
 * needs (sandbox, containers, processes, stdio, CopyFile) on a unix socket,
 * runs container processes directly in the VM (no rootfs, no cgroups, no
 * user switch), and records every request it receives so tests can see what
 * arrived after the forwarder rewrote it. Replies use the Rust ttrpc
 * encoding (explicit status {code: 0}) like the real agent.
 *
 * Everything runs on one libuv loop; long calls (WaitProcess, ReadStdout,
 * ReadStderr) are parked and answered when their event happens. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "error.h"
#include "ttrpc.h"

#define TA_NAME "caa-test-agent"
#define TA_DEFAULT_SOCKET "/run/kata-containers/agent.sock"
#define TA_DEFAULT_SCRATCH "/run/caa-test-agent/files"
/* argv[1] that turns the program into a pause process (see ta_pause_main). */
#define TA_PAUSE_ARG "--internal-pause"

typedef struct ta_agent ta_agent;
typedef struct ta_container ta_container;
typedef struct ta_process ta_process;
typedef struct ta_pending ta_pending;

/* A call parked until an event (process exit, output, EOF). */
struct ta_pending {
    ta_pending *next;
    ta_pending **list; /* list it is on */
    ttrpc_call *call;
    uint32_t max_len; /* reads: most bytes to return */
};

/* One output stream of a process (stdout or stderr), read into a buffer. */
typedef struct ta_stream {
    uv_pipe_t pipe;
    ta_process *proc;
    uint8_t *buf;
    size_t len;
    bool open;    /* handle not closed yet */
    bool reading; /* uv_read_start active */
    bool eof;     /* no more data will come */
    ta_pending *readers;
} ta_stream;

struct ta_process {
    ta_process *next; /* in the container's list, or the agent's orphans */
    ta_agent *agent;
    char *exec_id; /* the init process carries the container's exec id */
    bool init;
    uv_process_t handle;
    uv_pipe_t in;
    ta_stream out, err;
    bool in_open;
    bool exited;
    int status; /* exit code, 128 + signal when killed */
    unsigned open_handles;
    bool detached; /* owner gone: free once every handle is closed */
    ta_pending *waiters;
};

struct ta_container {
    ta_container *next;
    char *id;
    char *exec_id;
    char **args, **env;
    char *cwd;
    char *netns; /* network namespace to join, NULL: the agent's */
    bool started;
    ta_process *procs;
};

struct ta_agent {
    uv_loop_t *loop;
    ttrpc_server *server;
    const char *scratch_dir; /* CopyFile writes <scratch_dir>/<path> */
    const char *pod_netns;   /* joined when a spec names no network namespace ("" none) */
    char *self_path;         /* this program, for the built-in pause */
    FILE *record;
    ta_container *containers;
    ta_process *orphans;
    char *policy;
    bool sandbox_created;
};

static inline void ta_message_freep(void *p)
{
    ProtobufCMessage **m = p;
    if (*m)
        protobuf_c_message_free_unpacked(*m, NULL);
}
/* For any generated message pointer (the ProtobufCMessage base comes first). */
#define _cleanup_message_ _cleanup_(ta_message_freep)

/* ---- replies (ta-reply.c): Rust ttrpc form, status {code: 0} present */
void ta_reply(ttrpc_call *c, const ProtobufCMessage *msg);
void ta_reply_empty(ttrpc_call *c);
/* Error reply with the gRPC code for a caa_error's class. */
void ta_reply_error(ttrpc_call *c, const caa_error *e);
/* Unpacks the call's payload; on failure answers the call and returns NULL. */
void *ta_unpack(ttrpc_call *c, const ProtobufCMessageDescriptor *desc);
/* A length-delimited field of a message's unknown fields (messages our
 * subset .proto declares empty), copied as a string; NULL when absent. */
char *ta_unknown_string(const ProtobufCMessage *m, uint32_t field);

/* ---- record file (ta-record.c) */
int ta_record_open(const char *path, FILE **ret, caa_error **err);
void ta_record_call(FILE *f, const ttrpc_call *c);

/* ---- services (ta-health.c, ta-agent-service.c) */
/* Records the request and logs it; every handler starts with it. */
ta_agent *ta_begin(ttrpc_call *c, void *opaque);
int ta_register_health(ta_agent *a, caa_error **err);
int ta_register_agent_service(ta_agent *a, caa_error **err);

/* ---- CopyFile (ta-copy-file.c) */
/* Accepts only absolute paths under /run without "." or ".." components. */
int ta_copy_path_check(const char *path, caa_error **err);
int ta_copy_file(const char *scratch_dir, const char *path, int64_t offset, uint32_t file_mode,
                 uint32_t dir_mode, const uint8_t *data, size_t len, caa_error **err);

/* ---- processes (ta-process.c) */
/* Starts args/env/cwd, joining netns (a path, or NULL). The new process is
 * pushed on *list. */
int ta_process_spawn(ta_agent *a, ta_process **list, const char *exec_id, bool init, char *const *args,
                     char *const *env, const char *cwd, const char *netns, ta_process **ret, caa_error **err);
ta_process *ta_process_find(ta_process *list, const char *exec_id);
/* Parks a WaitProcess call, or answers it now when the process has exited. */
void ta_process_wait(ta_process *p, ttrpc_call *c);
/* Parks a ReadStdout/ReadStderr call, or answers it now (data or EOF). */
void ta_process_read(ta_process *p, bool err_stream, uint32_t max_len, ttrpc_call *c);
/* Writes to stdin; answers WriteStreamResponse{len} once written. */
void ta_process_write(ta_process *p, const uint8_t *data, size_t len, ttrpc_call *c);
int ta_process_close_stdin(ta_process *p, caa_error **err);
int ta_process_signal(ta_process *p, int signum, caa_error **err);
/* Kills the process group, closes stdio and moves the process to the
 * agent's orphans, where it is freed once its handles are closed. */
void ta_process_detach(ta_process *p);

/* ---- containers (ta-agent-service.c) */
void ta_container_remove(ta_agent *a, ta_container *ctr);
void ta_remove_all(ta_agent *a);

/* The pause process the built-in pause image uses. */
int ta_pause_main(void);
