/* caa-ctl: talks to the daemon the way the Kata shim does (hypervisor.Hypervisor,
 * podvminfo.PodVMInfo) and checks a pod's agent socket (grpc.Health/Check).
 * For the demo, for operators and for tests.
 *
 * Exit status: 0 success, 1 RPC or connection error (gRPC code name and
 * message on stderr), 2 usage error. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "caa-version.h"
#include "cleanup.h"
#include "error.h"
#include "health.pb-c.h"
#include "hypervisor.pb-c.h"
#include "parse.h"
#include "podvminfo.pb-c.h"
#include "strv.h"
#include "ttrpc.h"
#include "xalloc.h"
#include "timeutil.h"

#define EXIT_RPC 1
#define EXIT_USAGE 2
#define DEFAULT_TIMEOUT_NS (60 * CAA_NSEC_PER_SEC)
#define START_TIMEOUT_NS (600 * CAA_NSEC_PER_SEC) /* the shim's remote_hypervisor_timeout */
#define MAX_ANNOTATIONS 256

typedef struct ctl ctl;
typedef int (*result_fn)(ctl *c, const uint8_t *payload, size_t len);

struct ctl {
    uv_loop_t loop;
    const char *socket_path;
    const char *service;
    const char *method;
    uint8_t *payload;
    size_t payload_len;
    int64_t timeout_ns;
    result_fn on_result;
    const char *arg; /* id or pod, for messages */
    int exit_code;
};

static void usage(FILE *out)
{
    fputs(
        "Usage: caa-ctl [-socket PATH] [-pods-dir DIR] [-timeout D] <command> [args]\n"
        "\n"
        "Commands:\n"
        "  create <id> [-a key=value ...] [-netns PATH]   CreateVM; prints the agent socket path\n"
        "  start <id> [-timeout D]                        StartVM (default timeout 600s)\n"
        "  stop <id>                                      StopVM\n"
        "  version                                        hypervisor Version\n"
        "  info <pod> <namespace> [-wait]                 podvminfo GetInfo; prints the instance id\n"
        "                                                 (the agent link state on stderr)\n"
        "  check [-agent-socket PATH] [<id>]              grpc.Health/Check on <pods-dir>/<id>/agent.ttrpc\n"
        "\n"
        "Global flags (one or two dashes, \"-flag value\" or \"-flag=value\"):\n"
        "  -socket PATH    hypervisor socket (env REMOTE_HYPERVISOR_ENDPOINT, default "
        "/run/peerpod/hypervisor.sock)\n"
        "  -pods-dir DIR   pods directory for check (env PODS_DIR, default /run/peerpod/pods)\n"
        "  -timeout D      call deadline, e.g. 30s, 5m (default 60s; start 600s; info -wait none)\n"
        "\n"
        "Exit status: 0 success, 1 RPC error, 2 usage error.\n",
        out);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("caa-ctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nRun \"caa-ctl -help\" for usage.\n", stderr);
    return EXIT_USAGE;
}

/* Matches "-name", "--name", "-name=v", "--name=v". Returns the inline value
 * (after '='), "" when none, or NULL when the flag is a different one. */
static const char *match_flag(const char *arg, const char *name)
{
    if (arg[0] != '-')
        return NULL;
    arg += arg[1] == '-' ? 2 : 1;
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '\0')
        return "";
    if (arg[n] == '=')
        return arg + n + 1;
    return NULL;
}

/* Value of a flag that takes one: inline or the next argument. */
static const char *flag_value(const char *inline_value, int argc, char **argv, int *i)
{
    if (*inline_value)
        return inline_value;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

/* ---------------------------------------------------------------- results */

static int on_create(ctl *c, const uint8_t *p, size_t len)
{
    Hypervisor__CreateVMResponse *resp = hypervisor__create_vmresponse__unpack(NULL, len, p);
    if (!resp) {
        fprintf(stderr, "caa-ctl: CreateVM: cannot decode the response\n");
        return EXIT_RPC;
    }
    printf("%s\n", resp->agentsocketpath ? resp->agentsocketpath : "");
    hypervisor__create_vmresponse__free_unpacked(resp, NULL);
    (void)c;
    return 0;
}

static int on_started(ctl *c, const uint8_t *p, size_t len)
{
    (void)p;
    (void)len;
    printf("started %s\n", c->arg);
    return 0;
}

static int on_stopped(ctl *c, const uint8_t *p, size_t len)
{
    (void)p;
    (void)len;
    printf("stopped %s\n", c->arg);
    return 0;
}

static int on_version(ctl *c, const uint8_t *p, size_t len)
{
    (void)c;
    Hypervisor__VersionResponse *resp = hypervisor__version_response__unpack(NULL, len, p);
    if (!resp) {
        fprintf(stderr, "caa-ctl: Version: cannot decode the response\n");
        return EXIT_RPC;
    }
    printf("%s\n", resp->version ? resp->version : "");
    hypervisor__version_response__free_unpacked(resp, NULL);
    return 0;
}

static int on_info(ctl *c, const uint8_t *p, size_t len)
{
    (void)c;
    Podvminfo__GetInfoResponse *resp = podvminfo__get_info_response__unpack(NULL, len, p);
    if (!resp) {
        fprintf(stderr, "caa-ctl: GetInfo: cannot decode the response\n");
        return EXIT_RPC;
    }
    printf("%s\n", resp->vmid ? resp->vmid : "");
    /* stdout stays the id alone (scripts); the link state goes to stderr. */
    if (resp->agentconnection && *resp->agentconnection)
        fprintf(stderr, "agent connection: %s\n", resp->agentconnection);
    podvminfo__get_info_response__free_unpacked(resp, NULL);
    return 0;
}

static int on_check(ctl *c, const uint8_t *p, size_t len)
{
    (void)c;
    Grpc__HealthCheckResponse *resp = grpc__health_check_response__unpack(NULL, len, p);
    if (!resp) {
        fprintf(stderr, "caa-ctl: Check: cannot decode the response\n");
        return EXIT_RPC;
    }
    const char *s;
    switch (resp->status) {
    case GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING:
        s = "SERVING";
        break;
    case GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING:
        s = "NOT_SERVING";
        break;
    default:
        s = "UNKNOWN";
        break;
    }
    printf("%s\n", s);
    grpc__health_check_response__free_unpacked(resp, NULL);
    return 0;
}

/* ---------------------------------------------------------------- the call */

static void on_response(const ttrpc_result *res, void *opaque)
{
    ctl *c = opaque;
    if (res->status < 0) {
        const char *code = res->status == -ETIMEDOUT ? "DEADLINE_EXCEEDED" : "UNAVAILABLE";
        char dur[64] = "";
        if (res->status == -ETIMEDOUT)
            caa_format_duration(c->timeout_ns, dur, sizeof(dur));
        fprintf(stderr, "caa-ctl: %s: %s: %s%s%s\n", c->method, code,
                res->status == -ETIMEDOUT ? "no answer within " : "", res->status == -ETIMEDOUT ? dur : "",
                res->status == -ETIMEDOUT ? "" : strerror(-res->status));
        c->exit_code = EXIT_RPC;
    } else if (res->grpc_code != 0) {
        fprintf(stderr, "caa-ctl: %s: %s: %s\n", c->method, grpc_code_name(res->grpc_code),
                res->message ? res->message : "");
        c->exit_code = EXIT_RPC;
    } else {
        c->exit_code = c->on_result(c, res->payload, res->payload_len);
    }
}

typedef struct call_ctx {
    ctl *c;
    ttrpc_client *client;
} call_ctx;

static void on_response_close(const ttrpc_result *res, void *opaque)
{
    call_ctx *cc = opaque;
    on_response(res, cc->c);
    ttrpc_client_close(cc->client);
    free(cc);
}

static void on_connect(ttrpc_client *client, int status, const caa_error *err, void *opaque)
{
    ctl *c = opaque;
    if (status < 0) {
        fprintf(stderr, "caa-ctl: cannot connect to %s: %s\n", c->socket_path, err ? caa_error_msg(err) : "");
        c->exit_code = EXIT_RPC;
        return;
    }
    call_ctx *cc = xnew0(call_ctx, 1);
    cc->c = c;
    cc->client = client;
    _cleanup_error_ caa_error *e = NULL;
    if (ttrpc_client_call(client, c->service, c->method, c->payload, c->payload_len, c->timeout_ns, NULL, 0,
                          on_response_close, cc, &e) < 0) {
        fprintf(stderr, "caa-ctl: %s: %s\n", c->method, caa_error_msg(e));
        c->exit_code = EXIT_RPC;
        free(cc);
        ttrpc_client_close(client);
    }
}

static int run_call(ctl *c)
{
    int r = uv_loop_init(&c->loop);
    if (r < 0) {
        fprintf(stderr, "caa-ctl: %s\n", uv_strerror(r));
        return EXIT_RPC;
    }
    _cleanup_error_ caa_error *e = NULL;
    c->exit_code = EXIT_RPC;
    if (ttrpc_client_connect_unix(&c->loop, c->socket_path, on_connect, c, &e) < 0)
        fprintf(stderr, "caa-ctl: cannot connect to %s: %s\n", c->socket_path, caa_error_msg(e));
    uv_run(&c->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&c->loop) != 0)
        fprintf(stderr, "caa-ctl: internal error: handles left open\n");
    return c->exit_code;
}

/* Packs msg into c->payload. */
static void set_payload(ctl *c, const ProtobufCMessage *msg)
{
    c->payload_len = protobuf_c_message_get_packed_size(msg);
    c->payload = xmalloc(c->payload_len ? c->payload_len : 1);
    protobuf_c_message_pack(msg, c->payload);
}

/* ---------------------------------------------------------------- commands */

static int parse_timeout(const char *v, int64_t *ret)
{
    if (!v || caa_parse_duration(v, ret) < 0)
        return usage_error("invalid -timeout \"%s\" (examples: 30s, 5m)", v ? v : "");
    return 0;
}

static int cmd_create(ctl *c, int argc, char **argv)
{
    const char *id = NULL, *netns = NULL;
    _cleanup_strv_ char **kv = NULL;
    for (int i = 0; i < argc; i++) {
        const char *v;
        if ((v = match_flag(argv[i], "a"))) {
            const char *item = flag_value(v, argc, argv, &i);
            if (!item || !strchr(item, '=') || item[0] == '=')
                return usage_error("-a needs key=value, got \"%s\"", item ? item : "");
            if (caa_strv_len(kv) >= MAX_ANNOTATIONS)
                return usage_error("too many annotations");
            caa_strv_push(&kv, item);
        } else if ((v = match_flag(argv[i], "netns"))) {
            if (!(netns = flag_value(v, argc, argv, &i)))
                return usage_error("-netns needs a path");
        } else if (argv[i][0] == '-') {
            return usage_error("create: unknown flag %s", argv[i]);
        } else if (!id) {
            id = argv[i];
        } else {
            return usage_error("create: unexpected argument \"%s\"", argv[i]);
        }
    }
    if (!id)
        return usage_error("create needs a sandbox id");

    size_t n = caa_strv_len(kv);
    Hypervisor__CreateVMRequest__AnnotationsEntry *entries =
        xnew0(Hypervisor__CreateVMRequest__AnnotationsEntry, n + 1);
    Hypervisor__CreateVMRequest__AnnotationsEntry **ptrs =
        xnew0(Hypervisor__CreateVMRequest__AnnotationsEntry *, n + 1);
    for (size_t i = 0; i < n; i++) {
        hypervisor__create_vmrequest__annotations_entry__init(&entries[i]);
        char *eq = strchr(kv[i], '=');
        *eq = '\0';
        entries[i].key = kv[i];
        entries[i].value = eq + 1;
        ptrs[i] = &entries[i];
    }
    Hypervisor__CreateVMRequest req = HYPERVISOR__CREATE_VMREQUEST__INIT;
    req.id = (char *)id;
    req.n_annotations = n;
    req.annotations = ptrs;
    req.networknamespacepath = (char *)(netns ? netns : "");
    set_payload(c, &req.base);
    free(ptrs);
    free(entries);
    c->service = "hypervisor.Hypervisor";
    c->method = "CreateVM";
    c->on_result = on_create;
    c->arg = id;
    return -1;
}

static int cmd_id_only(ctl *c, int argc, char **argv, const char *method, result_fn fn)
{
    const char *id = NULL;
    for (int i = 0; i < argc; i++) {
        const char *v;
        if ((v = match_flag(argv[i], "timeout"))) {
            int r = parse_timeout(flag_value(v, argc, argv, &i), &c->timeout_ns);
            if (r)
                return r;
        } else if (argv[i][0] == '-') {
            return usage_error("unknown flag %s", argv[i]);
        } else if (!id) {
            id = argv[i];
        } else {
            return usage_error("unexpected argument \"%s\"", argv[i]);
        }
    }
    if (!id)
        return usage_error("%s needs a sandbox id", method);
    if (strcmp(method, "StartVM") == 0) {
        Hypervisor__StartVMRequest req = HYPERVISOR__START_VMREQUEST__INIT;
        req.id = (char *)id;
        set_payload(c, &req.base);
    } else {
        Hypervisor__StopVMRequest req = HYPERVISOR__STOP_VMREQUEST__INIT;
        req.id = (char *)id;
        set_payload(c, &req.base);
    }
    c->service = "hypervisor.Hypervisor";
    c->method = method;
    c->on_result = fn;
    c->arg = id;
    return -1;
}

static int cmd_version(ctl *c, int argc, char **argv)
{
    if (argc > 0)
        return usage_error("version: unexpected argument \"%s\"", argv[0]);
    Hypervisor__VersionRequest req = HYPERVISOR__VERSION_REQUEST__INIT;
    req.version = (char *)CAA_VERSION;
    set_payload(c, &req.base);
    c->service = "hypervisor.Hypervisor";
    c->method = "Version";
    c->on_result = on_version;
    return -1;
}

static int cmd_info(ctl *c, int argc, char **argv, bool timeout_given)
{
    const char *pos[2] = {NULL, NULL};
    size_t n = 0;
    bool wait = false;
    for (int i = 0; i < argc; i++) {
        const char *v;
        if ((v = match_flag(argv[i], "wait"))) {
            bool b = true;
            if (*v && caa_parse_bool(v, &b) < 0)
                return usage_error("invalid -wait value \"%s\"", v);
            wait = b;
        } else if ((v = match_flag(argv[i], "timeout"))) {
            int r = parse_timeout(flag_value(v, argc, argv, &i), &c->timeout_ns);
            if (r)
                return r;
            timeout_given = true;
        } else if (argv[i][0] == '-') {
            return usage_error("info: unknown flag %s", argv[i]);
        } else if (n < 2) {
            pos[n++] = argv[i];
        } else {
            return usage_error("info: unexpected argument \"%s\"", argv[i]);
        }
    }
    if (n != 2)
        return usage_error("info needs <pod> <namespace>");
    if (wait && !timeout_given)
        c->timeout_ns = 0;
    Podvminfo__GetInfoRequest req = PODVMINFO__GET_INFO_REQUEST__INIT;
    req.podname = (char *)pos[0];
    req.podnamespace = (char *)pos[1];
    req.wait = wait;
    set_payload(c, &req.base);
    c->service = "podvminfo.PodVMInfo";
    c->method = "GetInfo";
    c->on_result = on_info;
    c->arg = pos[0];
    return -1;
}

static int cmd_check(ctl *c, int argc, char **argv, const char *pods_dir, char **owned_path)
{
    const char *id = NULL, *sock = NULL;
    for (int i = 0; i < argc; i++) {
        const char *v;
        if ((v = match_flag(argv[i], "agent-socket"))) {
            if (!(sock = flag_value(v, argc, argv, &i)))
                return usage_error("-agent-socket needs a path");
        } else if (argv[i][0] == '-') {
            return usage_error("check: unknown flag %s", argv[i]);
        } else if (!id) {
            id = argv[i];
        } else {
            return usage_error("check: unexpected argument \"%s\"", argv[i]);
        }
    }
    if (!sock && !id)
        return usage_error("check needs a sandbox id or -agent-socket");
    if (!sock) {
        if (strchr(id, '/') || strcmp(id, "..") == 0 || strcmp(id, ".") == 0)
            return usage_error("invalid sandbox id \"%s\"", id);
        *owned_path = xasprintf("%s/%s/agent.ttrpc", pods_dir, id);
        sock = *owned_path;
    }
    c->socket_path = sock;
    Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
    set_payload(c, &req.base);
    c->service = "grpc.Health";
    c->method = "Check";
    c->on_result = on_check;
    c->arg = id ? id : sock;
    return -1;
}

int main(int argc, char **argv)
{
    ctl c = {0};
    const char *env = secure_getenv("REMOTE_HYPERVISOR_ENDPOINT");
    c.socket_path = env && *env ? env : "/run/peerpod/hypervisor.sock";
    env = secure_getenv("PODS_DIR");
    const char *pods_dir = env && *env ? env : "/run/peerpod/pods";
    c.timeout_ns = DEFAULT_TIMEOUT_NS;
    bool timeout_given = false;

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *v;
        if (match_flag(argv[i], "h") || match_flag(argv[i], "help")) {
            usage(stdout);
            return 0;
        } else if ((v = match_flag(argv[i], "socket"))) {
            if (!(c.socket_path = flag_value(v, argc, argv, &i)))
                return usage_error("-socket needs a path");
        } else if ((v = match_flag(argv[i], "pods-dir"))) {
            if (!(pods_dir = flag_value(v, argc, argv, &i)))
                return usage_error("-pods-dir needs a path");
        } else if ((v = match_flag(argv[i], "timeout"))) {
            int r = parse_timeout(flag_value(v, argc, argv, &i), &c.timeout_ns);
            if (r)
                return r;
            timeout_given = true;
        } else {
            return usage_error("unknown flag %s", argv[i]);
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i - 1;
    char **sub_argv = argv + i + 1;
    _cleanup_free_ char *owned_path = NULL;
    int r;
    if (strcmp(cmd, "create") == 0) {
        r = cmd_create(&c, sub_argc, sub_argv);
    } else if (strcmp(cmd, "start") == 0) {
        if (!timeout_given)
            c.timeout_ns = START_TIMEOUT_NS;
        r = cmd_id_only(&c, sub_argc, sub_argv, "StartVM", on_started);
    } else if (strcmp(cmd, "stop") == 0) {
        r = cmd_id_only(&c, sub_argc, sub_argv, "StopVM", on_stopped);
    } else if (strcmp(cmd, "version") == 0) {
        r = cmd_version(&c, sub_argc, sub_argv);
    } else if (strcmp(cmd, "info") == 0) {
        r = cmd_info(&c, sub_argc, sub_argv, timeout_given);
    } else if (strcmp(cmd, "check") == 0) {
        r = cmd_check(&c, sub_argc, sub_argv, pods_dir, &owned_path);
    } else if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    } else {
        return usage_error("unknown command \"%s\"", cmd);
    }
    if (r >= 0)
        return r;
    r = run_call(&c);
    free(c.payload);
    return r;
}
