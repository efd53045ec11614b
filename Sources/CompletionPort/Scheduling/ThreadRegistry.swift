#if canImport(Glibc)
import Glibc
#endif

/// Finds the calling thread's `Waiter` for a scheduler, creating it on first use.
///
/// One process-wide pthread key holds a small per-thread list (a thread rarely serves more than
/// one port). Its destructor runs when the thread exits and tells each scheduler the thread has
/// gone, so a worker that exits while counted as running gives its place back (the Windows
/// kernel does the same for a thread that dies holding a port's concurrency slot).
enum ThreadRegistry {
    final class Entries {
        var waiters: [Waiter] = []
    }

    static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { raw in
            guard let raw else { return }
            let entries = Unmanaged<Entries>.fromOpaque(raw).takeRetainedValue()
            for waiter in entries.waiters { waiter.scheduler.threadExited(waiter) }
        }
        return key
    }()

    /// The calling thread's waiter for `scheduler`, if it has one already.
    static func existingWaiter(for scheduler: Scheduler) -> Waiter? {
        guard let raw = pthread_getspecific(key) else { return nil }
        let entries = Unmanaged<Entries>.fromOpaque(raw).takeUnretainedValue()
        for waiter in entries.waiters where waiter.scheduler === scheduler { return waiter }
        return nil
    }

    /// The calling thread's waiter for `scheduler`, created on first use.
    static func waiter(for scheduler: Scheduler) -> Waiter {
        if let waiter = existingWaiter(for: scheduler) { return waiter }
        let entries: Entries
        if let raw = pthread_getspecific(key) {
            entries = Unmanaged<Entries>.fromOpaque(raw).takeUnretainedValue()
        } else {
            entries = Entries()
            pthread_setspecific(key, Unmanaged.passRetained(entries).toOpaque())
        }
        let waiter = Waiter(scheduler: scheduler)
        entries.waiters.append(waiter)
        return waiter
    }
}
