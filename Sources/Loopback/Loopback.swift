import NativeThreads
import CompletionPort
#if canImport(Glibc)
import Glibc
#endif

/// Loopback TCP sockets for iocptop's tests and benchmarks: a listener on an ephemeral port,
/// clients, and whole-buffer reads and writes on blocking sockets.
public enum Loopback {
    /// A listening socket on 127.0.0.1 with an ephemeral port.
    public static func listen(backlog: CInt = 1024) throws(SystemCallError) -> (fd: CInt, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError(.socket, errno: errno) }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        var address = address(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, backlog) == 0 else {
            let error = errno
            close(fd)
            throw SystemCallError(.bind, errno: error)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// A client connected to 127.0.0.1:`port`; blocking unless `nonBlocking` (set after the
    /// connect), with Nagle off when `noDelay`.
    public static func connect(port: UInt16, noDelay: Bool = false, nonBlocking: Bool = false) throws(SystemCallError) -> CInt {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError(.socket, errno: errno) }
        var address = address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            close(fd)
            throw SystemCallError(.connect, errno: error)
        }
        if noDelay {
            var one: CInt = 1
            setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        }
        if nonBlocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        return fd
    }

    /// Writes all of `bytes` to a blocking socket. False if the socket failed first.
    @discardableResult
    public static func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// Reads until `buffer` is full, EOF or an error; returns how many bytes arrived.
    public static func readExactly(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var offset = 0
        while offset < buffer.count {
            let n = read(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            offset += n
        }
        return offset
    }

    /// Reads until EOF or an error (retrying EINTR); returns everything that arrived.
    public static func readToEnd(_ fd: CInt) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    private static func address(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return address
    }
}

/// A thread running a closure, joined explicitly: tests and benchmarks need real threads
/// (the port's semantics are per thread), not tasks. A thread that cannot be created stops the
/// test run with the reason (there is nothing a test could do without it).
public final class JoinableThread: Sendable {
    private let thread: NativeThread

    public init(_ body: @escaping @Sendable () -> Void) {
        do {
            thread = try NativeThread.start(body)
        } catch {
            fatalError("\(error)")
        }
    }

    public func join() { thread.join() }
}
