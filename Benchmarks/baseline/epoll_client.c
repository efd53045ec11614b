// A plain single-threaded epoll echo client: N connections, one SIZE-byte message in flight
// each, for SECONDS; prints round trips per second. No verification, no latency histogram: the
// ceiling a load generator on one core can reach, to check `iocptop load` is not the bottleneck.
//
//   gcc -O2 -o epoll_client epoll_client.c && ./epoll_client PORT CONNECTIONS SIZE SECONDS
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: epoll_client PORT CONNECTIONS SIZE SECONDS\n"); return 2; }
    int port = atoi(argv[1]), count = atoi(argv[2]), size = atoi(argv[3]);
    double seconds = atof(argv[4]);
    int epfd = epoll_create1(0);
    int *fds = calloc(count, sizeof *fds), *remaining = calloc(count, sizeof *remaining);
    char *message = calloc(1, size), buffer[65536];
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    for (int i = 0; i < count; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fds[i], (struct sockaddr *)&address, sizeof address) < 0) { perror("connect"); return 1; }
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &event);
        remaining[i] = size;
        if (write(fds[i], message, size) != size) { perror("write"); return 1; }
    }
    long long trips = 0;
    double start = now(), end = start + seconds;
    struct epoll_event events[512];
    while (now() < end) {
        int ready = epoll_wait(epfd, events, 512, 50);
        for (int e = 0; e < ready; e++) {
            int i = events[e].data.u32;
            ssize_t n = read(fds[i], buffer, remaining[i] < (int)sizeof buffer ? remaining[i] : (int)sizeof buffer);
            if (n <= 0) continue;
            remaining[i] -= n;
            if (remaining[i] == 0) {
                trips++;
                remaining[i] = size;
                if (write(fds[i], message, size) != size) { perror("write"); return 1; }
            }
        }
    }
    printf("%.0f\n", trips / (now() - start));
    return 0;
}
