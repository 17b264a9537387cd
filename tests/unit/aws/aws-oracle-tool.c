/* The C side of the SDK oracle comparison (test_aws_oracle.py): reads the
 * same JSON cases as oracle/oracle.mjs and answers in the same form, using
 * the provider's signer, request builders and response readers.
 *
 *   aws-oracle-tool sign|build|parse < cases.json */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ec2-query.h"
#include "ec2-xml.h"
#include "sigv4.h"
#include "strv.h"
#include "xalloc.h"

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* [[k, v], ...] -> aws_kv array (borrowed strings). */
static aws_kv *pairs(json_t *arr, size_t *n)
{
    *n = json_array_size(arr);
    aws_kv *kv = xnew0(aws_kv, *n ? *n : 1);
    for (size_t i = 0; i < *n; i++) {
        json_t *p = json_array_get(arr, i);
        kv[i].key = json_string_value(json_array_get(p, 0));
        kv[i].value = json_string_value(json_array_get(p, 1));
    }
    return kv;
}

static char **strv_of(json_t *arr)
{
    char **v = xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < json_array_size(arr); i++)
        caa_strv_push(&v, json_string_value(json_array_get(arr, i)));
    return v;
}

static json_t *do_sign(json_t *c)
{
    size_t nq, nh;
    aws_kv *q = pairs(json_object_get(c, "query"), &nq);
    aws_kv *h = pairs(json_object_get(c, "headers"), &nh);
    const char *body = str(c, "body");
    aws_credentials creds = {
        .access_key_id = (char *)str(c, "access_key"),
        .secret_access_key = (char *)str(c, "secret_key"),
        .session_token = (char *)str(c, "session_token"),
    };
    aws_sigv4_request r = {
        .method = str(c, "method"),
        .path = str(c, "path"),
        .query = q,
        .n_query = nq,
        .headers = h,
        .n_headers = nh,
        .payload = body,
        .payload_len = body ? strlen(body) : 0,
        .region = str(c, "region"),
        .service = str(c, "service"),
        .when = (time_t)json_integer_value(json_object_get(c, "time")),
        .add_content_sha256 = json_is_true(json_object_get(c, "add_content_sha256")),
    };
    aws_sigv4_result res;
    caa_error *e = NULL;
    json_t *out;
    if (aws_sigv4_sign(&r, &creds, &res, &e) < 0) {
        out = json_pack("{s:s}", "error", caa_error_msg(e));
        caa_error_free(e);
    } else {
        json_t *hd = json_pack("{s:s, s:s}", "authorization", res.authorization, "x-amz-date", res.amz_date);
        if (creds.session_token && *creds.session_token)
            json_object_set_new(hd, "x-amz-security-token", json_string(creds.session_token));
        if (r.add_content_sha256)
            json_object_set_new(hd, "x-amz-content-sha256", json_string(res.payload_sha256));
        out = json_pack("{s:o}", "headers", hd);
        aws_sigv4_result_done(&res);
    }
    free(q);
    free(h);
    return out;
}

static void build_params(json_t *c, aws_params *p)
{
    const char *action = str(c, "action");
    if (strcmp(action, "RunInstances") == 0) {
        json_t *r = json_object_get(c, "run");
        size_t nt;
        aws_kv *tags = pairs(json_object_get(r, "tags"), &nt);
        char **sgs = strv_of(json_object_get(r, "sg_ids"));
        ec2_run_request rr = {
            .image_id = str(r, "image_id"),
            .instance_type = str(r, "instance_type"),
            .subnet_id = str(r, "subnet_id"),
            .security_group_ids = sgs,
            .key_name = str(r, "key_name"),
            .user_data_b64 = str(r, "user_data_b64"),
            .sev_snp = json_is_true(json_object_get(r, "sev_snp")),
            .root_device_name = str(r, "root_device_name"),
            .root_volume_size = json_integer_value(json_object_get(r, "root_volume_size")),
            .public_ip = json_is_true(json_object_get(r, "public_ip")),
            .launch_template = str(r, "launch_template"),
            .tags = tags,
            .n_tags = nt,
            .client_token = str(r, "client_token"),
        };
        ec2_build_run_instances(&rr, p);
        free(tags);
        caa_strv_free(sgs);
    } else if (strcmp(action, "TerminateInstances") == 0) {
        ec2_build_terminate_instances(str(c, "instance_id"), p);
    } else if (strcmp(action, "DescribeInstances") == 0 || strcmp(action, "DescribeNetworkInterfaces") == 0 ||
               (strcmp(action, "DescribeAddresses") == 0 && !str(c, "instance_id"))) {
        char **ids = strv_of(json_object_get(c, "ids"));
        json_t *fs = json_object_get(c, "filters");
        size_t nf = json_array_size(fs);
        ec2_filter *f = xnew0(ec2_filter, nf ? nf : 1);
        char ***vals = xnew0(char **, nf ? nf : 1);
        for (size_t i = 0; i < nf; i++) {
            f[i].name = json_string_value(json_array_get(json_array_get(fs, i), 0));
            vals[i] = strv_of(json_array_get(json_array_get(fs, i), 1));
            f[i].values = vals[i];
        }
        int max_results = (int)json_integer_value(json_object_get(c, "max_results"));
        if (strcmp(action, "DescribeInstances") == 0)
            ec2_build_describe_instances(ids, f, nf, max_results, str(c, "next_token"), p);
        else if (strcmp(action, "DescribeNetworkInterfaces") == 0)
            ec2_build_describe_network_interfaces(f, nf, max_results, str(c, "next_token"), p);
        else
            ec2_build_describe_addresses_by(str(c, "allocation_id"), f, nf, p);
        for (size_t i = 0; i < nf; i++)
            caa_strv_free(vals[i]);
        free(vals);
        free(f);
        caa_strv_free(ids);
    } else if (strcmp(action, "DescribeInstanceTypes") == 0) {
        char **types = strv_of(json_object_get(c, "types"));
        ec2_build_describe_instance_types(types, str(c, "next_token"), p);
        caa_strv_free(types);
    } else if (strcmp(action, "DescribeImages") == 0) {
        char **ids = strv_of(json_object_get(c, "image_ids"));
        ec2_build_describe_images(ids, p);
        caa_strv_free(ids);
    } else if (strcmp(action, "DescribeAddresses") == 0) {
        ec2_build_describe_addresses(str(c, "instance_id"), p);
    } else if (strcmp(action, "ReleaseAddress") == 0) {
        ec2_build_release_address(str(c, "allocation_id"), p);
    } else if (strcmp(action, "DisassociateAddress") == 0) {
        ec2_build_disassociate_address(str(c, "association_id"), p);
    } else if (strcmp(action, "CreateNetworkInterface") == 0) {
        char **sgs = strv_of(json_object_get(c, "sg_ids"));
        size_t nt;
        aws_kv *tags = pairs(json_object_get(c, "tags"), &nt);
        ec2_build_create_network_interface(str(c, "subnet_id"), sgs, tags, nt, "oracle-token", p);
        free(tags);
        caa_strv_free(sgs);
    } else if (strcmp(action, "AttachNetworkInterface") == 0) {
        ec2_build_attach_network_interface(str(c, "instance_id"), str(c, "eni_id"),
                                           (int)json_integer_value(json_object_get(c, "device_index")), p);
    } else if (strcmp(action, "ModifyNetworkInterfaceAttribute") == 0) {
        ec2_build_eni_delete_on_termination(str(c, "eni_id"), str(c, "attachment_id"), p);
    } else if (strcmp(action, "DeleteNetworkInterface") == 0) {
        ec2_build_delete_network_interface(str(c, "eni_id"), p);
    } else if (strcmp(action, "AllocateAddress") == 0) {
        size_t nt;
        aws_kv *tags = pairs(json_object_get(c, "tags"), &nt);
        ec2_build_allocate_address(tags, nt, p);
        free(tags);
    } else if (strcmp(action, "AssociateAddress") == 0) {
        ec2_build_associate_address(str(c, "allocation_id"), str(c, "eni_id"), p);
    } else if (strcmp(action, "AssumeRoleWithWebIdentity") == 0) {
        sts_build_assume_role_with_web_identity(str(c, "role_arn"), str(c, "session_name"), str(c, "token"),
                                                p);
    }
}

/* Decodes our own form body, so the comparison covers the encoding too. */
static int unhex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

static char *urldecode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 1 && unhex(s[i + 1]) >= 0 && unhex(s[i + 2]) >= 0) {
            out[o++] = (char)(unhex(s[i + 1]) * 16 + unhex(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static json_t *do_build(json_t *c)
{
    aws_params p = {0};
    build_params(c, &p);
    char *body = aws_params_encode(&p);
    aws_params_done(&p);
    json_t *arr = json_array();
    for (char *s = body; *s;) {
        size_t len = strcspn(s, "&");
        char *eq = memchr(s, '=', len);
        if (eq) {
            char *k = urldecode(s, (size_t)(eq - s));
            char *v = urldecode(eq + 1, len - (size_t)(eq - s) - 1);
            json_array_append_new(arr, json_pack("[s, s]", k, v));
            free(k);
            free(v);
        }
        s += len;
        if (*s == '&')
            s++;
    }
    free(body);
    return json_pack("{s:o}", "params", arr);
}

static json_t *tags_json(const aws_kv *tags, size_t n)
{
    json_t *arr = json_array();
    for (size_t k = 0; k < n; k++)
        json_array_append_new(arr, json_pack("[s, s]", tags[k].key, tags[k].value));
    return arr;
}

static json_t *instance_json(const ec2_instance *i)
{
    json_t *nics = json_array(), *tags = json_array();
    for (size_t k = 0; k < i->n_nics; k++)
        json_array_append_new(nics, json_pack("{s:o, s:o, s:I}", "private_ip", jstr(i->nics[k].private_ip),
                                              "public_ip", jstr(i->nics[k].public_ip), "device_index",
                                              (json_int_t)i->nics[k].device_index));
    json_decref(tags);
    tags = tags_json(i->tags, i->n_tags);
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", jstr(i->id), "state", jstr(i->state),
                     "type", jstr(i->instance_type), "private_ip", jstr(i->private_ip), "public_ip",
                     jstr(i->public_ip), "nics", nics, "tags", tags);
}

static json_t *instances_json(const ec2_instance_list *l, int with_token)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(arr, instance_json(&l->v[i]));
    json_t *o = json_pack("{s:o}", "instances", arr);
    if (with_token)
        json_object_set_new(o, "next_token", jstr(l->next_token));
    return o;
}

static json_t *do_parse(json_t *c)
{
    const char *xml = str(c, "xml");
    size_t len = strlen(xml);
    json_int_t status = json_is_integer(json_object_get(c, "status"))
                            ? json_integer_value(json_object_get(c, "status"))
                            : 200;
    json_t *req = json_object_get(c, "request");
    const char *action = req ? str(req, "action") : str(c, "action");
    caa_error *e = NULL;
    json_t *out = NULL;
    if (status >= 300) {
        ec2_error ae;
        if (ec2_parse_error(xml, len, &ae) < 0)
            return json_pack("{s:b}", "fail", 1);
        out = json_pack("{s:{s:o, s:o, s:o}}", "error", "code", jstr(ae.code), "message", jstr(ae.message),
                        "request_id", jstr(ae.request_id));
        ec2_error_done(&ae);
        return out;
    }
    if (strcmp(action, "RunInstances") == 0 || strcmp(action, "DescribeInstances") == 0 ||
        strcmp(action, "TerminateInstances") == 0) {
        ec2_instance_list l;
        int r = strcmp(action, "RunInstances") == 0        ? ec2_parse_run_instances(xml, len, &l, &e)
                : strcmp(action, "DescribeInstances") == 0 ? ec2_parse_describe_instances(xml, len, &l, &e)
                                                           : ec2_parse_terminate_instances(xml, len, &l, &e);
        if (r >= 0) {
            if (strcmp(action, "TerminateInstances") == 0) {
                json_t *arr = json_array();
                for (size_t i = 0; i < l.n; i++)
                    json_array_append_new(
                        arr, json_pack("{s:o, s:o}", "id", jstr(l.v[i].id), "state", jstr(l.v[i].state)));
                out = json_pack("{s:o}", "instances", arr);
            } else {
                out = instances_json(&l, strcmp(action, "DescribeInstances") == 0);
            }
            ec2_instance_list_done(&l);
        }
    } else if (strcmp(action, "DescribeInstanceTypes") == 0) {
        ec2_instance_type_list l;
        if (ec2_parse_describe_instance_types(xml, len, &l, &e) >= 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < l.n; i++)
                json_array_append_new(arr, json_pack("{s:o, s:I, s:I, s:I}", "name", jstr(l.v[i].name),
                                                     "vcpus", (json_int_t)l.v[i].vcpus, "memory_mib",
                                                     (json_int_t)l.v[i].memory_mib, "gpus",
                                                     (json_int_t)l.v[i].gpus));
            out = json_pack("{s:o, s:o}", "types", arr, "next_token", jstr(l.next_token));
            ec2_instance_type_list_done(&l);
        }
    } else if (strcmp(action, "DescribeImages") == 0) {
        ec2_image_list l;
        if (ec2_parse_describe_images(xml, len, &l, &e) >= 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < l.n; i++)
                json_array_append_new(arr,
                                      json_pack("{s:o, s:o, s:I}", "id", jstr(l.v[i].id), "root_device_name",
                                                jstr(l.v[i].root_device_name), "root_volume_size",
                                                (json_int_t)l.v[i].root_volume_size));
            out = json_pack("{s:o}", "images", arr);
            ec2_image_list_done(&l);
        }
    } else if (strcmp(action, "DescribeAddresses") == 0) {
        ec2_address_list l;
        if (ec2_parse_describe_addresses(xml, len, &l, &e) >= 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < l.n; i++)
                json_array_append_new(
                    arr, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "public_ip", jstr(l.v[i].public_ip),
                                   "allocation_id", jstr(l.v[i].allocation_id), "association_id",
                                   jstr(l.v[i].association_id), "instance_id", jstr(l.v[i].instance_id),
                                   "network_interface_id", jstr(l.v[i].network_interface_id), "tags",
                                   tags_json(l.v[i].tags, l.v[i].n_tags)));
            out = json_pack("{s:o}", "addresses", arr);
            ec2_address_list_done(&l);
        }
    } else if (strcmp(action, "DescribeNetworkInterfaces") == 0) {
        ec2_eni_list l;
        if (ec2_parse_describe_network_interfaces(xml, len, &l, &e) >= 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < l.n; i++)
                json_array_append_new(arr, json_pack("{s:o, s:o, s:o, s:o, s:b, s:o}", "id", jstr(l.v[i].id),
                                                     "status", jstr(l.v[i].status), "attached_instance_id",
                                                     jstr(l.v[i].attached_instance_id), "attachment_id",
                                                     jstr(l.v[i].attachment_id), "delete_on_termination",
                                                     l.v[i].delete_on_termination, "tags",
                                                     tags_json(l.v[i].tags, l.v[i].n_tags)));
            out = json_pack("{s:o, s:o}", "enis", arr, "next_token", jstr(l.next_token));
            ec2_eni_list_done(&l);
        }
    } else if (strcmp(action, "AssumeRoleWithWebIdentity") == 0) {
        aws_credentials cr;
        if (sts_parse_assume_role(xml, len, &cr, &e) >= 0) {
            out = json_pack("{s:{s:s, s:s, s:s, s:I}}", "credentials", "access_key_id", cr.access_key_id,
                            "secret_access_key", cr.secret_access_key, "session_token", cr.session_token,
                            "expiration", (json_int_t)cr.expiration);
            aws_credentials_clear(&cr);
        }
    } else {
        out = ec2_parse_expect_root(xml, len, action, &e) >= 0 ? json_pack("{s:b}", "ok", 1) : NULL;
    }
    caa_error_free(e);
    return out ? out : json_pack("{s:b}", "fail", 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s sign|build|parse < cases.json\n", argv[0]);
        return 2;
    }
    json_error_t je;
    json_t *cases = json_loadf(stdin, 0, &je);
    if (!json_is_array(cases)) {
        fprintf(stderr, "bad input: %s\n", je.text);
        return 2;
    }
    json_t *(*fn)(json_t *) = strcmp(argv[1], "sign") == 0    ? do_sign
                              : strcmp(argv[1], "build") == 0 ? do_build
                              : strcmp(argv[1], "parse") == 0 ? do_parse
                                                              : NULL;
    if (!fn)
        return 2;
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(cases); i++)
        json_array_append_new(out, fn(json_array_get(cases, i)));
    json_dumpf(out, stdout, JSON_COMPACT);
    json_decref(out);
    json_decref(cases);
    return 0;
}
