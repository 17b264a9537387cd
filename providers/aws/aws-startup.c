/* Provider startup, on the loop: first what instance metadata must fill in
 * (region, subnet, security groups, key pair), which makes the endpoints
 * known (delete, list and get can run from then on); then DescribeImages and
 * DescribeInstanceTypes, after which creates can run. A failed phase fails
 * the operations waiting for it and is tried again by the next operation. */
#define LOG_COMPONENT "provider/aws"
#include "aws-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "strv.h"
#include "xalloc.h"

static void phase_describe(aws_provider *p);

const aws_image_info *aws_image_find(const aws_provider *p, const char *id)
{
    for (size_t i = 0; id && i < p->n_images; i++)
        if (strcmp(p->images[i].id, id) == 0)
            return &p->images[i];
    return NULL;
}

void aws_image_add(aws_provider *p, const ec2_image *img)
{
    if (!img->id || aws_image_find(p, img->id))
        return;
    p->images = xrealloc(p->images, (p->n_images + 1) * sizeof(*p->images));
    aws_image_info *i = &p->images[p->n_images++];
    i->id = xstrdup(img->id);
    i->root_device_name = img->root_device_name ? xstrdup(img->root_device_name) : NULL;
    i->root_volume_size = img->root_volume_size;
}

int64_t aws_root_volume_size(const aws_provider *p, const aws_image_info *img)
{
    if (p->root_volume_size <= 0)
        return 0;
    if (img && img->root_volume_size > p->root_volume_size)
        return img->root_volume_size;
    return p->root_volume_size;
}

/* One step of a phase ended; the phase ends with its last step. */
static void step_done(aws_provider *p, void (*phase_end)(aws_provider *))
{
    p->startup_steps--;
    if (p->startup_steps == 0 && !p->stopping)
        phase_end(p);
    aws_provider_release(p);
}

static void step_fail(aws_provider *p, caa_error *e)
{
    if (!p->startup_err)
        p->startup_err = e;
    else
        caa_error_free(e);
}

static void startup_failed(aws_provider *p)
{
    p->startup = AWS_START_FAILED;
    caa_error_prefix(&p->startup_err, "AWS provider startup");
    log_debug("%s", caa_error_msg(p->startup_err));
    aws_ops_startup_event(p, p->startup_err);
}

/* ---- phase 1: instance metadata ---- */

static void region_phase_end(aws_provider *p)
{
    if (p->startup_err) {
        startup_failed(p);
        return;
    }
    caa_error *e = NULL;
    if (aws_api_set_region(p->api, p->region, p->ec2_endpoint, p->sts_endpoint, &e) < 0) {
        step_fail(p, e);
        startup_failed(p);
        return;
    }
    p->region_ready = true;
    log_debug("AWS region %s, EC2 endpoint %s", p->region, aws_api_endpoint(p->api, AWS_SVC_EC2));
    aws_ops_startup_event(p, NULL);
    phase_describe(p);
}

static void region_step_done(aws_provider *p)
{
    step_done(p, region_phase_end);
}

static char *first_line(char *body)
{
    body[strcspn(body, "\r\n")] = '\0';
    return body;
}

static void on_region(int status, char *body, caa_error *e, void *opaque)
{
    aws_provider *p = opaque;
    if (status >= 0 && *first_line(body)) {
        free(p->region);
        p->region = xstrdup(body);
    } else {
        if (status >= 0)
            e = caa_error_new(-EPROTO, "instance metadata: empty region");
        caa_error_prefix(&e, "no region given (-aws-region, AWS_REGION) and reading it failed");
        step_fail(p, e);
    }
    free(body);
    region_step_done(p);
}

static void on_sgs(int status, char *body, caa_error *e, void *opaque)
{
    aws_provider *p = opaque;
    if (status >= 0) {
        if (!p->sg_ids)
            caa_strv_split_append(&p->sg_ids, body, '\n');
    } else {
        caa_error_prefix(&e, "no -securitygroupids given and reading them failed");
        step_fail(p, e);
    }
    free(body);
    region_step_done(p);
}

static void on_subnet(int status, char *body, caa_error *e, void *opaque)
{
    aws_provider *p = opaque;
    if (status >= 0 && *first_line(body)) {
        if (!p->subnet_id)
            p->subnet_id = xstrdup(body);
    } else {
        if (status >= 0)
            e = caa_error_new(-EPROTO, "instance metadata: empty subnet id");
        caa_error_prefix(&e, "no -subnetid given and reading it failed");
        step_fail(p, e);
    }
    free(body);
    region_step_done(p);
}

static void start_imds(aws_provider *p, const char *path, aws_imds_cb cb)
{
    caa_error *e = NULL;
    p->startup_steps++;
    caa_ref(&p->pending);
    if (aws_imds_get(p->api, path, cb, p, &e) < 0) {
        /* Nothing in flight: count the step as failed right away. */
        step_fail(p, e);
        p->startup_steps--;
        (void)caa_unref(&p->pending); /* undoes the reference just taken */
    }
}

static void on_mac(int status, char *body, caa_error *e, void *opaque)
{
    aws_provider *p = opaque;
    if (status >= 0 && *first_line(body) && !strchr(body, '/')) {
        if (!p->subnet_id) {
            _cleanup_free_ char *path =
                xasprintf("/latest/meta-data/network/interfaces/macs/%s/subnet-id", body);
            start_imds(p, path, on_subnet);
        }
        if (!p->sg_ids) {
            _cleanup_free_ char *path =
                xasprintf("/latest/meta-data/network/interfaces/macs/%s/security-group-ids", body);
            start_imds(p, path, on_sgs);
        }
    } else {
        if (status >= 0)
            e = caa_error_new(-EPROTO, "instance metadata: bad MAC address");
        caa_error_prefix(&e, "no -subnetid/-securitygroupids given and reading the node's network failed");
        step_fail(p, e);
    }
    free(body);
    region_step_done(p);
}

static void on_keys(int status, char *body, caa_error *e, void *opaque)
{
    aws_provider *p = opaque;
    /* "0=<name>" on the first line; no key pair is fine. */
    if (status >= 0) {
        char *line = first_line(body);
        char *eq = strchr(line, '=');
        if (eq && eq[1] && !p->key_name)
            p->key_name = xstrdup(eq + 1);
    } else {
        log_debug("no key pair from instance metadata: %s", caa_error_msg(e));
    }
    caa_error_free(e);
    free(body);
    region_step_done(p);
}

static void phase_region(aws_provider *p)
{
    p->startup_steps++; /* held while starting the steps */
    caa_ref(&p->pending);
    if (!p->region)
        start_imds(p, "/latest/meta-data/placement/region", on_region);
    if (p->net_from_imds && (!p->subnet_id || !p->sg_ids))
        start_imds(p, "/latest/meta-data/mac", on_mac);
    if (p->key_from_imds && !p->key_name)
        start_imds(p, "/latest/meta-data/public-keys/", on_keys);
    p->net_from_imds = false;
    p->key_from_imds = false;
    region_step_done(p);
}

/* ---- phase 2: image and instance types ---- */

static void describe_phase_end(aws_provider *p)
{
    if (p->startup_err) {
        startup_failed(p);
        return;
    }
    caa_instance_types_sort(p->types, p->n_types);
    p->ready = true;
    p->startup = AWS_START_DONE;
    log_debug("AWS provider ready: %zu instance types, default %s", p->n_types, p->default_type);
    aws_ops_startup_event(p, NULL);
}

static void describe_step_done(aws_provider *p)
{
    step_done(p, describe_phase_end);
}

static void on_images(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_provider *p = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    if (status >= 0) {
        ec2_image_list l;
        status = ec2_parse_describe_images(r->body, r->body_len, &l, &e);
        if (status >= 0) {
            for (size_t i = 0; i < l.n; i++)
                aws_image_add(p, &l.v[i]);
            ec2_image_list_done(&l);
            if (!aws_image_find(p, p->image_id))
                status = caa_error_set(&e, -ENOENT, "AMI %s not found", p->image_id);
        } else {
            caa_error_prefix(&e, "EC2 DescribeImages");
        }
    }
    if (status < 0)
        step_fail(p, e);
    describe_step_done(p);
}

static void start_types(aws_provider *p, const char *next_token);

static void on_types(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_provider *p = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    if (status >= 0) {
        ec2_instance_type_list l;
        status = ec2_parse_describe_instance_types(r->body, r->body_len, &l, &e);
        if (status >= 0) {
            p->types = xrealloc(p->types, (p->n_types + l.n + 1) * sizeof(*p->types));
            for (size_t i = 0; i < l.n; i++) {
                if (caa_instance_type_find(p->types, p->n_types, l.v[i].name))
                    continue;
                p->types[p->n_types] = l.v[i];
                l.v[i].name = NULL;
                p->n_types++;
            }
            if (l.next_token && *l.next_token && !p->stopping)
                start_types(p, l.next_token);
            ec2_instance_type_list_done(&l);
        } else {
            caa_error_prefix(&e, "EC2 DescribeInstanceTypes");
        }
    }
    if (status < 0)
        step_fail(p, e);
    describe_step_done(p);
}

static void start_call(aws_provider *p, aws_params *params, aws_call_cb cb)
{
    caa_error *e = NULL;
    p->startup_steps++;
    caa_ref(&p->pending);
    if (aws_call_start(p->api, AWS_SVC_EC2, params, 0, cb, p, NULL, &e) < 0) {
        step_fail(p, e);
        p->startup_steps--;
        (void)caa_unref(&p->pending); /* undoes the reference just taken */
    }
}

static void start_types(aws_provider *p, const char *next_token)
{
    _cleanup_strv_ char **names = caa_strv_copy(p->allowed_types);
    if (!caa_strv_contains(names, p->default_type))
        caa_strv_push(&names, p->default_type);
    aws_params params = {0};
    ec2_build_describe_instance_types(names, next_token, &params);
    start_call(p, &params, on_types);
}

static void phase_describe(aws_provider *p)
{
    p->startup_steps++;
    caa_ref(&p->pending);
    if (p->image_id && p->root_volume_size > 0 && !aws_image_find(p, p->image_id)) {
        char *ids[] = {p->image_id, NULL};
        aws_params params = {0};
        ec2_build_describe_images(ids, &params);
        start_call(p, &params, on_images);
    }
    if (!p->use_lt) {
        caa_instance_types_free(p->types, p->n_types);
        p->types = NULL;
        p->n_types = 0;
        start_types(p, NULL);
    }
    describe_step_done(p);
}

void aws_startup_ensure(aws_provider *p, aws_milestone need)
{
    if (p->stopping || p->startup == AWS_START_RUNNING)
        return;
    if (p->ready || (need == AWS_NEED_REGION && p->region_ready))
        return;
    p->startup = AWS_START_RUNNING;
    caa_error_free(p->startup_err);
    p->startup_err = NULL;
    if (!p->region_ready)
        phase_region(p);
    else
        phase_describe(p);
}
