import CIOURing
import CompletionPort
import EngineStats
import NativeThreads
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One worker thread: dequeues batches of completions and serves them until it dequeues a
/// shutdown packet or the port closes. It records its activity in its own counter slot.
final class Worker: @unchecked Sendable {
    // @unchecked: `thread` is set once by `start`, before the worker is shared; the slot has one writer, this worker.
    let id: Int
    /// This worker's counter slot; only this worker writes it.
    let slot: WorkerSlot
    /// False when the engine does not count worker activity (benchmarking the counters' cost).
    let counts: Bool
    /// unowned(unsafe): read on every completion, so no reference counting at all (an
    /// `unowned` load is an atomic increment and decrement, slow ones when the object has a
    /// side table). Sound because the engine joins every worker before it goes away: `drain`,
    /// which `deinit` runs, returns only after joining them.
    private unowned(unsafe) let engine: PortServer
    private var thread: NativeThread?
    private let exited = Atomic<Bool>(false)
    /// Set by the worker when it dequeues a shutdown packet; read by `retireWorker` on other
    /// threads. Relaxed: a hint for counting live workers, ordered with nothing else.
    private let retiringFlag = Atomic<Bool>(false)
    var retiring: Bool { retiringFlag.load(ordering: .relaxed) }

    static let batchSize = 64

    /// The packet being served: when it started, how long it had waited in the port's FIFO,
    /// and the last clock reading a strand took while serving it (handler time is measured
    /// from there). Touched only by this worker's thread, and only while it counts.
    var packetStartNs: UInt64 = 0
    var packetWaitNs: UInt64 = 0
    var strandClockNs: UInt64 = 0

    init(id: Int, slot: WorkerSlot, engine: PortServer) {
        self.id = id
        self.slot = slot
        self.engine = engine
        counts = engine.configuration.countsWorkerActivity
    }

    var hasExited: Bool { exited.load(ordering: .acquiring) }

    /// Starts the thread (once, before the worker is shared).
    func start() throws(NativeThread.StartError) {
        thread = try NativeThread.start { [self] in run() }
    }

    /// Waits for the thread to end (idempotent; nothing to wait for if it never started).
    func join() { thread?.join() }

    /// Records a state change in the slot (once per dequeue, never per completion).
    @inline(__always)
    func enter(_ state: WorkerState) {
        if counts { slot.enter(state, at: UInt64(CIOURing_now_ns())) }
    }

    /// A batch held this long (from its first packet's start) gives its unstarted packets back
    /// to the port at the next packet boundary — if another worker could take them now (one is
    /// parked and the concurrency limit lets it run) — so a handler that runs long without
    /// blocking (CPU work) does not keep the rest of its batch from an idle worker either. A
    /// blocking handler gives them back at once (`CompletionPort.blocking`). Long against a
    /// batch of fast packets (64 echo completions take some 100–300 µs), short against what a
    /// client notices. Not unconditional: with nobody to take them, a give-back only wakes a
    /// parked thread to harvest for a gate that is closed, and the same worker takes the
    /// packets back (measured: streaming lost up to 40 % on one core). Only while the worker
    /// counts its activity (it reads the clock per packet then); an engine that does not
    /// (`countsWorkerActivity` off, for measuring the counters' cost) gives back on blocking only.
    static let giveBackAfterNs: UInt64 = 1_000_000

    private func run() {
        let batch = PacketBatch(capacity: Self.batchSize)
        slot.registerCurrentThread()
        defer {
            slot.recordFinalCPU()
            // The exit is always recorded: the slot can be reused only once it says `exited`.
            slot.enter(.exited, at: UInt64(CIOURing_now_ns()))
            // releasing: the counters' last values happen before a reader that sees `exited`.
            exited.store(true, ordering: .releasing)
        }
        // When the packet being served started (0: none). Time is measured per packet: its
        // queue wait ends when it starts, its service runs from its start to the next packet's
        // start (or the next dequeue) — one clock read per packet.
        var packetStart: UInt64 = 0
        while true {
            if counts {
                let now = UInt64(CIOURing_now_ns())
                if packetStart > 0 { slot.recordService(now &- packetStart) }
                packetStart = 0
                slot.enter(.waiting, at: now)
            }
            switch engine.port.dequeue(into: batch) {
            case .portClosed:
                return
            case .timeout:
                continue
            case .completions:
                var batchStart: UInt64 = 0
                while let packet = batch.next() {
                    if counts {
                        let now = UInt64(CIOURing_now_ns())
                        if packetStart > 0 {
                            slot.recordService(now &- packetStart)
                        } else {
                            slot.enter(.running, at: now)
                            batchStart = now
                        }
                        let queuedAt = UInt64(max(packet.queuedAtNs, 0))
                        packetWaitNs = queuedAt > 0 && now > queuedAt ? now - queuedAt : 0
                        if queuedAt > 0 { slot.recordQueueWait(packetWaitNs) }
                        packetStart = now
                        packetStartNs = now
                        strandClockNs = now
                        if now &- batchStart >= Self.giveBackAfterNs && batch.unstarted > 0
                            && engine.port.couldRunAnotherThread {
                            engine.port.giveBack(batch)
                        }
                    }
                    if engine.handle(packet, worker: self) {
                        // One shutdown packet retires one worker: the rest of the batch (other
                        // shutdown packets among it) goes back to the port for the others.
                        engine.port.giveBack(batch)
                        if counts && packetStart > 0 {
                            slot.recordService(UInt64(CIOURing_now_ns()) &- packetStart)
                        }
                        retiringFlag.store(true, ordering: .relaxed)
                        // releasing: the retiring mark above happens before the packet leaves
                        // the queued count; pairs with the acquiring load in `retireWorker`.
                        engine.shutdownsQueued.subtract(1, ordering: .releasing)
                        return
                    }
                }
            }
        }
    }
}
