/* Feeds one input to every reader of EC2/STS answers (error documents,
 * RunInstances, DescribeInstances, TerminateInstances, DescribeInstanceTypes,
 * DescribeImages, DescribeAddresses, AssumeRoleWithWebIdentity) and checks
 * what they promise: a success leaves every list entry usable, the address
 * choice never points outside the parsed strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ec2-xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_instances(const ec2_instance_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const ec2_instance *inst = &l->v[i];
        for (int pub = 0; pub < 2; pub++) {
            const char *a = ec2_instance_address(inst, pub);
            if (a && !*a)
                abort(); /* empty addresses must read as none */
        }
        for (size_t t = 0; t < inst->n_tags; t++)
            if (!inst->tags[t].key || !inst->tags[t].value)
                abort();
        (void)ec2_instance_tag(inst, "Name");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *xml = (const char *)data;
    ec2_error e;
    if (ec2_parse_error(xml, size, &e) == 0) {
        if (!e.code)
            abort();
        ec2_error_done(&e);
    }
    caa_error *err = NULL;
    ec2_instance_list l;
    if (ec2_parse_run_instances(xml, size, &l, &err) == 0) {
        check_instances(&l);
        ec2_instance_list_done(&l);
    }
    caa_error_free(err);
    err = NULL;
    if (ec2_parse_describe_instances(xml, size, &l, &err) == 0) {
        check_instances(&l);
        ec2_instance_list_done(&l);
    }
    caa_error_free(err);
    err = NULL;
    if (ec2_parse_terminate_instances(xml, size, &l, &err) == 0)
        ec2_instance_list_done(&l);
    caa_error_free(err);
    err = NULL;
    ec2_instance_type_list tl;
    if (ec2_parse_describe_instance_types(xml, size, &tl, &err) == 0) {
        for (size_t i = 0; i < tl.n; i++)
            if (!tl.v[i].name || tl.v[i].gpus < 0)
                abort();
        caa_instance_types_sort(tl.v, tl.n);
        ec2_instance_type_list_done(&tl);
    }
    caa_error_free(err);
    err = NULL;
    ec2_image_list il;
    if (ec2_parse_describe_images(xml, size, &il, &err) == 0) {
        for (size_t i = 0; i < il.n; i++)
            if (il.v[i].root_volume_size < 0)
                abort();
        ec2_image_list_done(&il);
    }
    caa_error_free(err);
    err = NULL;
    ec2_address_list al;
    if (ec2_parse_describe_addresses(xml, size, &al, &err) == 0) {
        for (size_t i = 0; i < al.n; i++)
            for (size_t k = 0; k < al.v[i].n_tags; k++)
                if (!al.v[i].tags[k].key || !al.v[i].tags[k].value)
                    abort();
        ec2_address_list_done(&al);
    }
    caa_error_free(err);
    err = NULL;
    ec2_eni_list el;
    if (ec2_parse_describe_network_interfaces(xml, size, &el, &err) == 0) {
        for (size_t i = 0; i < el.n; i++)
            for (size_t k = 0; k < el.v[i].n_tags; k++)
                if (!el.v[i].tags[k].key || !el.v[i].tags[k].value)
                    abort();
        ec2_eni_list_done(&el);
    }
    caa_error_free(err);
    err = NULL;
    /* The id readers: success always means a non-empty id. */
    static int (*const id_parsers[])(const char *, size_t, char **, caa_error **) = {
        ec2_parse_create_network_interface,
        ec2_parse_attach_network_interface,
        ec2_parse_allocate_address,
    };
    for (size_t i = 0; i < sizeof(id_parsers) / sizeof(id_parsers[0]); i++) {
        char *id = NULL;
        if (id_parsers[i](xml, size, &id, &err) == 0 && (!id || !*id))
            abort();
        free(id);
        caa_error_free(err);
        err = NULL;
    }
    aws_credentials c;
    if (sts_parse_assume_role(xml, size, &c, &err) == 0) {
        if (!c.access_key_id || !c.secret_access_key || !c.session_token || c.expiration == 0)
            abort();
        aws_credentials_clear(&c);
    }
    caa_error_free(err);
    return 0;
}
