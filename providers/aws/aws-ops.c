/* The provider's operations as state machines on the loop: create
 * (instance-type choice with capacity fallback, RunInstances, optional wait
 * for a public address, termination of what a failed create left behind),
 * delete (Elastic IPs, then TerminateInstances), list (by ownership tag) and
 * get. Results are delivered from each operation's own timer, so a callback
 * never runs inside a provider call or inside another operation's step. */
#define LOG_COMPONENT "provider/aws"
#include "aws-internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "log.h"
#include "strv.h"
#include "xalloc.h"

#define POLL_FIRST_MS 250
#define POLL_MAX_MS 5000
#define LIST_PAGE 1000
#define MAX_CLIENT_TOKEN 64

typedef enum op_phase {
    PH_WAIT,
    PH_IMAGE,
    PH_RUN,
    PH_POLL,
    PH_ENI_CREATE,
    PH_ENI_ATTACH,
    PH_ENI_MODIFY,
    PH_ENI_DELETE,
    PH_EIP_ALLOCATE,
    PH_EIP_ASSOCIATE,
    PH_EIP_RELEASE,
    PH_DEL_ADDRS,
    PH_DEL_DISASSOC,
    PH_DEL_RELEASE,
    PH_DEL_ENIS,
    PH_DEL_ENI_MODIFY,
    PH_DEL_ENI_DELETE,
    PH_DEL_TERMINATE,
    PH_LIST,
    PH_LIST_ENIS,
    PH_LIST_EIPS,
    PH_ADDON_ENI_DELETE,
    PH_ADDON_EIP_DESCRIBE,
    PH_GET,
    PH_DONE,
} op_phase;

struct aws_op {
    caa_op op; /* its timer defers starts and paces polls */
    aws_provider *p;
    op_phase phase;
    aws_milestone need;
    aws_call *call;

    /* create */
    char *name;
    char *sandbox_id;
    char *image;
    char *explicit_type;
    char *user_data_b64;
    char *token_base;
    int64_t vcpus, memory_mib, gpus;
    aws_kv *tags;
    size_t n_tags;
    char **candidates;
    size_t cand_idx;
    char *instance_id;
    char *private_ip;
    char *public_ip;
    uint64_t poll_deadline;
    uint64_t poll_delay;
    caa_error *failure; /* create failed after RunInstances: being cleaned up */
    bool multi_nic;     /* external-net-via-pod-vm: a second ENI at device index 1 */
    char *eni_id;
    char *attachment_id;
    char *eni_allocation_id; /* the second ENI's Elastic IP (-use-public-ip) */

    /* delete (also the cleanup of a failed create) */
    char *id;
    ec2_address_list addrs;
    size_t addr_idx;
    caa_error *addr_err; /* an address could not be released */
    bool addon_delete;   /* deleting a leftover ENI or Elastic IP, not an instance */
    ec2_eni_list enis;   /* the instance's ENIs of ours, to go with it */
    size_t eni_idx;

    /* list */
    caa_instance **list;
    size_t n_list;
    char **loose_enis; /* this node's unattached add-on ENIs, listed */
};

/* ---- lifecycle ---- */

static void op_free(caa_op *base)
{
    aws_op *op = CAA_CONTAINER_OF(base, aws_op, op);
    free(op->name);
    free(op->sandbox_id);
    free(op->image);
    free(op->explicit_type);
    if (op->user_data_b64) {
        memset(op->user_data_b64, 0, strlen(op->user_data_b64));
        free(op->user_data_b64);
    }
    free(op->token_base);
    aws_kv_free(op->tags, op->n_tags);
    caa_strv_free(op->candidates);
    free(op->instance_id);
    free(op->private_ip);
    free(op->public_ip);
    caa_error_free(op->failure);
    free(op->eni_id);
    free(op->attachment_id);
    free(op->eni_allocation_id);
    free(op->id);
    ec2_address_list_done(&op->addrs);
    ec2_eni_list_done(&op->enis);
    caa_error_free(op->addr_err);
    caa_instance_list_free(op->list);
    caa_strv_free(op->loose_enis);
    free(op);
}

/* Decides op (a second decision, after a cancel, is dropped); the op set
 * delivers it later from its timer's close callback. */
static void op_finish(aws_op *op, int status, caa_instance *inst, caa_error *e)
{
    if (status < 0 && !e)
        e = caa_error_new(status, "AWS operation failed");
    op->phase = PH_DONE;
    if (op->op.kind == CAA_OP_LIST) {
        caa_instance_free(inst);
        caa_op_finish_list(&op->op, status, TAKE_PTR(op->list), e);
        return;
    }
    caa_op_finish(&op->op, status, inst, e);
}

static void op_cancel(caa_op *base);

static const caa_op_class aws_op_class = {.cancel = op_cancel, .free = op_free};

static aws_op *op_new(aws_provider *p, aws_milestone need)
{
    aws_op *op = xcalloc(1, sizeof(*op));
    op->p = p;
    op->need = need;
    op->phase = PH_WAIT;
    return op;
}

static bool milestone_met(const aws_provider *p, aws_milestone need)
{
    return need == AWS_NEED_REGION ? p->region_ready : p->ready;
}

static void op_begin(aws_op *op);

static void on_kick(uv_timer_t *t)
{
    aws_op *op = CAA_CONTAINER_OF(t, aws_op, op.timer);
    aws_provider *p = op->p;
    if (milestone_met(p, op->need)) {
        op_begin(op);
        return;
    }
    /* Waits for aws_ops_startup_event(). */
    aws_startup_ensure(p, op->need);
}

static void op_kick(aws_op *op)
{
    uv_timer_start(&op->op.timer, on_kick, 0, 0);
}

void aws_ops_startup_event(aws_provider *p, const caa_error *err)
{
    caa_list *pos, *tmp;
    caa_list_foreach_safe(pos, tmp, &p->ops.ops)
    {
        aws_op *op = CAA_CONTAINER_OF(caa_op_of(pos), aws_op, op);
        if (op->phase != PH_WAIT || caa_op_finished(&op->op) || uv_is_active((uv_handle_t *)&op->op.timer))
            continue;
        if (milestone_met(p, op->need))
            op_begin(op);
        else if (err)
            op_finish(op, err->code, NULL, caa_error_copy(err));
    }
}

/* Starts an EC2 call for op; a synchronous failure goes to on_done later. */
static void op_call(aws_op *op, aws_params *params, aws_call_cb cb)
{
    caa_error *e = NULL;
    if (op->p->stopping) {
        aws_params_done(params);
        cb(-ECANCELED, NULL, NULL, caa_error_new(-ECANCELED, "the AWS provider is shutting down"), op);
        return;
    }
    int r = aws_call_start(op->p->api, AWS_SVC_EC2, params, 0, cb, op, &op->call, &e);
    if (r < 0) {
        op->call = NULL;
        cb(r, NULL, NULL, e, op);
    }
}

static bool code_is(const char *code, const char *want)
{
    return code && strcmp(code, want) == 0;
}

static caa_instance *partial_instance(const aws_op *op)
{
    const char *id = op->instance_id ? op->instance_id : op->id;
    return id ? caa_instance_new(id, op->name) : NULL;
}

/* ---- delete machine (delete, and cleanup of a failed create) ---- */

static void delete_done(aws_op *op, int status, caa_error *e);
static void del_next_address(aws_op *op);

static void on_terminate(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (status < 0 && code_is(code, "InvalidInstanceID.NotFound")) {
        caa_error_free(e);
        e = NULL;
        status = 0; /* already gone */
    } else if (status >= 0) {
        ec2_instance_list l;
        status = ec2_parse_terminate_instances(r->body, r->body_len, &l, &e);
        if (status < 0)
            caa_error_prefix(&e, "EC2 TerminateInstances");
        ec2_instance_list_done(&l);
    }
    if (status >= 0 && op->addr_err) {
        status = op->addr_err->code;
        e = TAKE_PTR(op->addr_err);
    }
    delete_done(op, status, e);
}

static void del_terminate(aws_op *op)
{
    op->phase = PH_DEL_TERMINATE;
    aws_params params = {0};
    ec2_build_terminate_instances(op->id, &params);
    op_call(op, &params, on_terminate);
}

/* The start of a delete step's answer: true when the delete ended (cancelled). */
static bool delete_cancelled(aws_op *op, int status, caa_error *e)
{
    op->call = NULL;
    if (status != -ECANCELED)
        return false;
    delete_done(op, status, e);
    return true;
}

/* The add-on ENIs made for this instance (tags caa.node and caa.instance-id)
 * that would outlive it: one attached without DeleteOnTermination (its create
 * was killed between AttachNetworkInterface and the modify) is made to go with
 * it, an unattached one (killed, or cancelled, before the attach) is deleted.
 * A failure here does not keep the instance alive; the orphan sweep takes
 * such an ENI once it is unattached. */
static void del_next_eni(aws_op *op);

static void on_del_eni_step(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    if (delete_cancelled(op, status, e))
        return;
    const char *root = op->phase == PH_DEL_ENI_MODIFY ? "ModifyNetworkInterfaceAttributeResponse"
                                                      : "DeleteNetworkInterfaceResponse";
    if (status >= 0)
        status = ec2_parse_expect_root(r->body, r->body_len, root, &e);
    if (status < 0 && !code_is(code, "InvalidNetworkInterfaceID.NotFound"))
        log_warn("ENI %s of %s may stay after it (the orphan sweep removes it): %s",
                 op->enis.v[op->eni_idx].id, op->id, caa_error_msg(e));
    caa_error_free(e);
    op->eni_idx++;
    del_next_eni(op);
}

static void del_next_eni(aws_op *op)
{
    for (; op->eni_idx < op->enis.n; op->eni_idx++) {
        const ec2_eni *n = &op->enis.v[op->eni_idx];
        if (!aws_resource_id_valid(n->id, "eni-"))
            continue;
        aws_params params = {0};
        bool attached = n->attached_instance_id && *n->attached_instance_id;
        if (!attached && n->status && strcmp(n->status, "available") == 0) {
            op->phase = PH_DEL_ENI_DELETE;
            ec2_build_delete_network_interface(n->id, &params);
        } else if (attached && strcmp(n->attached_instance_id, op->id) == 0 && !n->delete_on_termination &&
                   n->attachment_id) {
            op->phase = PH_DEL_ENI_MODIFY;
            ec2_build_eni_delete_on_termination(n->id, n->attachment_id, &params);
        } else {
            continue;
        }
        op_call(op, &params, on_del_eni_step);
        return;
    }
    del_terminate(op);
}

static void on_del_enis(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    if (delete_cancelled(op, status, e))
        return;
    if (status >= 0)
        status = ec2_parse_describe_network_interfaces(r->body, r->body_len, &op->enis, &e);
    if (status < 0)
        log_debug("DescribeNetworkInterfaces for %s: %s; terminating anyway", op->id, caa_error_msg(e));
    caa_error_free(e);
    op->eni_idx = 0;
    del_next_eni(op);
}

static void del_enis(aws_op *op)
{
    char *node[] = {op->p->node_name, NULL};
    char *instance[] = {op->id, NULL};
    ec2_filter filters[] = {{"tag:" AWS_TAG_NODE, node}, {"tag:" AWS_TAG_INSTANCE_ID, instance}};
    ec2_eni_list_done(&op->enis);
    op->phase = PH_DEL_ENIS;
    aws_params params = {0};
    ec2_build_describe_network_interfaces(filters, CAA_ARRAY_SIZE(filters), 0, NULL, &params);
    op_call(op, &params, on_del_enis);
}

static void note_address_failure(aws_op *op, caa_error *e)
{
    if (!op->addr_err)
        op->addr_err = e;
    else
        caa_error_free(e);
}

/* The start of an address step's answer. Returns true when the delete ended
 * (cancelled); else *ret_ok says whether the step worked or the address was
 * gone already (gone_code), and a real failure is noted for the report. */
static bool address_answer(aws_op *op, int status, caa_http_response *resp, const char *code, caa_error *e,
                           const char *gone_code, bool *ret_ok)
{
    caa_http_response_free(resp);
    op->call = NULL;
    if (status == -ECANCELED) {
        delete_done(op, status, e);
        return true;
    }
    *ret_ok = status >= 0 || code_is(code, gone_code);
    if (*ret_ok)
        caa_error_free(e);
    else
        note_address_failure(op, e);
    return false;
}

static void on_release(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    aws_op *op = opaque;
    bool ok;
    if (address_answer(op, status, resp, code, e, "InvalidAllocationID.NotFound", &ok))
        return;
    op->addr_idx++;
    del_next_address(op);
}

static void del_release(aws_op *op)
{
    const ec2_address *a = &op->addrs.v[op->addr_idx];
    op->phase = PH_DEL_RELEASE;
    aws_params params = {0};
    ec2_build_release_address(a->allocation_id, &params);
    op_call(op, &params, on_release);
}

static void on_disassociate(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    aws_op *op = opaque;
    bool ok;
    if (address_answer(op, status, resp, code, e, "InvalidAssociationID.NotFound", &ok))
        return;
    const ec2_address *a = &op->addrs.v[op->addr_idx];
    if (ok && a->allocation_id && *a->allocation_id) {
        del_release(op);
        return;
    }
    op->addr_idx++;
    del_next_address(op);
}

static void del_next_address(aws_op *op)
{
    while (op->addr_idx < op->addrs.n) {
        const ec2_address *a = &op->addrs.v[op->addr_idx];
        if (a->association_id && *a->association_id) {
            op->phase = PH_DEL_DISASSOC;
            aws_params params = {0};
            ec2_build_disassociate_address(a->association_id, &params);
            op_call(op, &params, on_disassociate);
            return;
        }
        if (a->allocation_id && *a->allocation_id) {
            del_release(op);
            return;
        }
        op->addr_idx++;
    }
    if (op->addon_delete) {
        caa_error *e = TAKE_PTR(op->addr_err);
        delete_done(op, e ? e->code : 0, e);
        return;
    }
    del_enis(op);
}

static void on_addresses(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    if (delete_cancelled(op, status, e))
        return;
    if (status >= 0)
        status = ec2_parse_describe_addresses(r->body, r->body_len, &op->addrs, &e);
    if (status < 0) {
        /* Not knowing the Elastic IPs must not keep the instance alive. */
        log_debug("DescribeAddresses for %s: %s; terminating anyway", op->id, caa_error_msg(e));
        caa_error_free(e);
        del_enis(op);
        return;
    }
    caa_error_free(e);
    op->addr_idx = 0;
    del_next_address(op);
}

static void del_start(aws_op *op, const char *id)
{
    char *copy = xstrdup(id); /* id may be op->id itself */
    free(op->id);
    op->id = copy;
    ec2_address_list_done(&op->addrs);
    op->phase = PH_DEL_ADDRS;
    aws_params params = {0};
    ec2_build_describe_addresses(op->id, &params);
    op_call(op, &params, on_addresses);
}

/* ---- delete of a leftover add-on ENI or Elastic IP (listed by list) ---- */

static void on_addon_eni_deleted(int status, caa_http_response *resp, const char *code, caa_error *e,
                                 void *opaque)
{
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (status < 0 && code_is(code, "InvalidNetworkInterfaceID.NotFound")) {
        caa_error_free(e);
        e = NULL;
        status = 0; /* already gone */
    } else if (status >= 0) {
        status = ec2_parse_expect_root(r->body, r->body_len, "DeleteNetworkInterfaceResponse", &e);
    }
    delete_done(op, status, e);
}

static void on_addon_eip_described(int status, caa_http_response *resp, const char *code, caa_error *e,
                                   void *opaque)
{
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (status < 0 && code_is(code, "InvalidAllocationID.NotFound")) {
        caa_error_free(e);
        delete_done(op, 0, NULL); /* already released */
        return;
    }
    if (status >= 0)
        status = ec2_parse_describe_addresses(r->body, r->body_len, &op->addrs, &e);
    if (status < 0) {
        delete_done(op, status, e);
        return;
    }
    caa_error_free(e);
    /* Disassociated (from a leftover ENI) first where it still is, then released. */
    op->addr_idx = 0;
    del_next_address(op);
}

static void addon_delete_start(aws_op *op)
{
    op->addon_delete = true;
    aws_params params = {0};
    if (strncmp(op->id, "eni-", 4) == 0) {
        op->phase = PH_ADDON_ENI_DELETE;
        ec2_build_delete_network_interface(op->id, &params);
        op_call(op, &params, on_addon_eni_deleted);
        return;
    }
    op->phase = PH_ADDON_EIP_DESCRIBE;
    ec2_build_describe_addresses_by(op->id, NULL, 0, &params);
    op_call(op, &params, on_addon_eip_described);
}

/* ---- create ---- */

static void create_run(aws_op *op);

/* A create failed after RunInstances: terminate the instance, then report. */
static void create_fail_after_run(aws_op *op, caa_error *e)
{
    caa_error_prefix(&e, "creating instance %s (%s)", op->name, op->instance_id);
    if (op->p->stopping || e->code == -ECANCELED) {
        op_finish(op, e->code, partial_instance(op), e);
        return;
    }
    op->failure = e;
    del_start(op, op->instance_id);
}

static void delete_done(aws_op *op, int status, caa_error *e)
{
    if (op->op.kind == CAA_OP_DELETE) {
        if (status < 0)
            caa_error_prefix(&e, "deleting %s %s", op->addon_delete ? "leftover" : "instance", op->id);
        op_finish(op, status, NULL, e);
        return;
    }
    /* Cleanup of a failed create. */
    caa_error *f = TAKE_PTR(op->failure);
    if (status >= 0) {
        caa_error_free(e);
        op_finish(op, f->code, NULL, f);
        return;
    }
    char *msg =
        xasprintf("%s; terminating it failed too: %s", f->msg, e ? caa_error_msg(e) : "unknown error");
    free(f->msg);
    f->msg = msg;
    caa_error_free(e);
    op_finish(op, f->code, partial_instance(op), f);
}

static void create_running(aws_op *op);

static void create_succeed(aws_op *op)
{
    caa_instance *inst = caa_instance_new(op->instance_id, op->name);
    if (op->p->public_ip && op->public_ip)
        caa_instance_add_ip(inst, op->public_ip);
    if (op->private_ip && !(op->public_ip && strcmp(op->public_ip, op->private_ip) == 0))
        caa_instance_add_ip(inst, op->private_ip);
    op_finish(op, 0, inst, NULL);
}

static void poll_later(aws_op *op);

/* The tags of what a create makes (borrowed strings; free the array only):
 * Name, the -tags, the pod's tags, and the ownership tags caa.node and
 * caa.sandbox-id. An add-on ENI or Elastic IP (addon) also names its pod's
 * instance (caa.instance-name: the pod state knows that name before it knows
 * the instance id, so the orphan sweep and a StopVM by name can tell whose it
 * is) and the instance it was made for (caa.instance-id: the instance's delete
 * finds it, attached or not). */
static aws_kv *ownership_tags(const aws_op *op, const char *name, bool addon, size_t *ret_n)
{
    const aws_provider *p = op->p;
    aws_kv *tags = xnew0(aws_kv, op->n_tags + p->n_tags + 5);
    size_t nt = 0;
    tags[nt++] = (aws_kv){"Name", name};
    for (size_t i = 0; i < p->n_tags; i++)
        tags[nt++] = p->tags[i];
    for (size_t i = 0; i < op->n_tags; i++)
        tags[nt++] = op->tags[i];
    tags[nt++] = (aws_kv){AWS_TAG_NODE, p->node_name};
    tags[nt++] = (aws_kv){AWS_TAG_SANDBOX, op->sandbox_id};
    if (addon) {
        tags[nt++] = (aws_kv){AWS_TAG_INSTANCE_NAME, op->name};
        tags[nt++] = (aws_kv){AWS_TAG_INSTANCE_ID, op->instance_id};
    }
    *ret_n = nt;
    return tags;
}

/* ---- external-net-via-pod-vm: the second ENI (upstream's createAddonNICforInstance) ---- */

/* An answer whose only content is its root element (<action>Response). */
static int expect_answer(int status, const caa_http_response *r, const char *root, caa_error **e)
{
    if (status >= 0)
        status = ec2_parse_expect_root(r->body, r->body_len, root, e);
    return status;
}

/* A step failed and what it made must be removed first (params: the removal); then
 * undo_done() reports the failure. Not while shutting down: the instance is
 * handed back then and the operator sees the error. */
static void undo_then_fail(aws_op *op, caa_error *e, op_phase phase, aws_params *params, aws_call_cb cb)
{
    if (op->p->stopping || e->code == -ECANCELED) {
        aws_params_done(params);
        create_fail_after_run(op, e);
        return;
    }
    op->failure = e;
    op->phase = phase;
    op_call(op, params, cb);
}

static void undo_done(aws_op *op, int status, caa_error *e, const char *what, const char *id)
{
    caa_error *f = TAKE_PTR(op->failure);
    if (status < 0) {
        char *msg = xasprintf("%s; %s %s failed too: %s", f->msg, what, id, caa_error_msg(e));
        free(f->msg);
        f->msg = msg;
    }
    caa_error_free(e);
    create_fail_after_run(op, f);
}

static void on_eip_released(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    status = expect_answer(status, r, "ReleaseAddressResponse", &e);
    undo_done(op, status, e, "releasing Elastic IP", op->eni_allocation_id);
}

static void on_eip_associated(int status, caa_http_response *resp, const char *code, caa_error *e,
                              void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (expect_answer(status, r, "AssociateAddressResponse", &e) >= 0) {
        create_succeed(op);
        return;
    }
    caa_error_prefix(&e, "associating Elastic IP %s with ENI %s", op->eni_allocation_id, op->eni_id);
    /* Not associated: the delete would not find it by instance. Release it now. */
    aws_params params = {0};
    ec2_build_release_address(op->eni_allocation_id, &params);
    undo_then_fail(op, e, PH_EIP_RELEASE, &params, on_eip_released);
}

static void on_eip_allocated(int status, caa_http_response *resp, const char *code, caa_error *e,
                             void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (status >= 0)
        status = ec2_parse_allocate_address(r->body, r->body_len, &op->eni_allocation_id, &e);
    if (status < 0) {
        caa_error_prefix(&e, "EC2 AllocateAddress");
        create_fail_after_run(op, e);
        return;
    }
    op->phase = PH_EIP_ASSOCIATE;
    aws_params params = {0};
    ec2_build_associate_address(op->eni_allocation_id, op->eni_id, &params);
    op_call(op, &params, on_eip_associated);
}

static void on_eni_modified(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (expect_answer(status, r, "ModifyNetworkInterfaceAttributeResponse", &e) < 0) {
        /* Attached but not deleted with the instance: name it for the operator. */
        caa_error_prefix(&e, "making ENI %s go with the instance (it may be left over)", op->eni_id);
        create_fail_after_run(op, e);
        return;
    }
    log_info("%s: second network interface %s attached (device index 1)", op->name, op->eni_id);
    if (!op->p->public_ip) {
        create_succeed(op);
        return;
    }
    op->phase = PH_EIP_ALLOCATE;
    _cleanup_free_ char *name = xasprintf("eip-%s", op->instance_id);
    size_t nt;
    _cleanup_free_ aws_kv *tags = ownership_tags(op, name, true, &nt);
    aws_params params = {0};
    ec2_build_allocate_address(tags, nt, &params);
    op_call(op, &params, on_eip_allocated);
}

static void on_eni_deleted(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    status = expect_answer(status, r, "DeleteNetworkInterfaceResponse", &e);
    undo_done(op, status, e, "deleting ENI", op->eni_id);
}

static void on_eni_attached(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (status >= 0)
        status = ec2_parse_attach_network_interface(r->body, r->body_len, &op->attachment_id, &e);
    if (status < 0) {
        caa_error_prefix(&e, "attaching ENI %s", op->eni_id);
        /* Not attached: it would outlive the instance. Delete it, then fail. */
        aws_params params = {0};
        ec2_build_delete_network_interface(op->eni_id, &params);
        undo_then_fail(op, e, PH_ENI_DELETE, &params, on_eni_deleted);
        return;
    }
    op->phase = PH_ENI_MODIFY;
    aws_params params = {0};
    ec2_build_eni_delete_on_termination(op->eni_id, op->attachment_id, &params);
    op_call(op, &params, on_eni_modified);
}

static void on_eni_created(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (status >= 0)
        status = ec2_parse_create_network_interface(r->body, r->body_len, &op->eni_id, &e);
    if (status < 0) {
        caa_error_prefix(&e, "EC2 CreateNetworkInterface");
        create_fail_after_run(op, e);
        return;
    }
    op->phase = PH_ENI_ATTACH;
    aws_params params = {0};
    ec2_build_attach_network_interface(op->instance_id, op->eni_id, 1, &params);
    op_call(op, &params, on_eni_attached);
}

/* The instance runs (and has its public address when one is wanted). */
static void create_running(aws_op *op)
{
    if (!op->p->public_ip && !op->private_ip) {
        create_fail_after_run(op, caa_error_new(-EPROTO, "the instance has no private IP address"));
        return;
    }
    if (!op->multi_nic) {
        create_succeed(op);
        return;
    }
    op->phase = PH_ENI_CREATE;
    _cleanup_free_ char *name = xasprintf("nic-%s", op->instance_id);
    /* One ENI per instance, whatever retries happen. */
    _cleanup_free_ char *token = xasprintf("%s-nic", op->instance_id);
    size_t nt;
    _cleanup_free_ aws_kv *tags = ownership_tags(op, name, true, &nt);
    aws_params params = {0};
    ec2_build_create_network_interface(op->p->subnet_id, op->p->sg_ids, tags, nt, token, &params);
    op_call(op, &params, on_eni_created);
}

static void on_poll(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (status < 0) {
        /* Right after RunInstances the id may not be visible yet. */
        if (code_is(code, "InvalidInstanceID.NotFound") && !op->p->stopping) {
            caa_error_free(e);
            poll_later(op);
            return;
        }
        create_fail_after_run(op, e);
        return;
    }
    ec2_instance_list l;
    if (ec2_parse_describe_instances(r->body, r->body_len, &l, &e) < 0) {
        caa_error_prefix(&e, "EC2 DescribeInstances");
        create_fail_after_run(op, e);
        return;
    }
    const ec2_instance *inst = NULL;
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].id && strcmp(l.v[i].id, op->instance_id) == 0)
            inst = &l.v[i];
    const char *state = inst && inst->state ? inst->state : "";
    if (inst && strcmp(state, "running") == 0) {
        const char *pub = ec2_instance_address(inst, 1);
        const char *priv = ec2_instance_address(inst, 0);
        if (priv && !op->private_ip)
            op->private_ip = xstrdup(priv);
        if (pub && !op->public_ip)
            op->public_ip = xstrdup(pub);
        ec2_instance_list_done(&l);
        if (op->p->public_ip && !op->public_ip) {
            create_fail_after_run(
                op, caa_error_new(-EPROTO, "the instance is running but has no public address"));
            return;
        }
        create_running(op);
        return;
    }
    if (inst && strcmp(state, "pending") != 0) {
        e = caa_error_new(-EIO, "the instance is %.32s instead of running", state);
        ec2_instance_list_done(&l);
        create_fail_after_run(op, e);
        return;
    }
    ec2_instance_list_done(&l);
    poll_later(op);
}

static void on_poll_timer(uv_timer_t *t)
{
    aws_op *op = CAA_CONTAINER_OF(t, aws_op, op.timer);
    char *ids[] = {op->instance_id, NULL};
    aws_params params = {0};
    ec2_build_describe_instances(ids, NULL, 0, 0, NULL, &params);
    op_call(op, &params, on_poll);
}

static void poll_later(aws_op *op)
{
    if (op->op.cancel_requested) {
        /* The cancel came while the poll's answer was on its way. */
        create_fail_after_run(op, caa_error_new(-ECANCELED, "cancelled while waiting for the instance"));
        return;
    }
    uint64_t now = uv_now(op->p->loop);
    if (now >= op->poll_deadline) {
        create_fail_after_run(op, caa_error_new(-ETIMEDOUT, "not running%s within %llu s",
                                                op->p->public_ip ? " with a public address" : "",
                                                (unsigned long long)(op->p->running_wait_ms / 1000)));
        return;
    }
    uint64_t delay = op->poll_delay;
    if (delay > op->poll_deadline - now)
        delay = op->poll_deadline - now;
    op->poll_delay = op->poll_delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : op->poll_delay * 2;
    uv_timer_start(&op->op.timer, on_poll_timer, delay, 0);
}

static void on_run(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    aws_op *op = opaque;
    aws_provider *p = op->p;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (status < 0) {
        if (code_is(code, "InsufficientInstanceCapacity") && op->candidates &&
            op->candidates[op->cand_idx + 1] && !p->stopping && !op->op.cancel_requested) {
            log_debug("%s: no capacity for %s, trying %s", op->name, op->candidates[op->cand_idx],
                      op->candidates[op->cand_idx + 1]);
            caa_error_free(e);
            op->cand_idx++;
            create_run(op);
            return;
        }
        caa_error_prefix(&e, "creating instance %s", op->name);
        op_finish(op, status, NULL, e);
        return;
    }
    ec2_instance_list l;
    if (ec2_parse_run_instances(r->body, r->body_len, &l, &e) < 0 || l.n == 0 || !l.v[0].id || !*l.v[0].id) {
        if (!e)
            e = caa_error_new(-EPROTO, "RunInstances answered without an instance");
        caa_error_prefix(&e, "creating instance %s: EC2 RunInstances", op->name);
        ec2_instance_list_done(&l);
        /* No id, nothing to clean up here; list_instances finds any orphan. */
        op_finish(op, -EPROTO, NULL, e);
        return;
    }
    op->instance_id = xstrdup(l.v[0].id);
    const char *priv = ec2_instance_address(&l.v[0], 0);
    if (priv)
        op->private_ip = xstrdup(priv);
    ec2_instance_list_done(&l);
    if (!aws_instance_id_valid(op->instance_id)) {
        /* Not an id we could ever delete: report without cleanup. */
        op_finish(op, -EPROTO, NULL,
                  caa_error_new(-EPROTO,
                                "creating instance %s: RunInstances answered with a malformed instance id",
                                op->name));
        return;
    }
    /* A public address, or a second ENI (which needs a running instance, as
     * upstream's waiter before AttachNetworkInterface): wait until running. */
    if (p->public_ip || op->multi_nic) {
        op->phase = PH_POLL;
        op->poll_deadline = uv_now(p->loop) + p->running_wait_ms;
        op->poll_delay = POLL_FIRST_MS;
        poll_later(op);
        return;
    }
    if (!op->private_ip) {
        create_fail_after_run(op,
                              caa_error_new(-EPROTO, "RunInstances answered without a private IP address"));
        return;
    }
    create_succeed(op);
}

/* Client token of the n-th attempt: the idempotency key for the first, a
 * derived one for capacity fallbacks (another type is another request). */
static char *client_token(const aws_op *op)
{
    if (op->cand_idx == 0)
        return xstrdup(op->token_base);
    char *t = xasprintf("%s-%zu", op->token_base, op->cand_idx);
    if (strlen(t) <= MAX_CLIENT_TOKEN)
        return t;
    char hex[65];
    aws_sha256_hex(t, strlen(t), hex);
    free(t);
    return xstrndup(hex, 48);
}

static void create_run(aws_op *op)
{
    aws_provider *p = op->p;
    const char *image = op->image ? op->image : p->image_id;
    const aws_image_info *img = aws_image_find(p, image);
    size_t nt;
    aws_kv *tags = ownership_tags(op, op->name, false, &nt);
    _cleanup_free_ char *token = client_token(op);
    ec2_run_request rr = {
        .image_id = image,
        .instance_type = op->candidates ? op->candidates[op->cand_idx] : NULL,
        .subnet_id = p->subnet_id,
        .security_group_ids = p->sg_ids,
        .key_name = p->key_name,
        .user_data_b64 = op->user_data_b64,
        .sev_snp = !p->disable_cvm,
        .root_device_name = img ? img->root_device_name : NULL,
        .root_volume_size = aws_root_volume_size(p, img),
        .public_ip = p->public_ip,
        .launch_template = p->use_lt ? p->lt_name : NULL,
        .tags = tags,
        .n_tags = nt,
        .client_token = token,
    };
    aws_params params = {0};
    ec2_build_run_instances(&rr, &params);
    free(tags);
    op->phase = PH_RUN;
    op_call(op, &params, on_run);
}

static void on_spec_image(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (status >= 0) {
        ec2_image_list l;
        status = ec2_parse_describe_images(r->body, r->body_len, &l, &e);
        if (status >= 0) {
            for (size_t i = 0; i < l.n; i++)
                aws_image_add(op->p, &l.v[i]);
            ec2_image_list_done(&l);
            if (!aws_image_find(op->p, op->image))
                status = caa_error_set(&e, -ENOENT, "AMI %s not found", op->image);
        }
    }
    if (status < 0) {
        caa_error_prefix(&e, "creating instance %s", op->name);
        op_finish(op, status, NULL, e);
        return;
    }
    create_run(op);
}

static void create_begin(aws_op *op)
{
    aws_provider *p = op->p;
    if (!p->use_lt) {
        caa_instance_type_request req = {
            .explicit_type = op->explicit_type,
            .vcpus = op->vcpus,
            .memory_mib = op->memory_mib,
            .gpus = op->gpus,
        };
        char *chosen = NULL;
        caa_error *e = NULL;
        if (caa_instance_type_select(p->types, p->n_types, p->default_type, p->allowed_types, &req, &chosen,
                                     &e) < 0) {
            op_finish(op, e->code, NULL, e);
            return;
        }
        char **fb = caa_instance_type_fallbacks(p->types, p->n_types, p->allowed_types, &req, chosen);
        caa_strv_push(&op->candidates, chosen);
        for (size_t i = 0; fb[i]; i++)
            caa_strv_push(&op->candidates, fb[i]);
        caa_strv_free(fb);
        free(chosen);
    }
    const char *image = op->image ? op->image : p->image_id;
    if (!image && !p->use_lt) {
        op_finish(
            op, -EINVAL, NULL,
            caa_error_new(-EINVAL, "creating instance %s: no AMI: set -imageid (PODVM_AMI_ID)", op->name));
        return;
    }
    if (image && p->root_volume_size > 0 && !aws_image_find(p, image)) {
        op->phase = PH_IMAGE;
        char *ids[] = {(char *)image, NULL};
        aws_params params = {0};
        ec2_build_describe_images(ids, &params);
        op_call(op, &params, on_spec_image);
        return;
    }
    create_run(op);
}

/* ---- list / get ---- */

static caa_instance *instance_of(const aws_provider *p, const ec2_instance *i)
{
    caa_instance *inst = caa_instance_new(i->id, ec2_instance_tag(i, "Name"));
    const char *pub = p->public_ip ? ec2_instance_address(i, 1) : NULL;
    const char *priv = ec2_instance_address(i, 0);
    if (pub)
        caa_instance_add_ip(inst, pub);
    if (priv && !(pub && strcmp(pub, priv) == 0))
        caa_instance_add_ip(inst, priv);
    return inst;
}

static void list_page(aws_op *op, const char *next_token);
static void list_enis_page(aws_op *op, const char *next_token);

static void list_push(aws_op *op, caa_instance *inst)
{
    op->list = xrealloc(op->list, (op->n_list + 2) * sizeof(*op->list));
    op->list[op->n_list++] = inst;
    op->list[op->n_list] = NULL;
}

/* A leftover add-on ENI or Elastic IP becomes a list entry: its id, and as
 * its name the pod instance it was made for (caa.instance-name), so a pod that
 * the state still knows keeps it (orphan sweep) and a StopVM by name takes it
 * along. The cloud filtered by tag:caa.node; checked here again: never
 * anything without this node's ownership tags. */
static void list_push_addon(aws_op *op, const char *id, const aws_kv *tags, size_t n_tags)
{
    const char *node = ec2_tag(tags, n_tags, AWS_TAG_NODE);
    if (!node || strcmp(node, op->p->node_name) != 0 || !ec2_tag(tags, n_tags, AWS_TAG_SANDBOX))
        return;
    list_push(op, caa_instance_new(id, ec2_tag(tags, n_tags, AWS_TAG_INSTANCE_NAME)));
}

/* Part of the list that is not the instances failed: the instances are still
 * reported (an account whose policy lacks ec2:DescribeNetworkInterfaces, where
 * no add-on ENI was ever made, keeps its orphan sweep). */
static bool addon_list_failed(aws_op *op, int status, caa_error *e, const char *what)
{
    if (status >= 0) {
        caa_error_free(e);
        return false;
    }
    if (status == -ECANCELED) {
        op_finish(op, status, NULL, e);
        return true;
    }
    log_warn("listing leftover %s: %s (instances listed; the next listing retries)", what, caa_error_msg(e));
    caa_error_free(e);
    return false;
}

static void on_list_eips(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    ec2_address_list l = {0};
    if (status >= 0)
        status = ec2_parse_describe_addresses(r->body, r->body_len, &l, &e);
    if (addon_list_failed(op, status, e, "Elastic IPs"))
        return;
    for (size_t i = 0; i < l.n; i++) {
        const ec2_address *a = &l.v[i];
        if (!aws_resource_id_valid(a->allocation_id, "eipalloc-"))
            continue;
        /* Left over: associated with nothing, or with an ENI that is itself left over. */
        bool loose = !a->association_id || !*a->association_id ||
                     (a->network_interface_id && caa_strv_contains(op->loose_enis, a->network_interface_id));
        if (loose)
            list_push_addon(op, a->allocation_id, a->tags, a->n_tags);
    }
    ec2_address_list_done(&l);
    op_finish(op, 0, NULL, NULL);
}

static void list_eips(aws_op *op)
{
    char *node[] = {op->p->node_name, NULL};
    ec2_filter filters[] = {{"tag:" AWS_TAG_NODE, node}};
    aws_params params = {0};
    ec2_build_describe_addresses_by(NULL, filters, CAA_ARRAY_SIZE(filters), &params);
    op->phase = PH_LIST_EIPS;
    op_call(op, &params, on_list_eips);
}

static void on_list_enis(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    ec2_eni_list l = {0};
    if (status >= 0)
        status = ec2_parse_describe_network_interfaces(r->body, r->body_len, &l, &e);
    if (addon_list_failed(op, status, e, "network interfaces"))
        return;
    if (status < 0) {
        list_eips(op);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        const ec2_eni *n = &l.v[i];
        /* Only unattached ones: an attached ENI goes with its instance. */
        if (!aws_resource_id_valid(n->id, "eni-") || !n->status || strcmp(n->status, "available") != 0 ||
            (n->attached_instance_id && *n->attached_instance_id))
            continue;
        caa_strv_push(&op->loose_enis, n->id);
        list_push_addon(op, n->id, n->tags, n->n_tags);
    }
    if (l.next_token && *l.next_token)
        list_enis_page(op, l.next_token);
    else
        list_eips(op);
    ec2_eni_list_done(&l);
}

static void list_enis_page(aws_op *op, const char *next_token)
{
    char *node[] = {op->p->node_name, NULL};
    char *available[] = {"available", NULL};
    ec2_filter filters[] = {{"tag:" AWS_TAG_NODE, node}, {"status", available}};
    aws_params params = {0};
    ec2_build_describe_network_interfaces(filters, CAA_ARRAY_SIZE(filters), LIST_PAGE, next_token, &params);
    op->phase = PH_LIST_ENIS;
    op_call(op, &params, on_list_enis);
}

static void on_list(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    (void)code;
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    ec2_instance_list l = {0};
    if (status >= 0) {
        status = ec2_parse_describe_instances(r->body, r->body_len, &l, &e);
        if (status < 0)
            caa_error_prefix(&e, "EC2 DescribeInstances");
    }
    if (status < 0) {
        caa_error_prefix(&e, "listing instances");
        op_finish(op, status, NULL, e);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        if (!l.v[i].id || !aws_instance_id_valid(l.v[i].id))
            continue;
        list_push(op, instance_of(op->p, &l.v[i]));
    }
    if (l.next_token && *l.next_token)
        list_page(op, l.next_token);
    else
        list_enis_page(op, NULL); /* then the leftover add-on ENIs and Elastic IPs */
    ec2_instance_list_done(&l);
}

static void list_page(aws_op *op, const char *next_token)
{
    aws_provider *p = op->p;
    char *node[] = {p->node_name, NULL};
    char *states[] = {"pending", "running", "stopping", "stopped", NULL};
    ec2_filter filters[] = {{"tag:" AWS_TAG_NODE, node}, {"instance-state-name", states}};
    aws_params params = {0};
    ec2_build_describe_instances(NULL, filters, CAA_ARRAY_SIZE(filters), LIST_PAGE, next_token, &params);
    op->phase = PH_LIST;
    op_call(op, &params, on_list);
}

static void on_get(int status, caa_http_response *resp, const char *code, caa_error *e, void *opaque)
{
    aws_op *op = opaque;
    _cleanup_(caa_http_response_freep) caa_http_response *r = resp;
    op->call = NULL;
    if (status < 0) {
        if (code_is(code, "InvalidInstanceID.NotFound")) {
            caa_error_free(e);
            op_finish(op, -ENOENT, NULL, caa_error_new(-ENOENT, "instance %s not found", op->id));
            return;
        }
        caa_error_prefix(&e, "looking up instance %s", op->id);
        op_finish(op, status, NULL, e);
        return;
    }
    ec2_instance_list l;
    if (ec2_parse_describe_instances(r->body, r->body_len, &l, &e) < 0) {
        caa_error_prefix(&e, "looking up instance %s: EC2 DescribeInstances", op->id);
        op_finish(op, -EPROTO, NULL, e);
        return;
    }
    caa_instance *found = NULL;
    for (size_t i = 0; i < l.n && !found; i++)
        if (l.v[i].id && strcmp(l.v[i].id, op->id) == 0 &&
            !(l.v[i].state && strcmp(l.v[i].state, "terminated") == 0))
            found = instance_of(op->p, &l.v[i]);
    ec2_instance_list_done(&l);
    if (!found) {
        op_finish(op, -ENOENT, NULL, caa_error_new(-ENOENT, "instance %s not found", op->id));
        return;
    }
    op_finish(op, 0, found, NULL);
}

static void op_begin(aws_op *op)
{
    switch (op->op.kind) {
    case CAA_OP_CREATE:
        create_begin(op);
        break;
    case CAA_OP_DELETE:
        if (aws_instance_id_valid(op->id))
            del_start(op, op->id);
        else
            addon_delete_start(op);
        break;
    case CAA_OP_LIST:
        list_page(op, NULL);
        break;
    case CAA_OP_GET: {
        op->phase = PH_GET;
        char *ids[] = {op->id, NULL};
        aws_params params = {0};
        ec2_build_describe_instances(ids, NULL, 0, 0, NULL, &params);
        op_call(op, &params, on_get);
        break;
    }
    }
}

/* ---- entry points ---- */

bool aws_resource_id_valid(const char *id, const char *prefix)
{
    size_t lp = strlen(prefix);
    if (!id || strncmp(id, prefix, lp) != 0)
        return false;
    size_t n = strlen(id + lp);
    if (n < 8 || n > 17)
        return false;
    for (const char *q = id + lp; *q; q++)
        if (!isxdigit((unsigned char)*q) || isupper((unsigned char)*q))
            return false;
    return true;
}

bool aws_instance_id_valid(const char *id)
{
    return aws_resource_id_valid(id, "i-");
}

static char *base64(const char *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data, (int)len);
    return out;
}

static bool token_ok(const char *s)
{
    if (!s || !*s || strlen(s) > MAX_CLIENT_TOKEN)
        return false;
    for (const unsigned char *q = (const unsigned char *)s; *q; q++)
        if (*q <= 0x20 || *q >= 0x7f)
            return false;
    return true;
}

int aws_op_create(aws_provider *p, const caa_instance_spec *spec, caa_instance_cb cb, void *opaque,
                  caa_error **err)
{
    aws_kv *tags = NULL;
    size_t n_tags = 0;
    int r = aws_parse_tags(spec->tags, &tags, &n_tags, err);
    if (r < 0)
        return caa_error_prefix(err, "pod tags");
    aws_op *op = op_new(p, AWS_NEED_READY);
    caa_op_add_create(&p->ops, &op->op, &aws_op_class, cb, opaque);
    op->name = xstrdup(spec->instance_name);
    op->sandbox_id = xstrdup(spec->sandbox_id);
    op->image = spec->image && *spec->image ? xstrdup(spec->image) : NULL;
    op->explicit_type = spec->instance_type && *spec->instance_type ? xstrdup(spec->instance_type) : NULL;
    op->vcpus = spec->vcpus;
    op->memory_mib = spec->memory_mib;
    op->gpus = spec->gpus;
    op->multi_nic = spec->multi_nic;
    op->tags = tags;
    op->n_tags = n_tags;
    if (spec->user_data && spec->user_data_len)
        op->user_data_b64 = base64(spec->user_data, spec->user_data_len);
    if (token_ok(spec->idempotency_key)) {
        op->token_base = xstrdup(spec->idempotency_key);
    } else {
        /* Stable per pod without a key: a hash of what names it. */
        _cleanup_free_ char *seed = xasprintf("%s\n%s", spec->sandbox_id, spec->instance_name);
        char hex[65];
        aws_sha256_hex(seed, strlen(seed), hex);
        op->token_base = xstrndup(hex, 40);
    }
    op_kick(op);
    return 0;
}

int aws_op_start(aws_provider *p, caa_op_kind kind, const char *id, caa_op_cb cb, void *opaque,
                 caa_error **err)
{
    if (p->stopping)
        return caa_error_set(err, -ECANCELED, "the AWS provider is shutting down");
    bool addon = kind == CAA_OP_DELETE &&
                 (aws_resource_id_valid(id, "eni-") || aws_resource_id_valid(id, "eipalloc-"));
    if (kind != CAA_OP_LIST && !addon && !aws_instance_id_valid(id))
        return caa_error_set(err, -EINVAL, "\"%.64s\" is not an EC2 instance id", id);
    aws_op *op = op_new(p, AWS_NEED_REGION);
    caa_op_add(&p->ops, &op->op, &aws_op_class, kind, cb, opaque);
    op->id = id ? xstrdup(id) : NULL;
    op_kick(op);
    return 0;
}

/* Shutdown (caa_op_set_close) or the caller's cancel (caa_op_set_cancel): a
 * call in flight is cancelled and its callback ends the op with -ECANCELED; an
 * op waiting on a timer or for the provider's start ends now. A create hands
 * back the instance id it has. */
static void op_cancel(caa_op *base)
{
    aws_op *op = CAA_CONTAINER_OF(base, aws_op, op);
    if (op->call) {
        aws_call_cancel(op->call);
        return;
    }
    uv_timer_stop(&op->op.timer);
    caa_instance *inst = op->op.kind == CAA_OP_CREATE ? partial_instance(op) : NULL;
    op_finish(
        op, -ECANCELED, inst,
        caa_error_new(-ECANCELED, "%s", op->p->stopping ? "the AWS provider is shutting down" : "cancelled"));
}
