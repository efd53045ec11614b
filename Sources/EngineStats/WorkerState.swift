/// What a worker thread is doing, as its counter slot last recorded it.
public enum WorkerState: UInt64, Sendable, CaseIterable, CustomStringConvertible {
    /// The slot has never held a worker.
    case unused = 0
    /// Parked in the port's dequeue, waiting for a completion.
    case waiting = 1
    /// Serving completions it dequeued.
    case running = 2
    /// Inside the port's blocking scope (simulated blocking work, accept back-off).
    case blocked = 3
    /// The thread has exited (it dequeued a shutdown packet, or the port closed).
    case exited = 4

    public var description: String {
        switch self {
        case .unused: "unused"
        case .waiting: "waiting"
        case .running: "running"
        case .blocked: "blocked"
        case .exited: "exited"
        }
    }
}
