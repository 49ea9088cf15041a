/*
 * udpecho: the plain C reference UDP echo server for the datagram benchmarks: one thread, libevent for
 * readiness (a persistent read event), recvfrom/sendto, at most 64 datagrams per readiness report.
 * Usage: udpecho PORT   (binds 127.0.0.1; port 0 = ephemeral; prints `listening PORT` when ready)
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static char buffer[65536];

static void on_read(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    (void)arg;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage from;
        socklen_t length = sizeof from;
        ssize_t n = recvfrom(fd, buffer, sizeof buffer, 0, (struct sockaddr *)&from, &length);
        if (n < 0) return;
        sendto(fd, buffer, (size_t)n, 0, (struct sockaddr *)&from, length);
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        perror("udpecho");
        return 1;
    }
    socklen_t length = sizeof address;
    getsockname(fd, (struct sockaddr *)&address, &length);
    struct event_base *base = event_base_new();
    struct event *event = event_new(base, fd, EV_READ | EV_PERSIST, on_read, NULL);
    event_add(event, NULL);
    printf("listening %d\n", ntohs(address.sin_port));
    fflush(stdout);
    event_base_dispatch(base);
    return 0;
}
