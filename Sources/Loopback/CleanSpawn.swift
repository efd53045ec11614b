#if canImport(Glibc)
import Glibc
#endif

/// `posix_spawnp` with a clean signal state: no blocked signals and default dispositions.
///
/// A test process (and `iocptop`, which blocks SIGINT/SIGTERM for its signal loop) hands its
/// blocked mask to every child it spawns; a tmux server that inherits it cannot be stopped by
/// SIGTERM and outlives `kill-server`. Every child the tests start goes through here.
/// - Returns: the child's pid, or the errno `posix_spawnp` returned (as a negative number).
public func spawnCleanly(_ arguments: [String], fileActions: UnsafePointer<posix_spawn_file_actions_t>?) -> pid_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    var all = sigset_t()
    sigfillset(&all)
    sigdelset(&all, SIGKILL)
    sigdelset(&all, SIGSTOP)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var child: pid_t = 0
    let result = posix_spawnp(&child, arguments[0], fileActions, &attributes, argv, environ)
    return result == 0 ? child : -result
}
