/* Azure provider benchmark: N pod VMs created at once through the provider's
 * ops table against the fake Azure endpoint (tests/integration/azure/
 * fake_arm.py) with a fixed latency per call. Prints one JSON line: wall
 * time, peak RSS, ARM requests and their rate, most requests in flight at
 * the fake. Method and results: bench/README.md (section azure).
 *
 *   azure-bench [-n PODS] [-latency-ms MS] [-polls N] [-max-requests N] [-cold]
 *               [-arm-limits] [-max-retries N]
 *
 * -polls: operation status polls until Succeeded (1: InProgress never seen).
 * Without -cold the first token is fetched before the clock starts.
 * -arm-limits: the fake applies ARM's documented per-subscription token
 * buckets (a storm); "throttled" in the output counts its 429 answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <uv.h>

#include "az-fake.h"
#include "cleanup.h"
#include "xalloc.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* RssAnon / RssFile of this process, KiB. */
static void rss_split(long *anon, long *file)
{
    *anon = *file = -1;
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "RssAnon: %ld", anon);
        sscanf(line, "RssFile: %ld", file);
    }
    fclose(f);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(int argc, char **argv)
{
    int n = 200, latency = 1000, polls = 1, max_requests = 256;
    int cold = 0, arm_limits = 0;
    const char *max_retries = "6";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "-latency-ms") == 0 && i + 1 < argc)
            latency = atoi(argv[++i]);
        else if (strcmp(argv[i], "-polls") == 0 && i + 1 < argc)
            polls = atoi(argv[++i]);
        else if (strcmp(argv[i], "-max-requests") == 0 && i + 1 < argc)
            max_requests = atoi(argv[++i]);
        else if (strcmp(argv[i], "-cold") == 0)
            cold = 1;
        else if (strcmp(argv[i], "-arm-limits") == 0)
            arm_limits = 1;
        else if (strcmp(argv[i], "-max-retries") == 0 && i + 1 < argc)
            max_retries = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [-n PODS] [-latency-ms MS] [-polls N] [-max-requests N] [-cold] [-arm-limits] "
                    "[-max-retries N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 1 || n > 60000 || polls < 1)
        return 2;
    az_fake fake = {.stdin_fd = -1};
    /* -arm-limits: ARM's documented per-subscription token buckets. */
    _cleanup_free_ char *fcfg =
        xasprintf("{\"latency_ms\": %d, \"lro_polls\": %d, \"retry_after\": \"0\"%s}", latency, polls,
                  arm_limits ? ", \"rate_limit\": {\"reads\": {\"bucket\": 250, \"refill_per_s\": 25}, "
                               "\"writes\": {\"bucket\": 200, \"refill_per_s\": 10}, "
                               "\"deletes\": {\"bucket\": 200, \"refill_per_s\": 10}}"
                             : "");
    if (!az_fake_start(&fake, fcfg)) {
        fprintf(stderr, "cannot start the fake endpoint (python3, CAA_SOURCE_ROOT)\n");
        return 77;
    }
    long rss_base = maxrss_kib();
    uv_loop_t loop;
    uv_loop_init(&loop);
    char maxreq[16];
    snprintf(maxreq, sizeof(maxreq), "%d", max_requests);
    const char *flags[] = {"-max-requests", maxreq, "-poll-interval", "2s", "-max-retries",
                           max_retries,     NULL};
    caa_error *err = NULL;
    double t_init = now_s();
    caa_provider *p = az_test_provider(&loop, &fake, flags, &err);
    if (!p) {
        fprintf(stderr, "provider: %s\n", caa_error_msg(err));
        az_fake_stop(&fake);
        return 1;
    }
    if (!cold) {
        /* A token (and the size list, started by init) before the clock. */
        az_result r;
        az_test_list(&loop, p, &r);
        az_result_done(&r);
        az_run_for(&loop, (uint64_t)latency + 100);
    }
    long rss_ready = maxrss_kib();
    long req0 = az_fake_stat(&fake, "arm_requests");
    az_result *rs = xnew0(az_result, (size_t)n);
    double cpu0 = cpu_s();
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        caa_instance_spec spec = az_test_spec(1000 + i);
        if (caa_provider_create_instance(p, &spec, az_create_cb, &rs[i], &err) < 0) {
            fprintf(stderr, "create %d: %s\n", i, caa_error_msg(err));
            return 1;
        }
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        az_run_until(&loop, &rs[i].done);
        ok += rs[i].status == 0;
    }
    double t1 = now_s();
    double cpu = cpu_s() - cpu0;
    long rss_peak = maxrss_kib();
    long anon, file;
    rss_split(&anon, &file);
    long reqs = az_fake_stat(&fake, "arm_requests") - req0;
    long in_flight = az_fake_stat(&fake, "max_in_flight");
    long throttled = az_fake_stat(&fake, "rate_limited");
    for (int i = 0, shown = 0; i < n; i++) {
        if (rs[i].status < 0 && shown++ < 3)
            fprintf(stderr, "pod %d: %s\n", i, caa_error_msg(rs[i].err));
        az_result_done(&rs[i]);
    }
    free(rs);
    size_t vms = az_fake_vm_count(&fake);
    az_test_provider_free(&loop, p);
    uv_loop_close(&loop);
    az_fake_stop(&fake);
    printf(
        "{\"pods\": %d, \"ok\": %d, \"vms\": %zu, \"latency_ms\": %d, \"polls\": %d, \"max_requests\": %d, "
        "\"cold\": %s, \"wall_s\": %.3f, \"since_init_s\": %.3f, \"arm_requests\": %ld, \"req_per_s\": %.1f, "
        "\"max_in_flight\": %ld, \"rss_base_kib\": %ld, \"rss_ready_kib\": %ld, \"rss_peak_kib\": %ld, "
        "\"rss_anon_kib\": %ld, \"rss_file_kib\": %ld, \"cpu_s\": %.3f, \"throttled\": %ld}\n",
        n, ok, vms, latency, polls, max_requests, cold ? "true" : "false", t1 - t0, t1 - t_init, reqs,
        (double)reqs / (t1 - t0), in_flight, rss_base, rss_ready, rss_peak, anon, file, cpu, throttled);
    return ok == n ? 0 : 1;
}
