/* The machine's ceiling: a minimal echo server in C, one thread, level-triggered epoll.
 *
 * usage: c_epoll_server PORT     (0 picks a free port; the port is stdout's first line)
 *
 * It listens on 127.0.0.1, accepts until EAGAIN, and for each readable client
 * does one recv and sends what it got straight back. Whatever the client does
 * not take at once waits in that client's buffer, and the client is not read
 * again until the buffer is written (EPOLLOUT only): a client that does not
 * read its echo stops being read, as in every server we compare. No counts,
 * no events, no log: what is left is the kernel's loopback work and epoll,
 * the least any echo server on this machine can spend. SIGTERM ends it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECV_BUF (64u << 10)

typedef struct {
    char *pending; /* echo the client has not taken yet */
    size_t len, off;
} conn_t;

static int ep;
static conn_t *conns; /* indexed by fd */
static size_t nconns;

static void watch(int fd, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    epoll_ctl(ep, op, fd, &ev);
}

static void drop(int fd) {
    free(conns[fd].pending);
    conns[fd] = (conn_t){0};
    close(fd); /* also leaves epoll */
}

static void accept_all(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) return; /* EAGAIN, or out of descriptors: the kernel keeps the rest queued */
        if ((size_t)fd >= nconns) {
            size_t grown = (size_t)fd * 2 + 64;
            conns = realloc(conns, grown * sizeof(conn_t));
            memset(conns + nconns, 0, (grown - nconns) * sizeof(conn_t));
            nconns = grown;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        watch(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
}

/* Sends what is pending; returns 0 once it is all out, 1 if the client must be written to later, -1 if it is gone. */
static int flush(int fd) {
    conn_t *c = &conns[fd];
    while (c->off < c->len) {
        ssize_t w = send(fd, c->pending + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno == EAGAIN ? 1 : -1;
        c->off += (size_t)w;
    }
    c->len = c->off = 0;
    return 0;
}

static void on_readable(int fd, char *buf) {
    ssize_t r = recv(fd, buf, RECV_BUF, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r <= 0) { drop(fd); return; }
    ssize_t w = send(fd, buf, (size_t)r, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR) { drop(fd); return; }
    if (w < 0) w = 0;
    if (w == r) return;
    conn_t *c = &conns[fd]; /* the rest waits, and the client is not read until it is out */
    c->pending = realloc(c->pending, (size_t)(r - w));
    memcpy(c->pending, buf + w, (size_t)(r - w));
    c->len = (size_t)(r - w);
    c->off = 0;
    watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    socklen_t len = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 4096) ||
        getsockname(listener, (struct sockaddr *)&addr, &len)) {
        perror("c_epoll_server");
        return 1;
    }
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    ep = epoll_create1(0);
    watch(listener, EPOLLIN, EPOLL_CTL_ADD);
    char *buf = malloc(RECV_BUF);
    struct epoll_event events[1024];
    for (;;) {
        int n = epoll_wait(ep, events, 1024, -1);
        for (int k = 0; k < n; k++) {
            int fd = events[k].data.fd;
            if (fd == listener) {
                accept_all(listener);
            } else if (conns[fd].len) { /* waiting to write its echo: EPOLLOUT, or an error */
                int left = flush(fd);
                if (left < 0) drop(fd);
                else if (left == 0) watch(fd, EPOLLIN, EPOLL_CTL_MOD);
            } else {
                on_readable(fd, buf);
            }
        }
    }
}
