/// The kernel interface a port runs on.
public enum PortBackend: String, Sendable, CaseIterable, CustomStringConvertible {
    /// One io_uring: operations are submitted as SQEs and complete as CQEs.
    case ioURing = "io_uring"
    /// One epoll set: an operation is tried non-blocking and, on EAGAIN, performed when the
    /// descriptor becomes ready; the completion is posted once the I/O is done (a proactor).
    case epoll

    public var description: String { rawValue }
}

/// Which backend a port should use.
public enum BackendChoice: String, Sendable, CaseIterable {
    /// io_uring when the kernel allows it, epoll otherwise.
    case auto
    /// io_uring, or `PortError.backendUnavailable`.
    case ioURing = "io_uring"
    /// epoll.
    case epoll
}
