/* The AWS EC2 provider: ops table, init (options, credentials, endpoints),
 * verify_config, validate_spec and teardown. The operations are in
 * aws-ops.c, the startup calls in aws-startup.c. */
#define LOG_COMPONENT "provider/aws"
#include "aws-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "node-name.h"
#include "parse.h"
#include "strv.h"
#include "xalloc.h"
#include "timeutil.h"

#define DEFAULT_IMDS_ENDPOINT "http://169.254.169.254"

static void provider_free(aws_provider *p)
{
    aws_api_unref(p->api);
    free(p->image_id);
    free(p->default_type);
    caa_strv_free(p->allowed_types);
    free(p->subnet_id);
    caa_strv_free(p->sg_ids);
    free(p->key_name);
    free(p->lt_name);
    aws_kv_free(p->tags, p->n_tags);
    free(p->node_name);
    free(p->region);
    free(p->ec2_endpoint);
    free(p->sts_endpoint);
    caa_error_free(p->startup_err);
    caa_instance_types_free(p->types, p->n_types);
    for (size_t i = 0; i < p->n_images; i++) {
        free(p->images[i].id);
        free(p->images[i].root_device_name);
    }
    free(p->images);
    free(p);
}

void aws_provider_release(aws_provider *p)
{
    if (caa_unref(&p->pending) && p->stopping)
        provider_free(p);
}

static char *dup_nonempty(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    bool b = false;
    return v && caa_parse_bool(v, &b) == 0 && b;
}

/* An endpoint override from the environment, checked now. */
static int endpoint_env(const char *specific, char **ret, caa_error **err)
{
    const char *v = getenv(specific);
    if (!v || !*v)
        v = getenv("AWS_ENDPOINT_URL");
    *ret = NULL;
    if (!v || !*v)
        return 0;
    int r = caa_http_url_check(v, 0, err);
    if (r < 0)
        return caa_error_prefix(err, "%s", specific);
    *ret = xstrdup(v);
    return 0;
}

static int aws_init(uv_loop_t *loop, const void *config, void **ret_priv, caa_error **err)
{
    const aws_config *cfg = config;
    int r = aws_config_validate(cfg, err);
    if (r < 0)
        return r;

    bool imds_on = !env_true("AWS_EC2_METADATA_DISABLED");
    const char *imds = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!imds || !*imds)
        imds = DEFAULT_IMDS_ENDPOINT;

    aws_cred_source src;
    _cleanup_free_ char *profile_region = NULL;
    r = aws_resolve_credentials(cfg, imds_on, &src, &profile_region, err);
    if (r < 0)
        return r;

    aws_provider *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->region = cfg->region && *cfg->region ? xstrdup(cfg->region) : TAKE_PTR(profile_region);
    if (!p->region && !imds_on) {
        r = caa_error_set(err, -EINVAL,
                          "no AWS region: set -aws-region or AWS_REGION (instance metadata is disabled)");
        goto fail;
    }
    if ((r = endpoint_env("AWS_ENDPOINT_URL_EC2", &p->ec2_endpoint, err)) < 0 ||
        (r = endpoint_env("AWS_ENDPOINT_URL_STS", &p->sts_endpoint, err)) < 0)
        goto fail;
    if ((r = aws_parse_tags(cfg->tags, &p->tags, &p->n_tags, err)) < 0)
        goto fail;

    aws_api_settings set = {
        .max_concurrent = (unsigned)cfg->max_concurrent,
        .timeout_ms = (uint64_t)caa_ns_to_ms(cfg->request_timeout),
        .max_response = (size_t)cfg->max_response,
        .ca_file = cfg->ca_bundle,
        .max_attempts = (int)cfg->max_attempts,
        .imds_endpoint = imds_on ? imds : NULL,
    };
    if ((r = aws_api_new(loop, &set, &p->api, err)) < 0)
        goto fail;
    log_debug("AWS credentials from %s", src.description);
    aws_api_set_credentials(p->api, &src);

    p->image_id = dup_nonempty(cfg->image_id);
    p->default_type = xstrdup(cfg->instance_type);
    p->allowed_types = caa_strv_copy(cfg->instance_types);
    p->subnet_id = dup_nonempty(cfg->subnet_id);
    p->sg_ids = caa_strv_len(cfg->security_group_ids) ? caa_strv_copy(cfg->security_group_ids) : NULL;
    p->key_name = dup_nonempty(cfg->key_name);
    p->use_lt = cfg->use_lt;
    p->lt_name = dup_nonempty(cfg->lt_name);
    p->public_ip = cfg->use_public_ip;
    p->root_volume_size = cfg->root_volume_size;
    p->disable_cvm = cfg->disable_cvm;
    p->running_wait_ms = (uint64_t)caa_ns_to_ms(cfg->running_wait);
    p->net_from_imds = imds_on && !p->use_lt && (!p->subnet_id || !p->sg_ids);
    p->key_from_imds = imds_on && !p->use_lt && !p->key_name;
    char node[CAA_NODE_NAME_MAX + 1];
    int nr = caa_node_name(cfg->node_name, node, sizeof(node));
    if (nr == -E2BIG) {
        r = caa_error_set(err, -EINVAL, "node name longer than 256 characters");
        goto fail;
    }
    p->node_name = xstrdup(nr == -ENOENT ? "unknown" : node);
    caa_op_set_init(&p->ops, loop, "aws");
    caa_ref(&p->pending); /* the op set, until closed */
    /* Starts once the loop runs. */
    aws_startup_ensure(p, AWS_NEED_READY);
    *ret_priv = p;
    return 0;

fail:
    aws_cred_source_done(&src);
    p->stopping = true;
    aws_api_close(p->api);
    caa_ref(&p->pending);
    aws_provider_release(p);
    return r;
}

static int aws_verify_config(void *priv, caa_error **err)
{
    aws_provider *p = priv;
    if (!p->image_id && !p->use_lt)
        return caa_error_set(err, -EINVAL, "-imageid (PODVM_AMI_ID) is required");
    /* Called before the daemon's loop runs: drive it until the startup
     * calls (instance metadata, DescribeImages, DescribeInstanceTypes) end. */
    aws_startup_ensure(p, AWS_NEED_READY);
    while (p->startup == AWS_START_RUNNING)
        uv_run(p->loop, UV_RUN_ONCE);
    if (!p->ready) {
        if (p->startup_err)
            return caa_error_set(err, p->startup_err->code, "%s", caa_error_msg(p->startup_err));
        return caa_error_set(err, -EIO, "AWS provider startup did not finish");
    }
    return 0;
}

static int aws_validate_spec(void *priv, const caa_instance_spec *spec, caa_error **err)
{
    aws_provider *p = priv;
    if (p->stopping)
        return caa_error_set(err, -ECANCELED, "the AWS provider is shutting down");
    if (!*spec->instance_name || strlen(spec->instance_name) > 255 || strlen(spec->sandbox_id) > 255)
        return caa_error_set(err, -EINVAL, "instance name or sandbox id empty or longer than 255 characters");
    if (spec->user_data_len > AWS_MAX_USER_DATA)
        return caa_error_set(err, -EINVAL, "user data of %zu bytes is over EC2's limit of %d bytes",
                             spec->user_data_len, AWS_MAX_USER_DATA);
    if (spec->vcpus < 0 || spec->memory_mib < 0 || spec->gpus < 0)
        return caa_error_set(err, -EINVAL, "negative vCPUs, memory or GPUs");
    if (spec->image && *spec->image) {
        const char *q = spec->image;
        bool ok = strncmp(q, "ami-", 4) == 0 && q[4] && strlen(q) <= 64;
        for (q += 4; ok && *q; q++)
            ok = (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z');
        if (!ok)
            return caa_error_set(err, -EINVAL, "image \"%.64s\" is not an AMI id", spec->image);
    }
    if (spec->instance_type && *spec->instance_type && !p->use_lt &&
        strcmp(spec->instance_type, p->default_type) != 0) {
        if (caa_strv_len(p->allowed_types) == 0)
            return caa_error_set(
                err, -EINVAL,
                "requested instance type (\"%s\") is not default (\"%s\") and supported instance "
                "types list is empty",
                spec->instance_type, p->default_type);
        if (!caa_strv_contains(p->allowed_types, spec->instance_type))
            return caa_error_set(
                err, -EINVAL, "requested instance type (\"%s\") is not part of supported instance types list",
                spec->instance_type);
    }
    aws_kv *tags = NULL;
    size_t n = 0;
    int r = aws_parse_tags(spec->tags, &tags, &n, err);
    aws_kv_free(tags, n);
    if (r < 0)
        return caa_error_prefix(err, "pod tags");
    if (n + p->n_tags + 3 > AWS_MAX_TAGS)
        return caa_error_set(err, -EINVAL, "more than %d tags", AWS_MAX_TAGS);
    return 0;
}

static int aws_create_instance(void *priv, const caa_instance_spec *spec, caa_instance_cb cb, void *opaque,
                               caa_error **err)
{
    aws_provider *p = priv;
    int r = aws_validate_spec(priv, spec, err);
    if (r < 0)
        return r;
    return aws_op_create(p, spec, cb, opaque, err);
}

static int aws_delete_instance(void *priv, const char *id, caa_done_cb cb, void *opaque, caa_error **err)
{
    return aws_op_start(priv, CAA_OP_DELETE, id, (caa_op_cb){.done = cb}, opaque, err);
}

static int aws_list_instances(void *priv, caa_list_cb cb, void *opaque, caa_error **err)
{
    return aws_op_start(priv, CAA_OP_LIST, NULL, (caa_op_cb){.list = cb}, opaque, err);
}

static int aws_get_instance(void *priv, const char *id, caa_instance_cb cb, void *opaque, caa_error **err)
{
    return aws_op_start(priv, CAA_OP_GET, id, (caa_op_cb){.instance = cb}, opaque, err);
}

static void ops_closed(void *opaque)
{
    aws_provider_release(opaque);
}

static void aws_cancel(void *priv, void *opaque)
{
    aws_provider *p = priv;
    if (!p->stopping)
        caa_op_set_cancel(&p->ops, opaque);
}

static void aws_teardown(void *priv)
{
    aws_provider *p = priv;
    if (!p || p->stopping)
        return;
    p->stopping = true;
    caa_ref(&p->pending); /* held while cancelling */
    caa_op_set_close(&p->ops, ops_closed, p);
    aws_api_close(p->api);
    aws_provider_release(p);
}

const caa_provider_ops caa_aws_provider = {
    .name = "aws",
    .options = aws_options,
    .n_options = AWS_N_OPTIONS,
    .config_size = sizeof(aws_config),
    .init = aws_init,
    .verify_config = aws_verify_config,
    .validate_spec = aws_validate_spec,
    .create_instance = aws_create_instance,
    .delete_instance = aws_delete_instance,
    .list_instances = aws_list_instances,
    .get_instance = aws_get_instance,
    .teardown = aws_teardown,
    .cancel = aws_cancel,
};
