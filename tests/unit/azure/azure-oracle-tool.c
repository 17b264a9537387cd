/* Our side of the SDK oracle test (test_azure_oracle.py):
 *   azure-oracle-tool bodies
 *       prints [{"name", "body"}]: the VM PUT body for each option variant;
 *   azure-oracle-tool create <fake-url> <n> [provider flags...]
 *       creates VM number n against the fake endpoint and prints
 *       {"status", "error", "id", "ips"}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "az-fake.h"
#include "azure-vm-body.h"
#include "cleanup.h"
#include "xalloc.h"

#define SUBNET                                                                                               \
    "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
#define NSG "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/networkSecurityGroups/nsg"
#define IMAGE                                                                                                \
    "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/galleries/g/images/i/versions/"    \
    "1.0.0"
#define COMMUNITY                                                                                            \
    "/CommunityGalleries/cocopodvm-d0e4f35f-5530-4b9c-8596-112487cdea85/Images/podvm/Versions/0.13.0"

static int bodies(void)
{
    char *tags[] = {"owner=team-a", "env=ci", NULL};
    static const char ud[] =
        "#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: |\n      {}\n";
    az_vm_params base = {
        .name = "podvm-nginx-12345678",
        .location = "eastus",
        .size = "Standard_DC2as_v5",
        .image_id = IMAGE,
        .admin_user = "peerpod",
        .ssh_public_key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl caa",
        .subnet_id = SUBNET,
        .cvm = true,
        .tags = tags,
        .node = "worker-1",
        .sandbox_id = "12345678aaaabbbbccccddddeeeeffff00001111222233334444555566667777",
        .user_data = ud,
        .user_data_len = sizeof(ud) - 1,
    };
    struct {
        const char *name;
        az_vm_params p;
    } cases[10];
    size_t n = 0;
    cases[n].name = "cvm";
    cases[n++].p = base;
    cases[n].name = "cvm + secure boot";
    cases[n].p = base;
    cases[n++].p.secure_boot = true;
    cases[n].name = "cvm off";
    cases[n].p = base;
    cases[n++].p.cvm = false;
    cases[n].name = "public ip + nsg";
    cases[n].p = base;
    cases[n].p.public_ip = true;
    cases[n++].p.nsg_id = NSG;
    cases[n].name = "community gallery image";
    cases[n].p = base;
    cases[n++].p.image_id = COMMUNITY;
    cases[n].name = "root volume size";
    cases[n].p = base;
    cases[n++].p.disk_size_gb = 64;
    cases[n].name = "everything, cvm off";
    cases[n].p = base;
    cases[n].p.cvm = false;
    cases[n].p.secure_boot = true;
    cases[n].p.public_ip = true;
    cases[n].p.nsg_id = NSG;
    cases[n].p.image_id = COMMUNITY;
    cases[n++].p.disk_size_gb = 30;
    cases[n].name = "multi-NIC (external-net-via-pod-vm)";
    cases[n].p = base;
    cases[n++].p.secondary_subnet_id = SUBNET "-ext";
    cases[n].name = "multi-NIC + public ip + nsg";
    cases[n].p = base;
    cases[n].p.secondary_subnet_id = SUBNET "-ext";
    cases[n].p.public_ip = true;
    cases[n++].p.nsg_id = NSG;
    cases[n].name = "no tags, empty user data";
    cases[n].p = base;
    cases[n].p.tags = NULL;
    cases[n].p.user_data = NULL;
    cases[n++].p.user_data_len = 0;

    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_object();
        json_object_set_new(c, "name", json_string(cases[i].name));
        json_object_set_new(c, "body", az_vm_body(&cases[i].p));
        json_array_append_new(out, c);
    }
    json_dumpf(out, stdout, JSON_COMPACT);
    json_decref(out);
    return 0;
}

static int create(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: azure-oracle-tool create <fake-url> <n> [flags...]\n");
        return 2;
    }
    az_fake f = {.stdin_fd = -1};
    snprintf(f.url, sizeof(f.url), "%s", argv[2]);
    int n = atoi(argv[3]);
    uv_loop_t loop;
    uv_loop_init(&loop);
    caa_error *err = NULL;
    const char **extra = xcalloc((size_t)argc, sizeof(char *));
    for (int i = 4; i < argc; i++)
        extra[i - 4] = argv[i];
    caa_provider *p = az_test_provider(&loop, &f, extra, &err);
    free(extra);
    json_t *out = json_object();
    if (!p) {
        json_object_set_new(out, "status", json_integer(-1));
        json_object_set_new(out, "error", json_string(caa_error_msg(err)));
    } else {
        caa_instance_spec spec = az_test_spec(n);
        az_result r;
        az_test_create(&loop, p, &spec, &r);
        json_object_set_new(out, "status", json_integer(r.status));
        if (r.err)
            json_object_set_new(out, "error", json_string(caa_error_msg(r.err)));
        if (r.inst) {
            json_object_set_new(out, "id", json_string(r.inst->id));
            json_t *ips = json_array();
            for (size_t i = 0; r.inst->ips && r.inst->ips[i]; i++)
                json_array_append_new(ips, json_string(r.inst->ips[i]));
            json_object_set_new(out, "ips", ips);
        }
        az_result_done(&r);
        az_test_provider_free(&loop, p);
    }
    caa_error_free(err);
    json_dumpf(out, stdout, JSON_COMPACT);
    json_decref(out);
    uv_loop_close(&loop);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "bodies") == 0)
        return bodies();
    if (argc >= 2 && strcmp(argv[1], "create") == 0)
        return create(argc, argv);
    fprintf(stderr, "usage: azure-oracle-tool bodies | create <fake-url> <n> [flags...]\n");
    return 2;
}
