@testable import CompletionPort
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Overlapped operations on real loopback sockets, on each available backend.
@Suite struct SocketTests {
    @Test(arguments: availableBackends)
    func multishotAcceptDeliversEveryConnection(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let listener = try makeListener()
        try port.associate(listener.fd, key: 99)
        try port.acceptMultishot(on: listener.fd, context: 5)
        let clients = try (0..<5).map { _ in try connectClient(port: listener.port) }
        var accepted: [CInt] = []
        for _ in 0..<5 {
            let completion = try expectCompletion(port)
            #expect(completion.operation == .accept)
            #expect(completion.succeeded)
            #expect(completion.hasMore)
            #expect(completion.key == 99)
            #expect(completion.context == 5)
            accepted.append(completion.acceptedDescriptor)
        }
        #expect(Set(accepted).count == 5)
        // Closing the listener ends the multishot accept with a final, cancelled completion.
        try port.close(handle: listener.fd)
        let last = try expectCompletion(port)
        #expect(last.operation == .accept)
        #expect(last.errno == ECANCELED)
        #expect(!last.hasMore)
        #expect(eventually { port.pendingOperations == 0 })
        (clients + accepted).forEach { _ = close($0) }
    }

    @Test(arguments: availableBackends)
    func receiveThenSendEchoes(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let (client, server) = try makeConnectedPair()
        defer { close(client) }
        try port.associate(server, key: 42)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        try port.receive(on: server, into: buffer, context: 1)
        writeAll(client, Array("hello".utf8))
        let received = try expectCompletion(port)
        #expect(received.operation == .receive)
        #expect(received.key == 42)
        #expect(received.context == 1)
        #expect(received.bytes == 5)
        try port.send(on: server, from: UnsafeRawBufferPointer(rebasing: buffer[0..<5]), context: 2)
        let sent = try expectCompletion(port)
        #expect(sent.operation == .send)
        #expect(sent.bytes == 5)
        #expect(sent.context == 2)
        #expect(readExactly(client, 5) == Array("hello".utf8))
        // The peer closes: a receive completes with 0 bytes.
        try port.receive(on: server, into: buffer, context: 3)
        shutdown(client, Int32(SHUT_WR))
        let eof = try expectCompletion(port)
        #expect(eof.succeeded)
        #expect(eof.bytes == 0)
        try port.close(handle: server)
    }

    @Test(arguments: availableBackends)
    func largePayloadAgainstSmallSendBufferShowsPartialSends(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let (client, server) = try makeConnectedPair()
        defer { close(client) }
        var small: CInt = 4096
        setsockopt(server, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<CInt>.size))
        try port.associate(server, key: 1)
        let size = 4 << 20
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
        defer { payload.deallocate() }
        for i in 0..<size { payload[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        let expected = Array(payload)
        let received = Mutex<[UInt8]>([])
        let reader = TestThread {
            let bytes = readExactly(client, size)
            received.withLock { $0 = bytes }
        }
        var offset = 0
        var partial = 0
        var sends = 0
        while offset < size {
            let remaining = UnsafeRawBufferPointer(rebasing: payload[offset...])
            try port.send(on: server, from: remaining, context: UInt64(offset))
            let completion = try expectCompletion(port)
            #expect(completion.succeeded)
            #expect(completion.context == UInt64(offset))
            if completion.bytes < remaining.count { partial += 1 }
            offset += completion.bytes
            sends += 1
        }
        reader.join()
        #expect(offset == size)
        #expect(partial > 0, "expected at least one partial send in \(sends) sends")
        #expect(received.withLock { $0 } == expected)
        try port.close(handle: server)
    }

    @Test(arguments: availableBackends)
    func peerResetCompletesAsAnError(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let (client, server) = try makeConnectedPair()
        try port.associate(server, key: 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        try port.receive(on: server, into: buffer, context: 9)
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(client)
        let completion = try expectCompletion(port)
        #expect(completion.operation == .receive)
        #expect(completion.context == 9)
        #expect(completion.errno == ECONNRESET)
        #expect(completion.error == SystemCallError(.receive, errno: ECONNRESET))
        // The port keeps serving after a failed completion.
        try port.post(key: 2)
        #expect(try expectCompletion(port).key == 2)
        try port.close(handle: server)
    }

    @Test(arguments: availableBackends)
    func receiveOnAClosedDescriptorCompletesAsAnError(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let (client, connected) = try makeConnectedPair()
        defer { close(client) }
        // A descriptor number far above the lowest free one: tests running in parallel open
        // descriptors all the time and would get the closed number back at once.
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        let server = fcntl(connected, F_DUPFD_CLOEXEC, CInt(min(limit.rlim_cur, 1 << 20) - 16))
        close(connected)
        #expect(server >= 0)
        try port.associate(server, key: 1)
        close(server)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        try port.receive(on: server, into: buffer, context: 4)
        let completion = try expectCompletion(port)
        #expect(completion.context == 4)
        #expect(completion.errno == EBADF)
        #expect(port.pendingOperations == 0)
    }

    @Test(arguments: availableBackends)
    func closingAHandleCancelsItsPendingOperations(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let (client, server) = try makeConnectedPair()
        defer { close(client) }
        try port.associate(server, key: 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        try port.receive(on: server, into: buffer, context: 8)
        #expect(port.pendingOperations == 1)
        try port.close(handle: server)
        let completion = try expectCompletion(port)
        #expect(completion.context == 8)
        #expect(completion.errno == ECANCELED)
        #expect(port.pendingOperations == 0)
        // Exactly once: nothing else arrives.
        #expect(port.dequeue(timeout: .milliseconds(50)) == .timeout)
        #expect(throws: PortError.notAssociated(server)) { try port.close(handle: server) }
    }

    @Test(arguments: availableBackends)
    func cancellingOneReceiveCompletesItAsCancelledOnce(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let (client, server) = try makeConnectedPair()
        defer { close(client) }
        try port.associate(server, key: 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        let token = try port.receive(on: server, into: buffer, context: 5)
        port.cancel(token, on: server)
        let cancelled = try expectCompletion(port)
        #expect(cancelled.context == 5)
        #expect(cancelled.errno == ECANCELED)
        // Delivered, not taken for a thread exit's cancellation and resubmitted.
        #expect(port.dequeue(timeout: .milliseconds(100)) == .timeout)
        #expect(port.pendingOperations == 0)
        // The handle stays usable, and the old token cancels nothing, even once its slot
        // serves the next receive.
        try port.receive(on: server, into: buffer, context: 6)
        port.cancel(token, on: server)
        writeAll(client, [1, 2, 3])
        let received = try expectCompletion(port)
        #expect(received.context == 6)
        #expect(received.bytes == 3)
        // A cancel racing data that has arrived: exactly one completion, with the byte or
        // cancelled; if cancelled, the byte is still in the socket for the next receive.
        for round in 0..<50 {
            let racing = try port.receive(on: server, into: buffer, context: 7)
            writeAll(client, [UInt8(round)])
            port.cancel(racing, on: server)
            let outcome = try expectCompletion(port)
            #expect(outcome.context == 7)
            if outcome.errno == ECANCELED {
                try port.receive(on: server, into: buffer, context: 8)
                let retry = try expectCompletion(port)
                #expect(retry.bytes == 1 && buffer[0] == UInt8(round))
            } else {
                #expect(outcome.bytes == 1 && buffer[0] == UInt8(round))
            }
        }
        #expect(port.dequeue(timeout: .milliseconds(100)) == .timeout)
        #expect(port.pendingOperations == 0)
        try port.close(handle: server)
    }

    @Test(arguments: availableBackends)
    func operationsOfAnExitedThreadStillComplete(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let (client, server) = try makeConnectedPair()
        defer { close(client) }
        try port.associate(server, key: 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        nonisolated(unsafe) let target = buffer
        let submitter = TestThread { try? port.receive(on: server, into: target, context: 6) }
        submitter.join()
        writeAll(client, [1, 2, 3])
        let completion = try expectCompletion(port)
        #expect(completion.context == 6)
        #expect(completion.bytes == 3)
        try port.close(handle: server)
    }

    @Test(arguments: availableBackends)
    func closingThePortCancelsInFlightOperations(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let (client, server) = try makeConnectedPair()
        defer { close(client); close(server) }
        try port.associate(server, key: 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        try port.receive(on: server, into: buffer, context: 3)
        port.close()
        let completion = try expectCompletion(port)
        #expect(completion.errno == ECANCELED)
        #expect(port.dequeue(timeout: .seconds(5)) == .portClosed)
        #expect(throws: PortError.portClosed) { try port.receive(on: server, into: buffer, context: 4) }
    }

    /// A burst of 300 connections that each send one byte: every accept and every first
    /// receive completes, exactly once.
    @Test(arguments: availableBackends)
    func acceptBurstLosesNoReceive(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let listener = try makeListener()
        try port.associate(listener.fd, key: UInt64.max)
        try port.acceptMultishot(on: listener.fd, context: 0)
        let count = 300
        let clients = try (0..<count).map { _ in try connectClient(port: listener.port) }
        defer { clients.forEach { close($0) } }
        for client in clients { writeAll(client, [7]) }
        let buffers = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * count, alignment: 16)
        defer { buffers.deallocate() }
        var accepted: [CInt] = []
        var received = 0
        while received < count {
            let completion = try expectCompletion(port)
            if completion.operation == .accept {
                #expect(completion.succeeded)
                let fd = completion.acceptedDescriptor
                let index = accepted.count
                accepted.append(fd)
                try port.associate(fd, key: UInt64(index))
                try port.receive(on: fd, into: UnsafeMutableRawBufferPointer(rebasing: buffers[(16 * index)..<(16 * index + 16)]), context: 1)
            } else {
                #expect(completion.operation == .receive)
                #expect(completion.bytes == 1)
                received += 1
            }
        }
        #expect(accepted.count == count)
        for fd in accepted { try port.close(handle: fd) }
        try port.close(handle: listener.fd)
    }
}

/// A harvest whose accepts fill the batch must not drop the other events of the same kernel
/// batch: on epoll those are edge-triggered and would never be reported again.
@Suite struct HarvestBatchTests {
    @Test(arguments: availableBackends)
    func acceptsFillingTheBatchDoNotLoseReceives(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let listener = try makeListener()
        try port.associate(listener.fd, key: UInt64.max)
        try port.acceptMultishot(on: listener.fd, context: 0)
        // Three connections with their receives armed before any data arrives.
        let armed = try (0..<3).map { _ in try connectClient(port: listener.port) }
        defer { armed.forEach { close($0) } }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 48, alignment: 16)
        defer { buffer.deallocate() }
        var servers: [CInt] = []
        while servers.count < 3 {
            let accept = try expectCompletion(port)
            #expect(accept.operation == .accept)
            let fd = accept.acceptedDescriptor
            try port.associate(fd, key: UInt64(servers.count))
            try port.receive(on: fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[(16 * servers.count)..<(16 * servers.count + 16)]), context: 1)
            servers.append(fd)
        }
        // With nobody dequeuing: the listener becomes ready first, with more connections
        // waiting than a harvest holds (128), then the armed connections get their bytes.
        let burst = try (0..<140).map { _ in try connectClient(port: listener.port) }
        defer { burst.forEach { close($0) } }
        for client in armed { writeAll(client, [9]) }
        var receives = 0, accepts = 0
        while receives < 3 || accepts < 140 {
            guard case .completion(let completion) = port.dequeue(timeout: .seconds(3)) else { break }
            if completion.operation == .accept {
                accepts += 1
                close(completion.acceptedDescriptor)
            } else if completion.operation == .receive {
                receives += 1
            }
        }
        #expect(receives == 3, "a receive was lost")
        #expect(accepts == 140)
        for fd in servers { try port.close(handle: fd) }
        try port.close(handle: listener.fd)
    }
}
