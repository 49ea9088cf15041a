/*
 * udpgen: the UDP load generator for the datagram echo benchmarks (one C process, one thread, epoll).
 * Identical for every server; it verifies every echoed datagram (size and sequence number) and prints one
 * JSON line with its own CPU time (getrusage), so a generator-bound run can be told apart.
 *
 *   udpgen --port P --scenario pingpong --flows N [--size 64] [--seconds 5] [--warmup 0.5]
 *       N flows (one connected UDP socket each), one datagram in flight per flow: round trips/s. A flow whose
 *       echo does not come back within 20 ms counts one lost datagram and sends the next.
 *   udpgen --port P --scenario burst [--size 64] [--seconds 5]
 *       one socket sends as fast as it can for the window (reading echoes in between), then waits 300 ms for
 *       stragglers: echoes received per second of the window, and lost = sent - echoed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int opt_port = 0;
static const char *opt_scenario = "pingpong";
static int opt_flows = 1;
static int opt_size = 64;
static double opt_seconds = 5.0;
static double opt_warmup = 0.5;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec / 1e6;
}

static void fail(const char *what) {
    printf("{\"error\": \"%s: %s\"}\n", what, strerror(errno));
    exit(1);
}

static int open_flow(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) fail("socket");
    int big = 8 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port)};
    inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
    if (connect(fd, (struct sockaddr *)&server, sizeof server) != 0) fail("connect");
    return fd;
}

/* A datagram: 4-byte flow, 4-byte sequence number, then a pattern byte per position. */
static void fill(uint8_t *buffer, uint32_t flow, uint32_t seq) {
    memcpy(buffer, &flow, 4);
    memcpy(buffer + 4, &seq, 4);
    for (int i = 8; i < opt_size; i++) buffer[i] = (uint8_t)(i * 7 + seq);
}

static int check(const uint8_t *buffer, long n, uint32_t flow, uint32_t seq) {
    if (n != opt_size) return 0;
    uint32_t f, s;
    memcpy(&f, buffer, 4);
    memcpy(&s, buffer + 4, 4);
    if (f != flow || s != seq) return 0;
    for (int i = 8; i < opt_size; i++)
        if (buffer[i] != (uint8_t)(i * 7 + seq)) return 0;
    return 1;
}

struct flow {
    int fd;
    uint32_t seq;
    double sent_at;
};

static void run_pingpong(void) {
    int epfd = epoll_create1(0);
    struct flow *flows = calloc((size_t)opt_flows, sizeof *flows);
    uint8_t *out = malloc(65536), *in = malloc(65536);
    double start = now_s();
    for (int i = 0; i < opt_flows; i++) {
        flows[i].fd = open_flow();
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(epfd, EPOLL_CTL_ADD, flows[i].fd, &ev);
        fill(out, (uint32_t)i, 0);
        if (send(flows[i].fd, out, (size_t)opt_size, 0) != opt_size) fail("send");
        flows[i].sent_at = start;
    }
    double window_start = start + opt_warmup, window_end = window_start + opt_seconds;
    uint64_t trips = 0, lost = 0, bad = 0;
    double cpu_start = -1, last_scan = start;
    struct epoll_event events[256];
    for (;;) {
        double t = now_s();
        if (cpu_start < 0 && t >= window_start) cpu_start = cpu_s();
        if (t >= window_end) break;
        int n = epoll_wait(epfd, events, 256, 5);
        t = now_s();
        for (int e = 0; e < n; e++) {
            struct flow *f = &flows[events[e].data.u32];
            for (;;) {
                long got = recv(f->fd, in, 65536, 0);
                if (got < 0) break;
                if (!check(in, got, events[e].data.u32, f->seq)) {
                    bad++;  /* a late echo of a datagram already counted lost */
                    continue;
                }
                if (t >= window_start) trips++;
                f->seq++;
                fill(out, events[e].data.u32, f->seq);
                if (send(f->fd, out, (size_t)opt_size, 0) != opt_size) fail("send");
                f->sent_at = t;
            }
        }
        if (t - last_scan > 0.005) {
            last_scan = t;
            for (int i = 0; i < opt_flows; i++) {
                if (t - flows[i].sent_at > 0.020) {
                    if (t >= window_start) lost++;
                    flows[i].seq++;
                    fill(out, (uint32_t)i, flows[i].seq);
                    if (send(flows[i].fd, out, (size_t)opt_size, 0) != opt_size) fail("send");
                    flows[i].sent_at = t;
                }
            }
        }
    }
    double cpu = cpu_s() - cpu_start;
    printf("{\"scenario\": \"pingpong\", \"flows\": %d, \"size\": %d, \"seconds\": %.2f, \"value\": %.0f, "
           "\"unit\": \"rt/s\", \"round_trips\": %llu, \"lost\": %llu, \"stale\": %llu, \"loadgen_cpu\": %.3f}\n",
           opt_flows, opt_size, opt_seconds, (double)trips / opt_seconds, (unsigned long long)trips,
           (unsigned long long)lost, (unsigned long long)bad, cpu / opt_seconds);
}

static void run_burst(void) {
    int fd = open_flow();
    uint8_t *out = malloc(65536), *in = malloc(65536);
    uint64_t sent = 0, echoed = 0, bad = 0;
    double start = now_s(), end = start + opt_seconds, cpu_start = cpu_s();
    uint32_t seq = 0;
    /* Echoes may come back in any order relative to drops, but never reordered on loopback: check sizes and
     * that sequence numbers increase. */
    uint32_t last_seen = 0;
    int seen_any = 0;
    for (;;) {
        double t = now_s();
        int sending = t < end;
        if (!sending && t > end + 0.3) break;
        if (sending) {
            for (int i = 0; i < 32; i++) {
                fill(out, 0, seq);
                long n = send(fd, out, (size_t)opt_size, 0);
                if (n == opt_size) {
                    sent++;
                    seq++;
                } else if (n < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
                    break;
                } else {
                    fail("send");
                }
            }
        } else {
            usleep(1000);
        }
        for (;;) {
            long got = recv(fd, in, 65536, 0);
            if (got < 0) break;
            uint32_t s;
            memcpy(&s, in + 4, 4);
            if (got != opt_size || (seen_any && s <= last_seen) || !check(in, got, 0, s)) {
                bad++;
                continue;
            }
            seen_any = 1;
            last_seen = s;
            echoed++;
        }
    }
    double cpu = cpu_s() - cpu_start;
    printf("{\"scenario\": \"burst\", \"size\": %d, \"seconds\": %.2f, \"value\": %.0f, \"unit\": \"echoed/s\", "
           "\"sent\": %llu, \"echoed\": %llu, \"lost\": %llu, \"bad\": %llu, \"loadgen_cpu\": %.3f}\n",
           opt_size, opt_seconds, (double)echoed / opt_seconds, (unsigned long long)sent,
           (unsigned long long)echoed, (unsigned long long)(sent - echoed), (unsigned long long)bad,
           cpu / (opt_seconds + 0.3));
    if (bad) exit(1);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) opt_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--scenario")) opt_scenario = argv[i + 1];
        else if (!strcmp(argv[i], "--flows")) opt_flows = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) opt_size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) opt_seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) opt_warmup = atof(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (opt_port <= 0 || opt_size < 8 || opt_size > 65507 || opt_flows < 1) {
        fprintf(stderr, "usage: udpgen --port P --scenario pingpong|burst [--flows N] [--size S>=8] [--seconds D] [--warmup W]\n");
        return 2;
    }
    if (!strcmp(opt_scenario, "pingpong")) run_pingpong();
    else if (!strcmp(opt_scenario, "burst")) run_burst();
    else {
        fprintf(stderr, "unknown scenario %s\n", opt_scenario);
        return 2;
    }
    return 0;
}
