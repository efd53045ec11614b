// What Swift cannot call directly for sharing an engine with its viewers: memfd_create and
// pidfd_open (no glibc wrapper on every system), descriptors passed over a Unix socket
// (SCM_RIGHTS needs the CMSG_* macros), and the peer's credentials (SO_PEERCRED).
// Each function returns -1 and leaves errno set on failure, like the calls it wraps.
#ifndef CSHARE_H
#define CSHARE_H

#include <sys/types.h>

/// memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING).
int CShare_memfd(const char *name);

/// Seals `fd` against growing, shrinking and new writable mappings (F_SEAL_FUTURE_WRITE where
/// the kernel has it, 5.1+); the writer's existing mapping stays writable. 0 or -1.
int CShare_sealFutureWrites(int fd);

/// 1 when `fd` carries the F_SEAL_SHRINK seal (it can never shrink under a mapping), else 0.
int CShare_isSealedAgainstShrinking(int fd);

/// Sends `length` bytes of `data` with one descriptor attached (SCM_RIGHTS). Returns bytes sent.
ssize_t CShare_sendWithDescriptor(int socket, const void *data, size_t length, int descriptor);

/// Receives up to `capacity` bytes; a descriptor that came with them goes to `*descriptor`
/// (close-on-exec), else -1. Returns bytes received (0: end of stream).
ssize_t CShare_receiveWithDescriptor(int socket, void *data, size_t capacity, int *descriptor);

/// The uid and pid of the process at the other end of a Unix socket (SO_PEERCRED). 0 or -1.
int CShare_peerCredentials(int socket, uid_t *uid, pid_t *pid);

/// 1 when `signal`'s disposition is SIG_IGN (as `nohup` leaves SIGHUP), else 0.
int CShare_signalIsIgnored(int signal);

/// pidfd_open(pid, 0): a descriptor that becomes readable when the process exits (5.3+).
int CShare_pidfd(pid_t pid);

/// A pipe whose two ends are close-on-exec from the start (pipe2 with O_CLOEXEC): no child
/// spawned by another thread meanwhile inherits it. Returns 0, or -1 with errno set.
int CShare_pipeCloseOnExec(int fds[2]);

#endif
