/* Fixture for deterministic pod lifecycle tests: a real manager (started on a
 * socket in a temporary directory, -disable-tls) whose provider is the
 * scripted provider (tests/support/scripted-provider.h) and whose hook table
 * is a fake one that holds every asynchronous hook call until the test
 * releases it. Nothing sleeps: the test answers each provider call and
 * releases each hook in the order the interleaving under test needs, and
 * fx_drain() runs the loop until the daemon's deferred work is done.
 *
 * A pod observer records every state a pod goes through ("created>provisioning>..."),
 * so a test asserts the exact path, and the StartVM/StopVM callbacks record
 * their answers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "config.h"
#include "manager.h"
#include "pod-hooks.h"
#include "pod.h"
#include "scripted-provider.h"

/* One held hook call (network_setup, proxy_start, network_teardown). */
typedef struct fx_held {
    caa_done_cb cb;
    void *opaque;
    unsigned calls; /* how often the hook was called */
} fx_held;

/* What a StartVM/StopVM callback answered. */
typedef struct fx_answer {
    unsigned calls;
    int status;
    char msg[256];
} fx_answer;

typedef struct fx {
    char *dir; /* temporary; removed at the end */
    caa_daemon_config cfg;
    uv_loop_t loop;
    caa_manager m;
    scripted_provider *sp;
    bool started;
    bool done;

    /* Fake hooks. */
    fx_held setup, proxy, teardown;
    unsigned proxy_stops;
    bool proxy_live;           /* proxy_start called and not stopped */
    bool network_live;         /* network_setup answered OK and not torn down */
    int fail_inspect;          /* network_inspect fails with this (0: succeeds) */
    int fail_setup_now;        /* network_setup fails synchronously with this */
    int fail_proxy_now;        /* proxy_start fails synchronously with this */
    unsigned boot_data_builds; /* build_boot_data calls */

    /* Observer records. */
    char path[512]; /* states of the last pod seen, joined with '>' */
    unsigned instance_events;
    char last_instance[64]; /* instance id at the last instance_changed ("" when cleared) */
    unsigned removed;

    fx_answer start, stop, stop2;
    char create_msg[256]; /* error of the last fx_try_create() */
} fx;

/* cmocka setup/teardown: *state is a fx *. */
int fx_setup(void **state);
int fx_teardown(void **state);

/* Starts the manager (call after writing any state files into f->cfg.pods_dir). */
void fx_start(fx *f);
/* A new daemon on the same pods dir and cloud: the running one takes SIGTERM's
 * path (unless it already did), then a fresh manager starts and recovers the pods. */
void fx_restart(fx *f);
/* Runs the loop until no deferred work is left (never blocks). */
void fx_drain(fx *f);
/* SIGTERM's path: caa_manager_shutdown(), then the loop is run dry. */
void fx_shutdown(fx *f);

/* CreateVM for sandbox id (pod name "nginx-<id>", namespace "default"):
 * returns its result (the error message in f->create_msg). */
int fx_try_create(fx *f, const char *id, caa_pod **ret);
/* The same, asserting success. */
caa_pod *fx_create(fx *f, const char *id);
/* StartVM / StopVM with the recording callbacks. */
int fx_start_vm(fx *f, caa_pod *pod);
void fx_stop_vm(fx *f, caa_pod *pod, fx_answer *answer);

/* Releases a held hook call with status (0 or a negative errno). */
void fx_release(fx *f, fx_held *h, int status);
/* True when a hook call is waiting to be released. */
bool fx_held_pending(const fx_held *h);

#define FX_IP "198.18.0.2"

/* Drives a fresh pod's StartVM to ready (instance id, FX_IP). */
void fx_start_to_ready(fx *f, caa_pod *pod, const char *instance_id);
/* Starts the manager and brings pod "sb1" to `at`: created (CreateVM done),
 * provisioning (StartVM, create in flight), booting (create answered i-1,
 * network setup held) or connecting (proxy start held). */
caa_pod *fx_pod_at(fx *f, caa_pod_state at);
/* The callback ran exactly once, with status. */
void fx_assert_answer(const fx_answer *a, int status);
/* The state (and instance id, NULL for none) in the pod's state file, as a restarted daemon reads it. */
void fx_assert_disk(const fx *f, const char *id, caa_pod_state want, const char *want_instance);
bool fx_pod_dir_exists(const fx *f, const char *id);
