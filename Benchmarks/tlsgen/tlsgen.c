/*
 * tlsgen: a neutral TLS echo load generator (Linux, OpenSSL 3, epoll edge-triggered, one thread, one process).
 *
 * The TLS counterpart of loadgen: identical for every server under test, compiled by tls.sh with
 * `cc -O2 ... -lssl -lcrypto`. Non-blocking SSL_connect/SSL_read/SSL_write with WANT_READ/WANT_WRITE
 * handling over non-blocking sockets. Every echoed byte is verified. It prints exactly one JSON line on stdout.
 *
 * TLS: TLS 1.3 only, one cipher suite (--ciphersuites, default TLS_AES_128_GCM_SHA256), one key-exchange group
 * (--groups, default X25519), no certificate verification (the servers' certificate is self-signed and made at
 * run time), no session resumption: no session cache, SSL_OP_NO_TICKET, and no session is ever offered, so
 * every handshake is a full one. The negotiated cipher and group of the first connection are reported
 * ("cipher", "group") so a server that negotiated something else is visible.
 *
 * Scenarios
 *   pingpong   --conns N --size S   each connection sends S bytes, waits for the whole echo, verifies it,
 *                                   repeats. Round trips/s, p50/p99/mean latency (µs), stalled_conns.
 *   bulk       --conns N (4)        full-duplex streaming: every connection writes 16 KiB records continuously
 *                                   and reads the echo back, verifying the stream. MB/s (10^6 B/s) echoed,
 *                                   stalled_conns, least_share (the slowest connection's bytes over an equal
 *                                   split: 1.0 when all moved as much). Connections take turns (round robin,
 *                                   one read-all-then-write pass each), so a fast server cannot let one
 *                                   connection keep the generator busy while the others wait.
 *   handshakes --conns N (16)       N in flight, each: connect, full handshake, 16-byte echo (verified),
 *                                   close_notify, wait for the server's end of stream, close. Handshakes/s,
 *                                   p50/p99 of connect() to close (µs). The server closes first, so no
 *                                   TIME_WAIT piles up on the generator's side.
 *
 * Options: --port P (required) --host A (127.0.0.1) --seconds D (5) --warmup W (0.5)
 *          --ciphersuites S (TLS_AES_128_GCM_SHA256) --groups G (X25519)
 *
 * Output: {"scenario":..., "conns":..., "size":..., "seconds":..., "value":..., "unit":..., "ops":...,
 *          ["p50_us", "p99_us", "mean_us",] "cipher":..., "group":..., "errors":0,
 *          "cpu_user_s":..., "cpu_sys_s":..., "wall_s":..., "cpu_pct":...}
 *   cpu_pct is the generator's own CPU time over its wall time: near 100 means the generator itself may be the
 *   bottleneck. On a fatal error it prints {"error":"..."} and exits with status 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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

static const char *opt_host = "127.0.0.1";
static int opt_port = 0;
static const char *opt_scenario = "pingpong";
static int opt_conns = -1;
static int opt_size = 64;
static double opt_seconds = 5.0;
static double opt_warmup = 0.5;
static const char *opt_ciphers = "TLS_AES_128_GCM_SHA256";
static const char *opt_groups = "X25519";

static SSL_CTX *ctx;
static int epfd;
static double t_start;
static char negotiated_cipher[64] = "", negotiated_group[64] = "";

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
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

static const char *ssl_error_text(void) {
    static char buf[256];
    unsigned long e = ERR_get_error();
    if (!e) return errno ? strerror(errno) : "no OpenSSL error";
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
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
static uint64_t hist_count;
static double hist_sum_ns;

static void hist_add(uint64_t ns) {
    uint64_t b = ns / HIST_BUCKET_NS;
    if (b < HIST_BUCKETS) hist[b]++;
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
    printf(",\"cipher\":\"%s\",\"group\":\"%s\",\"errors\":0,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,"
           "\"wall_s\":%.3f,\"cpu_pct\":%.1f}\n",
           negotiated_cipher, negotiated_group, u, s, wall, wall > 0 ? 100.0 * (u + s) / wall : 0.0);
    fflush(stdout);
}

/* ---------- TLS and sockets ---------- */

static void make_context(void) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) fail("SSL_CTX_new: %s", ssl_error_text());
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) || !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
        fail("cannot restrict to TLS 1.3");
    if (!SSL_CTX_set_ciphersuites(ctx, opt_ciphers)) fail("bad --ciphersuites %s", opt_ciphers);
    if (!SSL_CTX_set1_groups_list(ctx, opt_groups)) fail("bad --groups %s", opt_groups);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* No resumption: no client session cache, no tickets asked for, and no session is ever set on an SSL. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read-ahead into a 64 KiB buffer: one read() for several records instead of two (header, body) per record,
     * which halves the generator's reads in bulk, where it is the bottleneck. The same for every server. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 65536);
}

static struct sockaddr_in server_addr(void) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt_port);
    if (inet_pton(AF_INET, opt_host, &sa.sin_addr) != 1) fail("bad host %s", opt_host);
    return sa;
}

/* A non-blocking socket connecting to the server (EINPROGRESS is fine: the handshake waits for writability
 * through SSL_connect's WANT_WRITE/WANT_READ), registered edge-triggered for in+out with `tag`. */
static int open_socket(uint64_t tag) {
    struct sockaddr_in sa = server_addr();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) fail("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        fail("connect: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    return fd;
}

static SSL *new_ssl(int fd) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd)) fail("SSL_new: %s", ssl_error_text());
    SSL_set_connect_state(ssl);
    return ssl;
}

static void note_negotiated(SSL *ssl) {
    if (negotiated_cipher[0]) return;
    snprintf(negotiated_cipher, sizeof negotiated_cipher, "%s", SSL_get_cipher_name(ssl));
    int nid = SSL_get_negotiated_group(ssl);
    const char *g = nid > 0 ? OBJ_nid2sn(nid) : NULL;
    snprintf(negotiated_group, sizeof negotiated_group, "%s", g ? g : "?");
}

/* The outcome of one non-blocking SSL call: progress (> 0 bytes or handshake done), blocked, or closed. */
enum { IO_DONE = 1, IO_BLOCKED = 0, IO_EOF = -1 };

static int classify(SSL *ssl, int ret, const char *what, int idx) {
    int err = SSL_get_error(ssl, ret);
    switch (err) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: return IO_BLOCKED;
    case SSL_ERROR_ZERO_RETURN: return IO_EOF;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && (errno == 0 || errno == ECONNRESET || errno == EPIPE)) return IO_EOF;
        fail("%s on connection %d: syscall error: %s", what, idx, errno ? strerror(errno) : "EOF");
    default: fail("%s on connection %d: %s", what, idx, ssl_error_text());
    }
}

/* ---------- pingpong ---------- */

#define PP_PLEN 65536u

struct pp_conn {
    int fd;
    SSL *ssl;
    int handshaken, sending;
    uint32_t msg;       /* message number: selects the pattern slice */
    int got;            /* bytes of the echo received */
    uint64_t t0, rts;
};

static uint8_t *pp_pattern;
static uint8_t *pp_rbuf;
static int pp_measuring;
static uint64_t pp_total;

static const uint8_t *pp_message(const struct pp_conn *c) {
    return pp_pattern + ((uint64_t)c->msg * 7919u) % PP_PLEN;
}

/* Make all the progress this connection can make until its socket blocks. */
static void pp_drive(struct pp_conn *c, int idx) {
    ERR_clear_error();
    if (!c->handshaken) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            if (classify(c->ssl, r, "handshake", idx) == IO_EOF) fail("server closed connection %d in handshake", idx);
            return;
        }
        c->handshaken = 1;
        note_negotiated(c->ssl);
        c->sending = 1;
    }
    for (;;) {
        if (c->sending) {
            c->t0 = now_ns();
            int w = SSL_write(c->ssl, pp_message(c), opt_size);
            if (w <= 0) {
                if (classify(c->ssl, w, "SSL_write", idx) == IO_EOF) fail("server closed connection %d", idx);
                return; /* SSL_write must be repeated with the same arguments: `sending` stays set */
            }
            c->sending = 0;
            c->got = 0;
        }
        int r = SSL_read(c->ssl, pp_rbuf, opt_size - c->got);
        if (r <= 0) {
            if (classify(c->ssl, r, "SSL_read", idx) == IO_EOF) fail("server closed connection %d", idx);
            return;
        }
        if (memcmp(pp_rbuf, pp_message(c) + c->got, (size_t)r) != 0)
            fail("pingpong: verification failed on connection %d", idx);
        c->got += r;
        if (c->got == opt_size) {
            if (pp_measuring) {
                hist_add(now_ns() - c->t0);
                c->rts++;
                pp_total++;
            }
            c->msg++;
            c->sending = 1;
        }
    }
}

static void run_pingpong(void) {
    if (opt_conns < 1) opt_conns = 1;
    if (opt_size < 1 || opt_size > 16384) fail("--size must be 1...16384");
    pp_pattern = make_pattern(PP_PLEN + (size_t)opt_size, 1234);
    pp_rbuf = malloc((size_t)opt_size);
    struct pp_conn *conns = calloc((size_t)opt_conns, sizeof *conns);
    if (!pp_rbuf || !conns) fail("out of memory");
    for (int i = 0; i < opt_conns; i++) {
        conns[i].fd = open_socket((uint64_t)i);
        conns[i].ssl = new_ssl(conns[i].fd);
        conns[i].msg = (uint32_t)i * 1000003u;
    }
    for (int i = 0; i < opt_conns; i++) pp_drive(&conns[i], i);
    double t_window = now_s() + opt_warmup, t_end = t_window + opt_seconds;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(epfd, evs, 256, 50);
        if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
        for (int e = 0; e < n; e++) pp_drive(&conns[evs[e].data.u64], (int)evs[e].data.u64);
        double t = now_s();
        if (!pp_measuring && t >= t_window) pp_measuring = 1;
        if (t >= t_end) break;
    }
    int stalled = 0;
    for (int i = 0; i < opt_conns; i++) stalled += conns[i].rts == 0;
    char extra[64];
    snprintf(extra, sizeof extra, "\"stalled_conns\":%d", stalled);
    report("rt/s", (double)pp_total / opt_seconds, pp_total, 1, extra);
}

/* ---------- bulk ---------- */

#define BULK_CHUNK 16384 /* one full TLS record per SSL_write */
#define BULK_PLEN 65521u /* prime period so record boundaries never line up with the pattern */

struct bk_conn {
    int fd;
    SSL *ssl;
    int handshaken;
    int again; /* made progress in its last turn: drive it again before waiting for a readiness edge */
    uint64_t written, readback, at_window;
};

static uint8_t *bk_pattern, *bk_rbuf;
static uint64_t bk_total;

/* One turn of a connection: read what is there, write up to the cap. Returns whether it made progress (then
 * the caller drives it again after the other connections' turns, without waiting for an edge: the socket may
 * still be readable or writable); 0 when both directions are blocked (the next edge brings it back). One turn
 * at a time, round robin, so that one connection whose server echoes at once cannot keep the generator to
 * itself and starve the others (it did: against a fast server, tlsgen made ~10 epoll_wait calls in a run). */
static int bk_drive(struct bk_conn *c, int idx) {
    ERR_clear_error();
    if (!c->handshaken) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            if (classify(c->ssl, r, "handshake", idx) == IO_EOF) fail("server closed connection %d in handshake", idx);
            return 0;
        }
        c->handshaken = 1;
        note_negotiated(c->ssl);
    }
    {
        int progress = 0;
        /* Read everything available and verify it against the stream position. */
        for (;;) {
            int r = SSL_read(c->ssl, bk_rbuf, 65536);
            if (r <= 0) {
                if (classify(c->ssl, r, "SSL_read", idx) == IO_EOF) fail("server closed bulk connection %d", idx);
                break;
            }
            if ((uint64_t)r + c->readback > c->written) fail("bulk: echoed more than written");
            if (memcmp(bk_rbuf, bk_pattern + (c->readback % BULK_PLEN), (size_t)r) != 0)
                fail("bulk: verification failed on connection %d at offset %llu", idx, (unsigned long long)c->readback);
            c->readback += (uint64_t)r;
            bk_total += (uint64_t)r;
            progress = 1;
        }
        /* Write until the socket pushes back (a blocked SSL_write is retried with the same slice: the
         * stream position only moves once it has succeeded). Keep at most 1 MiB unechoed per connection. */
        while (c->written - c->readback < (1u << 20)) {
            int w = SSL_write(c->ssl, bk_pattern + (c->written % BULK_PLEN), BULK_CHUNK);
            if (w <= 0) {
                if (classify(c->ssl, w, "SSL_write", idx) == IO_EOF) fail("server closed bulk connection %d", idx);
                break;
            }
            c->written += (uint64_t)w;
            progress = 1;
        }
        return progress;
    }
}

static void run_bulk(void) {
    if (opt_conns < 1) opt_conns = 4;
    opt_size = BULK_CHUNK;
    bk_pattern = make_pattern(BULK_PLEN + BULK_CHUNK, 4242);
    for (size_t j = 0; j < BULK_CHUNK; j++) bk_pattern[BULK_PLEN + j] = bk_pattern[j];
    bk_rbuf = malloc(65536);
    struct bk_conn *conns = calloc((size_t)opt_conns, sizeof *conns);
    if (!bk_rbuf || !conns) fail("out of memory");
    for (int i = 0; i < opt_conns; i++) {
        conns[i].fd = open_socket((uint64_t)i);
        conns[i].ssl = new_ssl(conns[i].fd);
    }
    for (int i = 0; i < opt_conns; i++) conns[i].again = 1;
    double t_window = now_s() + opt_warmup, t_end = t_window + opt_seconds;
    int measuring = 0;
    uint64_t at_window = 0, at_end = 0;
    struct epoll_event evs[64];
    for (;;) {
        int busy = 0;
        for (int i = 0; i < opt_conns; i++) busy |= conns[i].again;
        int n = epoll_wait(epfd, evs, 64, busy ? 0 : 50);
        if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
        for (int e = 0; e < n; e++) conns[evs[e].data.u64].again = 1;
        for (int i = 0; i < opt_conns; i++)
            if (conns[i].again) conns[i].again = bk_drive(&conns[i], i);
        double t = now_s();
        if (!measuring && t >= t_window) {
            measuring = 1;
            at_window = bk_total;
            for (int i = 0; i < opt_conns; i++) conns[i].at_window = conns[i].readback;
        }
        if (t >= t_end) {
            at_end = bk_total;
            break;
        }
    }
    uint64_t bytes = at_end - at_window, least = UINT64_MAX;
    int stalled = 0;
    for (int i = 0; i < opt_conns; i++) {
        uint64_t moved = conns[i].readback - conns[i].at_window;
        stalled += moved == 0;
        if (moved < least) least = moved;
    }
    /* The slowest connection's share of an equal split: 1.0 when every connection moved as much. */
    char extra[96];
    snprintf(extra, sizeof extra, "\"stalled_conns\":%d,\"least_share\":%.2f", stalled,
             bytes ? (double)least * opt_conns / (double)bytes : 0.0);
    report("MB/s", (double)bytes / opt_seconds / 1e6, bytes, 0, extra);
}

/* ---------- handshakes ---------- */

#define HS_SIZE 16

enum hs_state { HS_HANDSHAKE, HS_WRITE, HS_READ, HS_SHUTDOWN, HS_DRAIN };

struct hs_conn {
    int fd;
    SSL *ssl;
    enum hs_state state;
    int got;
    uint32_t gen; /* generation, part of the epoll tag, so a stale event for a closed fd is ignored */
    uint64_t t0;
};

static uint8_t hs_msg[HS_SIZE];
static int hs_measuring;
static uint64_t hs_done;

static void hs_start(struct hs_conn *c, int idx) {
    c->gen++;
    c->t0 = now_ns();
    c->fd = open_socket(((uint64_t)c->gen << 32) | (uint32_t)idx);
    c->ssl = new_ssl(c->fd);
    c->state = HS_HANDSHAKE;
    c->got = 0;
}

static void hs_finish(struct hs_conn *c, int idx) {
    SSL_free(c->ssl);
    close(c->fd);
    if (hs_measuring) {
        hist_add(now_ns() - c->t0);
        hs_done++;
    }
    hs_start(c, idx);
}

/* Returns 1 when the connection finished (and a new one was started), 0 when it is blocked. */
static int hs_drive(struct hs_conn *c, int idx) {
    ERR_clear_error();
    for (;;) {
        switch (c->state) {
        case HS_HANDSHAKE: {
            int r = SSL_do_handshake(c->ssl);
            if (r != 1) {
                if (classify(c->ssl, r, "handshake", idx) == IO_EOF) fail("server closed connection in handshake");
                return 0;
            }
            if (SSL_session_reused(c->ssl)) fail("a session was resumed");
            note_negotiated(c->ssl);
            c->state = HS_WRITE;
            break;
        }
        case HS_WRITE: {
            int w = SSL_write(c->ssl, hs_msg, HS_SIZE);
            if (w <= 0) {
                if (classify(c->ssl, w, "SSL_write", idx) == IO_EOF) fail("server closed connection before the echo");
                return 0;
            }
            c->state = HS_READ;
            break;
        }
        case HS_READ: {
            uint8_t buf[HS_SIZE];
            int r = SSL_read(c->ssl, buf, HS_SIZE - c->got);
            if (r <= 0) {
                if (classify(c->ssl, r, "SSL_read", idx) == IO_EOF) fail("server closed connection before the echo");
                return 0;
            }
            if (memcmp(buf, hs_msg + c->got, (size_t)r) != 0) fail("handshakes: verification failed");
            c->got += r;
            if (c->got == HS_SIZE) c->state = HS_SHUTDOWN;
            break;
        }
        case HS_SHUTDOWN: {
            int r = SSL_shutdown(c->ssl); /* sends close_notify; 0: not yet received the server's */
            if (r < 0) {
                if (classify(c->ssl, r, "SSL_shutdown", idx) == IO_EOF) {
                    hs_finish(c, idx);
                    return 1;
                }
                return 0;
            }
            if (r == 1) {
                hs_finish(c, idx);
                return 1;
            }
            c->state = HS_DRAIN;
            break;
        }
        case HS_DRAIN: {
            /* Wait for the server's close_notify or end of stream (the server closes first). */
            uint8_t buf[256];
            int r = SSL_read(c->ssl, buf, sizeof buf);
            if (r > 0) fail("handshakes: unexpected data after the echo");
            if (classify(c->ssl, r, "SSL_read (drain)", idx) == IO_EOF) {
                hs_finish(c, idx);
                return 1;
            }
            return 0;
        }
        }
    }
}

static void run_handshakes(void) {
    if (opt_conns < 1) opt_conns = 16;
    opt_size = HS_SIZE;
    memcpy(hs_msg, "tlsgen handshake", HS_SIZE);
    struct hs_conn *conns = calloc((size_t)opt_conns, sizeof *conns);
    if (!conns) fail("out of memory");
    for (int i = 0; i < opt_conns; i++) {
        hs_start(&conns[i], i);
        hs_drive(&conns[i], i);
    }
    double t_window = now_s() + opt_warmup, t_end = t_window + opt_seconds;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(epfd, evs, 256, 50);
        if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
        for (int e = 0; e < n; e++) {
            int idx = (int)(uint32_t)evs[e].data.u64;
            struct hs_conn *c = &conns[idx];
            if ((uint32_t)(evs[e].data.u64 >> 32) != c->gen) continue; /* an event of a closed connection */
            /* A fresh connection starts blocked (its connect is in flight): its own events drive it. */
            hs_drive(c, idx);
        }
        double t = now_s();
        if (!hs_measuring && t >= t_window) hs_measuring = 1;
        if (t >= t_end) break;
        /* A connection that has made no progress for 5 s is a hung server. */
        for (int i = 0; i < opt_conns; i++)
            if (now_ns() - conns[i].t0 > 5000000000ull) fail("handshakes: connection %d stuck in state %d", i, conns[i].state);
    }
    report("hs/s", (double)hs_done / opt_seconds, hs_done, 1, NULL);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) fail("option %s needs a value", a);
        if (!strcmp(a, "--port")) opt_port = atoi(v);
        else if (!strcmp(a, "--host")) opt_host = v;
        else if (!strcmp(a, "--scenario")) opt_scenario = v;
        else if (!strcmp(a, "--conns")) opt_conns = atoi(v);
        else if (!strcmp(a, "--size")) opt_size = atoi(v);
        else if (!strcmp(a, "--seconds")) opt_seconds = atof(v);
        else if (!strcmp(a, "--warmup")) opt_warmup = atof(v);
        else if (!strcmp(a, "--ciphersuites")) opt_ciphers = v;
        else if (!strcmp(a, "--groups")) opt_groups = v;
        else fail("unknown option %s", a);
        i++;
    }
    if (opt_port <= 0) fail("--port is required");
    t_start = now_s();
    hist = calloc(HIST_BUCKETS, sizeof *hist);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!hist || epfd < 0) fail("setup failed");
    make_context();
    if (!strcmp(opt_scenario, "pingpong")) run_pingpong();
    else if (!strcmp(opt_scenario, "bulk")) run_bulk();
    else if (!strcmp(opt_scenario, "handshakes")) run_handshakes();
    else fail("unknown scenario %s", opt_scenario);
    return 0;
}
