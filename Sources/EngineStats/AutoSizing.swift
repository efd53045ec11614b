/// What auto mode did last, as every frame carries it: whether it is on, whether the operator
/// paused it, and its last decision with the figures that caused it. Viewers turn it into text
/// with `message`, so a recording or an attached viewer says exactly what the engine's own
/// dashboard says.
public struct AutoSample: Sendable, Hashable {
    /// Auto mode is on (`--auto`, the `a` key).
    public var enabled = false
    /// CLOCK_MONOTONIC until which an operator's key holds auto mode back (0: not paused).
    public var pausedUntilNs: UInt64 = 0
    /// Decisions that changed the pool since the engine started.
    public var changes: UInt64 = 0
    /// The last decision: `AutoAction` and `AutoReason` raw values.
    public var actionCode: UInt64 = 0
    public var reasonCode: UInt64 = 0
    /// CLOCK_MONOTONIC of the last decision (0: none yet).
    public var decidedAtNs: UInt64 = 0
    /// Live and blocked workers, the longest wait known (pool queue-wait p99, or the oldest
    /// queued packet's age when that is longer) and completions/s when it was taken.
    public var workers = 0
    public var blocked = 0
    public var queueWaitP99Ns: UInt64 = 0
    public var completionsPerSecond: UInt64 = 0
    /// Packets queued in the port when it was taken, and the oldest one's age in µs.
    public var queued = 0
    public var queueOldestMicroseconds = 0
    /// For a probe judged: completions/s of the probe against the baseline, in percent (signed).
    public var changePercent = 0

    public init() {}

    public var action: AutoAction { AutoAction(rawValue: actionCode) ?? .none }
    public var reason: AutoReason { AutoReason(rawValue: reasonCode) ?? .none }

    /// Whether an operator's key holds auto mode back at `nowNs`.
    public func isPaused(at nowNs: UInt64) -> Bool { pausedUntilNs > nowNs }

    /// Whole seconds (rounded up) the operator's hold lasts after `nowNs`; 0 when not held.
    public func secondsHeld(at nowNs: UInt64) -> UInt64 {
        guard pausedUntilNs > nowNs else { return 0 }
        let left = pausedUntilNs - nowNs
        return left / 1_000_000_000 + (left % 1_000_000_000 == 0 ? 0 : 1)
    }

    /// The last decision as one line ("auto: +1 worker — 4 of 4 blocked, 12 queued, oldest 180 ms"),
    /// nil before the first.
    public var message: String? {
        let wait = Warnings.milliseconds(queueWaitP99Ns)
        switch reason {
        case .none: return nil
        case .starvation:
            let oldest = Warnings.milliseconds(UInt64(max(0, queueOldestMicroseconds)) &* 1000)
            return queued > 0 && queueOldestMicroseconds > 0
                ? "auto: +1 worker — \(blocked) of \(workers) blocked, \(queued) queued, oldest \(oldest)"
                : "auto: +1 worker — \(blocked) of \(workers) blocked, queue wait p99 \(wait)"
        case .probe:
            return "auto: +1 worker — trying \(workers &+ 1): \(blocked) of \(workers) blocked, queue wait p99 \(wait), \(completionsPerSecond) completions/s"
        case .revert:
            return "auto: -1 worker — \(workers) workers did no better than \(workers &- 1) (completions/s \(changePercent >= 0 ? "+" : "")\(changePercent)%)"
        case .idle:
            return "auto: -1 worker — \(workers) live, some idle for \(Int(AutoPolicy.windowNs / 1_000_000_000)) s while none blocked"
        }
    }
}

/// What an auto decision does to the pool.
public enum AutoAction: UInt64, Sendable {
    case none = 0, add, retire

    public var name: String {
        switch self {
        case .none: "none"
        case .add: "add"
        case .retire: "retire"
        }
    }
}

/// Why auto mode decided what it did.
public enum AutoReason: UInt64, Sendable {
    /// No decision yet.
    case none = 0
    /// Every worker that could take a packet is blocked (or stuck in one completion) and packets
    /// wait: a worker is added at once, at most one per `AutoPolicy.addIntervalNs`.
    case starvation
    /// Workers block and packets wait, without starvation: one more worker is tried.
    case probe
    /// The tried worker did not raise completions/s nor lower queue wait beyond noise: retired.
    case revert
    /// More workers than the concurrency limit, some idle for a whole window, none blocked.
    case idle

    public var name: String {
        switch self {
        case .none: "none"
        case .starvation: "starvation"
        case .probe: "probe"
        case .revert: "revert"
        case .idle: "idle"
        }
    }
}

/// Auto mode's decisions, pure: frames in, at most one pool change out. The engine's
/// `AutoSizer` thread feeds it every frame and applies what it returns through the same
/// commands as the keys.
///
/// Three rules, in order (the .NET thread pool's two ideas, starvation injection and hill
/// climbing, on the port's own measurements):
/// 1. **Starvation.** Some worker is blocked, no worker waits in dequeue, fewer run than the
///    concurrency limit allows, and packets wait (queued now, or the longer of pool queue-wait
///    p99 and the oldest queued packet's age ≥ `starvationWaitNs`): add a worker, at most one
///    per `addIntervalNs`. A worker stuck
///    *running* does not count: it holds its place under the limit, so a new worker could only
///    park (the `stuck_worker` warning names it instead).
/// 2. **Hill climbing.** Measured over windows of `windowNs`: when workers block (on average
///    at least half a worker) and queue wait (p99, or the oldest queued packet's age) is at
///    least `probeWaitNs`, try one more worker;
///    after the next window keep it only if completions/s rose by more than the noise (5 % and
///    two standard errors of the per-frame rates) or queue wait fell by a quarter without
///    completions/s falling; otherwise retire it (if the pool is above the concurrency limit)
///    and wait before trying again (`settleNs`, doubling after each failed try up to 8×).
/// 3. **Idle.** More live workers than the concurrency limit, nobody blocked in the whole
///    window, and some worker dequeued nothing in it: retire one (never below the limit).
///
/// The concurrency limit itself is the operator's: raising it trades CPU for latency, a
/// choice of policy that throughput alone cannot make (a CPU-bound pool is already "saturated").
public struct AutoPolicy: Sendable {
    public var maxWorkers: Int
    public static let starvationWaitNs: UInt64 = 10_000_000
    public static let addIntervalNs: UInt64 = 500_000_000
    public static let windowNs: UInt64 = 2_000_000_000
    public static let probeWaitNs: UInt64 = 1_000_000
    public static let settleNs: UInt64 = 10_000_000_000

    /// One measurement window.
    struct Window {
        var startNs: UInt64 = 0
        var rates: [Double] = []
        var blockedSum = 0
        var everBlocked = false
        var waitP99Max: UInt64 = 0
        /// Dequeues per worker id at the window's start.
        var completionsAtStart: [Int: UInt64] = [:]

        var mean: Double { rates.isEmpty ? 0 : rates.reduce(0, +) / Double(rates.count) }
        var variance: Double {
            guard rates.count > 1 else { return 0 }
            let m = mean
            return rates.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(rates.count - 1)
        }
        var averageBlocked: Double { rates.isEmpty ? 0 : Double(blockedSum) / Double(rates.count) }
    }

    /// A worker being tried: the window measured before it was added.
    struct Probe {
        var baseline: Window
    }

    private var window: Window?
    private var probe: Probe?
    private var lastChangeNs: UInt64 = 0
    private var settleUntilNs: UInt64 = 0
    private var settleNs = AutoPolicy.settleNs

    public init(maxWorkers: Int = 256) { self.maxWorkers = maxWorkers }

    /// Forgets the measurements (auto mode turned off, paused, or the operator changed the pool):
    /// the next decision starts from fresh windows.
    public mutating func reset() {
        window = nil
        probe = nil
    }

    /// Takes in one frame (and the rates since the previous one); returns the decision to apply,
    /// if any, with `workers`, `blocked`, `queued`, `queueWaitP99Ns`, `completionsPerSecond` and
    /// `changePercent` filled in and `decidedAtNs` = the frame's time.
    public mutating func decide(frame: StatsFrame, rates: FrameRates) -> AutoSample? {
        let now = frame.timestampNs
        let live = frame.liveWorkers
        guard !frame.engine.draining, live > 0, rates.intervalSeconds > 0 else {
            reset()
            return nil
        }
        let blocked = frame.workers(in: .blocked)
        let waiting = frame.workers(in: .waiting)
        // The longest wait known: the p99 of packets started in the interval, or the age of
        // the oldest still queued (a stall shows there before any stalled packet starts).
        let oldestNs = UInt64(max(0, frame.port.queueOldestMicroseconds)) &* 1000
        let waitP99 = max(rates.queueWait?.p99 ?? 0, oldestNs)
        var decision = AutoSample()
        decision.decidedAtNs = now
        decision.workers = live
        decision.blocked = blocked
        decision.queueWaitP99Ns = waitP99
        decision.completionsPerSecond = UInt64(max(0, rates.completionsPerSecond.rounded()))
        decision.queued = frame.port.queueDepth
        decision.queueOldestMicroseconds = frame.port.queueOldestMicroseconds

        // 1. Starvation.
        let packetsWait = frame.port.queueDepth > 0 || waitP99 >= Self.starvationWaitNs
        if blocked > 0, waiting == 0, frame.port.runningThreads < frame.port.concurrency, packetsWait {
            reset()
            // A tenth of slack: frames due every 500 ms arrive a little early or late.
            guard live < maxWorkers, now &- lastChangeNs >= Self.addIntervalNs - Self.addIntervalNs / 10 else { return nil }
            return changed(decision, .add, .starvation, at: now)
        }

        // 2 and 3: by windows.
        var current = window ?? Window(startNs: now, completionsAtStart: Self.completions(of: frame))
        current.rates.append(rates.completionsPerSecond)
        current.blockedSum += blocked
        current.everBlocked = current.everBlocked || blocked > 0
        current.waitP99Max = max(current.waitP99Max, waitP99)
        guard now &- current.startNs >= Self.windowNs, current.rates.count >= 3 else {
            window = current
            return nil
        }
        window = nil
        let concurrency = frame.port.concurrency
        // Live workers whose shutdown packet is queued are leaving: count what will remain.
        let staying = frame.settings.workersTarget > 0 ? min(live, frame.settings.workersTarget) : live

        if let tried = probe {
            probe = nil
            let base = tried.baseline
            let noise = 2 * (base.variance / Double(base.rates.count) + current.variance / Double(current.rates.count)).squareRoot()
            let gain = current.mean - base.mean
            let faster = gain > max(0.05 * base.mean, noise)
            let shorterWait = Double(current.waitP99Max) <= 0.75 * Double(base.waitP99Max) && gain >= -max(0.05 * base.mean, noise)
            decision.changePercent = base.mean > 0 ? Int((100 * gain / base.mean).rounded()) : 0
            if faster || shorterWait {
                settleNs = Self.settleNs
                // Kept: the next window may try one more.
                return nil
            }
            settleUntilNs = now + settleNs
            settleNs = min(8 * Self.settleNs, 2 * settleNs)
            guard staying > concurrency else { return nil }
            return changed(decision, .retire, .revert, at: now)
        }

        if now >= settleUntilNs, current.averageBlocked >= 0.5, current.waitP99Max >= Self.probeWaitNs, live < maxWorkers {
            probe = Probe(baseline: current)
            decision.queueWaitP99Ns = current.waitP99Max
            decision.completionsPerSecond = UInt64(max(0, current.mean.rounded()))
            return changed(decision, .add, .probe, at: now)
        }

        if staying > concurrency, !current.everBlocked {
            let now = Self.completions(of: frame)
            let idle = now.filter { id, count in current.completionsAtStart[id] == count }.count
            if idle > 0 { return changed(decision, .retire, .idle, at: frame.timestampNs) }
        }
        return nil
    }

    private mutating func changed(_ decision: AutoSample, _ action: AutoAction, _ reason: AutoReason, at now: UInt64) -> AutoSample {
        lastChangeNs = now
        var made = decision
        made.actionCode = action.rawValue
        made.reasonCode = reason.rawValue
        return made
    }

    /// Dequeues so far per live worker id.
    private static func completions(of frame: StatsFrame) -> [Int: UInt64] {
        var result: [Int: UInt64] = [:]
        for worker in frame.workers where worker.state != .exited && worker.state != .unused {
            result[worker.id] = worker.counts.completions
        }
        return result
    }
}
