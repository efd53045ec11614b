import CIOURing
#if canImport(Glibc)
import Glibc
#endif

/// Resolves the server's address and opens non-blocking TCP connections to it.
enum Connector {
    /// A resolved server address: IPv4 or IPv6.
    struct Address {
        var storage = sockaddr_storage()
        var family: CInt = AF_INET
        var length: socklen_t = 0
    }

    /// The address of `host` (an IPv4 or IPv6 literal, or a name: IPv4 first) and `port`.
    static func resolve(_ host: String, port: UInt16) throws(LoadError) -> Address {
        var result = Address()
        var v4 = sockaddr_in(), v6 = sockaddr_in6()
        let literal = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if inet_pton(AF_INET, literal, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &result.storage) { raw in withUnsafeBytes(of: v4) { raw.copyMemory(from: $0) } }
            (result.family, result.length) = (AF_INET, socklen_t(MemoryLayout<sockaddr_in>.size))
            return result
        }
        if inet_pton(AF_INET6, literal, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &result.storage) { raw in withUnsafeBytes(of: v6) { raw.copyMemory(from: $0) } }
            (result.family, result.length) = (AF_INET6, socklen_t(MemoryLayout<sockaddr_in6>.size))
            return result
        }
        for family in [AF_INET, AF_INET6] {
            var hints = addrinfo()
            hints.ai_family = family
            hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
            var found: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(literal, nil, &hints, &found) == 0, let first = found, let address = first.pointee.ai_addr else { continue }
            defer { freeaddrinfo(found) }
            let size = Int(first.pointee.ai_addrlen)
            withUnsafeMutableBytes(of: &result.storage) { raw in
                raw.copyMemory(from: UnsafeRawBufferPointer(start: address, count: min(size, raw.count)))
                // The port sits at the same offset in both families.
                raw.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
            }
            (result.family, result.length) = (family, socklen_t(size))
            return result
        }
        throw LoadError.unresolvable(host)
    }

    /// Opens `count` connections at once and waits up to `timeout` seconds for them. Returns
    /// the connected sockets (non-blocking, TCP_NODELAY) and the failures by kind.
    static func connect(to address: Address, count: Int, timeout: Double) -> (sockets: [CInt], failures: [ErrorCount]) {
        var failures: [String: Int] = [:]
        func fail(_ code: CInt) { failures[describe(code), default: 0] += 1 }
        let epoll = epoll_create1(CInt(EPOLL_CLOEXEC))
        defer { close(epoll) }
        var pending: Set<CInt> = []
        var connected: [CInt] = []
        var target = address.storage
        for _ in 0..<count {
            let fd = socket(address.family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                fail(errno)
                // Out of descriptors: the remaining ones would fail the same way.
                if errno == EMFILE || errno == ENFILE { failures[describe(errno), default: 0] += count - connected.count - pending.count - 1; break }
                continue
            }
            var one: CInt = 1
            setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
            let result = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, address.length) }
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
