/*
 * CLibeventShim: the only C surface that Swift sees.
 *
 * libevent's own headers are included in shim.c only: importing them into Swift clashes with Glibc
 * over `fd_set` on clean builds. This header exposes opaque pointers, plain integers and one callback
 * type, and declares the few Linux calls that Swift's Glibc module does not (accept4, eventfd).
 */
#ifndef C_LIBEVENT_SHIM_H
#define C_LIBEVENT_SHIM_H

#ifdef __cplusplus
extern "C" {
#endif

/* Event flags, equal to libevent's EV_* values (checked by static assertions in shim.c). */
enum {
    AS_EV_TIMEOUT = 0x01,
    AS_EV_READ = 0x02,
    AS_EV_WRITE = 0x04,
    AS_EV_PERSIST = 0x10,
};

/* Loop flags for as_base_loop. */
enum {
    AS_LOOP_ONCE = 0x01,     /* block until at least one event is active, run them, return */
    AS_LOOP_NONBLOCK = 0x02, /* poll once without blocking */
};

/* Called by libevent on the loop thread: descriptor, AS_EV_* flags that fired, the registered argument. */
typedef void (*as_event_callback)(int fd, short what, void *arg);

/* An event_base without internal locking (every call is made on its loop thread). NULL on failure. */
void *as_base_new(void);
void as_base_free(void *base);
/* event_base_loop with EVLOOP_NO_EXIT_ON_EMPTY added; returns libevent's result. */
int as_base_loop(void *base, int flags);
/* The backend's name ("epoll", "kqueue", ...). */
const char *as_base_method(void *base);

/* event_new; fd -1 makes a pure timer. NULL on failure. */
void *as_event_new(void *base, int fd, short what, as_event_callback callback, void *arg);
/* event_add with a relative timeout in microseconds; a negative timeout means none. 0 or -1. */
int as_event_add(void *event, long long timeout_usec);
/* event_del; 0 or -1. */
int as_event_del(void *event);
/* event_free (deletes the event first). */
void as_event_free(void *event);

/* socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC (fcntl where those flags do not exist), and
 * SO_NOSIGPIPE where that exists. -1 and errno on failure. */
int as_socket(int family, int type, int protocol);
/* socketpair(2) with the same flags. */
int as_socketpair(int family, int type, int protocol, int fds[2]);
/* accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC; address and length may be NULL. */
int as_accept(int fd, void *address, unsigned int *address_length);
/* send(2) that never raises SIGPIPE (MSG_NOSIGNAL). */
long as_send(int fd, const void *bytes, unsigned long count);
/* recv(2). */
long as_recv(int fd, void *bytes, unsigned long count);
/* A non-blocking, close-on-exec eventfd (a pipe's read end where eventfd does not exist);
 * *write_fd receives the descriptor to write to (the same one for an eventfd). */
int as_wakeup_fd(int *write_fd);
/* Wake: write 8 bytes (an eventfd counter increment) to the write side. */
void as_wakeup_signal(int write_fd);
/* Drain the read side. */
void as_wakeup_drain(int read_fd);

/* Names the calling thread (at most 15 characters are kept on Linux). */
void as_thread_set_name(const char *name);

/* ---- Event loop groups (issue 13) ---- */
/* The number of CPUs this process may run on: the affinity mask's count on Linux, else the online CPUs;
 * at least 1. */
int as_cpu_count(void);
/* A per-thread pointer: the event loop whose thread this is (NULL on other threads). */
void as_current_loop_set(void *loop);
void *as_current_loop_get(void);

/* ---- Socket parity (issue 16): sendfile, gather writes, descriptor passing, peer credentials, MPTCP ---- */

/* IOV_MAX: the most iovec entries one sendmsg takes. */
int as_iov_max(void);
/* sendmsg(2) of `count` iovecs (struct iovec, as laid out by Glibc) with MSG_NOSIGNAL. */
long as_sendmsg_iov(int fd, const void *iov, int count);
/* send(2) of `count` bytes with MSG_NOSIGNAL and, when nfds > 0, an SCM_RIGHTS control message carrying
 * `fds` (at most AS_MAX_PASSED_DESCRIPTORS). */
long as_send_descriptors(int fd, const void *bytes, unsigned long count, const int *fds, int nfds);
/* recvmsg(2) of at most `count` bytes with MSG_CMSG_CLOEXEC and room for `max_fds` descriptors (<=
 * AS_MAX_PASSED_DESCRIPTORS). Up to `max_fds` received descriptors go to `fds` (*nfds says how many); any
 * others are closed here and counted in *dropped; *truncated is set when the kernel reported MSG_CTRUNC
 * (descriptors that did not fit the control buffer: the kernel discards them). */
long as_recv_descriptors(int fd, void *bytes, unsigned long count, int *fds, int max_fds, int *nfds,
                         int *dropped, int *truncated);
/* The largest number of descriptors one message may carry (Linux's SCM_MAX_FD). */
enum { AS_MAX_PASSED_DESCRIPTORS = 253 };
/* sendfile(2) from in_fd at *offset (advanced by what was sent) to the socket out_fd, never raising
 * SIGPIPE (blocked around the call; a SIGPIPE it raised is consumed). -1 and ENOSYS where sendfile does
 * not exist. */
long as_sendfile(int out_fd, int in_fd, long long *offset, unsigned long count);
/* pread(2) and read(2), for sendfile's fallback. */
long as_pread(int fd, void *bytes, unsigned long count, long long offset);
long as_read(int fd, void *bytes, unsigned long count);
/* The address family of a socket (getsockname), or -1. */
int as_socket_domain(int fd);
/* The peer's process id, user id and group id (SO_PEERCRED on Linux; getpeereid and LOCAL_PEERPID on
 * Darwin); -1 and errno (ENOTSUP where neither exists). */
int as_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid);
/* IPPROTO_MPTCP (262 on Linux; -1 where MPTCP does not exist). */
int as_ipproto_mptcp(void);
/* 1 when getsockopt(SOL_MPTCP, MPTCP_INFO) succeeds on fd: an MPTCP connection that did not fall back. */
int as_is_multipath(int fd);
/* ---- issue 12 (house): platform knowledge of accept(2)'s errors ---- */

/* What an accept(2) failure with `code` (an errno) asks of a server loop. */
enum {
    AS_ACCEPT_FAIL = 0,     /* a real error: report it */
    AS_ACCEPT_SKIP = 1,     /* transient, the failure of one connection: try the next one at once */
    AS_ACCEPT_BACK_OFF = 2, /* out of descriptors or memory: wait a little, the kernel keeps the backlog */
};
/* Skip: ECONNABORTED, EINTR, EPROTO, EPERM (a firewall rule), and on Linux the network errors accept(2)
 * passes on from the new connection (ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP,
 * ENETUNREACH). Back off: EMFILE, ENFILE, ENOBUFS, ENOMEM. Anything else fails. */
int as_accept_error_action(int code);
/* ---- Datagrams (issue 15): UDP and unix datagram sockets ---------------------------------------------- */

/* sizeof(struct sockaddr_storage): room for any address the kernel reports. */
unsigned int as_sockaddr_storage_size(void);

/* sendto(2) of one datagram (MSG_NOSIGNAL where it exists); address NULL (length 0) on a connected socket.
 * Returns the bytes sent (all of them: datagrams are never split) or -1 and errno. */
long as_send_datagram(int fd, const void *bytes, unsigned long count, const void *address,
                      unsigned int address_length);

/* recvmsg(2) of one datagram into bytes[0..count): the sender's address into `address` (room for
 * *address_length bytes; set to the real length, 0 when the sender has none), *truncated to 1 when the datagram
 * was longer than `count` (MSG_TRUNC in msg_flags; the rest is discarded by the kernel), else 0.
 * Returns the bytes stored (at most count) or -1 and errno. */
long as_recv_datagram(int fd, void *bytes, unsigned long count, void *address, unsigned int *address_length,
                      int *truncated);

/* The most datagrams one as_recv_datagrams or as_send_datagrams call handles. */
enum { AS_DATAGRAM_BATCH_MAX = 64 };

/* Receives up to `count` (<= AS_DATAGRAM_BATCH_MAX) datagrams: datagram i into buffer + i * slot_size (at most
 * slot_size bytes), its sender into addresses + i * as_sockaddr_storage_size() with its length in
 * address_lengths[i], its stored length in lengths[i], truncated[i] as in as_recv_datagram.
 * recvmmsg(2) on Linux, recvmsg(2) in a loop elsewhere. Returns how many were received (>= 1), or -1 and errno
 * when none was (EAGAIN: none queued). An error after the first datagram is left for the next call. */
int as_recv_datagrams(int fd, void *buffer, unsigned long slot_size, int count, void *addresses,
                      unsigned int *address_lengths, long *lengths, int *truncated);

/* Sends up to `count` (<= AS_DATAGRAM_BATCH_MAX) datagrams: datagram i is bytes[i][0..lengths[i]) to
 * addresses[i] (NULL with length 0 on a connected socket). sendmmsg(2) on Linux, sendto(2) in a loop elsewhere.
 * Returns how many were sent (>= 1), or -1 and errno when the first one failed. */
int as_send_datagrams(int fd, const void *const *bytes, const unsigned long *lengths,
                      const void *const *addresses, const unsigned int *address_lengths, int count);

/* Joins (join 1) or leaves (join 0) a multicast group on an interface (RFC 3678's MCAST_JOIN_GROUP /
 * MCAST_LEAVE_GROUP, the same call for both families): family AF_INET with `group` the 4 address bytes, or
 * AF_INET6 with the 16 bytes; interface_index 0 lets the kernel choose by route. 0, or -1 and errno. */
int as_multicast_membership(int fd, int family, int join, const void *group, unsigned int interface_index);
/* IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP. */
int as_set_multicast_loop(int fd, int family, int enabled);
/* IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS. */
int as_set_multicast_hops(int fd, int family, int hops);
/* The interface multicast datagrams are sent from, by index (0: by route): IP_MULTICAST_IF with an ip_mreqn
 * on Linux (IP_MULTICAST_IFINDEX where that exists, else only index 0) / IPV6_MULTICAST_IF. */
int as_set_multicast_interface(int fd, int family, unsigned int interface_index);

/* ---- end of datagrams ------------------------------------------------------------------------------------ */

#ifdef __cplusplus
}
#endif
#endif
