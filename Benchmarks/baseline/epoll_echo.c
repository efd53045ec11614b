// A plain single-threaded epoll echo server: the practical ceiling for one core, used by
// Benchmarks/echo.sh as the baseline. Level-triggered; reads up to 64 KiB and writes it back,
// keeping what the socket does not take and waiting for EPOLLOUT before reading more.
//
//   gcc -O2 -o epoll_echo epoll_echo.c && ./epoll_echo PORT
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUFFER = 65536 };

struct connection {
    int fd;
    size_t pending, offset; // bytes read but not yet written back
    char buffer[BUFFER];
};

static void finish(int epfd, struct connection *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

// Writes what is pending; returns 0 when everything went, 1 when the socket is full, -1 on error.
static int flush(struct connection *c) {
    while (c->pending > 0) {
        ssize_t n = write(c->fd, c->buffer + c->offset, c->pending);
        if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 1 : -1;
        c->offset += (size_t)n;
        c->pending -= (size_t)n;
    }
    c->offset = 0;
    return 0;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5151;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 4096) < 0) {
        perror("epoll_echo: bind/listen");
        return 1;
    }
    int epfd = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &event);
    printf("epoll_echo: listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    struct epoll_event events[512];
    for (;;) {
        int ready = epoll_wait(epfd, events, 512, -1);
        for (int i = 0; i < ready; i++) {
            struct connection *c = events[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct connection *fresh = malloc(sizeof *fresh);
                    fresh->fd = fd;
                    fresh->pending = fresh->offset = 0;
                    struct epoll_event add = {.events = EPOLLIN, .data.ptr = fresh};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &add);
                }
                continue;
            }
            if (events[i].events & EPOLLOUT) {
                int state = flush(c);
                if (state < 0) { finish(epfd, c); continue; }
                if (state == 0) {
                    struct epoll_event mod = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &mod);
                }
                continue;
            }
            ssize_t n = read(c->fd, c->buffer, BUFFER);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) { finish(epfd, c); continue; }
            if (n < 0) continue;
            c->pending = (size_t)n;
            c->offset = 0;
            int state = flush(c);
            if (state < 0) { finish(epfd, c); continue; }
            if (state == 1) {
                struct epoll_event mod = {.events = EPOLLOUT, .data.ptr = c};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &mod);
            }
        }
    }
}
