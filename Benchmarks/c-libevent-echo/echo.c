/*
 * Plain C libevent echo server: the near-physical reference for the benchmarks.
 *
 * One thread, one event_base, no bufferevents: a persistent read event per connection, and a write
 * event armed only while echoed bytes are pending (the socket pushed back). While bytes are pending
 * the read event is removed, so a client that does not read cannot make the server buffer without bound.
 *
 * Usage: echo PORT   binds 127.0.0.1 (PORT 0 = ephemeral), prints `listening PORT` when ready.
 * Build: cc -O2 -o echo echo.c $(pkg-config --cflags --libs libevent)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 65536

struct conn {
    int fd;
    struct event *rev, *wev;
    size_t off, len; /* pending bytes buf[off..<len] still to write */
    unsigned char buf[BUF_SIZE];
};

static struct event_base *base;

static void conn_free(struct conn *c) {
    event_free(c->rev);
    event_free(c->wev);
    close(c->fd);
    free(c);
}

/* Write pending bytes; returns 1 if everything was written, 0 if the socket pushed back, -1 on error. */
static int flush_pending(struct conn *c) {
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n > 0) {
            c->off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    c->off = c->len = 0;
    return 1;
}

static void on_read(evutil_socket_t fd, short what, void *arg);

static void on_write(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct conn *c = arg;
    int r = flush_pending(c);
    if (r < 0) {
        conn_free(c);
    } else if (r == 1) {
        event_del(c->wev);
        event_add(c->rev, NULL);
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    struct conn *c = arg;
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = recv(fd, c->buf, BUF_SIZE, 0);
        if (n > 0) {
            c->off = 0;
            c->len = (size_t)n;
            int r = flush_pending(c);
            if (r < 0) {
                conn_free(c);
                return;
            }
            if (r == 0) { /* socket full: stop reading until the echo drains */
                event_del(c->rev);
                event_add(c->wev, NULL);
                return;
            }
            if ((size_t)n < BUF_SIZE) return; /* drained the socket (likely); wait for the next event */
        } else if (n == 0) {
            conn_free(c);
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else {
            conn_free(c);
            return;
        }
    }
}

static void on_accept(evutil_socket_t lfd, short what, void *arg) {
    (void)what;
    (void)arg;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN, or a transient error (EMFILE, ECONNABORTED): try again later */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->off = c->len = 0;
        c->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_read, c);
        c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, on_write, c);
        event_add(c->rev, NULL);
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (!base) {
        fprintf(stderr, "event_base_new failed\n");
        return 1;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1024) < 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    struct event *lev = event_new(base, lfd, EV_READ | EV_PERSIST, on_accept, NULL);
    event_add(lev, NULL);
    printf("listening %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    event_base_dispatch(base);
    return 0;
}
