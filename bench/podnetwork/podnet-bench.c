/* Small network load tools for bench/podnetwork/run.sh.
 *
 *   podnet-bench rr-server ADDR PORT             UDP echo; prints "ready" once bound
 *   podnet-bench rr-client ADDR PORT COUNT SIZE  COUNT sequential round trips;
 *                                                prints "p50_us p99_us mean_us"
 *   podnet-bench tcp-sink ADDR PORT              accepts one connection, discards
 *                                                its bytes; prints "ready" once listening
 *   podnet-bench tcp-send ADDR PORT SECONDS      sends for SECONDS; prints "Mbit/s"
 *                                                (fallback when iperf3 is missing) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static struct sockaddr_in addr_of(const char *ip, const char *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad address %s\n", ip);
        exit(2);
    }
    return sa;
}

static _Noreturn void die(const char *what)
{
    perror(what);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static _Noreturn void rr_server(const char *ip, const char *port)
{
    struct sockaddr_in sa = addr_of(ip, port);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("rr-server");
    printf("ready\n");
    fflush(stdout);
    char buf[65536];
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            die("recvfrom");
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
    }
}

static int rr_client(const char *ip, const char *port, int count, int size)
{
    struct sockaddr_in sa = addr_of(ip, port);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {.tv_sec = 2};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        die("rr-client");
    char *buf = calloc(1, (size_t)size);
    double *rtt = calloc((size_t)count, sizeof(*rtt));
    double sum = 0;
    /* A few warm-up exchanges resolve ARP and fill caches. */
    for (int i = -10; i < count; i++) {
        double t0 = now_us();
        if (send(fd, buf, (size_t)size, 0) != size || recv(fd, buf, (size_t)size, 0) != size)
            die("round trip");
        if (i >= 0) {
            rtt[i] = now_us() - t0;
            sum += rtt[i];
        }
    }
    qsort(rtt, (size_t)count, sizeof(*rtt), cmp_double);
    printf("%.1f %.1f %.1f\n", rtt[count / 2], rtt[(count * 99) / 100], sum / count);
    free(rtt);
    free(buf);
    return 0;
}

static int tcp_sink(const char *ip, const char *port)
{
    struct sockaddr_in sa = addr_of(ip, port);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
        die("tcp-sink");
    printf("ready\n");
    fflush(stdout);
    int c = accept(fd, NULL, NULL);
    if (c < 0)
        die("accept");
    static char buf[1 << 17];
    while (read(c, buf, sizeof(buf)) > 0)
        ;
    return 0;
}

static int tcp_send(const char *ip, const char *port, double seconds)
{
    struct sockaddr_in sa = addr_of(ip, port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("tcp-send");
    static char buf[1 << 17];
    double t0 = now_us(), end = t0 + seconds * 1e6, t;
    uint64_t total = 0;
    while ((t = now_us()) < end) {
        ssize_t n = write(fd, buf, sizeof(buf));
        if (n < 0)
            die("write");
        total += (uint64_t)n;
    }
    printf("%.0f\n", (double)total * 8 / (t - t0)); /* bits per microsecond = Mbit/s */
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "rr-server"))
        rr_server(argv[2], argv[3]);
    if (argc == 6 && !strcmp(argv[1], "rr-client"))
        return rr_client(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (argc == 4 && !strcmp(argv[1], "tcp-sink"))
        return tcp_sink(argv[2], argv[3]);
    if (argc == 5 && !strcmp(argv[1], "tcp-send"))
        return tcp_send(argv[2], argv[3], atof(argv[4]));
    fprintf(stderr, "usage: see the comment at the top of podnet-bench.c\n");
    return 2;
}
