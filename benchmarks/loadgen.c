/* Closed-loop TCP echo load client: N connections, each with one message in
 * flight, driven by one epoll thread (the fastest client we could make on a
 * 2-core machine: it leaves the other core to the server).
 *
 * usage: loadgen [--pattern steady|eager] HOST PORT CONNECTIONS SECONDS WARMUP_SECONDS MESSAGE_BYTES
 *                [FIRST_ECHO_LIMIT_S [BURST]]
 *
 * Two patterns of the same closed loop (the figures of a server can depend on which one drives it):
 *  steady (the default): level-triggered epoll, each socket watched for what it waits for next
 *    (EPOLL_CTL_MOD only when that changes), epoll_wait woken at least every 10 ms;
 *  eager: every socket registered once, edge-triggered for both directions (no epoll_ctl per
 *    message), each socket drained until EAGAIN on every wake, the next message sent in the same
 *    step as the echo completes, and epoll_wait with no timeout (a timerfd ends the phases).
 *
 * One clock, three phases:
 *  1. ramp: every connection is opened at once (non-blocking connect) and
 *     sends its first message. The ramp ends when EVERY connection has had its
 *     first echo (all_first_echo_s). A server that is slow to accept would
 *     otherwise look fast: the clients it has accepted run at full speed while
 *     the rest wait unseen. If a connection dies or is still without an echo
 *     after FIRST_ECHO_LIMIT_S (default 30), it prints {"error": ...} with
 *     no_first_echo and exits 3, without measuring.
 *  2. warmup for WARMUP_SECONDS, not counted;
 *  3. measure for SECONDS. With BURST > 0, BURST more connections are opened at
 *     once when the measurement starts (loadgen writes "burst" on stderr), each
 *     sends one byte and waits for its echo: burst_s is the time until the last
 *     of them was echoed, i.e. how long the server takes to accept clients
 *     while busy (null if some were not served within FIRST_ECHO_LIMIT_S; the
 *     measurement then lasts until the burst is served or the limit is hit).
 *
 * A message is "abcd...xyzab...", MESSAGE_BYTES long, its last byte a newline
 * (so that it is one line to a server that frames by lines, and no reply rule
 * looking for a word such as PING matches it).
 *
 * Messages may be larger than one recv: each echo is reassembled and checked
 * byte for byte against what was sent; a short, long or wrong echo counts as
 * an error and drops that connection.
 *
 * prints one JSON object: messages, seconds, msgs_per_s, mib_per_s, p50_us,
 * p99_us, errors, all_first_echo_s, no_first_echo, ... (see the printf below)
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
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSG (64u << 20) /* a sanity cap, not a buffer size */
#define RECV_BUF (256u << 10)
#define HIST_US 2000000 /* latency histogram: 1 us buckets; slower echoes land in the last (2 s) */

enum state { CONNECTING, RUNNING, DEAD };

typedef struct {
    int fd;
    enum state state;
    int burst;               /* a burst connection: one 1-byte echo, then it stays idle */
    uint32_t events;         /* what epoll watches now, to skip needless EPOLL_CTL_MOD */
    size_t sent, received;   /* progress of the message in flight */
    uint64_t sent_at_ns, first_echo_ns;
} conn_t;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int ep;
static struct sockaddr_in addr;
static char *payload;
static size_t msg;
static uint32_t *hist;
static int measuring;
static int eager; /* --pattern eager: see the top */
static uint64_t done, errors, dead_main, dead_burst, echoed_main, echoed_burst, last_first_echo_ns;

static double percentile(uint64_t total, double p) {
    uint64_t want = (uint64_t)(total * p), seen = 0;
    for (int i = 0; i < HIST_US; i++) {
        seen += hist[i];
        if (seen > want) return i;
    }
    return HIST_US;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t length(const conn_t *c) { return c->burst ? 1 : msg; }

static void watch(conn_t *c, uint32_t events) {
    if (eager || c->events == events) return; /* eager: registered once, edge-triggered */
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static void kill_conn(conn_t *c) {
    close(c->fd); /* also removes it from epoll */
    c->state = DEAD;
    errors++;
    if (c->burst) dead_burst++;
    else dead_main++;
}

/* Sends what is left of the message in flight; waits for EPOLLOUT only when the socket is full. */
static void pump_send(conn_t *c) {
    while (c->sent < length(c)) {
        ssize_t w = send(c->fd, payload + c->sent, length(c) - c->sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { watch(c, EPOLLIN | EPOLLOUT); return; }
            kill_conn(c);
            return;
        }
        c->sent += (size_t)w;
    }
    watch(c, EPOLLIN);
}

static void start_message(conn_t *c) {
    c->sent = c->received = 0;
    c->sent_at_ns = now_ns();
    pump_send(c);
}

static void open_conn(conn_t *c, int burst) {
    c->burst = burst;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->events = eager ? EPOLLIN | EPOLLOUT | EPOLLET : EPOLLOUT;
    struct epoll_event ev = {.events = c->events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        c->state = RUNNING;
        start_message(c);
    } else if (errno == EINPROGRESS) {
        c->state = CONNECTING; /* a full accept queue makes the kernel retry the SYN: we just wait */
    } else {
        kill_conn(c);
    }
}

static void on_echo_complete(conn_t *c) {
    uint64_t now = now_ns();
    if (!c->first_echo_ns) {
        c->first_echo_ns = now;
        last_first_echo_ns = now;
        if (c->burst) echoed_burst++;
        else echoed_main++;
    }
    if (c->burst) { watch(c, EPOLLIN); return; } /* served: nothing more to send */
    if (measuring) {
        uint64_t us = (now - c->sent_at_ns) / 1000;
        hist[us < HIST_US ? us : HIST_US - 1]++;
        done++;
    }
    start_message(c);
}

static void on_event(conn_t *c, uint32_t events, char *buf) {
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) { kill_conn(c); return; }
        c->state = RUNNING;
        start_message(c);
        return;
    }
    if ((events & EPOLLOUT) && c->sent < length(c)) {
        pump_send(c);
        if (c->state == DEAD) return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    do {
        ssize_t r = recv(c->fd, buf, RECV_BUF, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        /* EOF, an error, more than was sent, or different bytes: the echo is broken */
        if (r <= 0 || c->received + (size_t)r > c->sent || memcmp(buf, payload + c->received, (size_t)r) != 0) {
            kill_conn(c);
            return;
        }
        c->received += (size_t)r;
        if (c->received == length(c)) on_echo_complete(c);
    } while (eager && c->state == RUNNING && !c->burst);
}

int main(int argc, char **argv) {
    const char *usage = "usage: %s [--pattern steady|eager] HOST PORT CONNECTIONS SECONDS WARMUP_SECONDS "
                        "MESSAGE_BYTES [FIRST_ECHO_LIMIT_S [BURST]]\n";
    const char *self = argv[0];
    if (argc > 2 && strcmp(argv[1], "--pattern") == 0) {
        if (strcmp(argv[2], "eager") == 0) eager = 1;
        else if (strcmp(argv[2], "steady") != 0) { fprintf(stderr, usage, self); return 2; }
        argv += 2;
        argc -= 2;
    }
    if (argc < 7 || argc > 9) {
        fprintf(stderr, usage, self);
        return 2;
    }
    int port = atoi(argv[2]), nconn = atoi(argv[3]);
    double seconds = atof(argv[4]), warmup = atof(argv[5]);
    msg = (size_t)atol(argv[6]);
    double limit = argc > 7 ? atof(argv[7]) : 30.0;
    int nburst = argc > 8 ? atoi(argv[8]) : 0;
    if (nconn < 1 || nburst < 0 || msg < 1 || msg > MAX_MSG || limit <= 0) return 2;

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    hist = calloc(HIST_US, sizeof(uint32_t));
    conn_t *conns = calloc((size_t)(nconn + nburst), sizeof(conn_t)), *burst = conns + nconn;
    char *buf = malloc(RECV_BUF);
    payload = malloc(msg);
    for (size_t i = 0; i < msg; i++) payload[i] = (char)('a' + i % 26);
    payload[msg - 1] = '\n'; /* one line: a server with --framing line counts it as one message */
    addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, argv[1], &addr.sin_addr);
    ep = epoll_create1(0);
    /* eager waits with no timeout: a timer wakes it every 10 ms to check the phase's clock instead */
    int timer = -1;
    if (eager) {
        timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
        struct itimerspec every = {.it_interval = {0, 10000000}, .it_value = {0, 10000000}};
        timerfd_settime(timer, 0, &every, NULL);
        struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(ep, EPOLL_CTL_ADD, timer, &tev);
    }

    uint64_t start = now_ns(), ramp_deadline = start + (uint64_t)(limit * 1e9);
    uint64_t all_first_echo_ns = 0, measure_from = 0, end = 0, burst_from = 0, burst_deadline = 0;
    for (int i = 0; i < nconn; i++) open_conn(&conns[i], 0);
    enum { RAMP, WARMUP, MEASURE } phase = RAMP;
    struct epoll_event events[1024];
    for (;;) {
        uint64_t t = now_ns();
        if (phase == RAMP && echoed_main == (uint64_t)nconn) {
            phase = WARMUP;
            all_first_echo_ns = last_first_echo_ns;
            measure_from = last_first_echo_ns + (uint64_t)(warmup * 1e9);
        } else if (phase == RAMP && (dead_main || t >= ramp_deadline)) {
            printf("{\"error\": \"%llu of %d connections had no first echo after %.3f s (limit %g s, %llu died)\", "
                   "\"connections\": %d, \"message_bytes\": %zu, \"no_first_echo\": %llu, "
                   "\"first_echo_limit_s\": %g, \"all_first_echo_s\": null, \"errors\": %llu}\n",
                   (unsigned long long)(nconn - echoed_main), nconn, (t - start) / 1e9, limit,
                   (unsigned long long)dead_main, nconn, msg, (unsigned long long)(nconn - echoed_main), limit,
                   (unsigned long long)errors);
            return 3;
        }
        if (phase == WARMUP && t >= measure_from) {
            phase = MEASURE;
            measuring = 1;
            measure_from = t;
            end = t + (uint64_t)(seconds * 1e9);
            if (nburst) {
                fprintf(stderr, "burst\n");
                fflush(stderr);
                burst_from = now_ns();
                burst_deadline = burst_from + (uint64_t)(limit * 1e9);
                for (int i = 0; i < nburst; i++) open_conn(&burst[i], 1);
            }
        }
        int burst_open = echoed_burst + dead_burst < (uint64_t)nburst && t < burst_deadline;
        if (phase == MEASURE && t >= end && !burst_open) break;
        int n = epoll_wait(ep, events, 1024, eager ? -1 : 10);
        for (int k = 0; k < n; k++) {
            conn_t *c = events[k].data.ptr;
            if (c == NULL) { /* the timer */
                uint64_t ticks;
                if (read(timer, &ticks, sizeof ticks) < 0) { /* nothing to do: it fires again */ }
                continue;
            }
            if (c->state != DEAD) on_event(c, events[k].events, buf);
        }
    }
    double elapsed = (now_ns() - measure_from) / 1e9;
    printf("{\"connections\": %d, \"message_bytes\": %zu, \"messages\": %llu, \"seconds\": %.3f, "
           "\"msgs_per_s\": %.1f, \"mib_per_s\": %.3f, \"p50_us\": %.0f, \"p99_us\": %.0f, \"errors\": %llu, "
           "\"all_first_echo_s\": %.3f, \"no_first_echo\": 0, \"first_echo_limit_s\": %g",
           nconn, msg, (unsigned long long)done, elapsed, done / elapsed, done * (double)msg / elapsed / 1048576.0,
           percentile(done, 0.50), percentile(done, 0.99), (unsigned long long)errors,
           (all_first_echo_ns - start) / 1e9, limit);
    if (nburst) {
        /* the burst's own times, from its first connect() to each connection's echo */
        double *waits = malloc(sizeof(double) * (size_t)nburst);
        int served = 0;
        for (int i = 0; i < nburst; i++)
            if (burst[i].first_echo_ns) waits[served++] = (burst[i].first_echo_ns - burst_from) / 1e9;
        qsort(waits, (size_t)served, sizeof(double), cmp_double);
        printf(", \"burst_connections\": %d, \"burst_served\": %d, \"burst_p50_s\": ", nburst, served);
        if (served) printf("%.3f", waits[served / 2]); else printf("null");
        printf(", \"burst_s\": ");
        if (served == nburst) printf("%.3f", waits[served - 1]); else printf("null");
    }
    printf("}\n");
    return 0;
}
