#define _GNU_SOURCE
#include "CLibeventShim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <pthread.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#include <event2/event.h>

_Static_assert(AS_EV_TIMEOUT == EV_TIMEOUT, "EV_TIMEOUT");
_Static_assert(AS_EV_READ == EV_READ, "EV_READ");
_Static_assert(AS_EV_WRITE == EV_WRITE, "EV_WRITE");
_Static_assert(AS_EV_PERSIST == EV_PERSIST, "EV_PERSIST");
_Static_assert(AS_LOOP_ONCE == EVLOOP_ONCE, "EVLOOP_ONCE");
_Static_assert(AS_LOOP_NONBLOCK == EVLOOP_NONBLOCK, "EVLOOP_NONBLOCK");

void *as_base_new(void) {
    struct event_config *config = event_config_new();
    if (config == NULL) return NULL;
    /* Every libevent call is made on the loop's own thread: no internal locks needed. */
    event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK);
    struct event_base *base = event_base_new_with_config(config);
    event_config_free(config);
    return base;
}

void as_base_free(void *base) { event_base_free((struct event_base *)base); }

int as_base_loop(void *base, int flags) {
    return event_base_loop((struct event_base *)base, flags | EVLOOP_NO_EXIT_ON_EMPTY);
}

const char *as_base_method(void *base) { return event_base_get_method((struct event_base *)base); }

void *as_event_new(void *base, int fd, short what, as_event_callback callback, void *arg) {
    return event_new((struct event_base *)base, fd, what, callback, arg);
}

int as_event_add(void *event, long long timeout_usec) {
    if (timeout_usec < 0) return event_add((struct event *)event, NULL);
    /* libevent measures timeouts from its cached time, taken when the loop last woke up; refresh it so a
     * timeout starts now and never fires early. */
    event_base_update_cache_time(event_get_base((struct event *)event));
    struct timeval tv;
    tv.tv_sec = (time_t)(timeout_usec / 1000000);
    tv.tv_usec = (suseconds_t)(timeout_usec % 1000000);
    return event_add((struct event *)event, &tv);
}

int as_event_del(void *event) { return event_del((struct event *)event); }

void as_event_free(void *event) { event_free((struct event *)event); }

static int set_flags(int fd) {
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
#ifndef SOCK_NONBLOCK
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) return -1;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) return -1;
#endif
    return 0;
}

int as_socket(int family, int type, int protocol) {
#ifdef SOCK_NONBLOCK
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
#else
    int fd = socket(family, type, protocol);
#endif
    if (fd < 0) return -1;
    if (set_flags(fd) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int as_socketpair(int family, int type, int protocol, int fds[2]) {
#ifdef SOCK_NONBLOCK
    int rc = socketpair(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol, fds);
#else
    int rc = socketpair(family, type, protocol, fds);
#endif
    if (rc != 0) return -1;
    if (set_flags(fds[0]) != 0 || set_flags(fds[1]) != 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    return 0;
}

int as_accept(int fd, void *address, unsigned int *address_length) {
#ifdef __linux__
    return accept4(fd, (struct sockaddr *)address, (socklen_t *)address_length, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int client = accept(fd, (struct sockaddr *)address, (socklen_t *)address_length);
    if (client < 0) return -1;
    if (set_flags(client) != 0) {
        int saved = errno;
        close(client);
        errno = saved;
        return -1;
    }
    return client;
#endif
}

long as_send(int fd, const void *bytes, unsigned long count) {
#ifdef MSG_NOSIGNAL
    return (long)send(fd, bytes, count, MSG_NOSIGNAL);
#else
    return (long)send(fd, bytes, count, 0);
#endif
}

long as_recv(int fd, void *bytes, unsigned long count) { return (long)recv(fd, bytes, count, 0); }

int as_wakeup_fd(int *write_fd) {
#ifdef __linux__
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    *write_fd = fd;
    return fd;
#else
    int fds[2];
    if (pipe(fds) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    *write_fd = fds[1];
    return fds[0];
#endif
}

void as_wakeup_signal(int write_fd) {
    uint64_t one = 1;
    ssize_t rc;
    do { rc = write(write_fd, &one, sizeof one); } while (rc < 0 && errno == EINTR);
}

void as_wakeup_drain(int read_fd) {
    uint64_t buffer[8];
    while (read(read_fd, buffer, sizeof buffer) > 0) {}
}

int as_errno(void) { return errno; }

void as_thread_set_name(const char *name) {
#if defined(__APPLE__)
    pthread_setname_np(name);
#else
    pthread_setname_np(pthread_self(), name);
#endif
}

/* ---- issue 12 (house): platform knowledge of accept(2)'s errors ---- */

int as_accept_error_action(int code) {
    switch (code) {
    case ECONNABORTED:
    case EINTR:
    case EPROTO:
    case EPERM:
#ifdef __linux__
    /* Linux's accept(2) passes on the network errors of the new connection ("Error handling" in the man
     * page): they concern that connection, not the listening socket. */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
#endif
        return AS_ACCEPT_SKIP;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        return AS_ACCEPT_BACK_OFF;
    default:
        return AS_ACCEPT_FAIL;
    }
}
