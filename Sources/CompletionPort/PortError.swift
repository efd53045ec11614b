/// Why a completion port call failed.
public enum PortError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The requested backend cannot run here: io_uring_setup returned ENOSYS (no kernel support)
    /// or EPERM (disabled by `kernel.io_uring_disabled` or a seccomp policy).
    case backendUnavailable(PortBackend, SystemCallError)
    /// The port was closed; no packet or operation is accepted any more.
    case portClosed
    /// A descriptor was used before `associate(_:key:)`, or after `close(handle:)`.
    case notAssociated(CInt)
    /// The epoll backend keeps one receive and one send in flight per handle; a second was asked.
    case operationInProgress(CInt)
    /// Every per-I/O slot is in use (see `CompletionPort.init(maxOperations:)`).
    case tooManyOperations
    /// A system call needed to set up or submit failed.
    case system(SystemCallError)
    /// An argument is out of range (a negative concurrency, an empty buffer, …).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .backendUnavailable(let backend, let error): "\(backend) is not available: \(error)"
        case .portClosed: "the completion port is closed"
        case .notAssociated(let fd): "descriptor \(fd) is not associated with the port"
        case .operationInProgress(let fd): "descriptor \(fd) already has that operation in flight"
        case .tooManyOperations: "too many operations in flight"
        case .system(let error): "\(error)"
        case .invalidArgument(let what): "invalid argument: \(what)"
        }
    }
}
