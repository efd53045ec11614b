import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A POSIX thread running one closure: the port's semantics are per thread (its concurrency
/// limit counts threads, a worker blocks a thread), so workers, samplers and servers run on
/// threads of their own, never on tasks.
///
/// `start` reports a thread that could not be created (nil, with the error) instead of
/// ignoring it; `join` and `detach` are each done at most once, and never to a thread that
/// does not exist, so a caller may call them from any path (an error, a deinit) without
/// tracking whether the thread ever ran.
public final class NativeThread: Sendable {
    private let thread: pthread_t
    /// Whether the thread has been joined or detached (after which `thread` names nothing).
    private let released = Mutex<Bool>(false)

    private init(thread: pthread_t) { self.thread = thread }

    /// Why a thread could not be started.
    public struct StartError: Error, CustomStringConvertible {
        /// `pthread_create`'s result (EAGAIN: a limit on threads or memory).
        public let code: CInt
        public var description: String { "cannot create a thread: \(String(cString: strerror(code)))" }
    }

    /// Starts a thread running `body`.
    public static func start(_ body: @escaping @Sendable () -> Void) throws(StartError) -> NativeThread {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
        guard status == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw StartError(code: status)
        }
        return NativeThread(thread: thread)
    }

    /// Starts a thread that nobody joins (it cleans up after itself when `body` returns).
    public static func detached(_ body: @escaping @Sendable () -> Void) throws(StartError) {
        try start(body).detach()
    }

    /// Whether the calling thread is this one (a thread must not join itself).
    public var isCurrent: Bool { pthread_equal(pthread_self(), thread) != 0 }

    /// Waits for the thread to end. Called on the thread itself, detaches it instead (the
    /// last reference to an owner can drop on its own thread). Idempotent.
    public func join() {
        released.withLock { done in
            guard !done else { return }
            done = true
            if isCurrent { pthread_detach(thread) } else { pthread_join(thread, nil) }
        }
    }

    /// Lets the thread end on its own. Idempotent; after `join`, does nothing.
    public func detach() {
        released.withLock { done in
            guard !done else { return }
            done = true
            pthread_detach(thread)
        }
    }

    deinit {
        // A thread nobody joined must not stay a zombie: its resources go when it ends.
        released.withLock { done in if !done { pthread_detach(thread) } }
    }
}
