/* The "scripted" provider, for deterministic lifecycle tests: no timers, no
 * files. Every create / delete / list the daemon asks for waits in a queue
 * until the test answers it, so a test chooses exactly when (and in which
 * order relative to StopVM, a departing caller or a shutdown) each provider
 * callback runs. Answers are delivered synchronously from the answering call,
 * which the test makes from outside any loop callback: to the daemon this is
 * the same as a callback run by the loop.
 *
 * The test owns the scripted_provider: it outlives the caa_provider (whose
 * teardown only marks it torn down), so a test can answer a call after the
 * teardown (a provider that calls back late) or never (one that drops it).
 * It also keeps the set of instances that exist, so a test can check that
 * everything a start created was deleted.
 *
 *     scripted_provider *sp = scripted_provider_new();
 *     caa_provider *p = scripted_provider_wrap(sp, loop);    // to caa_manager_start()
 *     ... StartVM ...
 *     scripted_create_ok(sp, "i-1", "198.18.0.2");           // the create answers
 *     ... StopVM ...
 *     assert_string_equal(scripted_delete_target(sp), "i-1");
 *     scripted_delete_done(sp, 0);
 *     assert_int_equal(scripted_live_instances(sp), 0);
 *     scripted_provider_free(sp);                             // after the manager is done
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "provider.h"

typedef enum scripted_kind {
    SCRIPTED_CREATE = 0,
    SCRIPTED_DELETE,
    SCRIPTED_LIST,
    SCRIPTED_GET,
    SCRIPTED_KIND_COUNT
} scripted_kind;

typedef struct scripted_provider scripted_provider;

extern const caa_provider_ops caa_scripted_provider;

scripted_provider *scripted_provider_new(void);
/* Frees the provider state and drops every call still queued (never answered). */
void scripted_provider_free(scripted_provider *sp);
/* A caa_provider (initialised) driven by sp; the daemon owns it as usual. */
caa_provider *scripted_provider_wrap(scripted_provider *sp, uv_loop_t *loop);

/* The next call of this kind fails synchronously with status (once). */
void scripted_fail_next(scripted_provider *sp, scripted_kind kind, int status);

/* Calls of this kind waiting for an answer / received in total. */
size_t scripted_pending(const scripted_provider *sp, scripted_kind kind);
size_t scripted_calls(const scripted_provider *sp, scripted_kind kind);
bool scripted_torn_down(const scripted_provider *sp);
/* The caller's cancels (ops->cancel) received: they answer nothing, the test
 * answers the cancelled call as a provider would (-ECANCELED with what it made). */
size_t scripted_cancels(const scripted_provider *sp);
/* Instances created and not yet deleted. */
size_t scripted_live_instances(const scripted_provider *sp);
/* The instance name / idempotency key of the oldest pending create. */
const char *scripted_create_name(const scripted_provider *sp);
const char *scripted_create_key(const scripted_provider *sp);
/* What the oldest pending create asks for (NULL: none pending; valid until it is answered). */
typedef struct scripted_create_request {
    const char *user_data; /* not NUL-terminated */
    size_t user_data_len;
    int64_t vcpus, memory_mib;
    const char *image, *machine_type;
} scripted_create_request;
const scripted_create_request *scripted_create_request_of(const scripted_provider *sp);
/* The instance id of the oldest pending delete. */
const char *scripted_delete_target(const scripted_provider *sp);

/* Answers the oldest pending call of the kind (the test fails if none is
 * pending). ip NULL: the instance has no address. */
void scripted_create_ok(scripted_provider *sp, const char *id, const char *ip);
/* A create that failed; partial_id non-NULL: it still made that instance and
 * returns it with the error (which the daemon must delete). */
void scripted_create_fail(scripted_provider *sp, int status, const char *partial_id);
/* status 0 deletes the target instance. */
void scripted_delete_done(scripted_provider *sp, int status);
/* Answers the oldest list with the live instances (status 0) or an error. */
void scripted_list_answer(scripted_provider *sp, int status);
/* Answers the oldest get: status 0 answers from the live instances (-ENOENT
 * when the id is not among them), a negative status fails the call. */
void scripted_get_answer(scripted_provider *sp, int status);
/* Makes an instance exist as if an earlier daemon created it (for recovery tests). */
void scripted_add_instance(scripted_provider *sp, const char *id, const char *name);
/* Makes an instance vanish as if deleted behind the daemon's back. */
void scripted_remove_instance(scripted_provider *sp, const char *id);
