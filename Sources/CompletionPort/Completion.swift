#if canImport(Glibc)
import Glibc
#endif

/// What produced a completion packet.
public enum Operation: UInt8, Sendable, CustomStringConvertible {
    /// An accepted connection: `Completion.acceptedDescriptor` is the new socket.
    case accept
    /// A receive: `Completion.bytes` were written into the caller's buffer; 0 means the peer
    /// closed its side.
    case receive
    /// A send: `Completion.bytes` were sent, possibly fewer than asked (a partial send).
    case send
    /// A packet from `CompletionPort.post(bytes:key:context:)`.
    case posted

    public var description: String {
        switch self {
        case .accept: "accept"
        case .receive: "receive"
        case .send: "send"
        case .posted: "posted"
        }
    }
}

/// One completion packet: the IOCP triple (bytes, key, overlapped) plus the outcome.
///
/// `key` is the completion key given to `associate(_:key:)` (per-handle data); `context` is the
/// per-I/O value given when the operation was started (the `OVERLAPPED` of Windows).
public struct Completion: Sendable, Hashable {
    /// What finished.
    public var operation: Operation
    /// Bytes transferred (receive, send, posted), or the accepted descriptor (accept).
    public var result: Int32
    /// The completion key of the handle (or of the posted packet).
    public var key: UInt64
    /// The per-I/O context given when the operation was started.
    public var context: UInt64
    /// 0 on success, otherwise the errno the operation failed with (ECANCELED when its handle
    /// was closed while it was in flight).
    public var errno: Int32
    /// A multishot accept or receive stays armed: more completions with the same context will
    /// follow.
    public var hasMore: Bool
    /// The provided buffer a multishot receive put its bytes in (`CompletionPort.providedBuffer`),
    /// or -1. The receiver owns it until `CompletionPort.recycle(providedBuffer:)`.
    public var bufferID: Int32 = -1
    /// For a multishot receive: this completion's place among those of the same receive (0, 1,
    /// 2, … in the order the kernel produced them). Completions may reach different threads and
    /// be served out of that order; the bytes belong together in this order.
    public var sequence: UInt32 = 0
    /// CLOCK_MONOTONIC (ns) when the packet entered the port's FIFO — harvested from the kernel,
    /// delivered, or posted (one clock read per batch); 0 before that. Kept when a `PacketBatch`
    /// gives the packet back, so the caller that reads the clock as it starts the packet gets
    /// its whole queue wait.
    public var queuedAtNs: Int64 = 0

    public init(operation: Operation, result: Int32, key: UInt64, context: UInt64,
                errno: Int32 = 0, hasMore: Bool = false) {
        self.operation = operation
        self.result = result
        self.key = key
        self.context = context
        self.errno = errno
        self.hasMore = hasMore
    }

    /// Whether the operation succeeded.
    @inlinable public var succeeded: Bool { errno == 0 }

    /// Bytes transferred; 0 for a failed operation.
    @inlinable public var bytes: Int { errno == 0 ? Int(result) : 0 }

    /// The new socket of a successful accept.
    @inlinable public var acceptedDescriptor: CInt { result }

    /// The failure as an error, when there is one.
    public var error: SystemCallError? {
        guard errno != 0 else { return nil }
        let call: SystemCall = switch operation {
        case .accept: .accept
        case .receive: .receive
        case .send: .send
        case .posted: .ioURingEnter
        }
        return SystemCallError(call, errno: errno)
    }

    static let empty = Completion(operation: .posted, result: 0, key: 0, context: 0)
}

/// The outcome of `CompletionPort.dequeue(timeout:)`.
public enum DequeueResult: Sendable, Hashable {
    /// A packet: an I/O completion (successful or failed) or a posted packet.
    case completion(Completion)
    /// Nothing arrived before the timeout.
    case timeout
    /// The port is closed and every packet has been delivered.
    case portClosed
}

/// The outcome of `CompletionPort.dequeue(into:timeout:)`, the batch form.
public enum BatchDequeueResult: Sendable, Hashable {
    /// This many packets were written to the front of the buffer (at least one).
    case completions(Int)
    /// Nothing arrived before the timeout.
    case timeout
    /// The port is closed and every packet has been delivered.
    case portClosed
}
