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

/* The calling thread's errno. */
int as_errno(void);

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
