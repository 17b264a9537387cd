/* Azure provider options and their validation. */
#include "azure-config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http.h"
#include "node-name.h"
#include "xalloc.h"
#include "timeutil.h"

const caa_option az_options[AZ_N_OPTIONS] = {
    CAA_OPTION_SECRET(az_config, "clientid", "AZURE_CLIENT_ID", client_id,
                      "client id of the app registration or managed identity"),
    CAA_OPTION_SECRET(az_config, "secret", "AZURE_CLIENT_SECRET", client_secret,
                      "client secret (empty: workload identity, else managed identity)"),
    CAA_OPTION_SECRET(az_config, "tenantid", "AZURE_TENANT_ID", tenant_id, "Entra ID tenant id"),
    CAA_OPTION(az_config, "subscriptionid", "AZURE_SUBSCRIPTION_ID", CAA_OPT_STRING, subscription_id, "",
               "subscription id"),
    CAA_OPTION(az_config, "region", "AZURE_REGION", CAA_OPT_STRING, region, "",
               "region (location) of the pod VMs"),
    CAA_OPTION(az_config, "resourcegroup", "AZURE_RESOURCE_GROUP", CAA_OPT_STRING, resource_group, "",
               "resource group of the pod VMs"),
    CAA_OPTION(az_config, "subnetid", "AZURE_SUBNET_ID", CAA_OPT_STRING, subnet_id, "",
               "ARM id of the subnet of the pod VM NIC"),
    CAA_OPTION(az_config, "secondary-subnetid", "AZURE_SECONDARY_SUBNET_ID", CAA_OPT_STRING,
               secondary_subnet_id, "",
               "ARM id of the subnet of the pod VM's second NIC (external-net-via-pod-vm)"),
    CAA_OPTION(az_config, "securitygroupid", "AZURE_NSG_ID", CAA_OPT_STRING, nsg_id, "",
               "ARM id of the network security group attached to the NIC"),
    CAA_OPTION(az_config, "imageid", "AZURE_IMAGE_ID", CAA_OPT_STRING, image_id, "",
               "pod VM image: image or gallery image version ARM id, or /CommunityGalleries/... id"),
    CAA_OPTION(az_config, "instance-size", "AZURE_INSTANCE_SIZE", CAA_OPT_STRING, instance_size,
               AZ_DEFAULT_SIZE, "default VM size"),
    CAA_OPTION(az_config, "instance-sizes", "AZURE_INSTANCE_SIZES", CAA_OPT_LIST, instance_sizes, NULL,
               "VM sizes pods may use (comma-separated)"),
    CAA_OPTION(az_config, "ssh-key-path", NULL, CAA_OPT_STRING, ssh_key_path, "",
               "SSH public key for the VM admin user (mode 0600); empty: a new key per VM"),
    CAA_OPTION(az_config, "ssh-username", "SSH_USERNAME", CAA_OPT_STRING, ssh_username, "peerpod",
               "VM admin user name"),
    CAA_OPTION(az_config, "disable-cvm", "DISABLECVM", CAA_OPT_BOOL, disable_cvm, "false",
               "create plain (non-confidential) VMs"),
    CAA_OPTION(az_config, "enable-secure-boot", "ENABLE_SECURE_BOOT", CAA_OPT_BOOL, enable_secure_boot,
               "false", "UEFI secure boot for confidential VMs"),
    CAA_OPTION(az_config, "use-public-ip", "USE_PUBLIC_IP", CAA_OPT_BOOL, use_public_ip, "false",
               "give each pod VM a public IP and connect to it"),
    CAA_OPTION_INT(az_config, "root-volume-size", "ROOT_VOLUME_SIZE", root_volume_size, "0", 0, 4095,
                   "OS disk size in GiB (0: the image's size)"),
    CAA_OPTION(az_config, "tags", "TAGS", CAA_OPT_KEYVALUE, tags, NULL,
               "tags for every pod VM (key1=value1,key2=value2)"),
    CAA_OPTION(az_config, "zone", NULL, CAA_OPT_STRING, zone, "",
               "availability zone (accepted for compatibility, unused)"),
    CAA_OPTION(az_config, "authority-host", "AZURE_AUTHORITY_HOST", CAA_OPT_STRING, authority_host,
               AZ_DEFAULT_AUTHORITY, "Entra ID authority (sovereign clouds)"),
    CAA_OPTION(az_config, "resource-manager-endpoint", "AZURE_RESOURCE_MANAGER_ENDPOINT", CAA_OPT_STRING,
               arm_endpoint, AZ_DEFAULT_ARM, "Azure Resource Manager endpoint (sovereign clouds)"),
    CAA_OPTION(az_config, "resource-manager-audience", "AZURE_RESOURCE_MANAGER_AUDIENCE", CAA_OPT_STRING,
               arm_audience, "", "token audience for ARM (empty: the endpoint)"),
    CAA_OPTION(az_config, "federated-token-file", "AZURE_FEDERATED_TOKEN_FILE", CAA_OPT_STRING,
               federated_token_file, "", "workload identity token file (used when -secret is empty)"),
    CAA_OPTION(az_config, "imds-endpoint", "AZURE_IMDS_ENDPOINT", CAA_OPT_STRING, imds_endpoint,
               AZ_DEFAULT_IMDS, "instance metadata service for managed identity"),
    CAA_OPTION(az_config, "node-name", "NODE_NAME", CAA_OPT_STRING, node_name, "",
               "value of the caa-node tag on pod VMs (empty: the host name)"),
    CAA_OPTION(az_config, "ssh-key-type", "AZURE_SSH_KEY_TYPE", CAA_OPT_STRING, ssh_key_type, "ed25519",
               "type of the generated per-VM key: ed25519 or rsa (RSA-4096, as upstream; slow)"),
    CAA_OPTION_INT(az_config, "max-requests", "AZURE_MAX_REQUESTS", max_requests, "256", 1, 4096,
                   "Azure API requests in flight at once"),
    CAA_OPTION(az_config, "request-timeout", "AZURE_REQUEST_TIMEOUT", CAA_OPT_DURATION, request_timeout,
               "60s", "timeout of one Azure API request"),
    CAA_OPTION(az_config, "create-timeout", "AZURE_CREATE_TIMEOUT", CAA_OPT_DURATION, create_timeout, "10m",
               "deadline for creating a VM (the VM is deleted when it passes)"),
    CAA_OPTION(az_config, "delete-timeout", "AZURE_DELETE_TIMEOUT", CAA_OPT_DURATION, delete_timeout, "10m",
               "deadline for deleting a VM"),
    CAA_OPTION(az_config, "poll-interval", "AZURE_POLL_INTERVAL", CAA_OPT_DURATION, poll_interval, "2s",
               "long-running operation poll interval when Azure sends no Retry-After"),
    CAA_OPTION(az_config, "poll-interval-fast", "AZURE_POLL_INTERVAL_FAST", CAA_OPT_DURATION,
               poll_interval_fast, "250ms",
               "the same while ARM's last answer leaves at least 200 subscription reads (its "
               "x-ms-ratelimit-remaining-subscription-reads header)"),
    CAA_OPTION(az_config, "retry-max-delay", "AZURE_RETRY_MAX_DELAY", CAA_OPT_DURATION, retry_max_delay,
               "60s", "cap on any Retry-After or back-off wait"),
    CAA_OPTION_INT(az_config, "max-retries", "AZURE_MAX_RETRIES", max_retries, "6", 0, 100,
                   "retries of a throttled (429) or failed (5xx, network) request"),
};

static bool is_set(const char *s)
{
    return s && *s;
}

/* Characters we let into URL paths built from configuration and ids. */
static bool path_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '(' || c == ')' || c == '~';
}

bool az_arm_id_valid(const char *id, const char *type)
{
    if (!id || strncasecmp(id, "/subscriptions/", 15) != 0 || strlen(id) > 2048)
        return false;
    const char *p = id;
    while (*p == '/') {
        const char *seg = ++p;
        while (*p && *p != '/') {
            if (!path_char(*p))
                return false;
            p++;
        }
        size_t n = (size_t)(p - seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
    }
    if (*p)
        return false;
    if (!type)
        return true;
    /* .../providers/<type>/... (the last provider segment, case-insensitive). */
    const char *prov = NULL;
    for (const char *q = id; (q = strcasestr(q, "/providers/")); q += 11)
        prov = q + 11;
    size_t tn = strlen(type);
    return prov && strncasecmp(prov, type, tn) == 0 && prov[tn] == '/' && prov[tn + 1];
}

bool az_resource_group_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 90 || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_.()", s[i]))
            return false;
    return true;
}

bool az_region_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool subscription_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

/* A tenant GUID or a domain such as contoso.onmicrosoft.com. */
static bool tenant_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 256 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
            return false;
    return strstr(s, "..") == NULL;
}

bool az_username_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64 || !(islower((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    /* Azure refuses these for adminUsername. */
    static const char *const reserved[] = {"root", "admin", "administrator", "guest", "sys", "test", "user"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(s, reserved[i]) == 0)
            return false;
    return true;
}

/* Well-formed UTF-8 (JSON strings must be). */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : 4;
        if (n == 4 || (n == 1 && *p < 0xC2))
            return false;
        p++;
        for (unsigned i = 0; i < n; i++, p++)
            if ((*p & 0xC0) != 0x80)
                return false;
    }
    return true;
}

int az_tags_validate(char *const *tags, caa_error **err)
{
    size_t n = 0;
    for (size_t i = 0; tags && tags[i]; i++, n++) {
        if (!utf8_valid(tags[i]))
            return caa_error_set(err, -EINVAL, "tag %zu is not valid UTF-8", i + 1);
        const char *eq = strchr(tags[i], '=');
        size_t kn = eq ? (size_t)(eq - tags[i]) : strlen(tags[i]);
        if (!eq || kn == 0 || kn > 512)
            return caa_error_set(err, -EINVAL, "tag \"%.64s\": the name must have 1 to 512 characters",
                                 tags[i]);
        if (strlen(eq + 1) > 256)
            return caa_error_set(err, -EINVAL, "tag \"%.*s\": the value is longer than 256 characters",
                                 (int)kn, tags[i]);
        for (size_t k = 0; k < kn; k++)
            if (strchr("<>%&\\?/", tags[i][k]) || (unsigned char)tags[i][k] < 0x20)
                return caa_error_set(err, -EINVAL, "tag name \"%.*s\" contains a character Azure refuses",
                                     (int)kn, tags[i]);
        if (strncasecmp(tags[i], "caa-", 4) == 0)
            return caa_error_set(err, -EINVAL, "tag name \"%.*s\": the caa- prefix is reserved", (int)kn,
                                 tags[i]);
    }
    /* 50 tags per resource, two of them ours. */
    if (n > 48)
        return caa_error_set(err, -EINVAL,
                             "%zu tags: Azure allows 50 per resource, 2 are needed by the adaptor", n);
    return 0;
}

static char *trim_slash(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    return xstrndup(s, n);
}

static int check_endpoint(const char *what, const char *url, unsigned flags, caa_error **err)
{
    if (!is_set(url))
        return caa_error_set(err, -EINVAL, "-%s must not be empty", what);
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        return caa_error_set(err, -EINVAL, "-%s \"%s\" is not an http(s) URL", what, url);
    if (strpbrk(url, "?# \t\r\n"))
        return caa_error_set(err, -EINVAL, "-%s \"%s\" must be a plain URL without query or fragment", what,
                             url);
    int r = caa_http_url_check(url, flags, err);
    if (r < 0)
        return caa_error_prefix(err, "-%s", what);
    return 0;
}

static int ms_of(const char *what, int64_t ns, int64_t min_ms, uint64_t *ret, caa_error **err)
{
    int64_t ms = caa_ns_to_ms(ns);
    if (ms < min_ms)
        return caa_error_set(err, -EINVAL, "-%s must be at least %lld ms", what, (long long)min_ms);
    *ret = (uint64_t)ms;
    return 0;
}

void az_settings_done(az_settings *s)
{
    free(s->authority);
    free(s->arm);
    free(s->scope);
    free(s->resource);
    free(s->imds);
    free(s->token_file);
    free(s->node_name);
    free(s->vm_base_path);
    *s = (az_settings){0};
}

static int validate(const az_config *c, az_settings *s, caa_error **err)
{
    if (!subscription_valid(c->subscription_id))
        return caa_error_set(err, -EINVAL,
                             "-subscriptionid (AZURE_SUBSCRIPTION_ID) is required: a subscription id");
    if (!az_region_valid(c->region))
        return caa_error_set(err, -EINVAL,
                             "-region (AZURE_REGION) is required: a region name such as eastus");
    if (!az_resource_group_valid(c->resource_group))
        return caa_error_set(err, -EINVAL,
                             "-resourcegroup (AZURE_RESOURCE_GROUP) is required: a resource group name");
    if (!az_arm_id_valid(c->subnet_id, "Microsoft.Network/virtualNetworks") ||
        !strcasestr(c->subnet_id, "/subnets/"))
        return caa_error_set(err, -EINVAL,
                             "-subnetid (AZURE_SUBNET_ID) is required: the ARM id of a subnet "
                             "(/subscriptions/.../virtualNetworks/<vnet>/subnets/<subnet>)");
    if (is_set(c->secondary_subnet_id) &&
        (!az_arm_id_valid(c->secondary_subnet_id, "Microsoft.Network/virtualNetworks") ||
         !strcasestr(c->secondary_subnet_id, "/subnets/")))
        return caa_error_set(err, -EINVAL, "-secondary-subnetid \"%s\" is not the ARM id of a subnet",
                             c->secondary_subnet_id);
    /* As upstream's ConfigVerifier; ARM ids compare case-insensitively. */
    if (is_set(c->secondary_subnet_id) && strcasecmp(c->secondary_subnet_id, c->subnet_id) == 0)
        return caa_error_set(err, -EINVAL,
                             "-secondary-subnetid (AZURE_SECONDARY_SUBNET_ID) must differ from -subnetid");
    if (is_set(c->nsg_id) && !az_arm_id_valid(c->nsg_id, "Microsoft.Network/networkSecurityGroups"))
        return caa_error_set(
            err, -EINVAL, "-securitygroupid \"%s\" is not the ARM id of a network security group", c->nsg_id);
    if (!is_set(c->image_id))
        return caa_error_set(err, -EINVAL, "-imageid (AZURE_IMAGE_ID) is required");
    if (!is_set(c->instance_size))
        return caa_error_set(err, -EINVAL, "-instance-size must not be empty");
    if (!az_username_valid(c->ssh_username))
        return caa_error_set(err, -EINVAL, "-ssh-username \"%s\" is not a user name Azure accepts",
                             c->ssh_username);
    int r = az_tags_validate(c->tags, err);
    if (r < 0)
        return caa_error_prefix(err, "-tags");

    if (strcmp(c->ssh_key_type, "ed25519") == 0)
        s->key_type = AZ_KEY_ED25519;
    else if (strcmp(c->ssh_key_type, "rsa") == 0)
        s->key_type = AZ_KEY_RSA4096;
    else
        return caa_error_set(err, -EINVAL, "-ssh-key-type \"%s\": ed25519 or rsa", c->ssh_key_type);

    if ((r = check_endpoint("authority-host", c->authority_host, 0, err)) < 0 ||
        (r = check_endpoint("resource-manager-endpoint", c->arm_endpoint, 0, err)) < 0)
        return r;
    if (is_set(c->arm_audience) && strncmp(c->arm_audience, "https://", 8) != 0 &&
        strncmp(c->arm_audience, "http://", 7) != 0)
        return caa_error_set(err, -EINVAL, "-resource-manager-audience \"%s\" is not a URL", c->arm_audience);

    if (is_set(c->client_secret)) {
        s->auth = AZ_AUTH_CLIENT_SECRET;
    } else if (is_set(c->federated_token_file)) {
        s->auth = AZ_AUTH_WORKLOAD_IDENTITY;
        s->token_file = xstrdup(c->federated_token_file);
    } else {
        s->auth = AZ_AUTH_MANAGED_IDENTITY;
        if ((r = check_endpoint("imds-endpoint", c->imds_endpoint, CAA_HTTP_ALLOW_LINK_LOCAL, err)) < 0)
            return r;
    }
    if (s->auth != AZ_AUTH_MANAGED_IDENTITY) {
        if (!is_set(c->client_id) || !is_set(c->tenant_id))
            return caa_error_set(
                err, -EINVAL,
                "-clientid (AZURE_CLIENT_ID) and -tenantid (AZURE_TENANT_ID) are required with a "
                "client secret or workload identity");
        if (!tenant_valid(c->tenant_id))
            return caa_error_set(err, -EINVAL, "-tenantid is not a tenant id or domain name");
    }

    if ((r = ms_of("request-timeout", c->request_timeout, 100, &s->request_timeout_ms, err)) < 0 ||
        (r = ms_of("create-timeout", c->create_timeout, 100, &s->create_timeout_ms, err)) < 0 ||
        (r = ms_of("delete-timeout", c->delete_timeout, 100, &s->delete_timeout_ms, err)) < 0 ||
        (r = ms_of("poll-interval", c->poll_interval, 0, &s->poll_interval_ms, err)) < 0 ||
        (r = ms_of("poll-interval-fast", c->poll_interval_fast, 0, &s->poll_interval_fast_ms, err)) < 0 ||
        (r = ms_of("retry-max-delay", c->retry_max_delay, 0, &s->retry_max_delay_ms, err)) < 0)
        return r;
    s->max_retries = (unsigned)c->max_retries;
    if (s->poll_interval_fast_ms > s->poll_interval_ms)
        s->poll_interval_fast_ms = s->poll_interval_ms;

    s->authority = trim_slash(c->authority_host);
    s->arm = trim_slash(c->arm_endpoint);
    _cleanup_free_ char *audience = trim_slash(is_set(c->arm_audience) ? c->arm_audience : c->arm_endpoint);
    s->scope = xasprintf("%s/.default", audience);
    s->resource = xasprintf("%s/", audience);
    s->imds = trim_slash(c->imds_endpoint);
    char node[CAA_NODE_NAME_MAX + 1];
    int nr = caa_node_name(c->node_name, node, sizeof(node));
    if (nr == -ENOENT)
        return caa_error_set(err, -EINVAL, "-node-name is empty and the host name is unknown");
    if (nr == -E2BIG)
        return caa_error_set(err, -EINVAL, "-node-name is longer than 256 characters (an Azure tag value)");
    s->node_name = xstrdup(node);
    s->vm_base_path =
        xasprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines",
                  c->subscription_id, c->resource_group);
    return 0;
}

int az_config_validate(const az_config *cfg, az_settings *ret, caa_error **err)
{
    az_settings s = {0};
    int r = validate(cfg, &s, err);
    if (r < 0) {
        az_settings_done(&s);
        return r;
    }
    *ret = s;
    return 0;
}
