/* libvirt provider: options, validation, host resolution rules and the
 * readers of libvirt's XML (including bad input). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host.h"
#include "libvirt-config.h"
#include "libvirt-parse.h"
#include "options.h"

static caa_option_set set_for(lv_config *cfg)
{
    return (caa_option_set){.title = "libvirt", .opts = lv_options, .n_opts = LV_N_OPTIONS, .target = cfg};
}

static int parse(lv_config *cfg, int argc, char **argv, caa_error **err)
{
    memset(cfg, 0, sizeof(*cfg));
    caa_option_set s = set_for(cfg);
    return caa_options_parse(&s, 1, argc, argv, err);
}

static void done(lv_config *cfg)
{
    caa_option_set s = set_for(cfg);
    caa_options_free(&s, 1);
}

static void clear_env(void)
{
    const char *vars[] = {"LIBVIRT_URI",
                          "LIBVIRT_POOL",
                          "LIBVIRT_NET",
                          "LIBVIRT_VOL_NAME",
                          "LIBVIRT_LAUNCH_SECURITY",
                          "LIBVIRT_EFI_FIRMWARE",
                          "LIBVIRT_CPU",
                          "LIBVIRT_MEMORY",
                          "LIBVIRT_CPUSET",
                          "LIBVIRT_ROOT_DISK_SIZE",
                          "DISABLECVM",
                          "LIBVIRT_DOMAIN_TYPE",
                          "LIBVIRT_IP_WAIT"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

static void test_defaults_as_upstream(void **state)
{
    (void)state;
    clear_env();
    lv_config cfg;
    assert_int_equal(parse(&cfg, 0, NULL, NULL), 0);
    assert_string_equal(cfg.uri, "qemu+ssh://root@192.168.122.1/system?no_verify=1");
    assert_string_equal(cfg.pool_name, "default");
    assert_string_equal(cfg.network_name, "default");
    assert_string_equal(cfg.vol_name, "podvm-base.qcow2");
    assert_string_equal(cfg.launch_security, "");
    assert_string_equal(cfg.firmware, "/usr/share/OVMF/OVMF_CODE_4M.fd");
    assert_int_equal(cfg.cpu, 2);
    assert_int_equal(cfg.memory, 8192);
    assert_string_equal(cfg.cpuset, "");
    assert_int_equal(cfg.root_disk_size, 10);
    assert_string_equal(cfg.data_dir, "/var/lib/libvirt/images");
    assert_true(cfg.disable_cvm);
    assert_string_equal(cfg.domain_type, "auto");
    assert_int_equal(cfg.ip_wait, INT64_C(60) * 1000000000);
    lv_settings s;
    assert_int_equal(lv_config_validate(&cfg, &s, NULL), 0);
    assert_int_equal(s.launch, LV_LAUNCH_NONE);
    assert_int_equal(s.domain_type, LV_DOMTYPE_AUTO);
    assert_true(s.firmware_is_default);
    done(&cfg);
}

static void test_env_and_flags(void **state)
{
    (void)state;
    clear_env();
    setenv("LIBVIRT_URI", "qemu:///system", 1);
    setenv("LIBVIRT_POOL", "pp", 1);
    setenv("LIBVIRT_CPU", "4", 1);
    setenv("DISABLECVM", "false", 1);
    setenv("LIBVIRT_LAUNCH_SECURITY", "tdx", 1);
    char *argv[] = {"-memory=2048", "--pool-name", "flagpool",     "-cpuset", "0-3,8",
                    "-ip-wait",     "90s",         "-domain-type", "kvm"};
    lv_config cfg;
    assert_int_equal(parse(&cfg, 9, argv, NULL), 0);
    assert_string_equal(cfg.uri, "qemu:///system");
    assert_string_equal(cfg.pool_name, "flagpool"); /* flag beats env */
    assert_int_equal(cfg.cpu, 4);
    assert_int_equal(cfg.memory, 2048);
    assert_false(cfg.disable_cvm);
    assert_int_equal(cfg.ip_wait, INT64_C(90) * 1000000000);
    lv_settings s;
    assert_int_equal(lv_config_validate(&cfg, &s, NULL), 0);
    assert_int_equal(s.launch, LV_LAUNCH_TDX);
    assert_int_equal(s.domain_type, LV_DOMTYPE_KVM);
    done(&cfg);
    clear_env();
}

static void expect_invalid(char **argv, int argc, const char *needle)
{
    clear_env();
    lv_config cfg;
    caa_error *err = NULL;
    int r = parse(&cfg, argc, argv, &err);
    if (r == 0) {
        lv_settings s;
        r = lv_config_validate(&cfg, &s, &err);
    }
    if (r != -EINVAL && r != -ERANGE)
        fail_msg("%s: %d", needle, r);
    assert_non_null(err);
    if (!strstr(caa_error_msg(err), needle))
        fail_msg("error \"%s\" does not mention \"%s\"", caa_error_msg(err), needle);
    caa_error_free(err);
    done(&cfg);
}

static void test_invalid_values(void **state)
{
    (void)state;
    expect_invalid((char *[]){"-cpu", "0"}, 2, "cpu");
    expect_invalid((char *[]){"-memory", "-5"}, 2, "memory");
    expect_invalid((char *[]){"-cpuset", "0-"}, 2, "cpuset");
    expect_invalid((char *[]){"-launch-security", "sev"}, 2, "launch-security");
    expect_invalid((char *[]){"-launch-security", "sev-snp"}, 2, "disable-cvm");
    expect_invalid((char *[]){"-disable-cvm=false", "-launch-security", "tdx", "-domain-type", "qemu"}, 5,
                   "KVM");
    expect_invalid((char *[]){"-domain-type", "xen"}, 2, "domain-type");
    expect_invalid((char *[]){"-uri", ""}, 2, "uri");
    expect_invalid((char *[]){"-pool-name="}, 1, "pool-name");
    expect_invalid((char *[]){"-vol-name="}, 1, "vol-name");
    expect_invalid((char *[]){"-ip-wait", "0s"}, 2, "ip-wait");
    expect_invalid((char *[]){"-root-disk-size", "-1"}, 2, "root-disk-size");
}

static void test_cpuset(void **state)
{
    (void)state;
    const char *good[] = {"0", "0-3", "0-3,8", "0-7,^4", "1,2,3", "12-12", "1048575"};
    const char *bad[] = {"",
                         ",",
                         "0,",
                         ",0",
                         "a",
                         "0-",
                         "-1",
                         "3-1",
                         "^4",
                         "^4,^5",
                         "0 - 3",
                         "0;1",
                         "1048576",
                         "01",
                         "0-3,,4",
                         "0x1",
                         "+1",
                         "0-^3",
                         "99999999999999999999"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!lv_cpuset_valid(good[i]))
            fail_msg("\"%s\" should be valid", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (lv_cpuset_valid(bad[i]))
            fail_msg("\"%s\" should be invalid", bad[i]);
    assert_false(lv_cpuset_valid(NULL));
}

static void test_uri_locality(void **state)
{
    (void)state;
    assert_true(lv_uri_is_local("qemu:///system"));
    assert_true(lv_uri_is_local("qemu+unix:///system?socket=/run/x.sock"));
    assert_true(lv_uri_is_local("test:///default"));
    assert_false(lv_uri_is_local("qemu+ssh://root@192.168.122.1/system?no_verify=1"));
    assert_false(lv_uri_is_local("qemu+tcp://localhost/system"));
    assert_false(lv_uri_is_local("qemu://host/system"));
    assert_false(lv_uri_is_local("qemu+ssh:///system"));
    assert_false(lv_uri_is_local("garbage"));
    assert_false(lv_uri_is_local(NULL));
}

/* ---- host resolution ---- */

static const char caps_x86_kvm[] =
    "<capabilities><host><cpu><arch>x86_64</arch></cpu></host>"
    "<guest><os_type>hvm</os_type><arch name='x86_64'><machine canonical='pc-q35-7.2'>q35</machine>"
    "<domain type='qemu'/><domain type='kvm'/></arch></guest>"
    "<guest><os_type>hvm</os_type><arch name='i686'><domain type='qemu'/></arch></guest></capabilities>";
static const char caps_x86_tcg[] =
    "<capabilities><host><cpu><arch>x86_64</arch></cpu></host>"
    "<guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/></arch>"
    "</guest></capabilities>";
static const char caps_s390[] =
    "<capabilities><host><cpu><arch>s390x</arch></cpu></host>"
    "<guest><os_type>hvm</os_type><arch name='s390x'><machine canonical='s390-ccw-virtio-7.2'>s390-ccw-virtio"
    "</machine><domain type='qemu'/><domain type='kvm'/></arch></guest></capabilities>";
static const char caps_arm[] =
    "<capabilities><host><cpu><arch>aarch64</arch></cpu></host>"
    "<guest><os_type>hvm</os_type><arch name='aarch64'><domain type='kvm'><machine canonical='virt-7.2'>virt"
    "</machine></domain></arch></guest></capabilities>";
static const char cpuinfo_vmx[] = "processor\t: 0\nflags\t\t: fpu vme de pse vmx ssse3\nbugs\t\t:\n";
static const char cpuinfo_pvm[] =
    "processor\t: 0\nflags\t\t: fpu vme de pse ssse3 hypervisor\nbugs\t\t: svm_x\n";

typedef struct host_case {
    lv_config cfg;
    lv_settings set;
    lv_caps caps;
    lv_host host;
} host_case;

static int resolve(host_case *hc, const char *caps_xml, const lv_domcaps *dc, const char *cpuinfo,
                   const char *launch, bool disable_cvm, const char *domain_type, const char *firmware,
                   caa_error **err)
{
    memset(hc, 0, sizeof(*hc));
    hc->cfg = (lv_config){.uri = "qemu:///system",
                          .pool_name = "p",
                          .network_name = "n",
                          .vol_name = "v",
                          .launch_security = (char *)launch,
                          .firmware = (char *)firmware,
                          .cpu = 1,
                          .memory = 1,
                          .disable_cvm = disable_cvm,
                          .domain_type = (char *)domain_type,
                          .ip_wait = 1};
    int r = lv_config_validate(&hc->cfg, &hc->set, err);
    if (r < 0)
        return r;
    assert_int_equal(lv_parse_capabilities(caps_xml, strlen(caps_xml), &hc->caps, NULL), 0);
    r = lv_host_resolve(&hc->cfg, &hc->set, &hc->caps, dc, cpuinfo, cpuinfo ? strlen(cpuinfo) : 0, &hc->host,
                        err);
    lv_caps_done(&hc->caps);
    return r;
}

static void test_domain_type_rules(void **state)
{
    (void)state;
    host_case hc;
    const char *fw = LV_DEFAULT_FIRMWARE;
    /* Local host with VT-x: kvm. */
    assert_int_equal(resolve(&hc, caps_x86_kvm, NULL, cpuinfo_vmx, "", true, "auto", fw, NULL), 0);
    assert_string_equal(hc.host.domain_type, "kvm");
    assert_int_equal(hc.host.arch, LV_ARCH_X86_64);
    assert_null(hc.host.machine); /* q35 alias on x86 */
    assert_string_equal(hc.host.loader, fw);
    lv_host_done(&hc.host);
    /* /dev/kvm without vmx/svm (kvm_pvm): libvirt offers kvm, we pick TCG. */
    assert_int_equal(resolve(&hc, caps_x86_kvm, NULL, cpuinfo_pvm, "", true, "auto", fw, NULL), 0);
    assert_string_equal(hc.host.domain_type, "qemu");
    assert_non_null(strstr(hc.host.domain_type_reason, "vmx/svm"));
    lv_host_done(&hc.host);
    /* Remote host offering kvm: trusted. */
    assert_int_equal(resolve(&hc, caps_x86_kvm, NULL, NULL, "", true, "auto", fw, NULL), 0);
    assert_string_equal(hc.host.domain_type, "kvm");
    lv_host_done(&hc.host);
    /* No kvm in capabilities: qemu even with vmx. */
    assert_int_equal(resolve(&hc, caps_x86_tcg, NULL, cpuinfo_vmx, "", true, "auto", fw, NULL), 0);
    assert_string_equal(hc.host.domain_type, "qemu");
    lv_host_done(&hc.host);
    /* Explicit settings win. */
    assert_int_equal(resolve(&hc, caps_x86_tcg, NULL, cpuinfo_pvm, "", true, "kvm", fw, NULL), 0);
    assert_string_equal(hc.host.domain_type, "kvm");
    lv_host_done(&hc.host);
    assert_int_equal(resolve(&hc, caps_x86_kvm, NULL, cpuinfo_vmx, "", true, "qemu", fw, NULL), 0);
    assert_string_equal(hc.host.domain_type, "qemu");
    lv_host_done(&hc.host);
    /* Empty firmware: autoselection. */
    assert_int_equal(resolve(&hc, caps_x86_kvm, NULL, cpuinfo_vmx, "", true, "auto", "", NULL), 0);
    assert_null(hc.host.loader);
    lv_host_done(&hc.host);
}

static void test_cvm_rules(void **state)
{
    (void)state;
    host_case hc;
    caa_error *err = NULL;
    const char *fw = LV_DEFAULT_FIRMWARE;
    char *loaders[] = {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/ovmf/OVMF.amdsev.fd",
                       "/usr/share/ovmf/OVMF.inteltdx.fd", NULL};
    lv_domcaps dc = {.sev_supported = true, .cbitpos = 47, .reduced_phys_bits = 5, .loaders = loaders};

    /* SEV-SNP: kvm forced, SNP firmware and C-bit from domain capabilities. */
    assert_int_equal(resolve(&hc, caps_x86_kvm, &dc, cpuinfo_pvm, "sev-snp", false, "auto", fw, NULL), 0);
    assert_int_equal(hc.host.launch, LV_LAUNCH_SEV_SNP);
    assert_string_equal(hc.host.domain_type, "kvm");
    assert_string_equal(hc.host.loader, "/usr/share/ovmf/OVMF.amdsev.fd");
    assert_int_equal(hc.host.cbitpos, 47);
    assert_int_equal(hc.host.reduced_phys_bits, 5);
    lv_host_done(&hc.host);
    /* TDX without domain capabilities: autoselection, default SEV numbers unused. */
    assert_int_equal(resolve(&hc, caps_x86_kvm, NULL, NULL, "tdx", false, "auto", fw, NULL), 0);
    assert_int_equal(hc.host.launch, LV_LAUNCH_TDX);
    assert_null(hc.host.loader);
    assert_int_equal(hc.host.cbitpos, LV_SEV_DEFAULT_CBITPOS);
    lv_host_done(&hc.host);
    assert_int_equal(resolve(&hc, caps_x86_kvm, &dc, NULL, "tdx", false, "auto", fw, NULL), 0);
    assert_string_equal(hc.host.loader, "/usr/share/ovmf/OVMF.inteltdx.fd");
    lv_host_done(&hc.host);
    /* An explicit firmware is used as given. */
    assert_int_equal(resolve(&hc, caps_x86_kvm, &dc, NULL, "sev-snp", false, "auto", "/opt/snp.fd", NULL), 0);
    assert_string_equal(hc.host.loader, "/opt/snp.fd");
    lv_host_done(&hc.host);
    /* DISABLECVM=false on x86 needs an explicit technology. */
    assert_int_equal(resolve(&hc, caps_x86_kvm, NULL, NULL, "", false, "auto", fw, &err), -EINVAL);
    assert_non_null(strstr(caa_error_msg(err), "sev-snp or tdx"));
    caa_error_free(err);
    err = NULL;
    /* s390x: DISABLECVM=false means protected virtualization, no loader. */
    assert_int_equal(resolve(&hc, caps_s390, NULL, NULL, "", false, "auto", fw, NULL), 0);
    assert_int_equal(hc.host.launch, LV_LAUNCH_S390_PV);
    assert_int_equal(hc.host.arch, LV_ARCH_S390X);
    assert_string_equal(hc.host.machine, "s390-ccw-virtio-7.2");
    assert_null(hc.host.loader);
    lv_host_done(&hc.host);
    assert_int_equal(resolve(&hc, caps_s390, NULL, NULL, "", true, "auto", fw, NULL), 0);
    assert_int_equal(hc.host.launch, LV_LAUNCH_NONE);
    lv_host_done(&hc.host);
    /* Technology on the wrong architecture. */
    assert_int_equal(resolve(&hc, caps_s390, NULL, NULL, "tdx", false, "auto", fw, &err), -EOPNOTSUPP);
    caa_error_free(err);
    err = NULL;
    assert_int_equal(resolve(&hc, caps_x86_kvm, NULL, NULL, "s390-pv", false, "auto", fw, &err), -EOPNOTSUPP);
    caa_error_free(err);
    err = NULL;
    /* s390-pv with TCG cannot work. */
    assert_int_equal(resolve(&hc, caps_s390, NULL, NULL, "s390-pv", false, "qemu", fw, &err), -EINVAL);
    caa_error_free(err);
    err = NULL;
    /* aarch64: the x86 OVMF default means autoselect. */
    assert_int_equal(resolve(&hc, caps_arm, NULL, NULL, "", true, "auto", fw, NULL), 0);
    assert_int_equal(hc.host.arch, LV_ARCH_AARCH64);
    assert_null(hc.host.loader);
    assert_string_equal(hc.host.machine, "virt-7.2");
    assert_string_equal(hc.host.domain_type, "kvm");
    lv_host_done(&hc.host);
}

/* ---- parsers ---- */

static void test_parse_capabilities_bad(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "<",
        "not xml",
        "<capabilities>",
        "<other/>",
        "<capabilities/>",
        "<capabilities><host><cpu/></host></capabilities>",
        "<capabilities><host><cpu><arch></arch></cpu></host></capabilities>",
        ("<!DOCTYPE capabilities [<!ENTITY a 'x'>]><capabilities><host><cpu><arch>&a;</arch></cpu></host>"
         "</capabilities>"),
        "<capabilities><host><cpu><arch>x86_64</arch></cpu></host>\x01</capabilities>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lv_caps c = {0};
        caa_error *err = NULL;
        assert_int_equal(lv_parse_capabilities(bad[i], strlen(bad[i]), &c, &err), -EINVAL);
        assert_non_null(err);
        caa_error_free(err);
        assert_null(c.host_arch);
    }
    lv_caps c = {0};
    assert_int_equal(lv_parse_capabilities(NULL, 0, &c, NULL), -EINVAL);
    /* Oversized input is refused before parsing. */
    size_t big = LV_PARSE_MAX_XML + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    assert_int_equal(lv_parse_capabilities(huge, big, &c, NULL), -EINVAL);
    free(huge);
}

static void test_parse_capabilities_ok(void **state)
{
    (void)state;
    lv_caps c = {0};
    assert_int_equal(lv_parse_capabilities(caps_x86_kvm, strlen(caps_x86_kvm), &c, NULL), 0);
    assert_string_equal(c.host_arch, "x86_64");
    assert_int_equal(c.guest_types, LV_GUEST_KVM | LV_GUEST_QEMU);
    assert_string_equal(c.machine_q35, "pc-q35-7.2");
    lv_caps_done(&c);
    /* Guests of other architectures or os types do not count. */
    const char *xml = "<capabilities><host><cpu><arch>x86_64</arch></cpu></host>"
                      "<guest><os_type>xen</os_type><arch name='x86_64'><domain type='kvm'/></arch></guest>"
                      "<guest><os_type>hvm</os_type><arch name='i686'><domain type='kvm'/></arch></guest>"
                      "</capabilities>";
    assert_int_equal(lv_parse_capabilities(xml, strlen(xml), &c, NULL), 0);
    assert_int_equal(c.guest_types, 0);
    lv_caps_done(&c);
}

static void test_parse_domcaps(void **state)
{
    (void)state;
    const char *xml =
        "<domainCapabilities><os supported='yes'><loader supported='yes'>"
        "<value>/usr/share/OVMF/OVMF_CODE_4M.fd</value><value>relative.fd</value>"
        "<value>/usr/share/ovmf/OVMF.amdsev.fd</value></loader></os>"
        "<features><sev supported='yes'><cbitpos>51</cbitpos><reducedPhysBits>1</reducedPhysBits>"
        "</sev></features></domainCapabilities>";
    lv_domcaps d = {0};
    assert_int_equal(lv_parse_domcaps(xml, strlen(xml), &d, NULL), 0);
    assert_true(d.sev_supported);
    assert_int_equal(d.cbitpos, 51);
    assert_int_equal(d.reduced_phys_bits, 1);
    assert_non_null(d.loaders);
    assert_string_equal(d.loaders[0], "/usr/share/OVMF/OVMF_CODE_4M.fd");
    assert_string_equal(d.loaders[1], "/usr/share/ovmf/OVMF.amdsev.fd");
    assert_null(d.loaders[2]);
    lv_domcaps_done(&d);
    /* Nonsense numbers are ignored, not trusted. */
    const char *odd = "<domainCapabilities><features><sev supported='yes'><cbitpos>-3</cbitpos>"
                      "<reducedPhysBits>99999</reducedPhysBits></sev></features></domainCapabilities>";
    assert_int_equal(lv_parse_domcaps(odd, strlen(odd), &d, NULL), 0);
    assert_int_equal(d.cbitpos, 0);
    assert_int_equal(d.reduced_phys_bits, 0);
    lv_domcaps_done(&d);
    assert_int_equal(lv_parse_domcaps("<capabilities/>", 15, &d, NULL), -EINVAL);
}

static void test_parse_volume_format(void **state)
{
    (void)state;
    char *f = NULL;
    const char *ok = "<volume><target><format type='qcow2'/></target></volume>";
    assert_int_equal(lv_parse_volume_format(ok, strlen(ok), &f, NULL), 0);
    assert_string_equal(f, "qcow2");
    free(f);
    f = NULL;
    const char *none = "<volume><target/></volume>";
    assert_int_equal(lv_parse_volume_format(none, strlen(none), &f, NULL), 0);
    assert_null(f);
    const char *evil = "<volume><target><format type=\"q'/&gt;&lt;x\"/></target></volume>";
    assert_int_equal(lv_parse_volume_format(evil, strlen(evil), &f, NULL), -EINVAL);
    assert_int_equal(lv_parse_volume_format("<pool/>", 7, &f, NULL), -EINVAL);
    assert_null(f);
}

static void test_parse_metadata(void **state)
{
    (void)state;
    lv_metadata m = {0};
    const char *ok =
        "<caa:instance xmlns:caa='https://confidentialcontainers.org/cloud-api-adaptor-c/libvirt/1'>"
        "<caa:sandbox-id>sb1</caa:sandbox-id><caa:pod namespace='ns' name='p&amp;q'/>"
        "<caa:pool>pp</caa:pool><caa:image>base</caa:image></caa:instance>";
    assert_int_equal(lv_parse_metadata(ok, strlen(ok), &m, NULL), 0);
    assert_string_equal(m.sandbox_id, "sb1");
    assert_string_equal(m.pod_name, "p&q");
    assert_string_equal(m.pod_namespace, "ns");
    assert_string_equal(m.pool, "pp");
    assert_string_equal(m.image, "base");
    lv_metadata_done(&m);

    caa_error *err = NULL;
    const char *foreign = "<instance xmlns='urn:someone-else'><sandbox-id>x</sandbox-id></instance>";
    assert_int_equal(lv_parse_metadata(foreign, strlen(foreign), &m, &err), -ENOENT);
    caa_error_free(err);
    err = NULL;
    /* As virDomainGetMetadata returns it: namespace stripped. */
    const char *nons = "<instance><sandbox-id>x</sandbox-id><pool>p</pool></instance>";
    assert_int_equal(lv_parse_metadata(nons, strlen(nons), &m, NULL), 0);
    assert_string_equal(m.sandbox_id, "x");
    assert_string_equal(m.pool, "p");
    lv_metadata_done(&m);
    const char *other_el = "<something><sandbox-id>x</sandbox-id></something>";
    assert_int_equal(lv_parse_metadata(other_el, strlen(other_el), &m, NULL), -ENOENT);
    /* Our element, but a sandbox id in another namespace does not count. */
    const char *mixed =
        "<c:instance xmlns:c='https://confidentialcontainers.org/cloud-api-adaptor-c/libvirt/1'>"
        "<sandbox-id>x</sandbox-id></c:instance>";
    assert_int_equal(lv_parse_metadata(mixed, strlen(mixed), &m, NULL), -EPROTO);
    const char *badpool =
        "<c:instance xmlns:c='https://confidentialcontainers.org/cloud-api-adaptor-c/libvirt/1'>"
        "<c:sandbox-id>x</c:sandbox-id><c:pool>a&#10;b</c:pool></c:instance>";
    assert_int_equal(lv_parse_metadata(badpool, strlen(badpool), &m, NULL), -EPROTO);
    assert_int_equal(lv_parse_metadata("<x", 2, &m, NULL), -EINVAL);
    assert_null(m.sandbox_id);
}

static void test_cpuinfo(void **state)
{
    (void)state;
    assert_true(lv_cpuinfo_has_hw_virt(cpuinfo_vmx, strlen(cpuinfo_vmx)));
    assert_false(lv_cpuinfo_has_hw_virt(cpuinfo_pvm, strlen(cpuinfo_pvm)));
    const char *amd = "flags : fpu svm";
    assert_true(lv_cpuinfo_has_hw_virt(amd, strlen(amd)));
    const char *nonl = "model name: vmx svm\nflags: vmxx svmm";
    assert_false(lv_cpuinfo_has_hw_virt(nonl, strlen(nonl)));
    assert_false(lv_cpuinfo_has_hw_virt("", 0));
    assert_false(lv_cpuinfo_has_hw_virt("flags", 5));
    /* Length bounds are respected (no reading past len). */
    const char *cut = "flags: vmx";
    assert_false(lv_cpuinfo_has_hw_virt(cut, 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_as_upstream),
        cmocka_unit_test(test_env_and_flags),
        cmocka_unit_test(test_invalid_values),
        cmocka_unit_test(test_cpuset),
        cmocka_unit_test(test_uri_locality),
        cmocka_unit_test(test_domain_type_rules),
        cmocka_unit_test(test_cvm_rules),
        cmocka_unit_test(test_parse_capabilities_bad),
        cmocka_unit_test(test_parse_capabilities_ok),
        cmocka_unit_test(test_parse_domcaps),
        cmocka_unit_test(test_parse_volume_format),
        cmocka_unit_test(test_parse_metadata),
        cmocka_unit_test(test_cpuinfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
