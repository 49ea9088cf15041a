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

/* ---- Datagrams (issue 15): UDP and unix datagram sockets ---------------------------------------------- */

#include <netinet/in.h>
#include <sys/uio.h>

#ifdef MSG_NOSIGNAL
#define AS_SEND_FLAGS MSG_NOSIGNAL
#else
#define AS_SEND_FLAGS 0
#endif

unsigned int as_sockaddr_storage_size(void) { return (unsigned int)sizeof(struct sockaddr_storage); }

long as_send_datagram(int fd, const void *bytes, unsigned long count, const void *address,
                      unsigned int address_length) {
    return (long)sendto(fd, bytes, count, AS_SEND_FLAGS, (const struct sockaddr *)address, (socklen_t)address_length);
}

long as_recv_datagram(int fd, void *bytes, unsigned long count, void *address, unsigned int *address_length,
                      int *truncated) {
    struct iovec iov = {.iov_base = bytes, .iov_len = count};
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_name = address;
    message.msg_namelen = (socklen_t)*address_length;
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &message, 0);
    if (n < 0) return -1;
    *address_length = (unsigned int)message.msg_namelen;
    *truncated = (message.msg_flags & MSG_TRUNC) ? 1 : 0;
    return (long)n;
}

int as_recv_datagrams(int fd, void *buffer, unsigned long slot_size, int count, void *addresses,
                      unsigned int *address_lengths, long *lengths, int *truncated) {
    if (count < 1 || count > AS_DATAGRAM_BATCH_MAX) {
        errno = EINVAL;
        return -1;
    }
    char *slots = (char *)buffer;
    char *names = (char *)addresses;
#ifdef __linux__
    struct mmsghdr messages[AS_DATAGRAM_BATCH_MAX];
    struct iovec iovs[AS_DATAGRAM_BATCH_MAX];
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        iovs[i].iov_base = slots + (size_t)i * slot_size;
        iovs[i].iov_len = slot_size;
        messages[i].msg_hdr.msg_name = names + (size_t)i * sizeof(struct sockaddr_storage);
        messages[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        messages[i].msg_hdr.msg_iov = &iovs[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    int received = recvmmsg(fd, messages, (unsigned int)count, 0, NULL);
    if (received < 0) return -1;
    for (int i = 0; i < received; i++) {
        address_lengths[i] = (unsigned int)messages[i].msg_hdr.msg_namelen;
        lengths[i] = (long)messages[i].msg_len;
        truncated[i] = (messages[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
    }
    return received;
#else
    int received = 0;
    while (received < count) {
        address_lengths[received] = (unsigned int)sizeof(struct sockaddr_storage);
        long n = as_recv_datagram(fd, slots + (size_t)received * slot_size, slot_size,
                                  names + (size_t)received * sizeof(struct sockaddr_storage),
                                  &address_lengths[received], &truncated[received]);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (received > 0) return received; /* the error (or EAGAIN) shows again on the next call */
            return -1;
        }
        lengths[received] = n;
        received++;
    }
    return received;
#endif
}

int as_send_datagrams(int fd, const void *const *bytes, const unsigned long *lengths,
                      const void *const *addresses, const unsigned int *address_lengths, int count) {
    if (count < 1 || count > AS_DATAGRAM_BATCH_MAX) {
        errno = EINVAL;
        return -1;
    }
#ifdef __linux__
    struct mmsghdr messages[AS_DATAGRAM_BATCH_MAX];
    struct iovec iovs[AS_DATAGRAM_BATCH_MAX];
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        iovs[i].iov_base = (void *)bytes[i];
        iovs[i].iov_len = lengths[i];
        messages[i].msg_hdr.msg_name = (void *)addresses[i];
        messages[i].msg_hdr.msg_namelen = (socklen_t)address_lengths[i];
        messages[i].msg_hdr.msg_iov = &iovs[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    return sendmmsg(fd, messages, (unsigned int)count, AS_SEND_FLAGS);
#else
    int sent = 0;
    while (sent < count) {
        long n = as_send_datagram(fd, bytes[sent], lengths[sent], addresses[sent], address_lengths[sent]);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (sent > 0) return sent; /* the caller retries the rest and sees the error then */
            return -1;
        }
        sent++;
    }
    return sent;
#endif
}

static int as_fill_group(struct sockaddr_storage *storage, int family, const void *group) {
    memset(storage, 0, sizeof *storage);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)storage;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, group, 4);
#ifdef __APPLE__
        in->sin_len = sizeof *in;
#endif
        return 0;
    }
    if (family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)storage;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, group, 16);
#ifdef __APPLE__
        in6->sin6_len = sizeof *in6;
#endif
        return 0;
    }
    errno = EAFNOSUPPORT;
    return -1;
}

int as_multicast_membership(int fd, int family, int join, const void *group, unsigned int interface_index) {
    struct group_req request;
    memset(&request, 0, sizeof request);
    request.gr_interface = interface_index;
    if (as_fill_group(&request.gr_group, family, group) != 0) return -1;
    int level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
    return setsockopt(fd, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP, &request, sizeof request);
}

int as_set_multicast_loop(int fd, int family, int enabled) {
    if (family == AF_INET) {
#ifdef __linux__
        int value = enabled ? 1 : 0;
#else
        unsigned char value = enabled ? 1 : 0; /* BSDs take a u_char */
#endif
        return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &value, sizeof value);
    }
    if (family == AF_INET6) {
        unsigned int value = enabled ? 1 : 0;
        return setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &value, sizeof value);
    }
    errno = EAFNOSUPPORT;
    return -1;
}

int as_set_multicast_hops(int fd, int family, int hops) {
    if (family == AF_INET) {
#ifdef __linux__
        int value = hops;
#else
        unsigned char value = (unsigned char)hops;
        if (hops < 0 || hops > 255) {
            errno = EINVAL;
            return -1;
        }
#endif
        return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &value, sizeof value);
    }
    if (family == AF_INET6) {
        int value = hops;
        return setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &value, sizeof value);
    }
    errno = EAFNOSUPPORT;
    return -1;
}

int as_set_multicast_interface(int fd, int family, unsigned int interface_index) {
    if (family == AF_INET) {
#ifdef __linux__
        struct ip_mreqn request;
        memset(&request, 0, sizeof request);
        request.imr_ifindex = (int)interface_index;
        return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &request, sizeof request);
#elif defined(IP_MULTICAST_IFINDEX)
        return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IFINDEX, &interface_index, sizeof interface_index);
#else
        if (interface_index != 0) {
            errno = EOPNOTSUPP;
            return -1;
        }
        struct in_addr any = {.s_addr = htonl(INADDR_ANY)};
        return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &any, sizeof any);
#endif
    }
    if (family == AF_INET6) {
        return setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &interface_index, sizeof interface_index);
    }
    errno = EAFNOSUPPORT;
    return -1;
}

/* ---- end of datagrams ------------------------------------------------------------------------------------ */
