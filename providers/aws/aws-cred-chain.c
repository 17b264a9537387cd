/* Where the AWS credentials come from, in the order of upstream (static keys,
 * then a named profile) followed by the SDK's default chain (web identity
 * from the environment, the default profile, the instance role). */
#include "aws-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws-profile.h"
#include "cleanup.h"
#include "xalloc.h"

static bool set(const char *s)
{
    return s && *s;
}

static void fixed_from(aws_cred_source *s, const char *ak, const char *sk, const char *tok, char *desc)
{
    s->kind = AWS_CRED_STATIC;
    s->fixed.access_key_id = xstrdup(ak);
    s->fixed.secret_access_key = xstrdup(sk);
    s->fixed.session_token = set(tok) ? xstrdup(tok) : NULL;
    s->description = desc;
}

static char *session_name(const char *given)
{
    if (set(given))
        return xstrdup(given);
    return xasprintf("cloud-api-adaptor-%lld", (long long)aws_wall_ms());
}

static void web_identity(aws_cred_source *s, const char *role, const char *file, const char *name, char *desc)
{
    s->kind = AWS_CRED_WEB_IDENTITY;
    s->role_arn = xstrdup(role);
    s->token_file = xstrdup(file);
    s->session_name = session_name(name);
    s->description = desc;
}

/* Credentials from a profile, when it holds any: 1 found, 0 none. */
static int from_profile(const aws_profile *pr, const char *name, aws_cred_source *ret)
{
    if (set(pr->access_key_id) && set(pr->secret_access_key)) {
        fixed_from(ret, pr->access_key_id, pr->secret_access_key, pr->session_token,
                   xasprintf("profile %s", name));
        return 1;
    }
    if (set(pr->role_arn) && set(pr->web_identity_token_file)) {
        web_identity(ret, pr->role_arn, pr->web_identity_token_file, pr->role_session_name,
                     xasprintf("web identity (profile %s)", name));
        return 1;
    }
    return 0;
}

int aws_resolve_credentials(const aws_config *cfg, bool imds_enabled, aws_cred_source *ret, char **ret_region,
                            caa_error **err)
{
    memset(ret, 0, sizeof(*ret));
    *ret_region = NULL;
    const char *env_profile = getenv("AWS_PROFILE");
    const char *named = set(cfg->profile) ? cfg->profile : (set(env_profile) ? env_profile : NULL);
    const char *name = named ? named : "default";

    aws_profile pr;
    int r = aws_profile_load(name, &pr, err);
    if (r < 0)
        return r;
    if (set(pr.region))
        *ret_region = xstrdup(pr.region);

    if (set(cfg->access_key_id) && set(cfg->secret_key)) {
        fixed_from(ret, cfg->access_key_id, cfg->secret_key, cfg->session_token, xstrdup("static keys"));
        goto out;
    }
    if (named) {
        if (!pr.found) {
            r = caa_error_set(err, -ENOENT, "AWS profile %s not found in the shared config/credentials files",
                              name);
            goto out;
        }
        if (from_profile(&pr, name, ret))
            goto out;
        r = caa_error_set(err, -EACCES,
                          "AWS profile %s has no credentials (keys or role_arn + web_identity_token_file)",
                          name);
        goto out;
    }
    const char *role = getenv("AWS_ROLE_ARN");
    const char *token_file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (set(role) && set(token_file)) {
        web_identity(ret, role, token_file, getenv("AWS_ROLE_SESSION_NAME"),
                     xstrdup("web identity (environment)"));
        goto out;
    }
    if (from_profile(&pr, name, ret))
        goto out;
    if (imds_enabled) {
        ret->kind = AWS_CRED_IMDS;
        ret->description = xstrdup("instance role (instance metadata)");
        goto out;
    }
    r = caa_error_set(
        err, -EACCES,
        "no AWS credentials: set -aws-access-key-id/-aws-secret-key, a profile, AWS_ROLE_ARN with "
        "AWS_WEB_IDENTITY_TOKEN_FILE, or run on EC2 with an instance role");
out:
    aws_profile_done(&pr);
    if (r < 0) {
        aws_cred_source_done(ret);
        free(*ret_region);
        *ret_region = NULL;
    }
    return r;
}
