import CompletionPort
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Packets already queued must not keep the kernel's completions out of the port forever.
@Suite struct FairnessTests {
    /// One connection's sends complete at once (the epoll backend performs them inline, so each
    /// completion queues the next): the queue never empties. Another connection's receive waits
    /// for data that arrives meanwhile. Before the port polled the kernel while packets were
    /// queued, nobody harvested while the queue was non-empty and the receive never completed —
    /// how streaming connections starved on `--backend epoll` with one running thread.
    @Test(arguments: availableBackends)
    func aBusyQueueDoesNotStarveKernelCompletions(backend: BackendChoice) throws {
        let port = try CompletionPort(concurrency: 1, backend: backend)
        defer { port.close() }
        let waiting = try makeConnectedPair()
        let busy = try makeConnectedPair()
        defer { [waiting.client, waiting.server, busy.client, busy.server].forEach { close($0) } }
        try port.associate(waiting.server, key: 1)
        try port.associate(busy.server, key: 2)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        let byte = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 8)
        defer { byte.deallocate() }
        byte[0] = 7
        try port.receive(on: waiting.server, into: buffer, context: 1)
        try port.send(on: busy.server, from: UnsafeRawBufferPointer(byte), context: 2)
        var received = false
        var sends = 0
        for round in 0..<20_000 {
            let completion = try expectCompletion(port)
            if completion.key == 1 {
                #expect(completion.result == 1)
                received = true
                break
            }
            sends += 1
            try port.send(on: busy.server, from: UnsafeRawBufferPointer(byte), context: 2)
            if round == 0 { #expect(write(waiting.client, "x", 1) == 1) }
            // Keep the busy peer's receive buffer from filling (a full one would end the chain).
            if sends % 4096 == 0 { _ = readExactly(busy.client, 4096) }
        }
        #expect(received, "the receive completed while the other connection kept the queue busy (\(sends) sends)")
    }
}
