/* Closed-loop TCP echo load client: N connections, each with one message in
 * flight, driven by one epoll thread (the fastest client we could make on a
 * 2-core machine: it leaves the other core to the server).
 *
 * usage: loadgen HOST PORT CONNECTIONS SECONDS WARMUP_SECONDS MESSAGE_BYTES
 * prints one JSON object: messages, seconds, msgs_per_s, p50_us, p99_us, errors
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSG 65536
#define HIST_US 2000000 /* latency histogram: 1 us buckets up to 2 s */

typedef struct {
    int fd;
    size_t received;
    uint64_t sent_at_ns;
} conn_t;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t *hist;
static uint64_t hist_over;

static double percentile(uint64_t total, double p) {
    uint64_t want = (uint64_t)(total * p), seen = 0;
    for (int i = 0; i < HIST_US; i++) {
        seen += hist[i];
        if (seen > want) return i;
    }
    return HIST_US;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT CONNECTIONS SECONDS WARMUP_SECONDS MESSAGE_BYTES\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), nconn = atoi(argv[3]);
    double seconds = atof(argv[4]), warmup = atof(argv[5]);
    size_t msg = (size_t)atoi(argv[6]);
    if (nconn < 1 || msg < 1 || msg > MAX_MSG) return 2;

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    hist = calloc(HIST_US, sizeof(uint32_t));
    conn_t *conns = calloc((size_t)nconn, sizeof(conn_t));
    char *payload = malloc(msg), *buf = malloc(MAX_MSG);
    for (size_t i = 0; i < msg; i++) payload[i] = (char)('a' + i % 26);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    int ep = epoll_create1(0);
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
            perror("connect");
            return 1;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    for (int i = 0; i < nconn; i++) {
        conns[i].sent_at_ns = now_ns();
        if (send(conns[i].fd, payload, msg, 0) != (ssize_t)msg) { perror("send"); return 1; }
    }

    uint64_t start = now_ns(), measure_from = start + (uint64_t)(warmup * 1e9);
    uint64_t end = measure_from + (uint64_t)(seconds * 1e9);
    uint64_t done = 0, errors = 0;
    int measuring = 0;
    struct epoll_event events[1024];
    for (;;) {
        uint64_t t = now_ns();
        if (!measuring && t >= measure_from) {
            measuring = 1;
            done = 0;
            memset(hist, 0, HIST_US * sizeof(uint32_t));
            hist_over = 0;
        }
        if (t >= end) break;
        int n = epoll_wait(ep, events, 1024, 100);
        for (int k = 0; k < n; k++) {
            conn_t *c = &conns[events[k].data.u32];
            ssize_t r = recv(c->fd, buf, MAX_MSG, 0);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            c->received += (size_t)r;
            while (c->received >= msg) { /* one full echo: record it and send the next */
                c->received -= msg;
                uint64_t now = now_ns();
                uint64_t us = (now - c->sent_at_ns) / 1000;
                if (us < HIST_US) hist[us]++; else hist_over++;
                done++;
                c->sent_at_ns = now;
                if (send(c->fd, payload, msg, 0) != (ssize_t)msg) errors++;
            }
        }
    }
    double elapsed = (now_ns() - measure_from) / 1e9;
    printf("{\"messages\": %llu, \"seconds\": %.3f, \"msgs_per_s\": %.1f, \"p50_us\": %.0f, \"p99_us\": %.0f, \"errors\": %llu}\n",
           (unsigned long long)done, elapsed, done / elapsed, percentile(done, 0.50), percentile(done, 0.99),
           (unsigned long long)errors);
    for (int i = 0; i < nconn; i++) close(conns[i].fd);
    return 0;
}
