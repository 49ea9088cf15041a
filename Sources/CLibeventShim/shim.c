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

void as_thread_set_name(const char *name) {
#if defined(__APPLE__)
    pthread_setname_np(name);
#else
    pthread_setname_np(pthread_self(), name);
#endif
}

/* ---- Event loop groups (issue 13) ---- */
#if defined(__linux__)
#include <sched.h>
#endif

int as_cpu_count(void) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int count = CPU_COUNT(&set);
        if (count > 0) return count;
    }
#endif
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

static __thread void *as_current_loop;

void as_current_loop_set(void *loop) { as_current_loop = loop; }

void *as_current_loop_get(void) { return as_current_loop; }

/* ---- Socket parity (issue 16): sendfile, gather writes, descriptor passing, peer credentials, MPTCP ---- */

#include <limits.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/types.h>
#include <time.h>
#ifdef __linux__
#include <sys/sendfile.h>
#endif
#ifdef __APPLE__
#include <sys/un.h>
#endif

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif
#ifndef MSG_CMSG_CLOEXEC
#define MSG_CMSG_CLOEXEC 0
#endif

int as_iov_max(void) { return IOV_MAX; }

long as_sendmsg_iov(int fd, const void *iov, int count) {
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = (struct iovec *)iov;
    message.msg_iovlen = count;
    return (long)sendmsg(fd, &message, MSG_NOSIGNAL);
}

long as_send_descriptors(int fd, const void *bytes, unsigned long count, const int *fds, int nfds) {
    if (nfds < 0 || nfds > AS_MAX_PASSED_DESCRIPTORS) { errno = EINVAL; return -1; }
    struct iovec vector = { (void *)bytes, count };
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    union { struct cmsghdr align; char bytes[CMSG_SPACE(sizeof(int) * AS_MAX_PASSED_DESCRIPTORS)]; } control;
    if (nfds > 0) {
        memset(&control, 0, sizeof control);
        message.msg_control = control.bytes;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)nfds);
    }
    return (long)sendmsg(fd, &message, MSG_NOSIGNAL);
}

long as_recv_descriptors(int fd, void *bytes, unsigned long count, int *fds, int max_fds, int *nfds,
                         int *dropped, int *truncated) {
    *nfds = 0;
    *dropped = 0;
    *truncated = 0;
    if (max_fds < 0 || max_fds > AS_MAX_PASSED_DESCRIPTORS) { errno = EINVAL; return -1; }
    struct iovec vector = { bytes, count };
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    union { struct cmsghdr align; char bytes[CMSG_SPACE(sizeof(int) * AS_MAX_PASSED_DESCRIPTORS)]; } control;
    if (max_fds > 0) {
        message.msg_control = control.bytes;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)max_fds);
    }
    ssize_t n = recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
    if (n < 0) return -1;
    if (message.msg_flags & MSG_CTRUNC) *truncated = 1;
    if (max_fds == 0) return (long)n;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t received = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int *data = (int *)(void *)CMSG_DATA(header);
        for (size_t i = 0; i < received; i++) {
            int descriptor;
            memcpy(&descriptor, data + i, sizeof descriptor);
#if !defined(__linux__)
            fcntl(descriptor, F_SETFD, FD_CLOEXEC); /* no MSG_CMSG_CLOEXEC here: as soon as possible */
#endif
            if (*nfds < max_fds) {
                fds[(*nfds)++] = descriptor;
            } else {
                /* CMSG_SPACE rounds up: the kernel may pass more than asked for. Never leak them. */
                close(descriptor);
                (*dropped)++;
            }
        }
    }
    return (long)n;
}

long as_sendfile(int out_fd, int in_fd, long long *offset, unsigned long count) {
#ifdef __linux__
    /* sendfile has no MSG_NOSIGNAL: block SIGPIPE on this thread around the call, and consume the SIGPIPE
     * the call raised (unless one was already pending), so a closed peer gives EPIPE, not a dead process. */
    sigset_t pipe_only, previous, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &previous);
    off_t position = (off_t)*offset;
    ssize_t n = sendfile(out_fd, in_fd, &position, count);
    int saved = errno;
    if (n > 0) *offset = (long long)position;
    if (n < 0 && saved == EPIPE && !was_pending) {
        struct timespec zero = { 0, 0 };
        sigtimedwait(&pipe_only, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    errno = saved;
    return (long)n;
#else
    (void)out_fd; (void)in_fd; (void)offset; (void)count;
    errno = ENOSYS;
    return -1;
#endif
}

long as_pread(int fd, void *bytes, unsigned long count, long long offset) {
    return (long)pread(fd, bytes, count, (off_t)offset);
}

long as_read(int fd, void *bytes, unsigned long count) { return (long)read(fd, bytes, count); }

int as_socket_domain(int fd) {
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    memset(&address, 0, sizeof address);
    if (getsockname(fd, (struct sockaddr *)&address, &length) != 0) return -1;
    return address.ss_family;
}

int as_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid) {
#if defined(__linux__) && defined(SO_PEERCRED)
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
#elif defined(__APPLE__)
    uid_t user;
    gid_t group;
    if (getpeereid(fd, &user, &group) != 0) return -1;
    pid_t process = 0;
    socklen_t length = sizeof process;
#ifdef LOCAL_PEERPID
    if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &process, &length) != 0) return -1;
#endif
    *pid = process;
    *uid = user;
    *gid = group;
    return 0;
#else
    (void)fd; (void)pid; (void)uid; (void)gid;
    errno = ENOTSUP;
    return -1;
#endif
}

#ifdef __linux__
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef SOL_MPTCP
#define SOL_MPTCP 284
#endif
#ifndef MPTCP_INFO
#define MPTCP_INFO 1
#endif
#endif

int as_ipproto_mptcp(void) {
#ifdef __linux__
    return IPPROTO_MPTCP;
#else
    return -1;
#endif
}

int as_is_multipath(int fd) {
#ifdef __linux__
    /* struct mptcp_info is versioned and grows; a generous buffer, the kernel copies what fits. */
    unsigned char info[512];
    socklen_t length = sizeof info;
    return getsockopt(fd, SOL_MPTCP, MPTCP_INFO, info, &length) == 0;
#else
    (void)fd;
    return 0;
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
