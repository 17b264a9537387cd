/* Load generator for peerpods-webhook: C keep-alive TLS connections (one
 * thread each, OpenSSL, blocking), each sending the same AdmissionReview in
 * a loop for D seconds and timing every round trip. Prints one JSON line:
 * requests, seconds, rate, p50/p99/max latency in microseconds.
 *   webhook-load PORT CAFILE REVIEW.json CONNECTIONS SECONDS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

typedef struct worker {
    pthread_t thread;
    SSL_CTX *ctx;
    int port;
    const char *request;
    size_t request_len;
    double deadline;
    double *latencies_us;
    size_t n, cap;
    int failed;
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads one response (head + Content-Length body); 0 on a 200. */
static int read_response(SSL *ssl)
{
    char buf[65536];
    size_t len = 0;
    long body = -1;
    size_t head = 0;
    for (;;) {
        int n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - len - 1));
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (body < 0) {
            char *end = strstr(buf, "\r\n\r\n");
            if (!end)
                continue;
            head = (size_t)(end + 4 - buf);
            char *cl = strcasestr(buf, "Content-Length:");
            if (!cl || strncmp(buf, "HTTP/1.1 200", 12) != 0)
                return -1;
            body = atol(cl + 15);
        }
        if (len >= head + (size_t)body)
            return len == head + (size_t)body ? 0 : -1;
    }
}

static void *run(void *arg)
{
    worker *w = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)w->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        w->failed = 1;
        close(fd);
        return NULL;
    }
    SSL *ssl = SSL_new(w->ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) != 1) {
        w->failed = 1;
    } else {
        while (now_s() < w->deadline) {
            double t0 = now_s();
            if (SSL_write(ssl, w->request, (int)w->request_len) != (int)w->request_len ||
                read_response(ssl) < 0) {
                w->failed = 1;
                break;
            }
            if (w->n == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 4096;
                w->latencies_us = realloc(w->latencies_us, w->cap * sizeof(double));
            }
            w->latencies_us[w->n++] = (now_s() - t0) * 1e6;
        }
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT CAFILE REVIEW.json CONNECTIONS SECONDS\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[3], "rb");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    static char body[1 << 20];
    size_t body_len = fread(body, 1, sizeof(body), f);
    fclose(f);
    char *request = malloc(body_len + 256);
    int hl = snprintf(request, 256,
                      "POST /mutate-v1-pod?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                      "application/json\r\nContent-Length: %zu\r\n\r\n",
                      body_len);
    memcpy(request + hl, body, body_len);

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, argv[2], NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int n = atoi(argv[4]);
    double seconds = atof(argv[5]);
    worker *ws = calloc((size_t)n, sizeof(*ws));
    double start = now_s();
    for (int i = 0; i < n; i++) {
        ws[i] = (worker){.ctx = ctx,
                         .port = atoi(argv[1]),
                         .request = request,
                         .request_len = (size_t)hl + body_len,
                         .deadline = start + seconds};
        pthread_create(&ws[i].thread, NULL, run, &ws[i]);
    }
    size_t total = 0;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(ws[i].thread, NULL);
        total += ws[i].n;
        failed |= ws[i].failed;
    }
    double elapsed = now_s() - start;
    double *all = malloc((total ? total : 1) * sizeof(double));
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + k, ws[i].latencies_us, ws[i].n * sizeof(double));
        k += ws[i].n;
        free(ws[i].latencies_us);
    }
    qsort(all, total, sizeof(double), cmp);
    printf("{\"connections\": %d, \"requests\": %zu, \"seconds\": %.3f, \"rate\": %.0f, \"p50_us\": %.0f, "
           "\"p99_us\": %.0f, \"max_us\": %.0f, \"failed\": %d}\n",
           n, total, elapsed, (double)total / elapsed, total ? all[total / 2] : 0.0,
           total ? all[(size_t)((double)total * 0.99)] : 0.0, total ? all[total - 1] : 0.0, failed);
    free(all);
    free(ws);
    free(request);
    SSL_CTX_free(ctx);
    return failed ? 1 : 0;
}
