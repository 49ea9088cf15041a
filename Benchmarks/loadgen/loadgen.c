/*
 * loadgen: a neutral TCP echo load generator (Linux, epoll, one thread, one process).
 *
 * It is identical for every server under test, so it is written in plain C and compiled with `cc -O2`
 * by run.sh. Every echoed byte is verified. It prints exactly one JSON line on stdout.
 *
 * Scenarios
 *   pingpong  --conns N --size S   each connection sends S bytes, waits for the whole echo, verifies it,
 *                                  repeats. Reports round trips/s and p50/p99/mean latency (µs), and
 *                                  stalled_conns: connections that completed no round trip in the window.
 *   churn     --conns N (16)       connect, send 16 bytes, read + verify the 16-byte echo, close; N
 *                                  connections in flight. Reports connections/s.
 *             With --malloc-file F (the server runs with malloccount.so and MALLOC_COUNT_FILE=F), the
 *             value is instead the server's allocation calls per round trip in the window (mallocs/rt).
 *   idle      --conns N (10000) --server-pid PID
 *                                  opens N connections (256 connecting at a time), echoes 16 bytes on each
 *                                  (verified) so the server has accepted and is serving it, then leaves
 *                                  them idle and reports the growth of the server's VmRSS per connection
 *                                  (KiB/conn; lower is better). Fails if not all echo within 10 s.
 *                                  --seconds/--warmup are ignored.
 *   bulk      --conns N (4)        full-duplex streaming: every connection writes continuously and reads
 *                                  the echo back, verifying the byte stream. Reports MB/s (10^6 bytes/s)
 *                                  of echoed data (summed over connections, one direction).
 *   fair      --conns N (4)        fairness under load: the bulk streams above, and meanwhile a second
 *                                  thread probes with fresh clients, one after another (1 ms apart): connect,
 *                                  send 64 bytes, read the echo (verified), close. Reports the probe latency
 *                                  (connect() to the last echoed byte) p50/p99/max in µs; the value is p99
 *                                  (lower is better). A probe still unanswered when the window ends counts
 *                                  with its time so far (unanswered_probes says how many).
 *
 * Common options
 *   --port P (required) --host A (default 127.0.0.1) --seconds D (measured window, default 5)
 *   --warmup W (seconds run before the window opens, default 0.5)
 *
 * Output (one line):
 *   {"scenario":"pingpong","conns":64,"size":64,"seconds":5.000,"value":123456.7,"unit":"rt/s",
 *    "ops":..., "p50_us":..., "p99_us":..., "mean_us":..., "errors":0,
 *    "cpu_user_s":..., "cpu_sys_s":..., "wall_s":..., "cpu_pct":...}
 *   cpu_pct is the load generator's own CPU time over its wall time: near 100 means the generator
 *   itself may be the bottleneck. On a fatal error (verification failure, unexpected EOF, connect
 *   failure) it prints {"error":"..."} and exits with status 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---------- options and helpers ---------- */

static const char *opt_host = "127.0.0.1";
static int opt_port = 0;
static const char *opt_scenario = "pingpong";
static int opt_conns = -1;
static int opt_size = 64;
static double opt_seconds = 5.0;
static double opt_warmup = 0.5;
static int opt_server_pid = 0;
static const char *opt_malloc_file = NULL; /* server's malloccount.so counter file (pingpong) */
static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static uint64_t read_malloc_count(void) {
    if (!opt_malloc_file) return 0;
    FILE *f = fopen(opt_malloc_file, "rb");
    if (!f) fail("cannot open malloc count file %s: %s", opt_malloc_file, strerror(errno));
    uint64_t v = 0;
    if (fread(&v, sizeof v, 1, f) != 1) fail("cannot read malloc count file %s", opt_malloc_file);
    fclose(f);
    return v;
}

static double t_start; /* wall clock at program start (after arg parsing) */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fail(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '"' || *p == '\\') *p = '\'';
    printf("{\"error\":\"%s\",\"scenario\":\"%s\",\"port\":%d}\n", msg, opt_scenario, opt_port);
    fflush(stdout);
    exit(1);
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --port P [--host 127.0.0.1] [--scenario pingpong|churn|bulk|fair|idle]\n"
            "               [--conns N] [--size BYTES] [--seconds D] [--warmup W]\n");
    exit(2);
}

static int epfd;

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) fail("fcntl: %s", strerror(errno));
}

static void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct sockaddr_in server_addr(void) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt_port);
    if (inet_pton(AF_INET, opt_host, &sa.sin_addr) != 1) fail("bad host %s", opt_host);
    return sa;
}

/* Blocking connect, then switch to non-blocking and register edge-triggered in+out. */
static int connect_blocking(int idx) {
    struct sockaddr_in sa = server_addr();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) fail("connect: %s", strerror(errno));
    set_nodelay(fd);
    set_nonblock(fd);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)idx};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    return fd;
}

/* Pseudo-random pattern bytes (xorshift), so that a misplaced or stale byte never verifies by accident. */
static uint8_t *make_pattern(size_t len, uint32_t seed) {
    uint8_t *p = malloc(len);
    if (!p) fail("out of memory");
    uint32_t x = seed ? seed : 0x9e3779b9u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 11);
    }
    return p;
}

/* ---------- latency histogram: 100 ns buckets up to 100 ms, then overflow ---------- */

#define HIST_BUCKET_NS 100u
#define HIST_BUCKETS 1000000u
static uint32_t *hist;
static uint64_t hist_overflow, hist_count;
static double hist_sum_ns;

static void hist_add(uint64_t ns) {
    uint64_t b = ns / HIST_BUCKET_NS;
    if (b >= HIST_BUCKETS) hist_overflow++;
    else hist[b]++;
    hist_count++;
    hist_sum_ns += (double)ns;
}

static double hist_percentile_us(double q) {
    if (hist_count == 0) return 0;
    uint64_t target = (uint64_t)(q * (double)hist_count);
    if (target >= hist_count) target = hist_count - 1;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        acc += hist[i];
        if (acc > target) return ((double)i + 0.5) * HIST_BUCKET_NS / 1000.0;
    }
    return (double)HIST_BUCKETS * HIST_BUCKET_NS / 1000.0;
}

/* ---------- result line ---------- */

static void report(const char *unit, double value, uint64_t ops, int with_latency, const char *extra) {
    double wall = now_s() - t_start;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double u = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
    double s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    printf("{\"scenario\":\"%s\",\"conns\":%d,\"size\":%d,\"seconds\":%.3f,\"value\":%.3f,\"unit\":\"%s\","
           "\"ops\":%llu",
           opt_scenario, opt_conns, opt_size, opt_seconds, value, unit, (unsigned long long)ops);
    if (with_latency)
        printf(",\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f", hist_percentile_us(0.50),
               hist_percentile_us(0.99), hist_count ? hist_sum_ns / (double)hist_count / 1000.0 : 0.0);
    if (extra) printf(",%s", extra);
    printf(",\"errors\":0,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"wall_s\":%.3f,\"cpu_pct\":%.1f}\n", u, s,
           wall, wall > 0 ? 100.0 * (u + s) / wall : 0.0);
    fflush(stdout);
}

/* ---------- pingpong ---------- */

struct pp_conn {
    int fd;
    uint32_t round;
    int sent, recvd;
    const uint8_t *msg; /* pattern slice for this round */
    uint64_t t0;
    uint64_t window_ops; /* round trips completed inside the measurement window */
};

static const uint8_t *pp_pattern;

static const uint8_t *pp_msg_for(int idx, uint32_t round) {
    return pp_pattern + ((uint32_t)idx * 13u + round * 7u) % 1024u;
}

/* Returns 0 normally. Writes as much of the current message as the socket takes. */
static void pp_try_send(struct pp_conn *c) {
    while (c->sent < opt_size) {
        ssize_t n = send(c->fd, c->msg + c->sent, (size_t)(opt_size - c->sent), MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (int)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            fail("send: %s", n < 0 ? strerror(errno) : "zero");
        }
    }
}

static void pp_start_round(struct pp_conn *c, int idx) {
    c->round++;
    c->msg = pp_msg_for(idx, c->round);
    c->sent = 0;
    c->recvd = 0;
    c->t0 = now_ns();
    pp_try_send(c);
}

static void run_pingpong(void) {
    if (opt_conns < 1) opt_conns = 1;
    if (opt_size < 1) fail("size must be >= 1");
    hist = calloc(HIST_BUCKETS, sizeof *hist);
    pp_pattern = make_pattern((size_t)opt_size + 1024, 12345);
    struct pp_conn *conns = calloc((size_t)opt_conns, sizeof *conns);
    uint8_t *rbuf = malloc((size_t)opt_size);
    if (!hist || !conns || !rbuf) fail("out of memory");

    for (int i = 0; i < opt_conns; i++) conns[i].fd = connect_blocking(i);

    double t_window = now_s() + opt_warmup;
    double t_end = t_window + opt_seconds;
    int measuring = 0, stopping = 0;
    uint64_t ops = 0, mallocs0 = 0, mallocs1 = 0;
    for (int i = 0; i < opt_conns; i++) pp_start_round(&conns[i], i);

    struct epoll_event evs[512];
    while (!stopping) {
        int n = epoll_wait(epfd, evs, 512, 50);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < n; e++) {
            int idx = (int)evs[e].data.u64;
            struct pp_conn *c = &conns[idx];
            if (c->sent < opt_size && (evs[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) pp_try_send(c);
            /* Read whatever is there, never beyond the current message. */
            for (;;) {
                if (c->sent < opt_size) break; /* server cannot legitimately echo more than we sent */
                ssize_t r = recv(c->fd, rbuf, (size_t)(opt_size - c->recvd), 0);
                if (r > 0) {
                    if (memcmp(rbuf, c->msg + c->recvd, (size_t)r) != 0)
                        fail("verification failed on connection %d round %u offset %d", idx, c->round, c->recvd);
                    c->recvd += (int)r;
                    if (c->recvd == opt_size) {
                        uint64_t t1 = now_ns();
                        if (measuring) {
                            hist_add(t1 - c->t0);
                            ops++;
                            c->window_ops++;
                        }
                        /* The next echo arrives after this send and raises a new edge: no extra recv. */
                        pp_start_round(c, idx);
                        break;
                    }
                } else if (r == 0) {
                    fail("server closed connection %d", idx);
                } else if (errno == EINTR) {
                    continue;
                } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    break;
                } else {
                    fail("recv: %s", strerror(errno));
                }
            }
        }
        double t = now_s();
        if (!measuring && t >= t_window) {
            measuring = 1;
            mallocs0 = read_malloc_count();
        }
        if (t >= t_end) {
            stopping = 1;
            mallocs1 = read_malloc_count();
        }
    }
    /* Connections that completed no round trip in the window are stuck (a lost wake-up in the server). */
    int stalled = 0;
    for (int i = 0; i < opt_conns; i++)
        if (conns[i].window_ops == 0) stalled++;
    char extra[160];
    if (opt_malloc_file) {
        /* The value becomes the server's allocation calls per round trip (lower is better). */
        double per_op = ops ? (double)(mallocs1 - mallocs0) / (double)ops : 0.0;
        snprintf(extra, sizeof extra, "\"stalled_conns\":%d,\"rt_per_s\":%.1f,\"mallocs\":%llu", stalled,
                 (double)ops / opt_seconds, (unsigned long long)(mallocs1 - mallocs0));
        report("mallocs/rt", per_op, ops, 1, extra);
    } else {
        snprintf(extra, sizeof extra, "\"stalled_conns\":%d", stalled);
        report("rt/s", (double)ops / opt_seconds, ops, 1, extra);
    }
    for (int i = 0; i < opt_conns; i++) close(conns[i].fd);
}

/* ---------- churn ---------- */

#define CHURN_MSG 16
#define CHURN_PORT_LO 10000
#define CHURN_SOURCES 8 /* source addresses 127.0.0.2 ... 127.0.0.9 */
struct ch_conn {
    int fd;
    int sent, recvd;
    const uint8_t *msg;
    uint32_t serial;
    uint64_t t0;
};

static const uint8_t *ch_pattern;
static uint32_t ch_serial;

static void ch_open(struct ch_conn *c, int idx) {
    static struct sockaddr_in sa;
    static int sa_ready = 0;
    if (!sa_ready) {
        sa = server_addr();
        sa_ready = 1;
    }
    /* The kernel's ephemeral port search dominates a churn client's CPU once tens of thousands of
     * TIME_WAIT sockets exist (__inet_hash_connect scanning ports): with it, the load generator, not
     * the server, limited churn. So pick source tuples ourselves, round robin over 8 loopback source
     * addresses (127.0.0.2-9) times the ports from 10000 up to the start of the kernel's ephemeral range,
     * with SO_REUSEADDR; a tuple that is taken (or a TIME_WAIT tuple the kernel will not reuse yet) is
     * skipped. Loopback allows reusing a TIME_WAIT tuple after 1 s (net.ipv4.tcp_tw_reuse = 2).
     * Staying below the ephemeral range matters: an explicitly bound port, even in TIME_WAIT, is one the
     * kernel's own port choice skips, and tens of thousands of them left other programs' connect() with
     * EADDRNOTAVAIL (the bulk scenario after churn, once). */
    static uint32_t next_tuple = 0;
    static uint32_t ports = 0;
    if (ports == 0) {
        unsigned lo = 32768, hi = 60999;
        FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
        if (f) {
            if (fscanf(f, "%u %u", &lo, &hi) != 2) lo = 32768;
            fclose(f);
        }
        ports = lo > CHURN_PORT_LO + 1000 ? lo - CHURN_PORT_LO : 1000;
    }
    int fd = -1;
    for (int attempt = 0;; attempt++) {
        if (attempt == 2000) fail("churn: no usable source port (last error: %s)", strerror(errno));
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) fail("socket: %s", strerror(errno));
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in src = sa;
        src.sin_addr.s_addr = htonl(0x7f000002u + next_tuple % CHURN_SOURCES);
        src.sin_port = htons((uint16_t)(CHURN_PORT_LO + (next_tuple / CHURN_SOURCES) % ports));
        next_tuple = (next_tuple + 1) % (ports * CHURN_SOURCES);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
            close(fd);
            continue;
        }
        int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        if (r == 0 || errno == EINPROGRESS) break;
        if (errno != EADDRNOTAVAIL && errno != EADDRINUSE) fail("connect: %s", strerror(errno));
        close(fd);
    }
    set_nodelay(fd);
    c->fd = fd;
    c->sent = 0;
    c->recvd = 0;
    c->serial = ++ch_serial;
    c->msg = ch_pattern + (c->serial % 1021u);
    c->t0 = now_ns();
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)idx};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
}

static void run_churn(void) {
    if (opt_conns < 1) opt_conns = 16;
    opt_size = CHURN_MSG;
    hist = calloc(HIST_BUCKETS, sizeof *hist);
    ch_pattern = make_pattern(1024 + CHURN_MSG, 777);
    struct ch_conn *conns = calloc((size_t)opt_conns, sizeof *conns);
    if (!hist || !conns) fail("out of memory");

    double t_window = now_s() + opt_warmup;
    double t_end = t_window + opt_seconds;
    int measuring = 0, stopping = 0;
    uint64_t ops = 0;
    for (int i = 0; i < opt_conns; i++) ch_open(&conns[i], i);

    struct epoll_event evs[512];
    uint8_t rbuf[CHURN_MSG];
    while (!stopping) {
        int n = epoll_wait(epfd, evs, 512, 50);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < n; e++) {
            int idx = (int)evs[e].data.u64;
            struct ch_conn *c = &conns[idx];
            uint32_t evmask = evs[e].events;
            if (c->sent < CHURN_MSG) {
                if (evmask & (EPOLLERR | EPOLLHUP)) {
                    int err = 0;
                    socklen_t len = sizeof err;
                    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                    fail("connect failed: %s", strerror(err ? err : ECONNRESET));
                }
                if (!(evmask & EPOLLOUT)) continue;
                while (c->sent < CHURN_MSG) {
                    ssize_t w = send(c->fd, c->msg + c->sent, (size_t)(CHURN_MSG - c->sent), MSG_NOSIGNAL);
                    if (w > 0) c->sent += (int)w;
                    else if (w < 0 && errno == EINTR) continue;
                    else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                    else fail("send: %s", w < 0 ? strerror(errno) : "zero");
                }
                if (c->sent < CHURN_MSG) continue;
            }
            for (;;) {
                ssize_t r = recv(c->fd, rbuf, (size_t)(CHURN_MSG - c->recvd), 0);
                if (r > 0) {
                    if (memcmp(rbuf, c->msg + c->recvd, (size_t)r) != 0)
                        fail("verification failed on churn connection %u", c->serial);
                    c->recvd += (int)r;
                    if (c->recvd == CHURN_MSG) {
                        close(c->fd); /* also removes it from the epoll set */
                        if (measuring) {
                            ops++;
                            hist_add(now_ns() - c->t0);
                        }
                        if (!stopping) ch_open(c, idx);
                        break;
                    }
                } else if (r == 0) {
                    fail("server closed churn connection %u before echoing", c->serial);
                } else if (errno == EINTR) {
                    continue;
                } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    break;
                } else {
                    fail("recv: %s", strerror(errno));
                }
            }
        }
        double t = now_s();
        if (!measuring && t >= t_window) measuring = 1;
        if (t >= t_end) stopping = 1;
    }
    report("conn/s", (double)ops / opt_seconds, ops, 1, NULL);
    for (int i = 0; i < opt_conns; i++) close(conns[i].fd);
}

/* ---------- bulk ---------- */

#define BULK_CHUNK 65536
#define BULK_PLEN 65521u /* prime period so chunk boundaries never line up with the pattern */

struct bk_conn {
    int fd;
    uint64_t written, readback;
};

/* ---------- fair: probes by fresh clients while the bulk streams run ---------- */

#define PROBE_SIZE 64
static volatile int probe_measuring, probe_stop; /* set by the bulk thread; read by the probe thread */
static uint64_t *probe_ns;                       /* latencies of the probes in the window */
static size_t probe_count, probe_cap;
static int probe_unanswered;
static pthread_mutex_t probe_mutex = PTHREAD_MUTEX_INITIALIZER;

static void probe_record(uint64_t ns) {
    if (probe_count == probe_cap) {
        probe_cap = probe_cap ? probe_cap * 2 : 4096;
        probe_ns = realloc(probe_ns, probe_cap * sizeof *probe_ns);
        if (!probe_ns) fail("out of memory");
    }
    probe_ns[probe_count++] = ns;
}

/* Waits (50 ms slices, so that the end of the window is noticed) until fd has `events`; 0 when stopping. */
static int probe_wait(int fd, short events) {
    for (;;) {
        if (probe_stop) return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, 50);
        if (r > 0) return 1;
        if (r < 0 && errno != EINTR) fail("probe poll: %s", strerror(errno));
    }
}

static void *probe_main(void *arg) {
    (void)arg;
    const uint8_t *pattern = make_pattern(PROBE_SIZE + 1024, 31337);
    struct sockaddr_in sa = server_addr();
    uint8_t rbuf[PROBE_SIZE];
    for (uint32_t serial = 0; !probe_stop; serial++) {
        const uint8_t *msg = pattern + (serial * 7u) % 1024u;
        int counted = probe_measuring;
        uint64_t t0 = now_ns();
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) fail("probe socket: %s", strerror(errno));
        set_nodelay(fd);
        int done = 0, sent = 0, recvd = 0;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
            fail("probe connect: %s", strerror(errno));
        while (!done) {
            if (sent < PROBE_SIZE) {
                if (!probe_wait(fd, POLLOUT)) break;
                ssize_t w = send(fd, msg + sent, (size_t)(PROBE_SIZE - sent), MSG_NOSIGNAL);
                if (w > 0) sent += (int)w;
                else if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
                else fail("probe send: %s", w < 0 ? strerror(errno) : "zero");
                continue;
            }
            if (!probe_wait(fd, POLLIN)) break;
            ssize_t r = recv(fd, rbuf, (size_t)(PROBE_SIZE - recvd), 0);
            if (r > 0) {
                if (memcmp(rbuf, msg + recvd, (size_t)r) != 0) fail("probe: verification failed");
                recvd += (int)r;
                done = recvd == PROBE_SIZE;
            } else if (r == 0) {
                fail("probe: server closed the connection before echoing");
            } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
                fail("probe recv: %s", strerror(errno));
            }
        }
        uint64_t t1 = now_ns();
        close(fd);
        pthread_mutex_lock(&probe_mutex);
        if (counted || probe_measuring) {
            if (done) probe_record(t1 - t0);
            else if (counted) { probe_record(t1 - t0); probe_unanswered++; }
        }
        pthread_mutex_unlock(&probe_mutex);
        if (!done) break;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double probe_quantile_us(double q) {
    if (probe_count == 0) return 0;
    size_t i = (size_t)(q * (double)probe_count);
    if (i >= probe_count) i = probe_count - 1;
    return (double)probe_ns[i] / 1000.0;
}

static void run_bulk(void) {
    int fair = !strcmp(opt_scenario, "fair");
    if (opt_conns < 1) opt_conns = 4;
    opt_size = BULK_CHUNK;
    uint8_t *pattern = make_pattern(BULK_PLEN + BULK_CHUNK, 4242);
    /* Periodic extension (stream byte k is pattern[k % BULK_PLEN]); byte by byte since the ranges overlap. */
    for (size_t j = 0; j < BULK_CHUNK; j++) pattern[BULK_PLEN + j] = pattern[j];
    struct bk_conn *conns = calloc((size_t)opt_conns, sizeof *conns);
    uint8_t *rbuf = malloc(BULK_CHUNK);
    if (!conns || !rbuf) fail("out of memory");
    for (int i = 0; i < opt_conns; i++) conns[i].fd = connect_blocking(i);

    double t_window = now_s() + opt_warmup;
    double t_end = t_window + opt_seconds;
    int measuring = 0;
    pthread_t prober;
    if (fair && pthread_create(&prober, NULL, probe_main, NULL) != 0) fail("pthread_create failed");
    uint64_t bytes_at_window = 0, total_read = 0, bytes_at_end = 0;

    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(epfd, evs, 64, 50);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < n; e++) {
            int idx = (int)evs[e].data.u64;
            struct bk_conn *c = &conns[idx];
            /* Read everything available and verify it against the stream position. */
            for (;;) {
                ssize_t r = recv(c->fd, rbuf, BULK_CHUNK, 0);
                if (r > 0) {
                    if ((uint64_t)r + c->readback > c->written) fail("bulk: echoed more than written");
                    if (memcmp(rbuf, pattern + (c->readback % BULK_PLEN), (size_t)r) != 0)
                        fail("bulk: verification failed on connection %d at offset %llu", idx,
                             (unsigned long long)c->readback);
                    c->readback += (uint64_t)r;
                    total_read += (uint64_t)r;
                } else if (r == 0) {
                    fail("server closed bulk connection %d", idx);
                } else if (errno == EINTR) {
                    continue;
                } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    break;
                } else {
                    fail("recv: %s", strerror(errno));
                }
            }
            /* Write until the socket pushes back. */
            for (;;) {
                ssize_t w = send(c->fd, pattern + (c->written % BULK_PLEN), BULK_CHUNK, MSG_NOSIGNAL);
                if (w > 0) c->written += (uint64_t)w;
                else if (w < 0 && errno == EINTR) continue;
                else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                else fail("send: %s", w < 0 ? strerror(errno) : "zero");
            }
        }
        double t = now_s();
        if (!measuring && t >= t_window) {
            measuring = 1;
            probe_measuring = 1;
            bytes_at_window = total_read;
        }
        if (t >= t_end) {
            bytes_at_end = total_read;
            break;
        }
    }
    uint64_t bytes = bytes_at_end - bytes_at_window;
    if (fair) {
        probe_stop = 1;
        pthread_join(prober, NULL);
        qsort(probe_ns, probe_count, sizeof *probe_ns, cmp_u64);
        char extra[256];
        snprintf(extra, sizeof extra,
                 "\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"probes\":%zu,\"unanswered_probes\":%d,"
                 "\"bulk_mbps\":%.1f",
                 probe_quantile_us(0.50), probe_quantile_us(0.99),
                 probe_count ? (double)probe_ns[probe_count - 1] / 1000.0 : 0.0, probe_count, probe_unanswered,
                 (double)bytes / opt_seconds / 1e6);
        report("us", probe_quantile_us(0.99), probe_count, 0, extra);
    } else {
        report("MB/s", (double)bytes / opt_seconds / 1e6, bytes, 0, NULL);
    }
    for (int i = 0; i < opt_conns; i++) close(conns[i].fd);
}


/* ---------- idle: server memory per idle connection ---------- */

static long read_rss_kib(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) fail("cannot read %s: %s", path, strerror(errno));
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
    fclose(f);
    if (kib < 0) fail("no VmRSS in %s", path);
    return kib;
}

static void sleep_s(double s) {
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void run_idle(void) {
    if (opt_conns < 1) opt_conns = 10000;
    opt_size = CHURN_MSG;
    if (opt_server_pid <= 0) fail("idle needs --server-pid");
    const uint8_t *pattern = make_pattern(1024 + CHURN_MSG, 99);
    struct ch_conn *conns = calloc((size_t)opt_conns, sizeof *conns);
    if (!conns) fail("out of memory");
    struct sockaddr_in sa = server_addr();
    sleep_s(0.2);
    long rss0 = read_rss_kib(opt_server_pid);

    int opened = 0, done = 0, inflight = 0;
    uint8_t rbuf[CHURN_MSG];
    struct epoll_event evs[512];
    double deadline = now_s() + 10;
    while (done < opt_conns) {
        while (opened < opt_conns && inflight < 256) {
            struct ch_conn *c = &conns[opened];
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) fail("socket (connection %d): %s", opened, strerror(errno));
            set_nodelay(fd);
            if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
                fail("connect (connection %d): %s", opened, strerror(errno));
            c->fd = fd;
            c->msg = pattern + (opened % 1021);
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)opened};
            if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
            opened++;
            inflight++;
        }
        if (now_s() > deadline) fail("idle: only %d of %d connections echoed within 10 s", done, opt_conns);
        int n = epoll_wait(epfd, evs, 512, 100);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < n; e++) {
            int idx = (int)evs[e].data.u64;
            struct ch_conn *c = &conns[idx];
            if (c->recvd == CHURN_MSG) continue;
            if (c->sent < CHURN_MSG) {
                if (evs[e].events & (EPOLLERR | EPOLLHUP)) fail("idle: connection %d failed", idx);
                if (!(evs[e].events & EPOLLOUT)) continue;
                ssize_t w = send(c->fd, c->msg, CHURN_MSG, MSG_NOSIGNAL);
                if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
                if (w != CHURN_MSG) fail("idle: send on connection %d: %s", idx, w < 0 ? strerror(errno) : "short");
                c->sent = CHURN_MSG;
            }
            for (;;) {
                ssize_t r = recv(c->fd, rbuf, (size_t)(CHURN_MSG - c->recvd), 0);
                if (r > 0) {
                    if (memcmp(rbuf, c->msg + c->recvd, (size_t)r) != 0) fail("idle: verification failed on %d", idx);
                    c->recvd += (int)r;
                    if (c->recvd == CHURN_MSG) {
                        /* Keep the descriptor open but stop watching it. */
                        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                        done++;
                        inflight--;
                        break;
                    }
                } else if (r == 0) {
                    fail("idle: server closed connection %d", idx);
                } else if (errno == EINTR) {
                    continue;
                } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    break;
                } else {
                    fail("idle: recv: %s", strerror(errno));
                }
            }
        }
    }
    sleep_s(0.5);
    long rss1 = read_rss_kib(opt_server_pid);
    char extra[128];
    snprintf(extra, sizeof extra, "\"rss_before_kib\":%ld,\"rss_after_kib\":%ld", rss0, rss1);
    report("KiB/conn", (double)(rss1 - rss0) / (double)opt_conns, (uint64_t)opt_conns, 0, extra);
    for (int i = 0; i < opt_conns; i++) close(conns[i].fd);
}

/* ---------- main ---------- */

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage();
        if (!v) usage();
        if (!strcmp(a, "--port")) opt_port = atoi(v);
        else if (!strcmp(a, "--host")) opt_host = v;
        else if (!strcmp(a, "--scenario")) opt_scenario = v;
        else if (!strcmp(a, "--conns")) opt_conns = atoi(v);
        else if (!strcmp(a, "--size")) opt_size = atoi(v);
        else if (!strcmp(a, "--seconds")) opt_seconds = atof(v);
        else if (!strcmp(a, "--warmup")) opt_warmup = atof(v);
        else if (!strcmp(a, "--server-pid")) opt_server_pid = atoi(v);
        else if (!strcmp(a, "--malloc-file")) opt_malloc_file = v;
        else usage();
        i++;
    }
    if (opt_port <= 0 || opt_port > 65535 || opt_seconds <= 0 || opt_warmup < 0) usage();
    signal(SIGPIPE, SIG_IGN);
    t_start = now_s();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) fail("epoll_create1: %s", strerror(errno));
    if (!strcmp(opt_scenario, "pingpong")) run_pingpong();
    else if (!strcmp(opt_scenario, "churn")) run_churn();
    else if (!strcmp(opt_scenario, "bulk") || !strcmp(opt_scenario, "fair")) run_bulk();
    else if (!strcmp(opt_scenario, "idle")) run_idle();
    else usage();
    return 0;
}
