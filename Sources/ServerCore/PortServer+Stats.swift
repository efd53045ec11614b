import CIOURing
import CompletionPort
import EngineStats
#if canImport(Glibc)
import Glibc
#endif

extension PortServer {
    /// A frame sampled now, without publishing it (the sampler publishes one per period).
    /// Like the sampler's, it takes the closes held since the last frame (they are in this
    /// frame, not the next published one) and starts a new interval for connection rates.
    public func currentFrame() -> StatsFrame {
        var frame = StatsFrame()
        fill(&frame)
        return frame
    }

    /// CPU time used by the whole process so far, in ns.
    static func processCPUNanoseconds() -> UInt64 {
        var cpu = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu)
        return UInt64(cpu.tv_sec) &* 1_000_000_000 &+ UInt64(cpu.tv_nsec)
    }

    /// Fills a frame: every worker slot, the port's gauges, the engine's counters, and the
    /// per-worker connection and pending-operation counts from one scan of the connection table.
    ///
    /// A worker's connections are the open connections whose strand it ran last; its pending
    /// operations are the receives and sends in flight that it submitted. Both are computed
    /// here, from the attribution each connection's owner publishes, so the hot path only
    /// stores one word on a line it already owns.
    func fill(_ frame: inout StatsFrame) {
        let now = UInt64(CIOURing_now_ns())
        frame.timestampNs = now
        frame.uptimeNs = now &- startedNs
        frame.processCPUNs = Self.processCPUNanoseconds() &- startedCPUNs
        let retired = slots.sample(into: &frame.workers, now: now)
        frame.retired = retired.counts
        frame.retiredQueueWait = retired.queueWait
        frame.retiredService = retired.service
        frame.retiredHandler = retired.handler

        frame.port.queueDepth = port.queueDepth
        frame.port.runningThreads = port.runningThreads
        frame.port.concurrency = port.concurrency
        frame.port.parkedThreads = port.parkedThreads
        frame.port.pendingOperations = port.pendingOperations
        // Two gauges read one after the other: an age with nothing queued is dropped.
        let oldest = port.oldestQueuedAtNs
        frame.port.queueOldestMicroseconds = frame.port.queueDepth > 0 && oldest > 0 && UInt64(oldest) < now
            ? Int((now - UInt64(oldest)) / 1000) : 0

        // relaxed: independent counters and gauges, each read on its own (see their declaration).
        frame.engine.openConnections = openCount.load(ordering: .relaxed)
        frame.engine.peakConnections = peakCount.load(ordering: .relaxed)
        frame.engine.accepted = acceptedCount.load(ordering: .relaxed)
        frame.engine.refused = refusedCount.load(ordering: .relaxed)
        frame.engine.closedByError = closedByErrorCount.load(ordering: .relaxed)
        frame.engine.acceptErrors = acceptErrorCount.load(ordering: .relaxed)
        frame.engine.draining = isDraining
        frame.engine.drained = isDrained
        frame.settings.workMicroseconds = simulatedWorkMicroseconds
        frame.settings.blockMicroseconds = simulatedBlockMicroseconds
        frame.settings.workersTarget = workersTarget
        frame.settings.onlineCPUs = CompletionPort.onlineCPUs
        frame.load = loadProbe.withLock { $0 }?() ?? LoadSample()
        frame.auto = autoState.withLock { $0 }

        let slotCount = EngineConfiguration.maxWorkers
        tallyLock.withLock { _ in
            let connectionsBySlot = tally, pendingBySlot = tally + slotCount
            connectionsBySlot.update(repeating: 0, count: 2 * slotCount)
            sampleConnections(into: &frame, now: now, connectionsBySlot: connectionsBySlot, pendingBySlot: pendingBySlot)
            for index in frame.workers.indices where frame.workers[index].state != .exited {
                frame.workers[index].connections = connectionsBySlot[frame.workers[index].slot]
                frame.workers[index].pending = pendingBySlot[frame.workers[index].slot]
            }
        }
    }
}
