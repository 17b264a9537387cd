/* Builds the VM create body (see azure-vm-body.h). */
#include "azure-vm-body.h"

#include <string.h>

#include <openssl/evp.h>

#include "azure-config.h"
#include "cleanup.h"
#include "xalloc.h"

size_t az_base64_len(size_t len)
{
    return 4 * ((len + 2) / 3);
}

char *az_base64(const void *data, size_t len)
{
    char *out = xmalloc(az_base64_len(len) + 1);
    /* EVP_EncodeBlock takes an int length: encode in chunks. */
    size_t done = 0, o = 0;
    const size_t chunk = 3u << 20;
    while (done < len) {
        size_t n = len - done > chunk ? chunk : len - done;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, (const unsigned char *)data + done, (int)n);
        done += n;
    }
    out[o] = '\0';
    return out;
}

static json_t *obj1(const char *k, json_t *v)
{
    json_t *o = json_object();
    json_object_set_new(o, k, v);
    return o;
}

static json_t *tags_object(const az_vm_params *p)
{
    json_t *t = json_object();
    for (size_t i = 0; p->tags && p->tags[i]; i++) {
        const char *eq = strchr(p->tags[i], '=');
        if (!eq)
            continue;
        _cleanup_free_ char *k = xstrndup(p->tags[i], (size_t)(eq - p->tags[i]));
        json_object_set_new(t, k, json_string(eq + 1));
    }
    json_object_set_new(t, AZ_TAG_NODE, json_string(p->node ? p->node : ""));
    json_object_set_new(t, AZ_TAG_SANDBOX, json_string(p->sandbox_id ? p->sandbox_id : ""));
    return t;
}

static json_t *storage_profile(const az_vm_params *p)
{
    json_t *image = json_object();
    if (strncmp(p->image_id, AZ_COMMUNITY_GALLERY_PREFIX, strlen(AZ_COMMUNITY_GALLERY_PREFIX)) == 0)
        json_object_set_new(image, "communityGalleryImageId", json_string(p->image_id));
    else
        json_object_set_new(image, "id", json_string(p->image_id));

    json_t *managed = json_object();
    json_object_set_new(managed, "storageAccountType", json_string("Premium_LRS"));
    if (p->cvm)
        json_object_set_new(managed, "securityProfile",
                            obj1("securityEncryptionType", json_string("VMGuestStateOnly")));

    _cleanup_free_ char *disk_name = xasprintf("%s-disk", p->name);
    json_t *os = json_object();
    json_object_set_new(os, "name", json_string(disk_name));
    json_object_set_new(os, "createOption", json_string("FromImage"));
    json_object_set_new(os, "caching", json_string("ReadWrite"));
    json_object_set_new(os, "deleteOption", json_string("Delete"));
    if (p->disk_size_gb > 0)
        json_object_set_new(os, "diskSizeGB", json_integer(p->disk_size_gb));
    json_object_set_new(os, "managedDisk", managed);

    json_t *sp = json_object();
    json_object_set_new(sp, "imageReference", image);
    json_object_set_new(sp, "osDisk", os);
    return sp;
}

static json_t *os_profile(const az_vm_params *p)
{
    _cleanup_free_ char *path = xasprintf("/home/%s/.ssh/authorized_keys", p->admin_user);
    json_t *key = json_object();
    json_object_set_new(key, "path", json_string(path));
    json_object_set_new(key, "keyData", json_string(p->ssh_public_key));
    json_t *keys = json_array();
    json_array_append_new(keys, key);

    json_t *linux_cfg = json_object();
    json_object_set_new(linux_cfg, "disablePasswordAuthentication", json_true());
    json_object_set_new(linux_cfg, "ssh", obj1("publicKeys", keys));

    json_t *os = json_object();
    json_object_set_new(os, "adminUsername", json_string(p->admin_user));
    json_object_set_new(os, "computerName", json_string(p->name));
    json_object_set_new(os, "linuxConfiguration", linux_cfg);
    return os;
}

/* One entry of networkInterfaceConfigurations, as upstream's buildNetworkConfig. */
static json_t *nic_config(const az_vm_params *p, const char *nic_name, const char *subnet_id, bool primary,
                          bool public_ip)
{
    json_t *ipprops = json_object();
    json_object_set_new(ipprops, "subnet", obj1("id", json_string(subnet_id)));
    json_object_set_new(ipprops, "primary", json_boolean(primary));
    if (public_ip) {
        json_t *pip = json_object();
        json_object_set_new(pip, "name", json_string(nic_name));
        json_object_set_new(pip, "properties", obj1("deleteOption", json_string("Delete")));
        json_object_set_new(ipprops, "publicIPAddressConfiguration", pip);
    }
    json_t *ipcfg = json_object();
    json_object_set_new(ipcfg, "name", json_string("ip-config"));
    json_object_set_new(ipcfg, "properties", ipprops);
    json_t *ipcfgs = json_array();
    json_array_append_new(ipcfgs, ipcfg);

    json_t *nicprops = json_object();
    json_object_set_new(nicprops, "primary", json_boolean(primary));
    json_object_set_new(nicprops, "deleteOption", json_string("Delete"));
    if (p->nsg_id && *p->nsg_id)
        json_object_set_new(nicprops, "networkSecurityGroup", obj1("id", json_string(p->nsg_id)));
    json_object_set_new(nicprops, "ipConfigurations", ipcfgs);

    json_t *nic = json_object();
    json_object_set_new(nic, "name", json_string(nic_name));
    json_object_set_new(nic, "properties", nicprops);
    return nic;
}

/* Azure cannot add a NIC to a running VM: in multi-NIC mode both are declared
 * here. The primary one (the tunnel to the worker) never gets the public IP
 * then; the secondary one carries the pod's external traffic. */
static json_t *network_profile(const az_vm_params *p)
{
    bool multi_nic = p->secondary_subnet_id != NULL;
    _cleanup_free_ char *net_name = xasprintf("%s-net", p->name);
    json_t *nics = json_array();
    json_array_append_new(nics, nic_config(p, net_name, p->subnet_id, true, p->public_ip && !multi_nic));
    if (multi_nic) {
        _cleanup_free_ char *ext_name = xasprintf("%s-ext", p->name);
        json_array_append_new(nics, nic_config(p, ext_name, p->secondary_subnet_id, false, p->public_ip));
    }

    json_t *np = json_object();
    json_object_set_new(np, "networkApiVersion", json_string("2020-11-01"));
    json_object_set_new(np, "networkInterfaceConfigurations", nics);
    return np;
}

json_t *az_vm_body(const az_vm_params *p)
{
    json_t *props = json_object();
    json_object_set_new(props, "hardwareProfile", obj1("vmSize", json_string(p->size)));
    json_object_set_new(props, "storageProfile", storage_profile(p));
    json_object_set_new(props, "osProfile", os_profile(p));
    json_object_set_new(props, "networkProfile", network_profile(p));
    if (p->cvm) {
        json_t *uefi = json_object();
        json_object_set_new(uefi, "secureBootEnabled", json_boolean(p->secure_boot));
        json_object_set_new(uefi, "vTpmEnabled", json_true());
        json_t *sec = json_object();
        json_object_set_new(sec, "securityType", json_string("ConfidentialVM"));
        json_object_set_new(sec, "uefiSettings", uefi);
        json_object_set_new(props, "securityProfile", sec);
    }
    json_object_set_new(props, "diagnosticsProfile", obj1("bootDiagnostics", obj1("enabled", json_true())));
    _cleanup_free_ char *ud =
        az_base64(p->user_data ? p->user_data : "", p->user_data ? p->user_data_len : 0);
    json_object_set_new(props, "userData", json_string(ud));

    json_t *body = json_object();
    json_object_set_new(body, "location", json_string(p->location));
    json_object_set_new(body, "tags", tags_object(p));
    json_object_set_new(body, "properties", props);
    return body;
}
