import CIOURing
#if canImport(Glibc)
import Glibc
#endif

/// Resolves the server's address and opens non-blocking TCP connections to it.
enum Connector {
    /// The IPv4 address of `host` (a dotted quad or a name).
    static func resolve(_ host: String, port: UInt16) throws(LoadError) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        if inet_pton(AF_INET, host, &address.sin_addr) == 1 { return address }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result, let found = first.pointee.ai_addr else {
            throw LoadError.unresolvable(host)
        }
        defer { freeaddrinfo(result) }
        found.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address.sin_addr = $0.pointee.sin_addr }
        return address
    }

    /// Opens `count` connections at once and waits up to `timeout` seconds for them. Returns
    /// the connected sockets (non-blocking, TCP_NODELAY) and the failures by kind.
    static func connect(to address: sockaddr_in, count: Int, timeout: Double) -> (sockets: [CInt], failures: [ErrorCount]) {
        var failures: [String: Int] = [:]
        func fail(_ code: CInt) { failures[describe(code), default: 0] += 1 }
        let epoll = epoll_create1(CInt(EPOLL_CLOEXEC))
        defer { close(epoll) }
        var pending: Set<CInt> = []
        var connected: [CInt] = []
        var target = address
        for _ in 0..<count {
            let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                fail(errno)
                // Out of descriptors: the remaining ones would fail the same way.
                if errno == EMFILE || errno == ENFILE { failures[describe(errno), default: 0] += count - connected.count - pending.count - 1; break }
                continue
            }
            var one: CInt = 1
            setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
            let result = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if result == 0 {
                connected.append(fd)
            } else if errno == EINPROGRESS {
                var event = epoll_event(events: EPOLLOUT.rawValue, data: epoll_data_t(fd: fd))
                epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
                pending.insert(fd)
            } else {
                fail(errno)
                close(fd)
            }
        }
        let deadline = Double(monotonicNanoseconds()) / 1e9 + timeout
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while !pending.isEmpty {
            let left = deadline - Double(monotonicNanoseconds()) / 1e9
            guard left > 0 else { break }
            let ready = epoll_wait(epoll, &events, CInt(events.count), CInt(min(left * 1000, 1000)) + 1)
            for index in 0..<max(0, Int(ready)) {
                let fd = events[index].data.fd
                epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil)
                pending.remove(fd)
                var code: CInt = 0
                var length = socklen_t(MemoryLayout<CInt>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
                if code == 0 {
                    connected.append(fd)
                } else {
                    fail(code)
                    close(fd)
                }
            }
        }
        for fd in pending {
            fail(ETIMEDOUT)
            close(fd)
        }
        return (connected, failures.map { ErrorCount(kind: $0.key, count: $0.value) }.sorted { $0.count > $1.count })
    }

    /// "connection refused", "too many open files", … from an errno.
    static func describe(_ code: CInt) -> String {
        String(cString: strerror(code)).lowercased()
    }
}

/// CLOCK_MONOTONIC in ns.
@inline(__always)
func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}
