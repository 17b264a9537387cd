/* Calls to AWS from the loop thread: EC2 and STS Query-protocol calls
 * (signed with SigV4, retried on throttling and transient failures with
 * capped, jittered exponential backoff), IMDSv2 reads, and the credentials
 * those calls are signed with (refreshed ahead of expiry; calls that find
 * none wait for the one refresh in flight).
 *
 * Async contract as everywhere: a start function either fails synchronously
 * or calls its callback exactly once, later, on the loop thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "ec2-query.h"
#include "error.h"
#include "http.h"
#include "sigv4.h"

typedef struct aws_api aws_api;
typedef struct aws_call aws_call;

typedef enum aws_service {
    AWS_SVC_EC2,
    AWS_SVC_STS,
} aws_service;

typedef struct aws_api_settings {
    unsigned max_concurrent; /* HTTP requests in flight */
    uint64_t timeout_ms;     /* one HTTP request */
    size_t max_response;
    const char *ca_file;
    int max_attempts;
    uint64_t backoff_base_ms;  /* 0: 200 ms */
    uint64_t backoff_cap_ms;   /* 0: 20 s */
    const char *imds_endpoint; /* NULL: instance metadata disabled */
    uint64_t imds_timeout_ms;  /* 0: 3 s */
} aws_api_settings;

int aws_api_new(uv_loop_t *loop, const aws_api_settings *s, aws_api **ret, caa_error **err);
/* Cancels every call and read (callbacks later with -ECANCELED); new ones
 * fail with -ESHUTDOWN. NULL-safe. */
void aws_api_close(aws_api *api);
/* Drops the creator's reference (after aws_api_close): the object is freed
 * once the cancelled callbacks are delivered and its handles closed. */
void aws_api_unref(aws_api *api);

/* Endpoints, once the region is known: NULL endpoint = the default
 * https://<svc>.<region>.amazonaws.com (".com.cn" in China). */
int aws_api_set_region(aws_api *api, const char *region, const char *ec2_endpoint, const char *sts_endpoint,
                       caa_error **err);
const char *aws_api_region(const aws_api *api);
const char *aws_api_endpoint(const aws_api *api, aws_service svc);

/* ---- credentials ---- */

typedef enum aws_cred_kind {
    AWS_CRED_STATIC,       /* keys (+ session token) from flags, env or a profile */
    AWS_CRED_WEB_IDENTITY, /* STS AssumeRoleWithWebIdentity with a token file */
    AWS_CRED_IMDS,         /* the instance role, from instance metadata */
} aws_cred_kind;

typedef struct aws_cred_source {
    aws_cred_kind kind;
    aws_credentials fixed; /* AWS_CRED_STATIC */
    char *role_arn;        /* AWS_CRED_WEB_IDENTITY */
    char *token_file;
    char *session_name;
    char *description; /* for logs: where the credentials come from (no secret) */
} aws_cred_source;

void aws_cred_source_done(aws_cred_source *s);
/* The API takes the source over (*src is zeroed). */
void aws_api_set_credentials(aws_api *api, aws_cred_source *src);
/* Number of credential fetches so far (tests). */
unsigned aws_api_credential_fetches(const aws_api *api);

/* ---- Query calls ---- */

/* status 0: resp is the 2xx answer (XML). status < 0: err says why; aws_code
 * is the AWS error code when AWS sent one (e.g. "InvalidInstanceID.NotFound"),
 * else NULL. resp and err belong to the callback; aws_code lives until it
 * returns. */
typedef void (*aws_call_cb)(int status, caa_http_response *resp, const char *aws_code, caa_error *err,
                            void *opaque);

enum {
    AWS_CALL_UNSIGNED = 1 << 0, /* STS AssumeRoleWithWebIdentity */
};

/* Takes params over (*params is zeroed). */
int aws_call_start(aws_api *api, aws_service svc, aws_params *params, unsigned flags, aws_call_cb cb,
                   void *opaque, aws_call **ret, caa_error **err);
/* The callback runs later with -ECANCELED (only before it ran). */
void aws_call_cancel(aws_call *call);

/* Wall clock in milliseconds (credential expiry is wall-clock time). */
int64_t aws_wall_ms(void);

/* Maps an AWS error code (and HTTP status) to an errno class. */
int aws_error_class(const char *code, long http_status);
/* Whether the code or status asks for a retry (throttling, 5xx, 429). */
bool aws_error_retryable(const char *code, long http_status);

/* ---- instance metadata (IMDSv2) ---- */

/* body (NUL-terminated) belongs to the callback. -ENOENT for 404;
 * -EHOSTUNREACH when instance metadata is disabled (synchronously). */
typedef void (*aws_imds_cb)(int status, char *body, caa_error *err, void *opaque);
int aws_imds_get(aws_api *api, const char *path, aws_imds_cb cb, void *opaque, caa_error **err);
bool aws_imds_enabled(const aws_api *api);
