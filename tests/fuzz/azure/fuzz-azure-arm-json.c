/* Fuzz target azure-arm-json: every reader of Azure responses
 * (providers/azure/azure-json.c) over the same input. Each must return a
 * result or an error, never crash, leak or read out of bounds. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "azure-json.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    caa_error *e = NULL;

    az_arm_error(size % 600, buf, size, "GET fuzz", &e);
    caa_error_free(e);
    e = NULL;
    char *code = NULL, *msg = NULL;
    az_arm_error_fields(buf, size, &code, &msg);
    free(code);
    free(msg);

    char *tok = NULL;
    int64_t exp = 0;
    if (az_parse_token(buf, size, 1700000000, &tok, &exp, &e) == 0)
        free(tok);
    caa_error_free(e);
    e = NULL;
    az_token_error(400, buf, size, "token", &e);
    caa_error_free(e);
    e = NULL;

    caa_instance_type *types = NULL;
    size_t n = 0;
    if (az_parse_vm_sizes(buf, size, &types, &n, &e) == 0)
        caa_instance_types_free(types, n);
    caa_error_free(e);
    e = NULL;

    az_op_status st;
    caa_error *oe = NULL;
    az_parse_operation(size & 1 ? 202 : 200, buf, size, &st, &oe, &e);
    caa_error_free(oe);
    caa_error_free(e);
    oe = e = NULL;
    az_parse_provisioning(200, buf, size, &st, &oe, &e);
    caa_error_free(oe);
    caa_error_free(e);
    e = NULL;

    az_vm vm;
    if (az_parse_vm(buf, size, &vm, &e) == 0)
        az_vm_done(&vm);
    caa_error_free(e);
    e = NULL;
    az_vm *vms = NULL;
    char *next = NULL;
    if (az_parse_vm_list(buf, size, &vms, &n, &next, &e) == 0) {
        az_vm_list_free(vms, n);
        free(next);
    }
    caa_error_free(e);
    e = NULL;

    char **priv = NULL, **pub = NULL;
    bool primary = false;
    if (az_parse_nic(buf, size, &priv, &pub, &primary, &e) == 0) {
        caa_strv_free(priv);
        caa_strv_free(pub);
    }
    caa_error_free(e);
    e = NULL;
    char *ip = NULL;
    if (az_parse_public_ip(buf, size, &ip, &e) == 0)
        free(ip);
    caa_error_free(e);

    /* Header values are NUL-terminated strings. */
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = '\0';
        az_parse_retry_after(text, 1700000000);
        free(az_url_encode(text));
        free(text);
    }
    return 0;
}
