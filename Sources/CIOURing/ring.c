#include "CIOURing.h"

_Static_assert(sizeof(struct io_uring_sqe) == 64, "io_uring_sqe must be 64 bytes");
_Static_assert(sizeof(struct io_uring_cqe) == 16, "io_uring_cqe must be 16 bytes");
_Static_assert(sizeof(struct io_uring_params) == 120, "io_uring_params must be 120 bytes");

int CIOURing_map(CIOURing_ring *ring, unsigned entries, unsigned cq_entries) {
    struct io_uring_params p;
    memset(ring, 0, sizeof(*ring));
    // Cooperative task running (5.19+): a completion that needs work in the submitting thread
    // (a receive whose data arrived, a send that waited for space) does not interrupt that
    // thread with an inter-processor interrupt; the work runs at its next return from the
    // kernel (a system call, the next timer tick). A thread in an interruptible sleep is still
    // woken for it. Older kernels refuse the flag: plain setup. (TASKRUN_FLAG, which would tell
    // us such work is waiting, is not asked for: entering early to run it cost more than it
    // gained, see Benchmarks/README.md.)
    unsigned wanted[2] = {
        IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN,
        IORING_SETUP_CQSIZE,
    };
    int fd = -EINVAL;
    for (int i = 0; i < 2 && fd == -EINVAL; i++) {
        memset(&p, 0, sizeof(p));
        p.flags = wanted[i];
        p.cq_entries = cq_entries;
        fd = CIOURing_setup(entries, &p);
    }
    if (fd < 0) return fd;
    ring->setup_flags = p.flags;
    // Kernels without one mmap for both rings (< 5.4) or without NODROP and EXT_ARG (< 5.11)
    // are refused: keeping one mapping path and a bounded wait without timeout SQEs.
    unsigned need = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG;
    if ((p.features & need) != need) { close(fd); return -ENOSYS; }

    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    size_t size = sq_size > cq_size ? sq_size : cq_size;
    void *rings = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (rings == MAP_FAILED) { int e = errno; close(fd); return -e; }
    size_t sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);
    void *sqes = mmap(NULL, sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) { int e = errno; munmap(rings, size); close(fd); return -e; }

    char *base = rings;
    ring->ring_fd = fd;
    ring->features = p.features;
    ring->sq_head = (unsigned *)(base + p.sq_off.head);
    ring->sq_tail = (unsigned *)(base + p.sq_off.tail);
    ring->sq_mask = *(unsigned *)(base + p.sq_off.ring_mask);
    ring->sq_entries = *(unsigned *)(base + p.sq_off.ring_entries);
    ring->sq_flags = (unsigned *)(base + p.sq_off.flags);
    ring->sq_array = (unsigned *)(base + p.sq_off.array);
    ring->sqes = sqes;
    ring->cq_head = (unsigned *)(base + p.cq_off.head);
    ring->cq_tail = (unsigned *)(base + p.cq_off.tail);
    ring->cq_mask = *(unsigned *)(base + p.cq_off.ring_mask);
    ring->cq_entries = *(unsigned *)(base + p.cq_off.ring_entries);
    ring->cqes = (struct io_uring_cqe *)(base + p.cq_off.cqes);
    ring->sq_ring_ptr = rings;
    ring->sq_ring_size = size;
    ring->cq_ring_ptr = rings;
    ring->cq_ring_size = size;
    ring->sqes_size = sqes_size;
    // The SQ index array is the identity: SQE i is always submitted from array slot i.
    for (unsigned i = 0; i < ring->sq_entries; i++) ring->sq_array[i] = i;
    return 0;
}

void CIOURing_unmap(CIOURing_ring *ring) {
    if (ring->sqes) munmap(ring->sqes, ring->sqes_size);
    if (ring->sq_ring_ptr) munmap(ring->sq_ring_ptr, ring->sq_ring_size);
    if (ring->ring_fd > 0) close(ring->ring_fd);
    memset(ring, 0, sizeof(*ring));
}

int CIOURing_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int CIOURing_probe_multishot_receive(void) {
    CIOURing_ring ring;
    if (CIOURing_map(&ring, 4, 16) != 0) return 0;
    int result = 0, pair[2] = {-1, -1};
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *area = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) goto done_ring;
    struct io_uring_buf_ring *buffers = area;
    if (CIOURing_register_buffer_ring(ring.ring_fd, buffers, 1, 0) != 0) goto done_area;
    CIOURing_buffer_ring_put(buffers, 0, 0, 0, (char *)area + page, 64, 7);
    CIOURing_buffer_ring_publish(buffers, 1);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) goto done_area;
    if (write(pair[1], "x", 1) != 1) goto done_pair;
    struct io_uring_sqe *sqe = &ring.sqes[0];
    CIOURing_prep_recv_multishot(sqe, pair[0], 0, 1);
    CIOURing_store_release(ring.sq_tail, 1);
    if (CIOURing_enter(ring.ring_fd, 1, 1, IORING_ENTER_GETEVENTS, 1000000000) < 0) goto done_pair;
    if (CIOURing_load_acquire(ring.cq_tail) != CIOURing_load_relaxed(ring.cq_head)) {
        struct io_uring_cqe *cqe = &ring.cqes[CIOURing_load_relaxed(ring.cq_head) & ring.cq_mask];
        result = cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE) && (cqe->flags & IORING_CQE_F_BUFFER)
            && (cqe->flags >> IORING_CQE_BUFFER_SHIFT) == 7;
    }
done_pair:
    if (pair[0] >= 0) close(pair[0]);
    if (pair[1] >= 0) close(pair[1]);
done_area:
    // Closing the ring (below) cancels the armed receive and drops the registration first.
    CIOURing_unmap(&ring);
    munmap(area, 2 * page);
    return result;
done_ring:
    CIOURing_unmap(&ring);
    return 0;
}
