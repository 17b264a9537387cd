/* Shared state of aws-api.c (calls), aws-creds.c (credentials) and
 * aws-imds.c (instance metadata). */
#pragma once

#include "aws-api.h"
#include "refcount.h"

typedef struct imds_req imds_req;

struct aws_call {
    aws_api *api;
    aws_service svc;
    unsigned flags;
    char *action;
    char *body;
    int attempt;
    bool creds_retry_done;
    bool waiting_creds;
    bool cancelled;
    bool finishing;
    uv_timer_t timer; /* backoff and deferred completion */
    caa_http_request *http;
    aws_call_cb cb;
    void *opaque;
    aws_call *prev, *next; /* api->calls */
    aws_call *wnext;       /* api->creds_waiters */
    /* result delivered from the timer (cancel while waiting) */
    int status;
    caa_error *err;
};

struct aws_api {
    uv_loop_t *loop;
    caa_http_client *http;
    aws_api_settings set;
    char *ca_file;
    char *region;
    char *ec2_endpoint, *sts_endpoint;
    char *ec2_host, *sts_host; /* Host header values */
    bool closing;
    caa_refcount pending; /* calls + imds requests + open handles not yet released */
    aws_call *calls;
    uint64_t rng;

    /* credentials */
    aws_cred_source src;
    bool have_source;
    aws_credentials creds;
    bool have_creds;
    int64_t creds_got_ms; /* wall clock when fetched */
    bool refreshing;
    int64_t next_bg_refresh_ms;
    aws_call *creds_waiters;
    unsigned fetches;

    /* instance metadata */
    char *imds_endpoint;
    char *imds_token;
    int64_t imds_token_until_ms; /* loop time */
    bool imds_token_fetching;
    imds_req *imds_waiting; /* reads waiting for a token */
    imds_req *imds_reqs;    /* all live reads */
};

void aws_api_release(aws_api *api);

/* aws-creds.c: usable credentials now, or NULL (then the call waits). */
const aws_credentials *aws_creds_current(aws_api *api);
/* Queues call until a refresh ends (starting one when none runs). */
void aws_creds_wait(aws_api *api, aws_call *call);
void aws_creds_unwait(aws_api *api, aws_call *call);
/* After ExpiredToken: forget the cached credentials (refreshable kinds). */
bool aws_creds_invalidate(aws_api *api);
void aws_creds_done(aws_api *api);

/* aws-api.c: continue a call once credentials are there (status 0) or fail it. */
void aws_call_creds_ready(aws_call *call, int status, const caa_error *err);

/* aws-imds.c */
void aws_imds_cancel_all(aws_api *api);
void aws_imds_done(aws_api *api);
