import CompletionPort
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Backends that can run here: epoll always; io_uring when io_uring_setup succeeds.
let availableBackends: [BackendChoice] = {
    var backends: [BackendChoice] = [.epoll]
    do {
        _ = try CompletionPort(backend: .ioURing)
        backends.insert(.ioURing, at: 0)
    } catch {
        print("io_uring tests skipped: \(error)")
    }
    return backends
}()

/// A joinable pthread running a closure.
final class TestThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: () -> Void

    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let me = Unmanaged<TestThread>.fromOpaque(raw!).takeRetainedValue()
            me.body()
            return nil
        }, box)
    }

    func join() { pthread_join(thread, nil) }
}

/// Polls `condition` until it holds or `seconds` pass. Returns whether it held.
func eventually(within seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        sched_yield()
        usleep(200)
    }
    return condition()
}

/// A listening TCP socket on 127.0.0.1 with an ephemeral port.
func makeListener() throws -> (fd: CInt, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SystemCallError(.socket, errno: errno) }
    var one: CInt = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(fd, 1024) == 0 else { throw SystemCallError(.bind, errno: errno) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, UInt16(bigEndian: address.sin_port))
}

/// A blocking client socket connected to 127.0.0.1:`port`.
func connectClient(port: UInt16) throws -> CInt {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SystemCallError(.socket, errno: errno) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw SystemCallError(.connect, errno: errno) }
    return fd
}

/// A connected pair: a client socket and the server side accepted through plain accept(2).
func makeConnectedPair() throws -> (client: CInt, server: CInt) {
    let listener = try makeListener()
    defer { close(listener.fd) }
    let client = try connectClient(port: listener.port)
    let server = accept(listener.fd, nil, nil)
    guard server >= 0 else { throw SystemCallError(.accept, errno: errno) }
    return (client, server)
}

/// Writes all of `bytes` to a blocking socket.
func writeAll(_ fd: CInt, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return }
        offset += n
    }
}

/// Reads exactly `count` bytes from a blocking socket (fewer on EOF or error).
func readExactly(_ fd: CInt, _ count: Int) -> [UInt8] {
    var result = [UInt8](repeating: 0, count: count)
    var offset = 0
    while offset < count {
        let n = result[offset...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        offset += n
    }
    return Array(result[0..<offset])
}

/// Dequeues one completion or fails the test.
func expectCompletion(_ port: CompletionPort, seconds: Int = 10,
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> Completion {
    let result = port.dequeue(timeout: .seconds(seconds))
    guard case .completion(let completion) = result else {
        Issue.record("expected a completion, got \(result)", sourceLocation: sourceLocation)
        throw CancellationError()
    }
    return completion
}
