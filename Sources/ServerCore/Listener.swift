import CompletionPort
#if canImport(Glibc)
import Glibc
#endif

/// The listening socket, created non-blocking and close-on-exec.
struct Listener {
    let fd: CInt
    let address: String
    let port: UInt16

    /// Listens on `bindAddress` (IPv4, or IPv6 such as `::1` and `::`) and `port` (0: any).
    init(bindAddress: String, port: UInt16) throws(EngineError) {
        // sockaddr_in6 is the larger; an IPv4 address is written into its first bytes.
        var storage = sockaddr_storage()
        let family: CInt
        let length: socklen_t
        var v4 = sockaddr_in(), v6 = sockaddr_in6()
        if inet_pton(AF_INET, bindAddress, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: v4) { raw.copyMemory(from: $0) } }
            (family, length) = (AF_INET, socklen_t(MemoryLayout<sockaddr_in>.size))
        } else if inet_pton(AF_INET6, bindAddress, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: v6) { raw.copyMemory(from: $0) } }
            (family, length) = (AF_INET6, socklen_t(MemoryLayout<sockaddr_in6>.size))
        } else {
            throw EngineError.invalidAddress(bindAddress)
        }
        let host = family == AF_INET6 ? "[\(bindAddress)]" : bindAddress
        let display = "\(host):\(port)"
        let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw EngineError.listen(display, SystemCallError(.socket, errno: errno)) }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        if bound != 0 {
            let error = errno
            close(fd)
            if error == EADDRINUSE { throw EngineError.addressInUse(display) }
            throw EngineError.listen(display, SystemCallError(.bind, errno: error))
        }
        guard listen(fd, 4096) == 0 else {
            let error = errno
            close(fd)
            throw EngineError.listen(display, SystemCallError(.listen, errno: error))
        }
        var named = length
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &named) }
        }
        // The port sits at the same offset in both address families.
        let bound16 = withUnsafeBytes(of: storage) { $0.load(fromByteOffset: 2, as: UInt16.self) }
        self.fd = fd
        self.port = UInt16(bigEndian: bound16)
        self.address = "\(host):\(self.port)"
    }

    /// Raises the soft limit on open descriptors to the hard limit; returns the new soft limit.
    @discardableResult
    static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0 else { return -1 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(resource, &limit)
            _ = getrlimit(resource, &limit)
        }
        return limit.rlim_cur == rlim_t.max ? Int.max : Int(limit.rlim_cur)
    }
}
