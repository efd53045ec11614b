import CIOURing
import CompletionPort
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Cooperative task running (io_uring, `IORING_SETUP_COOP_TASKRUN`): a receive whose bytes
/// arrived is finished by the kernel in the thread that submitted it, at that thread's next
/// return from the kernel, without interrupting it. Any thread may submit on a port, so the
/// submitter may be doing something else entirely when the bytes come: these check that the
/// completion still reaches the thread waiting on the port, on both backends.
@Suite struct TaskWorkTests {
    /// Whether the running kernel is at least `major.minor` (from uname's release).
    private static func kernelIsAtLeast(_ major: Int, _ minor: Int) -> Bool {
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return false }
        return (parts[0], parts[1]) >= (major, minor)
    }

    /// The state letter of thread `tid` of this process (`/proc/self/task/TID/stat`, field 3).
    private static func threadState(_ tid: Int32) -> Character? {
        guard let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        return stat[close...].dropFirst(2).first
    }

    @Test func ioURingPortsRunTasksCooperativelyFrom5_19() throws {
        #expect(!(try CompletionPort(backend: .epoll)).cooperativeTaskRunning)
        guard availableBackends.contains(.ioURing) else { return }
        let port = try CompletionPort(backend: .ioURing)
        #expect(port.cooperativeTaskRunning == Self.kernelIsAtLeast(5, 19))
    }

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
        // Runs before the buffer goes: nothing stays armed on it, even when the test fails.
        defer { port.close() }
        let submitter = Atomic<Int32>(0)
        let readEnd = wake[0], writeEnd = wake[1]
        nonisolated(unsafe) let target = buffer
        let thread = TestThread {
            _ = try? port.receive(on: server, into: target, context: 5)
            // releasing: pairs with the acquiring load below (the receive is in the kernel).
            submitter.store(CIOURing_thread_id(), ordering: .releasing)
            var byte: UInt8 = 0
            _ = read(readEnd, &byte, 1)
        }
        defer {
            var byte: UInt8 = 1
            _ = write(writeEnd, &byte, 1)
            thread.join()
        }
        // Write only once the submitter sleeps in its read ("S": interruptible sleep).
        let asleep = eventually {
            let tid = submitter.load(ordering: .acquiring)
            return tid != 0 && Self.threadState(tid) == "S"
        }
        #expect(asleep)
        writeAll(client, [1, 2, 3])
        let completion = try expectCompletion(port)
        #expect(completion.operation == .receive && completion.context == 5 && completion.bytes == 3)
        #expect(Array(buffer.prefix(3)) == [1, 2, 3])
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
        defer { port.close() }
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
        var joined = false
        defer {
            if !joined {
                stop.store(true, ordering: .releasing)
                spinner.join()
            }
        }
        let inKernel = eventually { submitted.load(ordering: .acquiring) }
        #expect(inKernel)
        writeAll(client, [4, 5])
        let completion = try expectCompletion(port, seconds: 15)
        stop.store(true, ordering: .releasing)
        spinner.join()
        joined = true
        #expect(completion.operation == .receive && completion.context == 6 && completion.bytes == 2)
        // It came while the spinner still spun: nobody waited for it to enter the kernel.
        let stillSpinning = stoppedWhenTold.load(ordering: .relaxed)
        #expect(stillSpinning)
        try port.close(handle: server)
    }
}
