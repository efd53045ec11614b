#if canImport(Glibc)
import Glibc
#endif

/// The system calls the port makes, named for error reports. Allocation-free to carry.
public enum SystemCall: UInt8, Sendable, CustomStringConvertible {
    case ioURingSetup, ioURingEnter, epollCreate, epollControl, epollWait, eventFD
    case accept, receive, send, close, socket, bind, listen, connect, setOption

    public var description: String {
        switch self {
        case .ioURingSetup: "io_uring_setup"
        case .ioURingEnter: "io_uring_enter"
        case .epollCreate: "epoll_create1"
        case .epollControl: "epoll_ctl"
        case .epollWait: "epoll_wait"
        case .eventFD: "eventfd"
        case .accept: "accept4"
        case .receive: "recv"
        case .send: "send"
        case .close: "close"
        case .socket: "socket"
        case .bind: "bind"
        case .listen: "listen"
        case .connect: "connect"
        case .setOption: "setsockopt"
        }
    }
}

/// A system call that failed: which call, and the errno it returned.
///
/// Throwing it allocates nothing; the message text is built only when the error is printed.
public struct SystemCallError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The call that failed.
    public let call: SystemCall
    /// The `errno` value it returned (a positive `E…` constant).
    public let errno: CInt

    public init(_ call: SystemCall, errno: CInt) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call): \(String(cString: strerror(errno)))"
    }
}
