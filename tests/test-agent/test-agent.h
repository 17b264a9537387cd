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
/* argv[1] of the wrapper that makes the pty its controlling terminal and
 * execs argv[2] with argv[3..] (see ta_tty_exec_main). */
#define TA_TTY_ARG "--internal-tty-exec"

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
    bool open;     /* handle not closed yet */
    bool reading;  /* uv_read_start active */
    bool eof;      /* no more data will come */
    bool hung_up;  /* terminal closed by CloseStdin: readers get "eof" */
    bool end_told; /* a reader got the end-of-stream error */
    ta_pending *readers;
} ta_stream;

/* A terminal for a process (OCI Process.Terminal); rows/cols 0: unset. */
typedef struct ta_tty {
    uint16_t rows, cols;
} ta_tty;

struct ta_process {
    ta_process *next;   /* in the container's list, or the agent's orphans */
    ta_process **owner; /* the container's list while it is on one */
    ta_agent *agent;
    char *exec_id; /* the init process carries the container's exec id */
    bool init;
    uv_process_t handle;
    uv_pipe_t in;
    ta_stream out, err;
    bool in_open;
    bool terminal; /* on a pty: one output stream, in writes the master */
    bool exited;
    bool reaped;    /* a WaitProcess got the status: an exec is then forgotten */
    int tty_master; /* pty master (owned by out.pipe), -1 without a terminal */
    int status;     /* exit code, 128 + signal when killed */
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
    bool terminal;
    ta_tty tty; /* OCI ConsoleSize when terminal */
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
    ta_pending *oom_waiters; /* GetOOMEvent calls, held until the sandbox ends */
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

/* ---- parked calls (ta-process.c): FIFO lists, cancelled with their connection */
void ta_park(ta_pending **list, ttrpc_call *c, uint32_t max_len);
ttrpc_call *ta_unpark(ta_pending **list, uint32_t *ret_max_len);

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
/* A varint field of a message's unknown fields; dflt when absent. */
uint64_t ta_unknown_varint(const ProtobufCMessage *m, uint32_t field, uint64_t dflt);

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
/* Starts args/env/cwd, joining netns (a path, or NULL), on a new pty when
 * tty is given (else on three socket pairs). The new process is pushed on
 * *list. */
int ta_process_spawn(ta_agent *a, ta_process **list, const char *exec_id, bool init, char *const *args,
                     char *const *env, const char *cwd, const char *netns, const ta_tty *tty,
                     ta_process **ret, caa_error **err);
ta_process *ta_process_find(ta_process *list, const char *exec_id);
/* Parks a WaitProcess call, or answers it now when the process has exited.
 * After that answer an exec process is forgotten once its output is read
 * (the kata-agent removes it at once and keeps only open readers going). */
void ta_process_wait(ta_process *p, ttrpc_call *c);
/* Parks a ReadStdout/ReadStderr call, or answers it now: data, or at end of
 * stream INTERNAL "read meet eof" as the kata-agent does (the shim's copy
 * loop stops on that error; an empty answer would make it spin). With a
 * terminal both read the one terminal stream, as in the kata-agent. */
void ta_process_read(ta_process *p, bool err_stream, uint32_t max_len, ttrpc_call *c);
/* Writes to stdin; answers WriteStreamResponse{len} once written. */
void ta_process_write(ta_process *p, const uint8_t *data, size_t len, ttrpc_call *c);
/* Closes stdin after the queued writes. With a terminal the kata-agent
 * closes the pty master: output ends too and the process gets SIGHUP. */
int ta_process_close_stdin(ta_process *p, caa_error **err);
/* TIOCSWINSZ on the process's pty; -ENODEV without a terminal. */
int ta_process_resize(ta_process *p, uint16_t rows, uint16_t cols, caa_error **err);
int ta_process_signal(ta_process *p, int signum, caa_error **err);
/* Kills the process group, closes stdio and moves the process to the
 * agent's orphans, where it is freed once its handles are closed. */
void ta_process_detach(ta_process *p);

/* ---- containers (ta-agent-service.c) */
void ta_container_remove(ta_agent *a, ta_container *ctr);
void ta_remove_all(ta_agent *a);

/* The pause process the built-in pause image uses. */
int ta_pause_main(void);
/* argv: TA_NAME TA_TTY_ARG file arg0 args...: takes stdin (the pty slave)
 * as controlling terminal and execs file. Returns only on failure. */
int ta_tty_exec_main(int argc, char **argv);
