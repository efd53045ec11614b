// CIOURing: the Linux io_uring ABI, spoken directly from <linux/io_uring.h>.
//
// Why this target exists: Swift cannot call the io_uring system calls by name (glibc has no
// wrappers), cannot express the ring's acquire/release protocol on kernel-shared memory through
// the anonymous unions of `struct io_uring_sqe`, and iocptop must not depend on liburing.
// Everything here is `static inline`; every symbol carries the `CIOURing_` prefix.
//
// Memory-ordering contract with the kernel (see io_uring(7), "Submission/Completion queue"):
//   SQ: we own the tail, the kernel owns the head. SQE writes must be visible before the tail
//       store  -> store-release of sq.tail; pairs with the kernel's smp_load_acquire(sq.tail).
//       We read the kernel's head with load-acquire so a slot is reused only after the kernel
//       finished reading it; pairs with the kernel's smp_store_release(sq.head).
//   CQ: the kernel owns the tail, we own the head. Load-acquire of cq.tail makes the CQE
//       contents visible; pairs with the kernel's smp_store_release(cq.tail). Store-release of
//       cq.head tells the kernel we have finished reading those CQEs; pairs with its
//       smp_load_acquire(cq.head) before it overwrites a slot.
#ifndef CIOURING_H
#define CIOURING_H

#include <linux/io_uring.h>
#include <linux/time_types.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/futex.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif

// ---------------------------------------------------------------------------------------------
// System calls. Each returns the kernel's result, or -errno on failure (never sets errno for the
// caller to race on).

/// The corresponding system call is `io_uring_setup(2)`.
static inline int CIOURing_setup(unsigned entries, struct io_uring_params *params) {
    long r = syscall(__NR_io_uring_setup, entries, params);
    return r < 0 ? -errno : (int)r;
}

/// The corresponding system call is `io_uring_enter(2)`, with `IORING_ENTER_EXT_ARG` when a
/// timeout is given (`timeout_ns` >= 0) so the wait is bounded without a timeout SQE.
static inline int CIOURing_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags,
                                 int64_t timeout_ns) {
    struct __kernel_timespec ts;
    struct io_uring_getevents_arg arg;
    void *argp = NULL;
    size_t argsz = 0;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        memset(&arg, 0, sizeof(arg));
        arg.ts = (uint64_t)(uintptr_t)&ts;
        argp = &arg;
        argsz = sizeof(arg);
        flags |= IORING_ENTER_EXT_ARG;
    }
    long r = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, argp, argsz);
    return r < 0 ? -errno : (int)r;
}

// ---------------------------------------------------------------------------------------------
// The mapped ring: pointers into kernel-shared memory, filled by CIOURing_map.

/// Pointers into the memory shared with the kernel for one ring.
typedef struct {
    int ring_fd;
    unsigned features;
    unsigned setup_flags;   // the IORING_SETUP_* flags the kernel accepted
    // Submission queue.
    unsigned *sq_head;      // written by the kernel
    unsigned *sq_tail;      // written by us
    unsigned sq_mask;
    unsigned sq_entries;
    unsigned *sq_flags;
    unsigned *sq_array;
    struct io_uring_sqe *sqes;
    // Completion queue.
    unsigned *cq_head;      // written by us
    unsigned *cq_tail;      // written by the kernel
    unsigned cq_mask;
    unsigned cq_entries;
    struct io_uring_cqe *cqes;
    // Mappings, for CIOURing_unmap.
    void *sq_ring_ptr;
    size_t sq_ring_size;
    void *cq_ring_ptr;
    size_t cq_ring_size;
    size_t sqes_size;
} CIOURing_ring;

/// Creates a ring with `entries` SQEs and `cq_entries` CQEs and maps it, with cooperative task
/// running (IORING_SETUP_COOP_TASKRUN) where the kernel has it.
/// Returns 0 or -errno (ENOSYS: no io_uring; EPERM: disabled by sysctl or seccomp).
int CIOURing_map(CIOURing_ring *ring, unsigned entries, unsigned cq_entries);

/// Unmaps the ring and closes its descriptor.
void CIOURing_unmap(CIOURing_ring *ring);

// ---------------------------------------------------------------------------------------------
// Barriers on ring indices.

/// Acquiring load of an index the kernel writes (sq.head, cq.tail).
static inline unsigned CIOURing_load_acquire(const unsigned *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
/// Releasing store of an index we own (sq.tail, cq.head).
static inline void CIOURing_store_release(unsigned *p, unsigned v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
/// Relaxed load of an index only we write (our own sq.tail / cq.head).
static inline unsigned CIOURing_load_relaxed(const unsigned *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

// ---------------------------------------------------------------------------------------------
// SQE preparation: the anonymous unions of io_uring_sqe are filled here, not from Swift.

static inline void CIOURing_prep(struct io_uring_sqe *sqe, uint8_t op, int fd, uint64_t addr,
                                 uint32_t len, uint64_t user_data) {
    memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = op;
    sqe->fd = fd;
    sqe->addr = addr;
    sqe->len = len;
    sqe->user_data = user_data;
}

/// `IORING_OP_NOP`: used to wake a thread waiting in io_uring_enter.
static inline void CIOURing_prep_nop(struct io_uring_sqe *sqe, uint64_t user_data) {
    CIOURing_prep(sqe, IORING_OP_NOP, -1, 0, 0, user_data);
}

/// `IORING_OP_ACCEPT` with `IORING_ACCEPT_MULTISHOT`: one SQE, one CQE per accepted socket
/// (flagged `IORING_CQE_F_MORE` while the request stays armed). Accepted sockets are
/// non-blocking and close-on-exec.
static inline void CIOURing_prep_multishot_accept(struct io_uring_sqe *sqe, int fd, uint64_t user_data) {
    CIOURing_prep(sqe, IORING_OP_ACCEPT, fd, 0, 0, user_data);
    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
}

/// `IORING_OP_RECV` into [buf, buf+len).
static inline void CIOURing_prep_recv(struct io_uring_sqe *sqe, int fd, void *buf, uint32_t len,
                                      uint64_t user_data) {
    CIOURing_prep(sqe, IORING_OP_RECV, fd, (uint64_t)(uintptr_t)buf, len, user_data);
}

/// `IORING_OP_RECV` with `IORING_RECV_MULTISHOT` and `IOSQE_BUFFER_SELECT`: one SQE, one CQE
/// per arrival, each into a buffer the kernel takes from provided-buffer group `group`
/// (`IORING_CQE_F_BUFFER`, id in the upper 16 bits of the flags), flagged `IORING_CQE_F_MORE`
/// while the request stays armed.
static inline void CIOURing_prep_recv_multishot(struct io_uring_sqe *sqe, int fd, uint16_t group,
                                                uint64_t user_data) {
    CIOURing_prep(sqe, IORING_OP_RECV, fd, 0, 0, user_data);
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = group;
}

/// `IORING_OP_SEND` of [buf, buf+len) with `MSG_NOSIGNAL` (a reset peer is an EPIPE completion,
/// never a SIGPIPE).
static inline void CIOURing_prep_send(struct io_uring_sqe *sqe, int fd, const void *buf, uint32_t len,
                                      uint64_t user_data) {
    CIOURing_prep(sqe, IORING_OP_SEND, fd, (uint64_t)(uintptr_t)buf, len, user_data);
    sqe->msg_flags = MSG_NOSIGNAL;
}

/// `IORING_OP_ASYNC_CANCEL` of every request on `fd`, hard-linked to the next SQE so that the
/// next one (a close) runs whether or not anything was cancelled.
static inline void CIOURing_prep_cancel_fd(struct io_uring_sqe *sqe, int fd, uint64_t user_data) {
    CIOURing_prep(sqe, IORING_OP_ASYNC_CANCEL, fd, 0, 0, user_data);
    sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    sqe->flags = IOSQE_IO_HARDLINK;
}

/// `IORING_OP_ASYNC_CANCEL` of the one request whose user data is `target`.
static inline void CIOURing_prep_cancel(struct io_uring_sqe *sqe, uint64_t target, uint64_t user_data) {
    CIOURing_prep(sqe, IORING_OP_ASYNC_CANCEL, -1, target, 0, user_data);
}

/// `IORING_OP_ASYNC_CANCEL` of every request in the ring.
static inline void CIOURing_prep_cancel_any(struct io_uring_sqe *sqe, uint64_t user_data) {
    CIOURing_prep(sqe, IORING_OP_ASYNC_CANCEL, -1, 0, 0, user_data);
    sqe->cancel_flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
}

/// `IORING_OP_CLOSE` of `fd`.
static inline void CIOURing_prep_close(struct io_uring_sqe *sqe, int fd, uint64_t user_data) {
    CIOURing_prep(sqe, IORING_OP_CLOSE, fd, 0, 0, user_data);
}

// ---------------------------------------------------------------------------------------------
// Provided buffers: a ring of buffer descriptors shared with the kernel (IORING_REGISTER_PBUF_RING,
// 5.19+). We own the tail (overlaid on bufs[0].resv), the kernel the head it keeps privately.
// Descriptor writes must be visible before the tail store -> store-release of the tail; pairs
// with the kernel's smp_load_acquire(br->tail) when it picks a buffer.

/// Registers `entries` descriptors at `ring_addr` (page-aligned, `entries` a power of two) as
/// buffer group `group`. Returns 0 or -errno. The corresponding system call is
/// `io_uring_register(2)` with `IORING_REGISTER_PBUF_RING`.
static inline int CIOURing_register_buffer_ring(int fd, void *ring_addr, unsigned entries, uint16_t group) {
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)ring_addr;
    reg.ring_entries = entries;
    reg.bgid = group;
    long r = syscall(__NR_io_uring_register, fd, IORING_REGISTER_PBUF_RING, &reg, 1);
    return r < 0 ? -errno : (int)r;
}

/// Writes descriptor `tail + offset` (buffer `id` at `addr`, `len` bytes) without publishing it.
static inline void CIOURing_buffer_ring_put(struct io_uring_buf_ring *ring, unsigned mask, uint16_t tail,
                                            unsigned offset, void *addr, uint32_t len, uint16_t id) {
    struct io_uring_buf *buf = &ring->bufs[(uint16_t)(tail + offset) & mask];
    buf->addr = (uint64_t)(uintptr_t)addr;
    buf->len = len;
    buf->bid = id;
}

/// Our tail of a provided-buffer ring (only we write it).
static inline uint16_t CIOURing_buffer_ring_tail(const struct io_uring_buf_ring *ring) {
    return __atomic_load_n(&ring->tail, __ATOMIC_RELAXED);
}

/// Publishes descriptors written up to `tail` (releasing, see above).
static inline void CIOURing_buffer_ring_publish(struct io_uring_buf_ring *ring, uint16_t tail) {
    __atomic_store_n(&ring->tail, tail, __ATOMIC_RELEASE);
}

/// Whether this kernel serves a multishot receive over provided buffers (6.0+): asked once,
/// on a throwaway ring and socket pair, by doing it (a receive of one byte must complete with
/// a provided buffer and stay armed). 1 yes, 0 no.
int CIOURing_probe_multishot_receive(void);

// ---------------------------------------------------------------------------------------------
// Futex parking for the port's waiters (glibc has no futex wrapper either).

/// The calling thread's kernel id (`gettid(2)`).
static inline int CIOURing_thread_id(void) { return (int)syscall(SYS_gettid); }

/// Waits while `*word == expected`, at most `timeout_ns` (-1: forever).
/// Returns 0 when woken, or -errno (EAGAIN: the word had changed; ETIMEDOUT; EINTR).
/// The corresponding system call is `futex(2)` with `FUTEX_WAIT_PRIVATE`.
static inline int CIOURing_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    long r = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
    return r < 0 ? -errno : 0;
}

/// Wakes one thread waiting on `word`. The corresponding system call is `futex(2)` with
/// `FUTEX_WAKE_PRIVATE`.
static inline void CIOURing_futex_wake(uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/// Releasing store to a futex word: the mailbox written before it is visible to the woken
/// thread; pairs with the acquiring load in CIOURing_futex_word_load.
static inline void CIOURing_futex_word_store(uint32_t *word, uint32_t v) {
    __atomic_store_n(word, v, __ATOMIC_RELEASE);
}
/// Acquiring load of a futex word; pairs with CIOURing_futex_word_store.
static inline uint32_t CIOURing_futex_word_load(const uint32_t *word) {
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

/// `accept4(2)` with SOCK_NONBLOCK | SOCK_CLOEXEC; -1 and errno on failure. Out of line
/// because accept4 is declared only under _GNU_SOURCE, which the Swift importer does not see.
int CIOURing_accept(int fd);

// ---------------------------------------------------------------------------------------------
// A futex mutex (Drepper, "Futexes Are Tricky", mutex 2): 0 unlocked, 1 locked, 2 contended.

/// One attempt to take the lock. Acquiring on success: pairs with CIOURing_unlock's release.
static inline int CIOURing_lock_try(uint32_t *word) {
    uint32_t expected = 0;
    return __atomic_compare_exchange_n(word, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/// Takes the lock, sleeping in the kernel while it is held.
static inline void CIOURing_lock_slow(uint32_t *word) {
    // acquiring exchange: as in CIOURing_lock_try. Marking 2 makes the holder's unlock wake us.
    while (__atomic_exchange_n(word, 2, __ATOMIC_ACQUIRE) != 0) {
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
    }
}

/// Releases the lock. Releasing: the critical section happens before the next acquire.
static inline void CIOURing_unlock(uint32_t *word) {
    if (__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) == 2) {
        syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

/// Monotonic clock in nanoseconds.
static inline int64_t CIOURing_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/// CPUs in the calling thread's affinity mask (what `taskset` allows), or 0 if unknown.
/// The raw `sched_getaffinity(2)` system call: glibc's wrapper and CPU_COUNT need _GNU_SOURCE,
/// which the Swift importer does not see.
static inline int CIOURing_affinity_cpus(void) {
    uint64_t mask[16];
    memset(mask, 0, sizeof mask);
    long bytes = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    if (bytes <= 0) return 0;
    int count = 0;
    for (unsigned i = 0; i < (unsigned long)bytes / sizeof mask[0]; i++) count += __builtin_popcountll(mask[i]);
    return count;
}

#endif
