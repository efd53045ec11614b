import CompletionPort
import Loopback
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The backends under test (see `testedBackends`: io_uring fails loudly where the kernel refuses it).
let availableBackends = testedBackends

typealias TestThread = JoinableThread

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
func makeListener() throws -> (fd: CInt, port: UInt16) { try Loopback.listen() }

/// A blocking client socket connected to 127.0.0.1:`port`.
func connectClient(port: UInt16) throws -> CInt { try Loopback.connect(port: port) }

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
    bytes.withUnsafeBytes { Loopback.writeAll(fd, $0) }
}

/// Reads exactly `count` bytes from a blocking socket (fewer on EOF or error).
func readExactly(_ fd: CInt, _ count: Int) -> [UInt8] {
    var result = [UInt8](repeating: 0, count: count)
    let n = result.withUnsafeMutableBytes { Loopback.readExactly(fd, into: $0) }
    return Array(result[0..<n])
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
