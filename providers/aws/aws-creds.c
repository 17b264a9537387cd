/* Credentials for signing: fixed keys, or temporary ones from STS
 * (web identity) or instance metadata, refreshed ahead of expiry.
 *
 * Temporary credentials are "stale" in the last half of their life (at most
 * the last 5 minutes): calls still use them and one background refresh
 * starts. In the last tenth (at most the last minute) they are "expired":
 * calls wait for the one refresh in flight, none starts its own. */
#define LOG_COMPONENT "provider/aws"
#include "aws-api-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cleanup.h"
#include "ec2-xml.h"
#include "fs.h"
#include "log.h"
#include "xalloc.h"

#define STALE_MAX_MS (5 * 60 * 1000)
#define EXPIRED_MAX_MS (60 * 1000)
#define BG_RETRY_MS 10000
#define MAX_TOKEN_FILE (64u << 10)

void aws_cred_source_done(aws_cred_source *s)
{
    if (!s)
        return;
    aws_credentials_clear(&s->fixed);
    free(s->role_arn);
    free(s->token_file);
    free(s->session_name);
    free(s->description);
    memset(s, 0, sizeof(*s));
}

void aws_api_set_credentials(aws_api *api, aws_cred_source *src)
{
    aws_cred_source_done(&api->src);
    api->src = *src;
    memset(src, 0, sizeof(*src));
    api->have_source = true;
    aws_credentials_clear(&api->creds);
    api->have_creds = false;
    if (api->src.kind == AWS_CRED_STATIC) {
        aws_credentials_copy(&api->creds, &api->src.fixed);
        api->creds.expiration = 0;
        api->have_creds = true;
    }
}

unsigned aws_api_credential_fetches(const aws_api *api)
{
    return api->fetches;
}

static void refresh(aws_api *api);

/* Margins before expiry, from the credentials' lifetime. */
static void margins(const aws_api *api, int64_t *stale_at, int64_t *expired_at)
{
    int64_t exp = (int64_t)api->creds.expiration * 1000;
    int64_t life = exp - api->creds_got_ms;
    if (life < 0)
        life = 0;
    int64_t stale = life / 2 < STALE_MAX_MS ? life / 2 : STALE_MAX_MS;
    int64_t expired = life / 10 < EXPIRED_MAX_MS ? life / 10 : EXPIRED_MAX_MS;
    *stale_at = exp - stale;
    *expired_at = exp - expired;
}

const aws_credentials *aws_creds_current(aws_api *api)
{
    if (!api->have_creds)
        return NULL;
    if (api->creds.expiration == 0)
        return &api->creds;
    int64_t now = aws_wall_ms(), stale_at, expired_at;
    margins(api, &stale_at, &expired_at);
    if (now >= expired_at)
        return NULL;
    if (now >= stale_at && !api->refreshing && now >= api->next_bg_refresh_ms)
        refresh(api);
    return &api->creds;
}

void aws_creds_wait(aws_api *api, aws_call *call)
{
    call->waiting_creds = true;
    call->wnext = api->creds_waiters;
    api->creds_waiters = call;
    if (!api->refreshing)
        refresh(api);
}

void aws_creds_unwait(aws_api *api, aws_call *call)
{
    for (aws_call **pp = &api->creds_waiters; *pp; pp = &(*pp)->wnext)
        if (*pp == call) {
            *pp = call->wnext;
            break;
        }
    call->wnext = NULL;
    call->waiting_creds = false;
}

bool aws_creds_invalidate(aws_api *api)
{
    if (!api->have_source || api->src.kind == AWS_CRED_STATIC)
        return false;
    aws_credentials_clear(&api->creds);
    api->have_creds = false;
    return true;
}

void aws_creds_done(aws_api *api)
{
    aws_credentials_clear(&api->creds);
    aws_cred_source_done(&api->src);
}

/* A refresh ended: hand the result to every waiting call. */
static void refresh_done(aws_api *api, int status, aws_credentials *fresh, caa_error *e)
{
    api->refreshing = false;
    if (status >= 0) {
        aws_credentials_clear(&api->creds);
        api->creds = *fresh;
        memset(fresh, 0, sizeof(*fresh));
        api->have_creds = true;
        api->creds_got_ms = aws_wall_ms();
        api->next_bg_refresh_ms = 0;
        log_debug("AWS credentials refreshed from %s, valid until %lld", api->src.description,
                  (long long)api->creds.expiration);
    } else {
        api->next_bg_refresh_ms = aws_wall_ms() + BG_RETRY_MS;
        log_debug("refreshing AWS credentials from %s failed: %s", api->src.description, caa_error_msg(e));
    }
    aws_call *w = api->creds_waiters;
    api->creds_waiters = NULL;
    while (w) {
        aws_call *next = w->wnext;
        w->wnext = NULL;
        aws_call_creds_ready(w, status, e);
        w = next;
    }
    caa_error_free(e);
}

/* ---- web identity ---- */

static void on_sts(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_api *api = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    aws_credentials fresh = {0};
    if (status >= 0) {
        status = sts_parse_assume_role(r->body, r->body_len, &fresh, &e);
        if (status < 0)
            caa_error_prefix(&e, "STS");
    }
    refresh_done(api, status, &fresh, e);
    aws_credentials_clear(&fresh);
}

static int start_web_identity(aws_api *api, caa_error **err)
{
    _cleanup_free_ char *token = NULL;
    size_t len;
    /* A small file on a projected volume: read on the loop thread. */
    int r = caa_read_file(api->src.token_file, MAX_TOKEN_FILE, 0, &token, &len, err);
    if (r < 0)
        return caa_error_prefix(err, "web identity token");
    while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r' || token[len - 1] == ' '))
        token[--len] = '\0';
    if (len == 0)
        return caa_error_set(err, -EACCES, "web identity token file %s is empty", api->src.token_file);
    aws_params p = {0};
    sts_build_assume_role_with_web_identity(api->src.role_arn, api->src.session_name, token, &p);
    memset(token, 0, len);
    return aws_call_start(api, AWS_SVC_STS, &p, AWS_CALL_UNSIGNED, on_sts, api, NULL, err);
}

/* ---- instance role ---- */

static void on_imds_creds(int status, char *body, caa_error *e, void *opaque)
{
    aws_api *api = opaque;
    aws_credentials fresh = {0};
    if (status >= 0) {
        json_error_t je;
        json_t *j = json_loads(body, 0, &je);
        const char *code = NULL, *ak = NULL, *sk = NULL, *tok = NULL, *exp = NULL;
        if (j &&
            json_unpack(j, "{s?s, s:s, s:s, s:s, s:s}", "Code", &code, "AccessKeyId", &ak, "SecretAccessKey",
                        &sk, "Token", &tok, "Expiration", &exp) == 0 &&
            (!code || strcmp(code, "Success") == 0) && *ak && *sk &&
            aws_parse_iso8601(exp, &fresh.expiration) == 0) {
            fresh.access_key_id = xstrdup(ak);
            fresh.secret_access_key = xstrdup(sk);
            fresh.session_token = xstrdup(tok);
        } else {
            status = caa_error_set(&e, -EPROTO, "instance role credentials: unexpected answer%s%s",
                                   code ? ", code " : "", code ? code : "");
        }
        json_decref(j);
    }
    if (body) {
        memset(body, 0, strlen(body));
        free(body);
    }
    refresh_done(api, status, &fresh, e);
    aws_credentials_clear(&fresh);
}

static void on_imds_role(int status, char *body, caa_error *e, void *opaque)
{
    aws_api *api = opaque;
    if (status >= 0) {
        body[strcspn(body, "\r\n")] = '\0';
        if (!*body || strchr(body, '/') || strlen(body) > 128) {
            status = caa_error_set(&e, -EACCES, "this instance has no IAM role");
        } else {
            _cleanup_free_ char *path = xasprintf("/latest/meta-data/iam/security-credentials/%s", body);
            status = aws_imds_get(api, path, on_imds_creds, api, &e);
        }
    }
    free(body);
    if (status < 0) {
        aws_credentials none = {0};
        refresh_done(api, status, &none, e);
    }
}

static void refresh(aws_api *api)
{
    if (api->refreshing || api->closing)
        return;
    caa_error *e = NULL;
    int r;
    api->refreshing = true;
    api->fetches++;
    switch (api->src.kind) {
    case AWS_CRED_WEB_IDENTITY:
        r = start_web_identity(api, &e);
        break;
    case AWS_CRED_IMDS:
        r = aws_imds_get(api, "/latest/meta-data/iam/security-credentials/", on_imds_role, api, &e);
        break;
    case AWS_CRED_STATIC:
    default:
        r = caa_error_set(&e, -EACCES, "the configured credentials expired");
        break;
    }
    if (r < 0) {
        /* Failed before anything was sent: waiters learn it now, which is
         * still later than the call that made them wait. */
        aws_credentials none = {0};
        refresh_done(api, r, &none, e);
    }
}
