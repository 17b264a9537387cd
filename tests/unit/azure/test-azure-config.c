/* Azure options and their validation, SSH keys, the VM create body, id
 * parsing and the token-origin rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "azure-arm.h"
#include "azure-config.h"
#include "azure-provider.h"
#include "azure-sshkey.h"
#include "azure-vm-body.h"
#include "cleanup.h"
#include "strv.h"
#include "xalloc.h"

#define SUBNET                                                                                               \
    "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
#define IMAGE                                                                                                \
    "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/galleries/g/images/i/versions/"    \
    "1.0.0"

static void assert_contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("\"%s\" does not contain \"%s\"", hay ? hay : "(null)", needle);
}

/* Parses flags (after the required ones) into cfg. */
static int parse(az_config *cfg, const char *const *extra, caa_error **err)
{
    const char *base[] = {
        "-clientid", "c",      "-secret",        "s",    "-tenantid", "t",    "-subscriptionid", "sub-1",
        "-region",   "eastus", "-resourcegroup", "rg-1", "-subnetid", SUBNET, "-imageid",        IMAGE,
        NULL};
    _cleanup_strv_ char **argv = NULL;
    for (size_t i = 0; base[i]; i++)
        caa_strv_push(&argv, base[i]);
    for (size_t i = 0; extra && extra[i]; i++)
        caa_strv_push(&argv, extra[i]);
    *cfg = (az_config){0};
    caa_option_set set = {.title = "azure", .opts = az_options, .n_opts = AZ_N_OPTIONS, .target = cfg};
    return caa_options_parse(&set, 1, (int)caa_strv_len(argv), argv, err);
}

static void cfg_free(az_config *cfg)
{
    caa_option_set set = {.title = "azure", .opts = az_options, .n_opts = AZ_N_OPTIONS, .target = cfg};
    caa_options_free(&set, 1);
}

#define FLAGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_defaults(void **state)
{
    (void)state;
    az_config cfg;
    assert_int_equal(parse(&cfg, NULL, NULL), 0);
    assert_string_equal(cfg.instance_size, "Standard_DC2as_v5");
    assert_string_equal(cfg.ssh_username, "peerpod");
    assert_false(cfg.disable_cvm);
    assert_false(cfg.enable_secure_boot);
    assert_false(cfg.use_public_ip);
    assert_int_equal(cfg.root_volume_size, 0);
    az_settings s;
    assert_int_equal(az_config_validate(&cfg, &s, NULL), 0);
    assert_int_equal(s.auth, AZ_AUTH_CLIENT_SECRET);
    assert_int_equal(s.key_type, AZ_KEY_ED25519);
    assert_string_equal(s.authority, "https://login.microsoftonline.com");
    assert_string_equal(s.arm, "https://management.azure.com");
    assert_string_equal(s.scope, "https://management.azure.com/.default");
    assert_string_equal(s.resource, "https://management.azure.com/");
    assert_string_equal(
        s.vm_base_path,
        "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/virtualMachines");
    assert_int_equal(s.create_timeout_ms, 600000);
    assert_int_equal(s.poll_interval_ms, 2000);
    assert_int_equal(s.poll_interval_fast_ms, 250);
    assert_non_null(s.node_name);
    az_settings_done(&s);
    cfg_free(&cfg);
}

static void test_env_and_sovereign(void **state)
{
    (void)state;
    az_config cfg;
    assert_int_equal(parse(&cfg, NULL, NULL), 0);
    cfg_free(&cfg);
    /* Environment variables as upstream, then flags win. */
    setenv("DISABLECVM", "true", 1);
    setenv("TAGS", "a=1,b=2", 1);
    cfg = (az_config){0};
    caa_option_set set = {.title = "azure", .opts = az_options, .n_opts = AZ_N_OPTIONS, .target = &cfg};
    setenv("AZURE_SUBSCRIPTION_ID", "sub-env", 1);
    setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/", 1);
    setenv("AZURE_RESOURCE_MANAGER_ENDPOINT", "https://management.usgovcloudapi.net/", 1);
    char *argv[] = {"-region", "usgovvirginia", NULL};
    assert_int_equal(caa_options_parse(&set, 1, 2, argv, NULL), 0);
    assert_true(cfg.disable_cvm);
    assert_string_equal(cfg.tags[1], "b=2");
    assert_string_equal(cfg.subscription_id, "sub-env");
    unsetenv("DISABLECVM");
    unsetenv("TAGS");
    unsetenv("AZURE_SUBSCRIPTION_ID");
    cfg_free(&cfg);

    assert_int_equal(parse(&cfg, NULL, NULL), 0);
    az_settings s;
    assert_int_equal(az_config_validate(&cfg, &s, NULL), 0);
    assert_string_equal(s.arm, "https://management.usgovcloudapi.net");
    assert_string_equal(s.authority, "https://login.microsoftonline.us");
    assert_string_equal(s.scope, "https://management.usgovcloudapi.net/.default");
    az_settings_done(&s);
    cfg_free(&cfg);
    unsetenv("AZURE_AUTHORITY_HOST");
    unsetenv("AZURE_RESOURCE_MANAGER_ENDPOINT");

    assert_int_equal(
        parse(&cfg, FLAGS("-resource-manager-audience", "https://management.core.chinacloudapi.cn/"), NULL),
        0);
    assert_int_equal(az_config_validate(&cfg, &s, NULL), 0);
    assert_string_equal(s.scope, "https://management.core.chinacloudapi.cn/.default");
    az_settings_done(&s);
    cfg_free(&cfg);
}

static void test_auth_choice(void **state)
{
    (void)state;
    az_config cfg;
    az_settings s;
    assert_int_equal(parse(&cfg, FLAGS("-secret", "", "-federated-token-file", "/var/run/token"), NULL), 0);
    assert_int_equal(az_config_validate(&cfg, &s, NULL), 0);
    assert_int_equal(s.auth, AZ_AUTH_WORKLOAD_IDENTITY);
    assert_string_equal(s.token_file, "/var/run/token");
    az_settings_done(&s);
    cfg_free(&cfg);
    assert_int_equal(parse(&cfg, FLAGS("-secret", "", "-clientid", "", "-tenantid", ""), NULL), 0);
    assert_int_equal(az_config_validate(&cfg, &s, NULL), 0);
    assert_int_equal(s.auth, AZ_AUTH_MANAGED_IDENTITY);
    assert_string_equal(s.imds, "http://169.254.169.254");
    az_settings_done(&s);
    cfg_free(&cfg);
    /* Secret without tenant. */
    caa_error *e = NULL;
    assert_int_equal(parse(&cfg, FLAGS("-tenantid", ""), NULL), 0);
    assert_int_equal(az_config_validate(&cfg, &s, &e), -EINVAL);
    assert_contains(caa_error_msg(e), "-tenantid");
    caa_error_free(e);
    cfg_free(&cfg);
}

static void test_invalid(void **state)
{
    (void)state;
    struct {
        const char *const *flags;
        const char *text;
    } cases[] = {
        {FLAGS("-subscriptionid", ""), "-subscriptionid"},
        {FLAGS("-subscriptionid", "a/b"), "-subscriptionid"},
        {FLAGS("-region", "East US"), "-region"},
        {FLAGS("-resourcegroup", "rg/../x"), "-resourcegroup"},
        {FLAGS("-subnetid", "subnet-1"), "-subnetid"},
        {FLAGS("-subnetid",
               "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v"),
         "-subnetid"},
        {FLAGS("-subnetid", "/subscriptions/s/../providers/Microsoft.Network/virtualNetworks/v/subnets/s"),
         "-subnetid"},
        {FLAGS("-securitygroupid",
               "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v"),
         "-securitygroupid"},
        {FLAGS("-secondary-subnetid", "subnet-2"), "-secondary-subnetid"},
        /* upstream's ConfigVerifier: the second NIC needs another subnet */
        {FLAGS("-secondary-subnetid", SUBNET), "must differ"},
        {FLAGS("-imageid", ""), "-imageid"},
        {FLAGS("-instance-size", ""), "-instance-size"},
        {FLAGS("-ssh-username", "root"), "-ssh-username"},
        {FLAGS("-ssh-username", "Peer Pod"), "-ssh-username"},
        {FLAGS("-ssh-key-type", "dsa"), "-ssh-key-type"},
        {FLAGS("-tags", "caa-node=x"), "reserved"},
        {FLAGS("-tags", "a<b=1"), "refuses"},
        {FLAGS("-resource-manager-endpoint", "http://management.azure.com"), "-resource-manager-endpoint"},
        {FLAGS("-authority-host", "ftp://login"), "-authority-host"},
        {FLAGS("-resource-manager-endpoint", "https://m.example/?x=1"), "query"},
        {FLAGS("-secret", "", "-clientid", "", "-imds-endpoint", "http://10.0.0.1"), "-imds-endpoint"},
        {FLAGS("-request-timeout", "1ms"), "-request-timeout"},
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(cases); i++) {
        az_config cfg;
        caa_error *e = NULL;
        assert_int_equal(parse(&cfg, cases[i].flags, NULL), 0);
        az_settings s;
        if (az_config_validate(&cfg, &s, &e) >= 0)
            fail_msg("case %zu accepted", i);
        assert_contains(caa_error_msg(e), cases[i].text);
        caa_error_free(e);
        cfg_free(&cfg);
    }
    /* Bounds checked by the option table. */
    az_config cfg;
    caa_error *e = NULL;
    assert_true(parse(&cfg, FLAGS("-root-volume-size", "5000"), &e) < 0);
    caa_error_free(e);
    cfg_free(&cfg);
    e = NULL;
    assert_true(parse(&cfg, FLAGS("-tags", "novalue"), &e) < 0);
    caa_error_free(e);
    cfg_free(&cfg);
    /* Too many tags. */
    _cleanup_strv_ char **tags = NULL;
    for (int i = 0; i < 49; i++) {
        _cleanup_free_ char *t = xasprintf("k%d=v", i);
        caa_strv_push(&tags, t);
    }
    e = NULL;
    assert_int_equal(az_tags_validate(tags, &e), -EINVAL);
    caa_error_free(e);
    char *bad_utf8[] = {"k=\xc3\x28", NULL};
    e = NULL;
    assert_int_equal(az_tags_validate(bad_utf8, &e), -EINVAL);
    caa_error_free(e);
}

static void test_ids(void **state)
{
    (void)state;
    _cleanup_free_ char *n = az_vm_name_of_id(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/podvm-a-1");
    assert_string_equal(n, "podvm-a-1");
    _cleanup_free_ char *n2 =
        az_vm_name_of_id("/subscriptions/s/resourcegroups/RG/providers/microsoft.compute/virtualmachines/vm");
    assert_string_equal(n2, "vm");
    static const char *const bad[] = {
        "",
        "podvm-a",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a/b",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a?x",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/..",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/a",
        "/subscriptions//resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a%2f",
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(bad); i++) {
        char *x = az_vm_name_of_id(bad[i]);
        if (x)
            fail_msg("accepted %s", bad[i]);
    }
    assert_true(
        az_same_origin("https://management.azure.com/subscriptions/x?a=b", "https://management.azure.com"));
    assert_true(az_same_origin("https://MANAGEMENT.azure.com/x", "https://management.azure.com"));
    assert_false(az_same_origin("https://management.azure.com.evil/x", "https://management.azure.com"));
    assert_false(az_same_origin("https://management.azure.com:8443/x", "https://management.azure.com"));
    assert_false(az_same_origin("http://management.azure.com/x", "https://management.azure.com"));
    assert_false(az_same_origin("https://user@management.azure.com/x", "https://management.azure.com"));
    assert_false(az_same_origin("evil", "https://management.azure.com"));
    assert_true(az_same_origin("http://127.0.0.1:8080/op", "http://127.0.0.1:8080"));
}

/* A FIFO as the SSH public key file: refused at once, not a hang. */
static void test_ssh_key_file_fifo(void **state)
{
    (void)state;
    char dir[] = "/tmp/caa-az-fifo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    _cleanup_free_ char *fifo = xasprintf("%s/key.pub", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char *line = NULL;
    caa_error *e = NULL;
    alarm(10);
    assert_true(az_ssh_pubkey_read(fifo, &line, &e) < 0);
    alarm(0);
    assert_null(line);
    assert_contains(caa_error_msg(e), "not a regular file");
    caa_error_free(e);
    unlink(fifo);
    rmdir(dir);
}

static void test_ssh_keys(void **state)
{
    (void)state;
    char *line = NULL;
    assert_int_equal(az_ssh_keygen(AZ_KEY_ED25519, &line, NULL), 0);
    assert_true(strncmp(line, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37) == 0);
    char *checked = NULL;
    assert_int_equal(az_ssh_pubkey_check(line, &checked, NULL), 0);
    assert_string_equal(checked, line);
    free(checked);
    /* Two keys differ. */
    char *line2 = NULL;
    assert_int_equal(az_ssh_keygen(AZ_KEY_ED25519, &line2, NULL), 0);
    assert_string_not_equal(line, line2);
    free(line2);

    /* A key file: comments and blank lines first, mode 0600. */
    char path[] = "/tmp/caa-az-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    _cleanup_free_ char *text = xasprintf("# my key\n\n  %s  \n", line);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(az_ssh_pubkey_read(path, &checked, NULL), 0);
    assert_string_equal(checked, line);
    free(checked);
    assert_int_equal(az_ssh_key_file_mode_check(path, NULL), 0);
    assert_int_equal(chmod(path, 0644), 0);
    caa_error *e = NULL;
    assert_int_equal(az_ssh_key_file_mode_check(path, &e), -EPERM);
    assert_contains(caa_error_msg(e), "0600");
    caa_error_free(e);
    unlink(path);
    e = NULL;
    assert_true(az_ssh_pubkey_read(path, &checked, &e) < 0);
    caa_error_free(e);

    static const char *const bad[] = {
        "",
        "ssh-rsa",
        "ssh-dss AAAAB3NzaC1kc3M=",
        "command=\"x\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQ==",     /* blob says ssh-rsa */
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0", /* truncated */
        "ssh-ed25519 !!!!",
        /* RSA with a 1024-bit modulus. */
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAAA"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    };
    for (size_t i = 0; i < CAA_ARRAY_SIZE(bad); i++) {
        e = NULL;
        checked = NULL;
        if (az_ssh_pubkey_check(bad[i], &checked, &e) != -EINVAL)
            fail_msg("accepted %s", bad[i]);
        assert_null(checked);
        caa_error_free(e);
    }
    free(line);
}

static json_t *path_get(json_t *j, const char *path)
{
    _cleanup_free_ char *copy = xstrdup(path);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save)) {
        if (*tok >= '0' && *tok <= '9')
            j = json_array_get(j, (size_t)strtoul(tok, NULL, 10));
        else
            j = json_object_get(j, tok);
    }
    return j;
}

static const char *str_at(json_t *j, const char *path)
{
    return json_string_value(path_get(j, path));
}

static void test_vm_body(void **state)
{
    (void)state;
    char *tags[] = {"team=x", NULL};
    az_vm_params p = {
        .name = "podvm-a-12345678",
        .location = "eastus",
        .size = "Standard_DC2as_v5",
        .image_id = IMAGE,
        .admin_user = "peerpod",
        .ssh_public_key = "ssh-ed25519 AAAA",
        .subnet_id = SUBNET,
        .cvm = true,
        .tags = tags,
        .node = "node-a",
        .sandbox_id = "12345678abcd",
        .user_data = "#cloud-config\n",
        .user_data_len = 14,
    };
    json_t *b = az_vm_body(&p);
    assert_string_equal(str_at(b, "location"), "eastus");
    assert_string_equal(str_at(b, "tags.team"), "x");
    assert_string_equal(str_at(b, "tags.caa-node"), "node-a");
    assert_string_equal(str_at(b, "tags.caa-sandbox-id"), "12345678abcd");
    assert_string_equal(str_at(b, "properties.hardwareProfile.vmSize"), "Standard_DC2as_v5");
    assert_string_equal(str_at(b, "properties.storageProfile.imageReference.id"), IMAGE);
    assert_string_equal(str_at(b, "properties.storageProfile.osDisk.name"), "podvm-a-12345678-disk");
    assert_string_equal(str_at(b, "properties.storageProfile.osDisk.createOption"), "FromImage");
    assert_string_equal(str_at(b, "properties.storageProfile.osDisk.caching"), "ReadWrite");
    assert_string_equal(str_at(b, "properties.storageProfile.osDisk.deleteOption"), "Delete");
    assert_null(path_get(b, "properties.storageProfile.osDisk.diskSizeGB"));
    assert_string_equal(str_at(b, "properties.storageProfile.osDisk.managedDisk.storageAccountType"),
                        "Premium_LRS");
    assert_string_equal(
        str_at(b, "properties.storageProfile.osDisk.managedDisk.securityProfile.securityEncryptionType"),
        "VMGuestStateOnly");
    assert_string_equal(str_at(b, "properties.osProfile.adminUsername"), "peerpod");
    assert_string_equal(str_at(b, "properties.osProfile.computerName"), "podvm-a-12345678");
    assert_true(
        json_is_true(path_get(b, "properties.osProfile.linuxConfiguration.disablePasswordAuthentication")));
    assert_string_equal(str_at(b, "properties.osProfile.linuxConfiguration.ssh.publicKeys.0.path"),
                        "/home/peerpod/.ssh/authorized_keys");
    assert_string_equal(str_at(b, "properties.osProfile.linuxConfiguration.ssh.publicKeys.0.keyData"),
                        "ssh-ed25519 AAAA");
    assert_string_equal(str_at(b, "properties.networkProfile.networkApiVersion"), "2020-11-01");
    json_t *nic = path_get(b, "properties.networkProfile.networkInterfaceConfigurations.0");
    assert_string_equal(str_at(nic, "name"), "podvm-a-12345678-net");
    assert_true(json_is_true(path_get(nic, "properties.primary")));
    assert_string_equal(str_at(nic, "properties.deleteOption"), "Delete");
    assert_null(path_get(nic, "properties.networkSecurityGroup"));
    assert_string_equal(str_at(nic, "properties.ipConfigurations.0.name"), "ip-config");
    assert_string_equal(str_at(nic, "properties.ipConfigurations.0.properties.subnet.id"), SUBNET);
    assert_null(path_get(nic, "properties.ipConfigurations.0.properties.publicIPAddressConfiguration"));
    assert_string_equal(str_at(b, "properties.securityProfile.securityType"), "ConfidentialVM");
    assert_true(json_is_false(path_get(b, "properties.securityProfile.uefiSettings.secureBootEnabled")));
    assert_true(json_is_true(path_get(b, "properties.securityProfile.uefiSettings.vTpmEnabled")));
    assert_true(json_is_true(path_get(b, "properties.diagnosticsProfile.bootDiagnostics.enabled")));
    assert_string_equal(str_at(b, "properties.userData"), "I2Nsb3VkLWNvbmZpZwo=");
    json_decref(b);

    /* CVM off, secure boot, public IP, NSG, community gallery, disk size. */
    p.cvm = false;
    p.secure_boot = true;
    p.public_ip = true;
    p.nsg_id = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/networkSecurityGroups/n";
    p.image_id = "/CommunityGalleries/cococommunity-42d8/Images/peerpod-podvm/Versions/0.13.0";
    p.disk_size_gb = 30;
    b = az_vm_body(&p);
    assert_null(path_get(b, "properties.securityProfile"));
    assert_null(path_get(b, "properties.storageProfile.osDisk.managedDisk.securityProfile"));
    assert_null(path_get(b, "properties.storageProfile.imageReference.id"));
    assert_string_equal(str_at(b, "properties.storageProfile.imageReference.communityGalleryImageId"),
                        p.image_id);
    assert_int_equal(json_integer_value(path_get(b, "properties.storageProfile.osDisk.diskSizeGB")), 30);
    nic = path_get(b, "properties.networkProfile.networkInterfaceConfigurations.0");
    assert_string_equal(str_at(nic, "properties.networkSecurityGroup.id"), p.nsg_id);
    assert_string_equal(
        str_at(nic, "properties.ipConfigurations.0.properties.publicIPAddressConfiguration.name"),
        "podvm-a-12345678-net");
    assert_string_equal(
        str_at(
            nic,
            "properties.ipConfigurations.0.properties.publicIPAddressConfiguration.properties.deleteOption"),
        "Delete");
    json_decref(b);

    p.cvm = true;
    b = az_vm_body(&p);
    assert_true(json_is_true(path_get(b, "properties.securityProfile.uefiSettings.secureBootEnabled")));
    json_decref(b);

    /* Multi-NIC (upstream's buildNetworkConfigs at 79e1fb63608e): the primary
     * "-net" NIC keeps no public IP, the "-ext" one on the secondary subnet
     * gets it; both carry the NSG. */
    p.secondary_subnet_id = SUBNET "2";
    b = az_vm_body(&p);
    nic = path_get(b, "properties.networkProfile.networkInterfaceConfigurations.0");
    assert_string_equal(str_at(nic, "name"), "podvm-a-12345678-net");
    assert_true(json_is_true(path_get(nic, "properties.primary")));
    assert_true(json_is_true(path_get(nic, "properties.ipConfigurations.0.properties.primary")));
    assert_string_equal(str_at(nic, "properties.ipConfigurations.0.properties.subnet.id"), SUBNET);
    assert_null(path_get(nic, "properties.ipConfigurations.0.properties.publicIPAddressConfiguration"));
    json_t *ext = path_get(b, "properties.networkProfile.networkInterfaceConfigurations.1");
    assert_string_equal(str_at(ext, "name"), "podvm-a-12345678-ext");
    assert_true(json_is_false(path_get(ext, "properties.primary")));
    assert_true(json_is_false(path_get(ext, "properties.ipConfigurations.0.properties.primary")));
    assert_string_equal(str_at(ext, "properties.deleteOption"), "Delete");
    assert_string_equal(str_at(ext, "properties.networkSecurityGroup.id"), p.nsg_id);
    assert_string_equal(str_at(ext, "properties.ipConfigurations.0.properties.subnet.id"), SUBNET "2");
    assert_string_equal(
        str_at(ext, "properties.ipConfigurations.0.properties.publicIPAddressConfiguration.name"),
        "podvm-a-12345678-ext");
    assert_null(path_get(b, "properties.networkProfile.networkInterfaceConfigurations.2"));
    json_decref(b);

    _cleanup_free_ char *e0 = az_base64("", 0);
    assert_string_equal(e0, "");
    _cleanup_free_ char *e1 = az_base64("ab", 2);
    assert_string_equal(e1, "YWI=");
    assert_int_equal(az_base64_len(49152), 65536);
    assert_int_equal(az_base64_len(49153), 65540);
}

int main(void)
{
    static const char *const env[] = {"AZURE_CLIENT_ID",
                                      "AZURE_CLIENT_SECRET",
                                      "AZURE_TENANT_ID",
                                      "AZURE_FEDERATED_TOKEN_FILE",
                                      "TAGS",
                                      "NODE_NAME",
                                      "AZURE_AUTHORITY_HOST",
                                      "AZURE_RESOURCE_MANAGER_ENDPOINT",
                                      "DISABLECVM",
                                      "AZURE_SUBSCRIPTION_ID"};
    for (size_t i = 0; i < CAA_ARRAY_SIZE(env); i++)
        unsetenv(env[i]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_and_sovereign),
        cmocka_unit_test(test_auth_choice),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_ssh_keys),
        cmocka_unit_test(test_ssh_key_file_fifo),
        cmocka_unit_test(test_vm_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
