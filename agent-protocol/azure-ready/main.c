/* azure-ready: reports Ready to the Azure WireServer once, at boot, so that
 * Azure finishes creating a pod VM that has no Azure guest agent (see
 * wireserver.h). Flags as upstream's cmd/azure-ready (-endpoint, -retries,
 * -timeout, -v), plus -retry-interval (upstream: 5 s fixed) for tests.
 *
 * Exit 0 when Ready was accepted, 1 after the last failed attempt, 2 on bad
 * flags. */
#define LOG_COMPONENT "azure-ready"
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <libxml/parser.h>

#include "caa-version.h"
#include "log.h"
#include "options.h"
#include "wireserver.h"

typedef struct ready_options {
    char *endpoint;
    int64_t retries;
    int64_t timeout_ns;
    int64_t retry_interval_ns;
    bool verbose;
    bool version;
} ready_options;

#define OPT(field) offsetof(ready_options, field)

static const caa_option ready_options_table[] = {
    {"endpoint", NULL, CAA_OPT_STRING, OPT(endpoint), CAA_WIRE_DEFAULT_ENDPOINT, 0, 0, 0,
     "WireServer base URL"},
    {"retries", NULL, CAA_OPT_INT, OPT(retries), "30", 1, 100000, 0, "number of attempts before giving up"},
    {"timeout", NULL, CAA_OPT_DURATION, OPT(timeout_ns), "30s", 0, 0, 0, "per-request timeout"},
    {"retry-interval", NULL, CAA_OPT_DURATION, OPT(retry_interval_ns), "5s", 0, 0, 0,
     "pause between attempts (ours; upstream waits 5 s)"},
    {"v", NULL, CAA_OPT_BOOL, OPT(verbose), "false", 0, 0, 0, "verbose logging"},
    {"version", NULL, CAA_OPT_BOOL, OPT(version), "false", 0, 0, 0, "print the version and exit"},
};

static void pause_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

int main(int argc, char **argv)
{
    ready_options o = {0};
    caa_option_set set = {.title = "azure-ready",
                          .opts = ready_options_table,
                          .n_opts = sizeof(ready_options_table) / sizeof(ready_options_table[0]),
                          .target = &o};
    int r = caa_options_parse_program("azure-ready", &set, 1, argc, argv, &o.version, CAA_VERSION,
                                      CAA_GIT_COMMIT);
    if (r >= 0)
        return r;
    if (!*o.endpoint || o.timeout_ns <= 0 || o.retry_interval_ns < 0) {
        fprintf(stderr, "azure-ready: -endpoint must be set and -timeout be positive\n");
        caa_options_free(&set, 1);
        return 2;
    }
    size_t n = strlen(o.endpoint);
    while (n > 0 && o.endpoint[n - 1] == '/')
        o.endpoint[--n] = '\0';

    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
    caa_wire_opts wo = {
        .endpoint = o.endpoint, .request_timeout_ms = o.timeout_ns / 1000000, .verbose = o.verbose};
    int exit_code = 1;
    caa_error *e = NULL;
    for (int64_t attempt = 1; attempt <= o.retries; attempt++) {
        if (caa_wire_report_ready(&wo, &e) == 0) {
            log_info("reported Ready to %s", o.endpoint);
            exit_code = 0;
            break;
        }
        log_warn("attempt %lld/%lld failed: %s", (long long)attempt, (long long)o.retries, caa_error_msg(e));
        caa_error_free(e);
        e = NULL;
        if (attempt < o.retries)
            pause_ns(o.retry_interval_ns);
    }
    if (exit_code != 0)
        log_error("giving up after %lld attempts", (long long)o.retries);
    xmlCleanupParser();
    curl_global_cleanup();
    caa_options_free(&set, 1);
    return exit_code;
}
