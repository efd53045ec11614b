import CompletionPort
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Multishot receives over provided buffers (io_uring, kernel 6.0+).
@Suite struct MultishotReceiveTests {
    /// A port with 8 provided buffers of 16 bytes, or nil (with a recorded issue unless
    /// `IOCPTOP_ALLOW_NO_URING=1`) when the kernel has no multishot receive.
    private func makePort() throws -> CompletionPort? {
        let port = try CompletionPort(backend: .ioURing, providedBuffers: 8, providedBufferSize: 16)
        if !port.receivesMultishot {
            if getenv("IOCPTOP_ALLOW_NO_URING") == nil {
                Issue.record("this kernel serves no multishot receive (set IOCPTOP_ALLOW_NO_URING=1 to allow)")
            }
            return nil
        }
        return port
    }

    @Test func eachArrivalIsOneNumberedCompletionInAProvidedBuffer() throws {
        guard let port = try makePort() else { return }
        let (client, server) = try makeConnectedPair()
        defer { close(client) }
        try port.associate(server, key: 3)
        try port.receiveMultishot(on: server, context: 9)
        var received: [UInt8] = []
        var sequences: [UInt32] = []
        for round in 0..<40 {
            // More rounds than buffers: each must be handed back for the next arrival.
            let bytes = (0..<(1 + round % 16)).map { UInt8(truncatingIfNeeded: round &* 7 &+ $0) }
            writeAll(client, bytes)
            var got = 0
            while got < bytes.count {
                let completion = try expectCompletion(port)
                #expect(completion.context == 9 && completion.key == 3 && completion.hasMore)
                #expect(completion.bufferID >= 0 && completion.bufferID < 8)
                let memory = port.providedBuffer(completion.bufferID)
                received += memory.prefix(completion.bytes)
                got += completion.bytes
                sequences.append(completion.sequence)
                port.recycle(providedBuffer: completion.bufferID)
            }
        }
        let sent = (0..<40).flatMap { round in (0..<(1 + round % 16)).map { UInt8(truncatingIfNeeded: round &* 7 &+ $0) } }
        #expect(received == sent)
        #expect(sequences == (0..<UInt32(sequences.count)).map { $0 })
        #expect(port.pendingOperations == 1)
        // The peer's close ends it: 0 bytes, no buffer, no `hasMore`.
        shutdown(client, CInt(SHUT_WR))
        let end = try expectCompletion(port)
        #expect(end.bytes == 0 && end.succeeded && !end.hasMore && end.bufferID == -1)
        #expect(end.sequence == UInt32(sequences.count))
        #expect(port.pendingOperations == 0)
        try port.close(handle: server)
    }

    @Test func aCancelEndsItAndUnreturnedBuffersEndItWithENOBUFS() throws {
        guard let port = try makePort() else { return }
        let (client, server) = try makeConnectedPair()
        defer { close(client) }
        try port.associate(server, key: 1)
        let token = try port.receiveMultishot(on: server, context: 0)
        port.cancel(token, on: server)
        let cancelled = try expectCompletion(port)
        #expect(cancelled.errno == ECANCELED && !cancelled.hasMore)
        #expect(port.dequeue(timeout: .milliseconds(100)) == .timeout)
        #expect(port.pendingOperations == 0)
        // Keep every buffer: the ninth arrival finds none.
        try port.receiveMultishot(on: server, context: 0)
        var kept: [Int32] = []
        var ended: Completion?
        for round in 0..<9 where ended == nil {
            writeAll(client, [UInt8(round)])
            while ended == nil {
                let completion = try expectCompletion(port)
                if completion.bufferID >= 0 { kept.append(completion.bufferID) }
                if !completion.hasMore { ended = completion }
                if completion.bufferID >= 0 { break }
            }
        }
        let last = try #require(ended)
        #expect(last.errno == ENOBUFS)
        #expect(kept.count == 8 && Set(kept).count == 8)
        for id in kept { port.recycle(providedBuffer: id) }
        // The unread byte is still in the socket for the next receive.
        try port.receiveMultishot(on: server, context: 0)
        let next = try expectCompletion(port)
        #expect(next.bytes == 1 && port.providedBuffer(next.bufferID)[0] == 8)
        port.recycle(providedBuffer: next.bufferID)
        try port.close(handle: server)
        let closed = try expectCompletion(port)
        #expect(closed.errno == ECANCELED && !closed.hasMore)
    }

    @Test func epollHasNone() throws {
        let port = try CompletionPort(backend: .epoll, providedBuffers: 8, providedBufferSize: 16)
        #expect(!port.receivesMultishot)
        let (client, server) = try makeConnectedPair()
        defer { close(client); close(server) }
        try port.associate(server, key: 1)
        #expect(throws: PortError.self) { try port.receiveMultishot(on: server, context: 0) }
    }
}
