import CompletionPort
#if canImport(Glibc)
import Glibc
#endif

/// The listening socket, created non-blocking and close-on-exec.
struct Listener {
    let fd: CInt
    let address: String
    let port: UInt16

    init(bindAddress: String, port: UInt16) throws(EngineError) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, bindAddress, &address.sin_addr) == 1 else {
            throw EngineError.invalidAddress(bindAddress)
        }
        let display = "\(bindAddress):\(port)"
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw EngineError.listen(display, SystemCallError(.socket, errno: errno)) }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
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
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = UInt16(bigEndian: address.sin_port)
        self.address = "\(bindAddress):\(self.port)"
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
