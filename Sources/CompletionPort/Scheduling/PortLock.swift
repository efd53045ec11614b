import CIOURing
import Synchronization

/// A small futex mutex guarding a value: the scheduler's one critical section.
///
/// `Synchronization.Mutex` would do the same job, but its `sending` closure parameter does not
/// let the scheduler pass the caller's (thread-confined) batch buffer into the critical
/// section. States (Drepper, "Futexes Are Tricky", mutex 2): 0 unlocked, 1 locked,
/// 2 locked with waiters.
final class PortLock<Value: ~Copyable>: @unchecked Sendable {
    // @unchecked: `value` is touched only between `lock` and `unlock`, which order it (acquire/release on the futex word).
    private let futexWord: UnsafeMutablePointer<UInt32>
    private let value: UnsafeMutablePointer<Value>

    init(_ initial: consuming Value) {
        value = .allocate(capacity: 1)
        value.initialize(to: initial)
        futexWord = .allocate(capacity: 1)
        futexWord.initialize(to: 0)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        futexWord.deallocate()
    }

    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body(&value.pointee)
    }

    private func lock() {
        // acquiring: the critical section sees every write made before the previous unlock.
        if CIOURing_lock_try(futexWord) != 0 { return }
        var spins = 0
        while spins < 100 {
            if CIOURing_lock_try(futexWord) != 0 { return }
            spins += 1
        }
        CIOURing_lock_slow(futexWord)
    }

    private func unlock() {
        // releasing: publishes the critical section to the next locker (inside the helper).
        CIOURing_unlock(futexWord)
    }
}
