/* Readers of Azure responses (see azure-json.h). */
#include "azure-json.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cleanup.h"
#include "strv.h"
#include "xalloc.h"

/* jansson's own cleanup helper. */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* Copies cloud text for a message: at most AZ_ERROR_TEXT_MAX bytes, cut on a
 * UTF-8 boundary, control characters replaced by spaces. */
static char *clean_text(const char *s)
{
    size_t n = strlen(s);
    bool cut = false;
    if (n > AZ_ERROR_TEXT_MAX) {
        n = AZ_ERROR_TEXT_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        cut = true;
    }
    char *out = xmalloc(n + 4);
    for (size_t i = 0; i < n; i++)
        out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
    if (cut) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static json_t *load(const char *body, size_t len)
{
    if (!body || len == 0)
        return NULL;
    return json_loadb(body, len, 0, NULL);
}

static json_t *load_object(const char *body, size_t len, const char *what, caa_error **err)
{
    json_error_t jerr;
    if (!body || len == 0) {
        caa_error_set(err, -EPROTO, "%s: empty response body", what);
        return NULL;
    }
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (!j) {
        caa_error_set(err, -EPROTO, "%s: response is not JSON (line %d: %.120s)", what, jerr.line, jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        caa_error_set(err, -EPROTO, "%s: response is not a JSON object", what);
        return NULL;
    }
    return j;
}

static const char *str_member(json_t *o, const char *key)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Looks a key up case-insensitively (ARM is not strict about casing). */
static json_t *member_ci(json_t *o, const char *key)
{
    if (!json_is_object(o))
        return NULL;
    json_t *v = json_object_get(o, key);
    if (v)
        return v;
    const char *k;
    json_object_foreach(o, k, v)
    {
        if (strcasecmp(k, key) == 0)
            return v;
    }
    return NULL;
}

/* ---- ARM errors ---- */

static json_t *error_object(json_t *root)
{
    json_t *e = member_ci(root, "error");
    if (json_is_object(e))
        return e;
    if (json_is_object(root) && json_is_string(member_ci(root, "code")))
        return root;
    return NULL;
}

void az_arm_error_fields(const char *body, size_t len, char **ret_code, char **ret_message)
{
    *ret_code = NULL;
    *ret_message = NULL;
    _cleanup_json_ json_t *root = load(body, len);
    json_t *e = error_object(root);
    json_t *code = member_ci(e, "code"), *msg = member_ci(e, "message");
    if (json_is_string(code))
        *ret_code = clean_text(json_string_value(code));
    if (json_is_string(msg))
        *ret_message = clean_text(json_string_value(msg));
}

static bool code_is(const char *code, const char *const *list)
{
    for (size_t i = 0; code && list[i]; i++)
        if (strcasecmp(code, list[i]) == 0)
            return true;
    return false;
}

static int classify(long status, const char *code, const char *msg, const char **ret_lead)
{
    static const char *const quota[] = {"QuotaExceeded",
                                        "OperationNotAllowedQuota",
                                        "SubscriptionQuotaExceeded",
                                        "ResourceQuotaExceeded",
                                        "PublicIPCountLimitReached",
                                        "TotalCoresQuotaExceeded",
                                        NULL};
    static const char *const capacity[] = {"SkuNotAvailable",
                                           "AllocationFailed",
                                           "ZonalAllocationFailed",
                                           "OverconstrainedAllocationRequest",
                                           "OverconstrainedZonalAllocationRequest",
                                           "InvalidTemplateDeployment_SkuNotAvailable",
                                           "NotAvailableForSubscription",
                                           NULL};
    static const char *const auth[] = {"AuthenticationFailed",
                                       "AuthorizationFailed",
                                       "InvalidAuthenticationToken",
                                       "InvalidAuthenticationTokenTenant",
                                       "ExpiredAuthenticationToken",
                                       "LinkedAuthorizationFailed",
                                       NULL};
    *ret_lead = NULL;
    if (code_is(code, quota) ||
        (code && strcasecmp(code, "OperationNotAllowed") == 0 && msg && strcasestr(msg, "quota"))) {
        *ret_lead = "Azure quota exceeded";
        return -EDQUOT;
    }
    if (code_is(code, capacity)) {
        *ret_lead = "VM size not available or out of capacity";
        return -ENOSPC;
    }
    if (status == 401 || status == 403 || code_is(code, auth)) {
        *ret_lead = "Azure refused the credentials";
        return -EACCES;
    }
    if (status == 404 || (code && strcasestr(code, "NotFound")))
        return -ENOENT;
    if (status == 429 || status >= 500)
        return -EAGAIN;
    if (status == 400)
        return -EINVAL;
    return -EIO;
}

int az_arm_error(long http_status, const char *body, size_t len, const char *what, caa_error **err)
{
    _cleanup_free_ char *code = NULL, *msg = NULL;
    az_arm_error_fields(body, len, &code, &msg);
    const char *lead;
    int r = classify(http_status, code, msg, &lead);
    return caa_error_set(err, r, "%s%s%s: HTTP %ld%s%s%s%s", lead ? lead : "", lead ? ": " : "",
                         what ? what : "ARM", http_status, code ? ": " : "", code ? code : "",
                         msg ? ": " : "", msg ? msg : "");
}

/* ---- tokens ---- */

static bool header_safe(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* A JSON number or a string holding a decimal integer. */
static bool int_member(json_t *o, const char *key, int64_t *ret)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) {
        *ret = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d > -1e15 && d < 1e15) {
            *ret = (int64_t)d;
            return true;
        }
        return false;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (errno || end == s || *end || !isdigit((unsigned char)*s))
            return false;
        *ret = n;
        return true;
    }
    return false;
}

int az_parse_token(const char *body, size_t len, time_t now, char **ret_token, int64_t *ret_expires_in,
                   caa_error **err)
{
    _cleanup_json_ json_t *root = load_object(body, len, "token response", err);
    if (!root)
        return -EPROTO;
    const char *tok = str_member(root, "access_token");
    if (!tok)
        return caa_error_set(err, -EPROTO, "token response without access_token");
    if (strlen(tok) > 32768 || !header_safe(tok))
        return caa_error_set(err, -EPROTO,
                             "token response: access_token is empty, too long or not header-safe");
    const char *type = str_member(root, "token_type");
    if (type && strcasecmp(type, "Bearer") != 0)
        return caa_error_set(err, -EPROTO, "token response: token_type is not Bearer");
    int64_t exp;
    if (int_member(root, "expires_in", &exp)) {
        /* As given. */
    } else if (int_member(root, "expires_on", &exp)) {
        exp -= (int64_t)now;
    } else {
        return caa_error_set(err, -EPROTO, "token response without a usable expires_in or expires_on");
    }
    if (exp <= 0 || exp > 30 * 86400)
        return caa_error_set(err, -EPROTO, "token response: lifetime %lld s is out of range", (long long)exp);
    *ret_token = xstrdup(tok);
    *ret_expires_in = exp;
    return 0;
}

int az_token_error(long http_status, const char *body, size_t len, const char *what, caa_error **err)
{
    _cleanup_json_ json_t *root = load(body, len);
    const char *e = str_member(root, "error");
    const char *d = str_member(root, "error_description");
    _cleanup_free_ char *ce = e ? clean_text(e) : NULL;
    _cleanup_free_ char *cd = d ? clean_text(d) : NULL;
    int code;
    if (http_status == 429 || http_status >= 500)
        code = -EAGAIN;
    else if (http_status == 400 || http_status == 401 || http_status == 403)
        code = -EACCES;
    else
        code = -EIO;
    return caa_error_set(err, code, "%s: HTTP %ld%s%s%s%s", what, http_status, ce ? ": " : "", ce ? ce : "",
                         cd ? ": " : "", cd ? cd : "");
}

/* ---- VM sizes ---- */

int az_parse_vm_sizes(const char *body, size_t len, caa_instance_type **ret, size_t *ret_n, caa_error **err)
{
    _cleanup_json_ json_t *root = load_object(body, len, "VM sizes", err);
    if (!root)
        return -EPROTO;
    json_t *value = json_object_get(root, "value");
    if (!json_is_array(value))
        return caa_error_set(err, -EPROTO, "VM sizes: no \"value\" array");
    size_t n = json_array_size(value);
    if (n > AZ_MAX_SIZES)
        return caa_error_set(err, -EPROTO, "VM sizes: %zu entries is more than the %d we accept", n,
                             AZ_MAX_SIZES);
    caa_instance_type *types = xnew0(caa_instance_type, n ? n : 1);
    size_t k = 0;
    json_t *item;
    size_t i;
    json_array_foreach(value, i, item)
    {
        const char *name = str_member(item, "name");
        int64_t cores, mem;
        if (!name || !*name || strlen(name) > 128 || !int_member(item, "numberOfCores", &cores) ||
            !int_member(item, "memoryInMB", &mem) || cores < 0 || mem < 0 || cores > 100000 ||
            mem > (INT64_C(1) << 40)) {
            caa_instance_types_free(types, k);
            return caa_error_set(err, -EPROTO,
                                 "VM sizes: entry %zu lacks a name, numberOfCores or memoryInMB", i);
        }
        types[k++] = (caa_instance_type){.name = xstrdup(name), .vcpus = cores, .memory_mib = mem};
    }
    *ret = types;
    *ret_n = k;
    return 0;
}

/* ---- operations ---- */

static int status_of_text(const char *s, az_op_status *ret)
{
    static const struct {
        const char *name;
        az_op_status st;
    } map[] = {
        {"succeeded", AZ_OP_SUCCEEDED}, {"failed", AZ_OP_FAILED},      {"canceled", AZ_OP_CANCELED},
        {"cancelled", AZ_OP_CANCELED},  {"inprogress", AZ_OP_RUNNING}, {"running", AZ_OP_RUNNING},
        {"accepted", AZ_OP_RUNNING},    {"started", AZ_OP_RUNNING},    {"creating", AZ_OP_RUNNING},
        {"updating", AZ_OP_RUNNING},    {"deleting", AZ_OP_RUNNING},   {"canceling", AZ_OP_RUNNING},
        {"cancelling", AZ_OP_RUNNING},  {"notstarted", AZ_OP_RUNNING},
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(map); i++)
        if (strcasecmp(s, map[i].name) == 0) {
            *ret = map[i].st;
            return 0;
        }
    /* Unknown states keep the operation running, as the SDKs do. */
    *ret = AZ_OP_RUNNING;
    return 0;
}

static az_op_status status_of_http(long http_status)
{
    if (http_status == 202)
        return AZ_OP_RUNNING;
    return http_status < 300 ? AZ_OP_SUCCEEDED : AZ_OP_FAILED;
}

static void failure_error(json_t *root, az_op_status st, caa_error **ret_error)
{
    json_t *e = error_object(root);
    const char *code = str_member(e, "code");
    const char *msg = str_member(e, "message");
    _cleanup_free_ char *cc = code ? clean_text(code) : NULL;
    _cleanup_free_ char *cm = msg ? clean_text(msg) : NULL;
    const char *lead;
    int r = classify(0, cc, cm, &lead);
    if (r == -EINVAL || r == -EAGAIN)
        r = -EIO;
    if (st == AZ_OP_CANCELED && !cc)
        r = -ECANCELED;
    *ret_error = caa_error_new(r, "%s%soperation %s%s%s%s%s", lead ? lead : "", lead ? ": " : "",
                               st == AZ_OP_CANCELED ? "was canceled" : "failed", cc ? ": " : "", cc ? cc : "",
                               cm ? ": " : "", cm ? cm : "");
}

static int parse_status(long http_status, const char *body, size_t len, bool provisioning, az_op_status *ret,
                        caa_error **ret_error, caa_error **err)
{
    *ret_error = NULL;
    _cleanup_json_ json_t *root = load(body, len);
    if (!root && len > 0) {
        /* An empty 202/200 is fine; garbage is not. */
        bool blank = true;
        for (size_t i = 0; i < len; i++)
            blank = blank && isspace((unsigned char)body[i]);
        if (!blank)
            return caa_error_set(err, -EPROTO, "operation status is not JSON");
    }
    if (root && !json_is_object(root))
        return caa_error_set(err, -EPROTO, "operation status is not a JSON object");
    json_t *st;
    if (provisioning) {
        json_t *props = json_object_get(root, "properties");
        st = json_is_object(props) ? json_object_get(props, "provisioningState") : NULL;
        if (!st)
            st = json_object_get(root, "provisioningState");
    } else {
        st = json_object_get(root, "status");
    }
    az_op_status s;
    if (!st || json_is_null(st))
        s = status_of_http(http_status);
    else if (!json_is_string(st))
        return caa_error_set(err, -EPROTO, "operation status is not a string");
    else
        status_of_text(json_string_value(st), &s);
    if (s == AZ_OP_FAILED || s == AZ_OP_CANCELED)
        failure_error(root, s, ret_error);
    *ret = s;
    return 0;
}

int az_parse_operation(long http_status, const char *body, size_t len, az_op_status *ret,
                       caa_error **ret_error, caa_error **err)
{
    return parse_status(http_status, body, len, false, ret, ret_error, err);
}

int az_parse_provisioning(long http_status, const char *body, size_t len, az_op_status *ret,
                          caa_error **ret_error, caa_error **err)
{
    return parse_status(http_status, body, len, true, ret, ret_error, err);
}

/* ---- VMs ---- */

void az_vm_done(az_vm *vm)
{
    free(vm->id);
    free(vm->name);
    free(vm->provisioning_state);
    free(vm->tag_node);
    free(vm->tag_sandbox);
    caa_strv_free(vm->nic_ids);
    *vm = (az_vm){0};
}

void az_vm_list_free(az_vm *vms, size_t n)
{
    for (size_t i = 0; vms && i < n; i++)
        az_vm_done(&vms[i]);
    free(vms);
}

static bool short_string(const char *s, size_t max)
{
    return s && *s && strlen(s) <= max;
}

static int vm_from_json(json_t *o, az_vm *vm, caa_error **err)
{
    *vm = (az_vm){0};
    if (!json_is_object(o))
        return caa_error_set(err, -EPROTO, "VM is not a JSON object");
    const char *id = str_member(o, "id");
    const char *name = str_member(o, "name");
    if (!short_string(id, 2048) || !short_string(name, 256))
        return caa_error_set(err, -EPROTO, "VM without a usable id or name");
    json_t *props = json_object_get(o, "properties");
    if (props && !json_is_object(props))
        return caa_error_set(err, -EPROTO, "VM %.256s: properties is not an object", name);
    json_t *tags = json_object_get(o, "tags");
    if (tags && !json_is_object(tags) && !json_is_null(tags))
        return caa_error_set(err, -EPROTO, "VM %.256s: tags is not an object", name);
    json_t *nics = NULL;
    json_t *netp = json_object_get(props, "networkProfile");
    if (netp) {
        if (!json_is_object(netp))
            return caa_error_set(err, -EPROTO, "VM %.256s: networkProfile is not an object", name);
        nics = json_object_get(netp, "networkInterfaces");
        if (nics && !json_is_array(nics))
            return caa_error_set(err, -EPROTO, "VM %.256s: networkInterfaces is not an array", name);
        if (json_array_size(nics) > AZ_MAX_ITEMS)
            return caa_error_set(err, -EPROTO, "VM %.256s: too many network interfaces", name);
    }
    _cleanup_strv_ char **nic_ids = NULL;
    json_t *nic;
    size_t i;
    json_array_foreach(nics, i, nic)
    {
        const char *nid = str_member(nic, "id");
        if (!short_string(nid, 2048))
            return caa_error_set(err, -EPROTO, "VM %.256s: network interface %zu has no id", name, i);
        /* The primary NIC first. */
        json_t *np = json_object_get(nic, "properties");
        json_t *primary = json_is_object(np) ? json_object_get(np, "primary") : NULL;
        if (json_is_true(primary) && nic_ids) {
            _cleanup_strv_ char **re = NULL;
            caa_strv_push(&re, nid);
            for (size_t k = 0; nic_ids[k]; k++)
                caa_strv_push(&re, nic_ids[k]);
            caa_strv_free(nic_ids);
            nic_ids = TAKE_PTR(re);
        } else {
            caa_strv_push(&nic_ids, nid);
        }
    }
    const char *ps = str_member(props, "provisioningState");
    const char *tn = str_member(tags, "caa-node");
    const char *ts = str_member(tags, "caa-sandbox-id");
    vm->id = xstrdup(id);
    vm->name = xstrdup(name);
    vm->provisioning_state = short_string(ps, 64) ? xstrdup(ps) : NULL;
    vm->tag_node = tn ? xstrndup(tn, 256) : NULL;
    vm->tag_sandbox = ts ? xstrndup(ts, 256) : NULL;
    vm->nic_ids = TAKE_PTR(nic_ids);
    return 0;
}

int az_parse_vm(const char *body, size_t len, az_vm *ret, caa_error **err)
{
    _cleanup_json_ json_t *root = load_object(body, len, "VM", err);
    if (!root)
        return -EPROTO;
    return vm_from_json(root, ret, err);
}

int az_parse_vm_list(const char *body, size_t len, az_vm **ret, size_t *ret_n, char **ret_next_link,
                     caa_error **err)
{
    _cleanup_json_ json_t *root = load_object(body, len, "VM list", err);
    if (!root)
        return -EPROTO;
    json_t *value = json_object_get(root, "value");
    if (!json_is_array(value))
        return caa_error_set(err, -EPROTO, "VM list: no \"value\" array");
    size_t n = json_array_size(value);
    if (n > AZ_MAX_ITEMS)
        return caa_error_set(err, -EPROTO, "VM list: %zu VMs in one page is more than %d", n, AZ_MAX_ITEMS);
    json_t *next = json_object_get(root, "nextLink");
    if (next && !json_is_null(next) && (!json_is_string(next) || strlen(json_string_value(next)) > 8192))
        return caa_error_set(err, -EPROTO, "VM list: nextLink is not a usable string");
    az_vm *vms = xnew0(az_vm, n ? n : 1);
    json_t *item;
    size_t i;
    json_array_foreach(value, i, item)
    {
        int r = vm_from_json(item, &vms[i], err);
        if (r < 0) {
            az_vm_list_free(vms, i);
            return caa_error_prefix(err, "VM list entry %zu", i);
        }
    }
    const char *nl = json_is_string(next) ? json_string_value(next) : NULL;
    *ret = vms;
    *ret_n = n;
    *ret_next_link = nl && *nl ? xstrdup(nl) : NULL;
    return 0;
}

/* ---- network ---- */

static bool ip_valid(const char *s)
{
    unsigned char buf[16];
    return s && strlen(s) < 64 && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

int az_parse_nic(const char *body, size_t len, char ***ret_private_ips, char ***ret_public_ip_ids,
                 bool *ret_primary, caa_error **err)
{
    _cleanup_json_ json_t *root = load_object(body, len, "network interface", err);
    if (!root)
        return -EPROTO;
    json_t *props = json_object_get(root, "properties");
    json_t *cfgs = json_is_object(props) ? json_object_get(props, "ipConfigurations") : NULL;
    if (!json_is_array(cfgs))
        return caa_error_set(err, -EPROTO, "network interface without an ipConfigurations array");
    if (json_array_size(cfgs) > AZ_MAX_ITEMS)
        return caa_error_set(err, -EPROTO, "network interface with too many IP configurations");
    _cleanup_strv_ char **priv = NULL, **pub = NULL;
    json_t *c;
    size_t i;
    json_array_foreach(cfgs, i, c)
    {
        json_t *cp = json_object_get(c, "properties");
        if (!json_is_object(cp))
            return caa_error_set(err, -EPROTO, "IP configuration %zu has no properties", i);
        json_t *ipv = json_object_get(cp, "privateIPAddress");
        if (ipv && !json_is_null(ipv)) {
            const char *ip = json_string_value(ipv);
            if (!ip_valid(ip))
                return caa_error_set(err, -EPROTO,
                                     "IP configuration %zu: privateIPAddress is not an IP address", i);
            /* The primary configuration's address first. */
            if (json_is_true(json_object_get(cp, "primary")) && priv) {
                _cleanup_strv_ char **re = NULL;
                caa_strv_push(&re, ip);
                for (size_t k = 0; priv[k]; k++)
                    caa_strv_push(&re, priv[k]);
                caa_strv_free(priv);
                priv = TAKE_PTR(re);
            } else {
                caa_strv_push(&priv, ip);
            }
        }
        json_t *pip = json_object_get(cp, "publicIPAddress");
        if (pip && !json_is_null(pip)) {
            const char *pid = str_member(pip, "id");
            if (!short_string(pid, 2048))
                return caa_error_set(err, -EPROTO, "IP configuration %zu: publicIPAddress without an id", i);
            caa_strv_push(&pub, pid);
        }
    }
    *ret_private_ips = TAKE_PTR(priv);
    *ret_public_ip_ids = TAKE_PTR(pub);
    if (ret_primary)
        *ret_primary = json_is_true(json_object_get(props, "primary"));
    return 0;
}

int az_parse_public_ip(const char *body, size_t len, char **ret_ip, caa_error **err)
{
    _cleanup_json_ json_t *root = load_object(body, len, "public IP", err);
    if (!root)
        return -EPROTO;
    json_t *props = json_object_get(root, "properties");
    if (!json_is_object(props))
        return caa_error_set(err, -EPROTO, "public IP without properties");
    json_t *ipv = json_object_get(props, "ipAddress");
    if (!ipv || json_is_null(ipv)) {
        *ret_ip = NULL;
        return 0;
    }
    const char *ip = json_string_value(ipv);
    if (!ip_valid(ip))
        return caa_error_set(err, -EPROTO, "public IP: ipAddress is not an IP address");
    *ret_ip = xstrdup(ip);
    return 0;
}

/* ---- small helpers ---- */

int64_t az_parse_retry_after(const char *value, time_t now)
{
    if (!value)
        return -1;
    while (*value == ' ')
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(value, &end, 10);
        while (*end == ' ')
            end++;
        if (errno || *end)
            return -1;
        if (s > 86400)
            s = 86400;
        return (int64_t)s * 1000;
    }
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1)
        return -1;
    if (t <= now)
        return 0;
    int64_t d = (int64_t)(t - now);
    return (d > 86400 ? 86400 : d) * 1000;
}

char *az_url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = xmalloc(n * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}
