import CompletionPort
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Cooperative task running (io_uring, `IORING_SETUP_COOP_TASKRUN`): a receive whose bytes
/// arrived is finished by the kernel in the thread that submitted it, at that thread's next
/// entry into the kernel, without interrupting it. Any thread may submit on a port, so the
/// submitter may be doing something else entirely when the bytes come: these check that the
/// completion still reaches the thread waiting on the port, on both backends.
@Suite struct TaskWorkTests {
    /// The submitter sleeps in an unrelated system call (a blocking read on a pipe).
    @Test(arguments: availableBackends)
    func aReceiveCompletesWhileItsSubmitterSleepsElsewhere(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let (client, server) = try makeConnectedPair()
        defer { close(client) }
        try port.associate(server, key: 1)
        var wake: [CInt] = [-1, -1]
        #expect(pipe(&wake) == 0)
        defer { close(wake[0]); close(wake[1]) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
        defer { buffer.deallocate() }
        let submitted = Atomic<Bool>(false)
        let readEnd = wake[0]
        nonisolated(unsafe) let target = buffer
        let submitter = TestThread {
            _ = try? port.receive(on: server, into: target, context: 5)
            // releasing: pairs with the acquiring load below (the receive is in the kernel).
            submitted.store(true, ordering: .releasing)
            var byte: UInt8 = 0
            _ = read(readEnd, &byte, 1)
        }
        let inKernel = eventually { submitted.load(ordering: .acquiring) }
        #expect(inKernel)
        writeAll(client, [1, 2, 3])
        let completion = try expectCompletion(port)
        #expect(completion.operation == .receive && completion.context == 5 && completion.bytes == 3)
        #expect(Array(buffer.prefix(3)) == [1, 2, 3])
        var byte: UInt8 = 1
        _ = write(wake[1], &byte, 1)
        submitter.join()
        try port.close(handle: server)
    }

    /// The submitter runs without entering the kernel at all (a spin on an atomic): the
    /// completion must not wait until it stops.
    @Test(arguments: availableBackends)
    func aReceiveCompletesWhileItsSubmitterSpinsInUserSpace(backend: BackendChoice) throws {
        let port = try CompletionPort(backend: backend)
        let (client, server) = try makeConnectedPair()
        defer { close(client) }
        try port.associate(server, key: 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
        defer { buffer.deallocate() }
        let submitted = Atomic<Bool>(false)
        let stop = Atomic<Bool>(false)
        let stoppedWhenTold = Atomic<Bool>(false)
        nonisolated(unsafe) let target = buffer
        let spinner = TestThread {
            _ = try? port.receive(on: server, into: target, context: 6)
            // releasing/acquiring: as in the test above.
            submitted.store(true, ordering: .releasing)
            // Bounded: the clock is read through the vDSO, without entering the kernel.
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                // acquiring: pairs with the releasing store of `stop`.
                if stop.load(ordering: .acquiring) {
                    stoppedWhenTold.store(true, ordering: .relaxed)
                    return
                }
            }
        }
        let inKernel = eventually { submitted.load(ordering: .acquiring) }
        #expect(inKernel)
        writeAll(client, [4, 5])
        let completion = try expectCompletion(port, seconds: 15)
        stop.store(true, ordering: .releasing)
        spinner.join()
        #expect(completion.operation == .receive && completion.context == 6 && completion.bytes == 2)
        // It came while the spinner still spun: nobody waited for it to enter the kernel.
        let stillSpinning = stoppedWhenTold.load(ordering: .relaxed)
        #expect(stillSpinning)
        try port.close(handle: server)
    }
}
