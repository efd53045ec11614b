import CIOURing
import CompletionPort
import EngineStats
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One worker thread: dequeues batches of completions and serves them until it dequeues a
/// shutdown packet or the port closes. It records its activity in its own counter slot.
final class Worker: @unchecked Sendable {
    let id: Int
    /// This worker's counter slot; only this worker writes it.
    let slot: WorkerSlot
    /// False when the engine does not count worker activity (benchmarking the counters' cost).
    let counts: Bool
    /// unowned(unsafe): read on every completion, so no reference counting at all (an
    /// `unowned` load is an atomic increment and decrement, slow ones when the object has a
    /// side table). Sound because the engine joins every worker before it goes away: `drain`,
    /// which `deinit` runs, returns only after joining them.
    private unowned(unsafe) let engine: EchoEngine
    private var thread = pthread_t()
    private let exited = Atomic<Bool>(false)
    private let joined = Mutex<Bool>(false)
    /// Set by the worker when it dequeues a shutdown packet; read by `retireWorker` on other
    /// threads. Relaxed: a hint for counting live workers, ordered with nothing else.
    private let retiringFlag = Atomic<Bool>(false)
    var retiring: Bool { retiringFlag.load(ordering: .relaxed) }

    static let batchSize = 64

    init(id: Int, slot: WorkerSlot, engine: EchoEngine) {
        self.id = id
        self.slot = slot
        self.engine = engine
        counts = engine.configuration.countsWorkerActivity
    }

    var hasExited: Bool { exited.load(ordering: .acquiring) }

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let worker = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
            worker.run()
            return nil
        }, box)
    }

    func join() {
        joined.withLock { done in
            guard !done else { return }
            pthread_join(thread, nil)
            done = true
        }
    }

    /// Records a state change in the slot (once per dequeue, never per completion).
    @inline(__always)
    func enter(_ state: WorkerState) {
        if counts { slot.enter(state, at: UInt64(CIOURing_now_ns())) }
    }

    private func run() {
        let batch = UnsafeMutableBufferPointer<Completion>.allocate(capacity: Self.batchSize)
        batch.initialize(repeating: Completion(operation: .posted, result: 0, key: 0, context: 0))
        slot.registerCurrentThread()
        defer {
            batch.deallocate()
            slot.recordFinalCPU()
            // The exit is always recorded: the slot can be reused only once it says `exited`.
            slot.enter(.exited, at: UInt64(CIOURing_now_ns()))
            // releasing: the counters' last values happen before a reader that sees `exited`.
            exited.store(true, ordering: .releasing)
        }
        // When this worker's current dequeue returned (0: none yet): its service time runs
        // from there to the next dequeue.
        var servingSince: UInt64 = 0
        while true {
            if counts {
                let now = UInt64(CIOURing_now_ns())
                if servingSince > 0 { slot.recordService(now &- servingSince) }
                slot.enter(.waiting, at: now)
            }
            let result = engine.port.dequeue(into: batch)
            switch result {
            case .portClosed:
                return
            case .timeout:
                servingSince = 0
                continue
            case .completions(let count):
                if counts {
                    // One clock read per dequeue: the state change and every packet's queue wait.
                    let now = UInt64(CIOURing_now_ns())
                    slot.enter(.running, at: now)
                    for index in 0..<count where batch[index].queuedAtNs > 0 {
                        let queuedAt = UInt64(batch[index].queuedAtNs)
                        slot.recordQueueWait(now > queuedAt ? now - queuedAt : 0)
                    }
                    servingSince = now
                }
                var shutdownPackets = 0
                for index in 0..<count {
                    if engine.handle(batch[index], worker: self) { shutdownPackets += 1 }
                }
                if shutdownPackets > 0 {
                    // One packet retires one worker: a batch that held several passes the
                    // rest on to the other workers.
                    for _ in 1..<shutdownPackets {
                        do {
                            try engine.port.post(key: EchoEngine.controlKey, context: EchoEngine.shutdownContext)
                        } catch {
                            // The port is closing: that packet will retire nobody.
                            engine.shutdownsQueued.subtract(1, ordering: .relaxed)
                        }
                    }
                    retiringFlag.store(true, ordering: .relaxed)
                    // releasing: the retiring mark above happens before the packet leaves the
                    // queued count; pairs with the acquiring load in `retireWorker`.
                    engine.shutdownsQueued.subtract(1, ordering: .releasing)
                    return
                }
            }
        }
    }
}
