/* Command-line driver over the pod network API, for the namespace tests and
 * the benchmark (the tests/unit/podnetwork scripts and bench/podnetwork/run.sh).
 *
 *   podnet-driver [--netns PATH] COMMAND ARGS...
 *     --netns PATH        first move this (single-threaded) process into PATH
 *   inspect POD_NETNS [--vni N] [--index N] [--port P] [--host-if NAME] [--subnet CIDR]...
 *                       print the pod-network JSON
 *   alloc MIN_ID [IN_USE...]          print "<vni> <index>"
 *   worker-setup POD_NETNS CONFIG VM_IP
 *   worker-teardown POD_NETNS CONFIG
 *   vm-setup CONFIG [--podns PATH] [--no-notrack]
 *   vm-teardown CONFIG [--podns PATH] [--no-notrack]
 *   parse CONFIG                      print the config re-encoded
 *
 * Errors print "error <NAME>: <message>" on stderr and exit 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "netns.h"
#include "parse.h"
#include "podnet-config.h"
#include "podnet-vm.h"
#include "podnet-worker.h"
#include "strv.h"

static int fail(caa_error *e)
{
    const char *name = strerrorname_np(-e->code);
    fprintf(stderr, "error %s: %s\n", name ? name : "?", e->msg);
    caa_error_free(e);
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: see the comment at the top of podnet-driver.c\n");
    return 2;
}

static int load_config(const char *path, caa_podnet_config **ret, caa_error **err)
{
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = caa_read_file(path, CAA_PODNET_MAX_CONFIG_SIZE + 1, 0, &data, &len, err);
    if (r < 0)
        return r;
    return caa_podnet_config_parse(data, len, ret, err);
}

static int print_config(const caa_podnet_config *cfg)
{
    json_auto_t *j = caa_podnet_config_to_json(cfg);
    _cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", s);
    return 0;
}

static int u32_arg(const char *s, uint32_t *ret)
{
    uint64_t v;
    if (caa_parse_uint64(s, UINT32_MAX, &v) < 0)
        return -1;
    *ret = (uint32_t)v;
    return 0;
}

static int cmd_inspect(int argc, char **argv)
{
    caa_podnet_inspect_opts opts = {.vxlan_id = CAA_PODNET_DEFAULT_VXLAN_MIN_ID};
    _cleanup_strv_ char **subnets = NULL;
    caa_error *e = NULL;
    uint32_t v;
    if (argc < 2)
        return usage();
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *flag = argv[i], *val = argv[i + 1];
        if (!strcmp(flag, "--vni") && u32_arg(val, &opts.vxlan_id) == 0)
            continue;
        if (!strcmp(flag, "--index") && u32_arg(val, &opts.index) == 0)
            continue;
        if (!strcmp(flag, "--port") && u32_arg(val, &v) == 0 && v <= 65535) {
            opts.vxlan_port = (uint16_t)v;
            continue;
        }
        if (!strcmp(flag, "--host-if")) {
            opts.host_interface = val;
            continue;
        }
        if (!strcmp(flag, "--subnet")) {
            caa_strv_push(&subnets, val);
            continue;
        }
        return usage();
    }
    if (argc % 2 != 0)
        return usage(); /* a flag without its value */
    opts.pod_subnet_cidrs = subnets;
    _cleanup_podnet_config_ caa_podnet_config *cfg = NULL;
    if (caa_podnet_worker_inspect(argv[1], &opts, &cfg, &e) < 0)
        return fail(e);
    return print_config(cfg);
}

static int cmd_alloc(int argc, char **argv)
{
    uint32_t min, vni, index;
    caa_error *e = NULL;
    if (argc < 2 || u32_arg(argv[1], &min) < 0)
        return usage();
    _cleanup_free_ uint32_t *used = calloc((size_t)argc, sizeof(*used));
    for (int i = 2; i < argc; i++)
        if (u32_arg(argv[i], &used[i - 2]) < 0)
            return usage();
    if (caa_podnet_vni_alloc(min, used, (size_t)(argc - 2), &vni, &index, &e) < 0)
        return fail(e);
    printf("%u %u\n", vni, index);
    return 0;
}

static int cmd_config(int argc, char **argv)
{
    _cleanup_podnet_config_ caa_podnet_config *cfg = NULL;
    caa_error *e = NULL;
    const char *cmd = argv[0];
    bool worker = !strncmp(cmd, "worker-", 7);
    int need = !strcmp(cmd, "worker-setup") ? 4 : worker ? 3 : 2;
    if (argc < need)
        return usage();
    const char *config_path = worker ? argv[2] : argv[1];
    if (load_config(config_path, &cfg, &e) < 0)
        return fail(e);

    if (!strcmp(cmd, "parse"))
        return print_config(cfg);
    if (!strcmp(cmd, "worker-setup"))
        return caa_podnet_worker_setup(argv[1], cfg, argv[3], &e) < 0 ? fail(e) : 0;
    if (!strcmp(cmd, "worker-teardown"))
        return caa_podnet_worker_teardown(argv[1], cfg, &e) < 0 ? fail(e) : 0;

    caa_podnet_vm_opts opts = {0};
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--podns") && i + 1 < argc)
            opts.netns_path = argv[++i];
        else if (!strcmp(argv[i], "--no-notrack"))
            opts.no_notrack = true;
        else
            return usage();
    }
    if (!strcmp(cmd, "vm-setup"))
        return caa_podnet_vm_setup(cfg, &opts, &e) < 0 ? fail(e) : 0;
    if (!strcmp(cmd, "vm-teardown"))
        return caa_podnet_vm_teardown(cfg, &opts, &e) < 0 ? fail(e) : 0;
    return usage();
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--netns")) {
        /* The whole run happens in that namespace: no way back needed. */
        caa_error *e = NULL;
        int origin;
        if (caa_netns_enter_path(argv[2], &origin, &e) < 0)
            return fail(e);
        close(origin);
        argc -= 2;
        argv += 2;
    }
    if (argc < 2)
        return usage();
    argc--;
    argv++;
    if (!strcmp(argv[0], "inspect"))
        return cmd_inspect(argc, argv);
    if (!strcmp(argv[0], "alloc"))
        return cmd_alloc(argc, argv);
    return cmd_config(argc, argv);
}
