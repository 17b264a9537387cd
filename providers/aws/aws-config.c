/* AWS provider options and their validation. */
#include "aws-config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strv.h"
#include "xalloc.h"
#include "timeutil.h"

const caa_option aws_options[AWS_N_OPTIONS] = {
    CAA_OPTION_SECRET(aws_config, "aws-access-key-id", "AWS_ACCESS_KEY_ID", access_key_id,
                      "AWS access key id"),
    CAA_OPTION_SECRET(aws_config, "aws-secret-key", "AWS_SECRET_ACCESS_KEY", secret_key,
                      "AWS secret access key"),
    CAA_OPTION_SECRET(aws_config, "aws-session-token", "AWS_SESSION_TOKEN", session_token,
                      "AWS session token (temporary keys)"),
    CAA_OPTION(aws_config, "aws-profile", NULL, CAA_OPT_STRING, profile, "",
               "profile of the shared credentials/config files (default: $AWS_PROFILE, else \"default\")"),
    CAA_OPTION(aws_config, "aws-region", "AWS_REGION", CAA_OPT_STRING, region, "",
               "AWS region (empty: the profile's, else instance metadata)"),
    CAA_OPTION(aws_config, "imageid", "PODVM_AMI_ID", CAA_OPT_STRING, image_id, "",
               "AMI id of the pod VM image"),
    CAA_OPTION(aws_config, "instance-type", "PODVM_INSTANCE_TYPE", CAA_OPT_STRING, instance_type,
               AWS_DEFAULT_INSTANCE_TYPE, "default instance type of a pod VM"),
    CAA_OPTION(aws_config, "instance-types", "PODVM_INSTANCE_TYPES", CAA_OPT_LIST, instance_types, "",
               "instance types a pod may ask for or be fitted to (comma-separated)"),
    CAA_OPTION(aws_config, "subnetid", "AWS_SUBNET_ID", CAA_OPT_STRING, subnet_id, "",
               "subnet of pod VMs (empty: this node's)"),
    CAA_OPTION(aws_config, "securitygroupids", "AWS_SG_IDS", CAA_OPT_LIST, security_group_ids, "",
               "security groups of pod VMs (empty: this node's)"),
    CAA_OPTION(aws_config, "keyname", "SSH_KP_NAME", CAA_OPT_STRING, key_name, "",
               "EC2 key pair name (empty: this node's)"),
    CAA_OPTION(aws_config, "use-lt", "USE_PODVM_LAUNCHTEMPLATE", CAA_OPT_BOOL, use_lt, "false",
               "create pod VMs from a launch template"),
    CAA_OPTION(aws_config, "aws-lt-name", "PODVM_LAUNCHTEMPLATE_NAME", CAA_OPT_STRING, lt_name, "kata",
               "launch template name"),
    CAA_OPTION(aws_config, "use-public-ip", "USE_PUBLIC_IP", CAA_OPT_BOOL, use_public_ip, "false",
               "give pod VMs a public address and connect to it"),
    CAA_OPTION_INT(aws_config, "root-volume-size", "ROOT_VOLUME_SIZE", root_volume_size, "30", 0, 16384,
                   "root volume size in GiB (raised to the AMI's size; 0: the AMI's)"),
    CAA_OPTION(aws_config, "disable-cvm", "DISABLECVM", CAA_OPT_BOOL, disable_cvm, "false",
               "create plain VMs (no AMD SEV-SNP CPU option)"),
    CAA_OPTION(aws_config, "tags", "TAGS", CAA_OPT_KEYVALUE, tags, "", "extra tags of pod VMs (k=v,...)"),
    CAA_OPTION_INT(aws_config, "aws-max-concurrent-requests", "AWS_MAX_CONCURRENT_REQUESTS", max_concurrent,
                   "128", 1, 4096, "EC2/STS/IMDS requests in flight at once (more wait in a queue)"),
    CAA_OPTION(aws_config, "aws-request-timeout", "AWS_REQUEST_TIMEOUT", CAA_OPT_DURATION, request_timeout,
               "30s", "timeout of one HTTP request to AWS"),
    CAA_OPTION_INT(aws_config, "aws-max-attempts", "AWS_MAX_ATTEMPTS", max_attempts, "8", 1, 100,
                   "attempts per AWS call on throttling and transient errors"),
    CAA_OPTION(aws_config, "aws-running-wait", "AWS_RUNNING_WAIT", CAA_OPT_DURATION, running_wait, "120s",
               "with -use-public-ip: how long to wait for a pod VM to be running"),
    CAA_OPTION(aws_config, "aws-ca-bundle", "AWS_CA_BUNDLE", CAA_OPT_STRING, ca_bundle, "",
               "CA certificates (PEM) to trust for the AWS endpoints instead of the system store"),
    CAA_OPTION_INT(aws_config, "aws-max-response-size", "AWS_MAX_RESPONSE_SIZE", max_response, "16777216",
                   4096, INT64_C(1) << 30, "largest AWS answer accepted, in bytes"),
    CAA_OPTION(aws_config, "aws-node-name", "NODE_NAME", CAA_OPT_STRING, node_name, "",
               "node name in the caa.node ownership tag (empty: the host name)"),
};

void aws_kv_free(aws_kv *kv, size_t n)
{
    for (size_t i = 0; kv && i < n; i++) {
        free((char *)kv[i].key);
        free((char *)kv[i].value);
    }
    free(kv);
}

static bool printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

int aws_parse_tags(char *const *items, aws_kv **ret, size_t *ret_n, caa_error **err)
{
    size_t n = caa_strv_len(items);
    aws_kv *kv = xnew0(aws_kv, n ? n : 1);
    size_t m = 0;
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        size_t klen = eq ? (size_t)(eq - items[i]) : strlen(items[i]);
        const char *v = eq ? eq + 1 : "";
        char *key = xstrndup(items[i], klen);
        if (!eq || klen == 0) {
            r = caa_error_set(err, -EINVAL, "tag \"%.140s\" is not key=value", items[i]);
        } else if (klen > AWS_MAX_TAG_KEY || strlen(v) > AWS_MAX_TAG_VALUE) {
            r = caa_error_set(err, -EINVAL,
                              "tag %.140s: key longer than %d or value longer than %d characters", key,
                              AWS_MAX_TAG_KEY, AWS_MAX_TAG_VALUE);
        } else if (strncasecmp(key, "aws:", 4) == 0) {
            r = caa_error_set(err, -EINVAL, "tag %s: keys starting with \"aws:\" are reserved by AWS", key);
        } else if (strcmp(key, "Name") == 0 || strncmp(key, "caa.", 4) == 0) {
            r = caa_error_set(err, -EINVAL, "tag %s: Name and caa.* are set by the adaptor", key);
        } else if (!printable(key) || !printable(v)) {
            r = caa_error_set(err, -EINVAL, "tag %.140s has control characters", key);
        } else {
            for (size_t j = 0; j < m && r == 0; j++)
                if (strcmp(kv[j].key, key) == 0)
                    r = caa_error_set(err, -EINVAL, "tag %s is given twice", key);
        }
        if (r < 0) {
            free(key);
            aws_kv_free(kv, m);
            return r;
        }
        kv[m].key = key;
        kv[m].value = xstrdup(v);
        m++;
    }
    *ret = kv;
    *ret_n = m;
    return 0;
}

static bool id_like(const char *s, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(s, prefix, pl) != 0 || !s[pl])
        return false;
    for (const char *p = s + pl; *p; p++)
        if (!isalnum((unsigned char)*p))
            return false;
    return strlen(s) <= 64;
}

int aws_config_validate(const aws_config *cfg, caa_error **err)
{
    bool have_key = cfg->access_key_id && *cfg->access_key_id;
    bool have_secret = cfg->secret_key && *cfg->secret_key;
    if (have_key != have_secret)
        return caa_error_set(err, -EINVAL, "-aws-access-key-id and -aws-secret-key must be given together");
    if (cfg->region && *cfg->region) {
        for (const char *p = cfg->region; *p; p++)
            if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
                return caa_error_set(err, -EINVAL, "-aws-region \"%.64s\" is not a region name", cfg->region);
    }
    if (cfg->image_id && *cfg->image_id && !id_like(cfg->image_id, "ami-"))
        return caa_error_set(err, -EINVAL, "-imageid \"%.64s\" is not an AMI id (ami-...)", cfg->image_id);
    if (!cfg->instance_type || !*cfg->instance_type)
        return caa_error_set(err, -EINVAL, "-instance-type must not be empty");
    if (cfg->use_lt && (!cfg->lt_name || !*cfg->lt_name))
        return caa_error_set(err, -EINVAL, "-use-lt needs -aws-lt-name");
    if (cfg->subnet_id && *cfg->subnet_id && !id_like(cfg->subnet_id, "subnet-"))
        return caa_error_set(err, -EINVAL, "-subnetid \"%.64s\" is not a subnet id (subnet-...)",
                             cfg->subnet_id);
    for (size_t i = 0; cfg->security_group_ids && cfg->security_group_ids[i]; i++)
        if (!id_like(cfg->security_group_ids[i], "sg-"))
            return caa_error_set(err, -EINVAL,
                                 "-securitygroupids: \"%.64s\" is not a security group id (sg-...)",
                                 cfg->security_group_ids[i]);
    aws_kv *tags = NULL;
    size_t n = 0;
    int r = aws_parse_tags(cfg->tags, &tags, &n, err);
    if (r < 0)
        return caa_error_prefix(err, "-tags");
    aws_kv_free(tags, n);
    /* Name, caa.node and caa.sandbox-id are added to every instance. */
    if (n + 3 > AWS_MAX_TAGS)
        return caa_error_set(err, -EINVAL, "-tags: at most %d tags", AWS_MAX_TAGS - 3);
    if (cfg->request_timeout < CAA_NSEC_PER_MSEC)
        return caa_error_set(err, -EINVAL, "-aws-request-timeout must be at least 1ms");
    return 0;
}
