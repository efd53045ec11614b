import CompletionPort
import Loopback
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The seed's advice, measured: keep several receives outstanding per socket, so the kernel
/// always has a buffer to fill while the previous one is being handled.
///
/// Clients stream a position-dependent byte pattern (byte `i` of a connection is `i % 251`) as
/// fast as the socket takes it; one server thread keeps `receivesPerSocket` receives of `size`
/// bytes outstanding on each connection and checks, completion by completion, that each
/// brings the bytes that follow the previous one (one thread dequeues, so completion order is
/// the order it sees). Reports receive throughput, the server thread's CPU time per MiB, and
/// how many completions arrived out of order.
struct OutstandingReceivesResult {
    var mebibytesPerSecond: Double
    var cpuMicrosecondsPerMebibyte: Double
    var outOfOrder: Int
}

private final class SinkConnection: @unchecked Sendable {
    // @unchecked: each buffer is used by one receive at a time; the completion hands it back.
    let fd: CInt
    let buffers: [UnsafeMutableRawBufferPointer]
    /// Stream offset the next completion must start at.
    var next = 0
    init(fd: CInt, count: Int, size: Int) {
        self.fd = fd
        buffers = (0..<count).map { _ in .allocate(byteCount: size, alignment: 64) }
    }
    deinit { buffers.forEach { $0.deallocate() } }
}

private func threadCPUNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

func outstandingReceives(backend: BackendChoice, receivesPerSocket: Int, connections: Int, size: Int,
                         seconds: Double) throws -> OutstandingReceivesResult {
    let port = try CompletionPort(concurrency: 1, backend: backend)
    let listener = try Loopback.listen()
    var clients: [CInt] = []
    var sinks: [SinkConnection] = []
    for _ in 0..<connections {
        clients.append(try Loopback.connect(port: listener.port))
        let server = accept(listener.fd, nil, nil)
        guard server >= 0 else { throw SystemCallError(.accept, errno: errno) }
        sinks.append(SinkConnection(fd: server, count: receivesPerSocket, size: size))
    }
    close(listener.fd)
    // The pattern, long enough to take `size` bytes from any phase of it.
    let pattern = UnsafeMutableRawBufferPointer.allocate(byteCount: size + 251, alignment: 64)
    defer { pattern.deallocate() }
    for i in 0..<pattern.count { pattern[i] = UInt8(i % 251) }
    nonisolated(unsafe) let source = UnsafeRawBufferPointer(pattern)

    let stop = Atomic<Bool>(false)
    let writers = clients.map { client in
        BenchThread {
            var offset = 0
            // relaxed: a stop flag; the shutdown below also ends a blocked write.
            while !stop.load(ordering: .relaxed) {
                let phase = offset % 251
                let n = write(client, source.baseAddress! + phase, size)
                if n <= 0 { return }
                offset += n
            }
        }
    }
    for (index, sink) in sinks.enumerated() {
        try port.associate(sink.fd, key: UInt64(index))
        for (slot, buffer) in sink.buffers.enumerated() {
            try port.receive(on: sink.fd, into: buffer, context: UInt64(slot))
        }
    }

    var received = 0
    var outOfOrder = 0
    let clock = ContinuousClock()
    let start = clock.now
    let cpuStart = threadCPUNanoseconds()
    let deadline = start + .milliseconds(Int(seconds * 1000))
    var batch = [Completion](repeating: Completion(operation: .posted, result: 0, key: 0, context: 0), count: 64)
    batch.withUnsafeMutableBufferPointer { batch in
        while clock.now < deadline {
            guard case .completions(let n) = port.dequeue(into: batch, timeout: .milliseconds(100)) else { continue }
            for completion in batch[0..<n] {
                let sink = sinks[Int(completion.key)]
                guard completion.succeeded, completion.bytes > 0 else { continue }
                let buffer = sink.buffers[Int(completion.context)]
                if memcmp(buffer.baseAddress!, source.baseAddress! + sink.next % 251, completion.bytes) != 0 {
                    outOfOrder += 1
                }
                sink.next += completion.bytes
                received += completion.bytes
                _ = try? port.receive(on: sink.fd, into: buffer, context: completion.context)
            }
        }
    }
    let cpu = threadCPUNanoseconds() - cpuStart
    let elapsed = clock.now - start
    stop.store(true, ordering: .relaxed)
    clients.forEach { shutdown($0, CInt(SHUT_RDWR)) }
    writers.forEach { $0.join() }
    // Closing the port cancels the outstanding receives before the buffers go away.
    port.close()
    while case .completion = port.dequeue(timeout: .seconds(5)) {}
    clients.forEach { close($0) }
    sinks.forEach { close($0.fd) }
    let mebibytes = Double(received) / 1_048_576
    return OutstandingReceivesResult(
        mebibytesPerSecond: perSecond(received, elapsed) / 1_048_576,
        cpuMicrosecondsPerMebibyte: mebibytes > 0 ? Double(cpu) / 1000 / mebibytes : 0,
        outOfOrder: outOfOrder)
}
