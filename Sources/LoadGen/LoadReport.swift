/// Round-trip latency percentiles, in ns.
public struct LatencySummary: Sendable, Hashable {
    public var p50: UInt64 = 0
    public var p90: UInt64 = 0
    public var p99: UInt64 = 0
    public var p999: UInt64 = 0
    public var max: UInt64 = 0

    public init(p50: UInt64 = 0, p90: UInt64 = 0, p99: UInt64 = 0, p999: UInt64 = 0, max: UInt64 = 0) {
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.p999 = p999
        self.max = max
    }
}

/// What a load run did.
public struct LoadReport: Sendable, Hashable {
    public var connectionsRequested = 0
    public var connected = 0
    public var connectFailures: [ErrorCount] = []
    /// Messages echoed back completely.
    public var messages: UInt64 = 0
    /// Payload bytes echoed back (one direction).
    public var bytes: UInt64 = 0
    public var seconds = 0.0
    public var latency = LatencySummary()
    /// Errors during the run, by kind (resets, server closes, …).
    public var errors: [ErrorCount] = []
    /// Messages whose echo differed from what was sent.
    public var mismatches = 0
    /// Stream mode: connections that went a second with bytes outstanding and nothing echoed.
    public var stalledConnections = 0

    public init() {}

    public var messagesPerSecond: Double { seconds > 0 ? Double(messages) / seconds : 0 }
    public var megabytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds / 1e6 : 0 }
    /// True when every connection was made and nothing went wrong.
    public var clean: Bool { connectFailures.isEmpty && errors.isEmpty && mismatches == 0 && stalledConnections == 0 }
}
