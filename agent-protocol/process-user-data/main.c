/* process-user-data: one-shot program in the pod VM. Fetches the cloud-config
 * user-data, validates it completely, then writes the allow-listed files,
 * the expanded initdata and its digest under /run/peerpod.
 *
 *   process-user-data provision-files [-t|--user-data-fetch-timeout SECONDS]
 *       [--cidata-dir DIR] [--cidata-device PATH] [--cidata-fstype TYPE] [--azure-imds-url URL]
 *       [--aws-imds-url URL] [--gcp-imds-url URL] [--alibaba-imds-url URL]
 *       [--output-dir DIR] [--retry-interval SECONDS]
 *       [--log-level LEVEL]
 *
 * Exit status: 0 success, 1 failure (nothing or, on an I/O error midway, not
 * everything written), 2 usage error. */
#define LOG_COMPONENT "process-user-data"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "caa-version.h"
#include "detect.h"
#include "error.h"
#include "fetch.h"
#include "log.h"
#include "parse.h"
#include "provision.h"
#include "xalloc.h"

#define DEFAULT_TIMEOUT_S 180
#define DEFAULT_RETRY_S 5
#define DEFAULT_IMDS "http://169.254.169.254"
#define DEFAULT_GCP_IMDS "http://metadata.google.internal"
#define DEFAULT_ALIBABA_IMDS "http://100.100.100.200"
/* The GCP probe runs on every KVM guest that is not AWS: keep it short. */
#define GCP_PROBE_TIMEOUT_MS 3000

typedef struct args {
    int64_t timeout_s;
    int64_t retry_s;
    const char *cidata_dir;
    const char *cidata_device;
    const char *cidata_fstype;
    const char *azure_url;
    const char *gcp_url;
    const char *alibaba_url;
    bool imds_given;               /* an IMDS URL on the command line: no cloud detection */
    bool detect_anyway;            /* tests: detect although IMDS URLs were given (they move the endpoints) */
    const char *hypervisor_vendor; /* tests: instead of CPUID */
    const char *sys_vendor_file;   /* tests: instead of /sys/class/dmi/id/sys_vendor */
    const char *aws_url;
    const char *output_dir;
} args;

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: process-user-data provision-files [OPTIONS]\n"
        "       process-user-data -v|--version|version\n"
        "\n"
        "Fetches the pod VM's cloud-config user-data (cidata ISO, then the metadata service of the\n"
        "detected cloud: Azure, AWS, GCP or Alibaba Cloud; retrying until the timeout) and writes\n"
        "its files under the output directory.\n"
        "\n"
        "Options of provision-files:\n"
        "  -t, --user-data-fetch-timeout SECONDS  give up after this long (default %d)\n"
        "      --retry-interval SECONDS           pause between rounds (default %d)\n"
        "      --cidata-dir DIR                   where the cidata ISO is or gets mounted\n"
        "                                         (default /media/cidata; empty: skip)\n"
        "      --cidata-device PATH               device to mount when DIR has no user-data\n"
        "                                         (default /dev/disk/by-label/cidata; empty: never mount)\n"
        "      --cidata-fstype TYPE               its file system type (default iso9660; NoCloud seeds may\n"
        "                                         also be vfat)\n"
        "      --azure-imds-url URL               Azure IMDS base URL (default " DEFAULT_IMDS
        "; empty: skip)\n"
        "      --aws-imds-url URL                 AWS IMDS base URL (default " DEFAULT_IMDS "; empty: skip)\n"
        "      --gcp-imds-url URL                 GCP metadata base URL (default " DEFAULT_GCP_IMDS
        "; empty: skip)\n"
        "      --alibaba-imds-url URL             Alibaba Cloud metadata base URL "
        "(default " DEFAULT_ALIBABA_IMDS "; empty: skip)\n"
        "                                         (any IMDS URL given: no cloud detection; every non-empty\n"
        "                                         URL is tried in this order)\n"
        "      --output-dir DIR                   where files go (default /run/peerpod)\n"
        "      --log-level LEVEL                  error|warn|info|debug|trace (default info)\n"
        "  -h, --help                             this text\n",
        DEFAULT_TIMEOUT_S, DEFAULT_RETRY_S);
}

enum {
    OPT_CIDATA_DIR = 256,
    OPT_CIDATA_DEVICE,
    OPT_CIDATA_FSTYPE,
    OPT_AZURE,
    OPT_AWS,
    OPT_GCP,
    OPT_ALIBABA,
    OPT_DETECT,
    OPT_OUTPUT,
    OPT_RETRY,
    OPT_LOG_LEVEL,
    OPT_HV_VENDOR,
    OPT_SYS_VENDOR,
};

static int parse_seconds(const char *name, const char *value, int64_t min, int64_t *ret)
{
    if (caa_parse_int64(value, min, 24 * 3600, ret) < 0) {
        fprintf(stderr, "process-user-data: invalid %s '%s' (whole seconds, %lld..86400)\n", name, value,
                (long long)min);
        return -EINVAL;
    }
    return 0;
}

static int parse_args(int argc, char **argv, args *a)
{
    static const struct option opts[] = {
        {"user-data-fetch-timeout", required_argument, NULL, 't'},
        {"retry-interval", required_argument, NULL, OPT_RETRY},
        {"cidata-dir", required_argument, NULL, OPT_CIDATA_DIR},
        {"cidata-device", required_argument, NULL, OPT_CIDATA_DEVICE},
        {"cidata-fstype", required_argument, NULL, OPT_CIDATA_FSTYPE},
        {"azure-imds-url", required_argument, NULL, OPT_AZURE},
        {"aws-imds-url", required_argument, NULL, OPT_AWS},
        {"gcp-imds-url", required_argument, NULL, OPT_GCP},
        {"alibaba-imds-url", required_argument, NULL, OPT_ALIBABA},
        {"detect-cloud", no_argument, NULL, OPT_DETECT},
        {"output-dir", required_argument, NULL, OPT_OUTPUT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"hypervisor-vendor", required_argument, NULL, OPT_HV_VENDOR},
        {"sys-vendor-file", required_argument, NULL, OPT_SYS_VENDOR},
        {"help", no_argument, NULL, 'h'},
        /* upstream's persistent -v/--version: accepted and ignored by provision-files */
        {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+t:hv", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (parse_seconds("timeout", optarg, 1, &a->timeout_s) < 0)
                return -EINVAL;
            break;
        case OPT_RETRY:
            if (parse_seconds("retry interval", optarg, 0, &a->retry_s) < 0)
                return -EINVAL;
            break;
        case OPT_CIDATA_DIR:
            a->cidata_dir = optarg;
            break;
        case OPT_CIDATA_DEVICE:
            a->cidata_device = optarg;
            break;
        case OPT_CIDATA_FSTYPE:
            a->cidata_fstype = optarg;
            break;
        case OPT_AZURE:
        case OPT_AWS:
        case OPT_GCP:
        case OPT_ALIBABA:
            *(c == OPT_AZURE ? &a->azure_url
              : c == OPT_AWS ? &a->aws_url
              : c == OPT_GCP ? &a->gcp_url
                             : &a->alibaba_url) = optarg;
            a->imds_given = true;
            break;
        case OPT_DETECT:
            a->detect_anyway = true;
            break;
        case OPT_HV_VENDOR:
            a->hypervisor_vendor = optarg;
            break;
        case OPT_SYS_VENDOR:
            a->sys_vendor_file = optarg;
            break;
        case OPT_OUTPUT:
            if (!*optarg) {
                fprintf(stderr, "process-user-data: --output-dir must not be empty\n");
                return -EINVAL;
            }
            a->output_dir = optarg;
            break;
        case OPT_LOG_LEVEL: {
            caa_log_level level;
            if (caa_log_parse_level(optarg, &level) < 0) {
                fprintf(stderr, "process-user-data: invalid log level '%s'\n", optarg);
                return -EINVAL;
            }
            caa_log_set_level(level);
            break;
        }
        case 'h':
            usage(stdout);
            return 1;
        case 'v':
            break;
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "process-user-data: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    return 0;
}

static bool cidata_possible(const args *a)
{
    if (!*a->cidata_dir)
        return false;
    _cleanup_free_ char *file = xasprintf("%s/user-data", a->cidata_dir);
    return access(file, F_OK) == 0 || (*a->cidata_device && access(a->cidata_device, F_OK) == 0);
}

/* A cidata device is probed asynchronously at boot: give it a little while
 * (at most CIDATA_GRACE_S, never past the fetch timeout) before deciding
 * there is no user-data provider. */
#define CIDATA_GRACE_S 10
static bool cidata_appears(const args *a)
{
    int64_t tenths = (a->timeout_s < CIDATA_GRACE_S ? a->timeout_s : CIDATA_GRACE_S) * 10;
    bool waitable = *a->cidata_dir && *a->cidata_device;
    for (int64_t i = 0;; i++) {
        if (cidata_possible(a))
            return true;
        if (!waitable || i >= tenths)
            return false;
        struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int write_files(const args *a, const char *doc, size_t len, const char *source);

/* Upstream takes a user-data file before asking any cloud: a VM with cidata
 * never needs the (network) GCP probe. */
static bool gcp_probe(void *userdata)
{
    const args *a = userdata;
    if (!*a->gcp_url || cidata_possible(a))
        return false;
    return caa_pud_gcp_metadata_answers(a->gcp_url, GCP_PROBE_TIMEOUT_MS);
}

static int provision_files(const args *a)
{
    caa_pud_sources src = {
        .cidata_dir = a->cidata_dir,
        .cidata_device = a->cidata_device,
        .cidata_fstype = a->cidata_fstype,
        .azure_url = a->azure_url,
        .aws_url = a->aws_url,
        .gcp_url = a->gcp_url,
        .alibaba_url = a->alibaba_url,
    };
    if (!a->imds_given || a->detect_anyway) {
        /* As upstream: the IMDS of the detected cloud only; with no cidata
         * and no known cloud there is no user-data provider, and only the
         * (default) initdata and its digest are written. */
        caa_pud_cloud cloud =
            caa_pud_detect_cloud(a->hypervisor_vendor, a->sys_vendor_file, gcp_probe, (void *)a);
        log_info("cloud: %s", caa_pud_cloud_name(cloud));
        src.azure_url = cloud == CAA_PUD_CLOUD_AZURE ? a->azure_url : "";
        src.aws_url = cloud == CAA_PUD_CLOUD_AWS ? a->aws_url : "";
        src.gcp_url = cloud == CAA_PUD_CLOUD_GCP ? a->gcp_url : "";
        src.alibaba_url = cloud == CAA_PUD_CLOUD_ALIBABA ? a->alibaba_url : "";
        if (cloud == CAA_PUD_CLOUD_NONE && !cidata_appears(a)) {
            log_warn("no user-data provider (no cidata, no known cloud): writing the initdata files only");
            return write_files(a, "", 0, "nowhere");
        }
    }
    _cleanup_error_ caa_error *err = NULL;
    _cleanup_free_ char *doc = NULL;
    size_t len = 0;
    const char *source = NULL;
    log_info("fetching user-data (timeout %lld s)", (long long)a->timeout_s);
    if (caa_pud_fetch(&src, a->timeout_s * 1000, a->retry_s * 1000, &doc, &len, &source, &err) < 0) {
        log_error("fetching user-data: %s", caa_error_msg(err));
        return 1;
    }
    log_info("user-data from %s (%zu bytes)", source, len);
    return write_files(a, doc, len, source);
}

static int write_files(const args *a, const char *doc, size_t len, const char *source)
{
    _cleanup_error_ caa_error *err = NULL;
    _cleanup_pud_plan_ caa_pud_plan *plan = NULL;
    if (caa_pud_plan_build(doc, len, &plan, &err) < 0) {
        log_error("rejecting user-data from %s, nothing written: %s", source, caa_error_msg(err));
        return 1;
    }
    for (size_t i = 0; i < plan->n_notes; i++)
        log_warn("%s", plan->notes[i]);
    if (caa_pud_plan_write(plan, a->output_dir, &err) < 0) {
        log_error("writing files to %s: %s", a->output_dir, caa_error_msg(err));
        return 1;
    }
    for (size_t i = 0; i < plan->n_files; i++)
        log_info("wrote %s/%s", a->output_dir, plan->files[i].name);
    if (!plan->has_initdata)
        log_info("no initdata: measured the default document");
    return 0;
}

int main(int argc, char **argv)
{
    /* As upstream (cobra): no command prints the help and succeeds. */
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0) {
        printf("process-user-data %s (%s)\n", CAA_VERSION, CAA_GIT_COMMIT);
        return 0;
    }
    if (strcmp(argv[1], "provision-files") != 0) {
        fprintf(stderr, "process-user-data: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    args a = {
        .timeout_s = DEFAULT_TIMEOUT_S,
        .retry_s = DEFAULT_RETRY_S,
        .cidata_dir = "/media/cidata",
        .cidata_device = "/dev/disk/by-label/cidata",
        .cidata_fstype = "iso9660",
        .azure_url = DEFAULT_IMDS,
        .aws_url = DEFAULT_IMDS,
        .gcp_url = DEFAULT_GCP_IMDS,
        .alibaba_url = DEFAULT_ALIBABA_IMDS,
        .output_dir = "/run/peerpod",
    };
    int r = parse_args(argc - 1, argv + 1, &a);
    if (r != 0)
        return r > 0 ? 0 : 2;
    /* Directories 0755 and files with exactly the modes we pass. */
    umask(022);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("cannot initialise libcurl");
        return 1;
    }
    r = provision_files(&a);
    curl_global_cleanup();
    return r;
}
