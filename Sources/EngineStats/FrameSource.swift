/// Where a viewer gets frames: the ring of an engine in this process, the ring of another
/// process mapped read-only, or (later) a recording. The dashboard, `--batch` and `serve`'s
/// totals line read frames only through this, so local and attached views share one code path.
public protocol FrameSource: AnyObject {
    /// The engine's identity and sampling period, from the ring's header.
    var identity: EngineIdentity { get }
    /// Number of the newest frame (0: none yet).
    var newest: UInt64 { get }
    /// The newest frame, or nil before the first.
    func latest() -> StatsFrame?
    /// Up to `count` most recent frames, oldest first.
    func recent(_ count: Int) -> [StatsFrame]
    /// Why no new frame will come (the engine's process exited), or nil while it runs.
    var ended: String? { get }
    /// A descriptor that becomes readable when `ended` turns non-nil (-1: none; poll `ended`).
    var endDescriptor: Int32 { get }
}

/// The ring of an engine in this process.
public final class RingFrameSource: FrameSource {
    public let ring: StatsRing

    public init(ring: StatsRing) { self.ring = ring }

    public var identity: EngineIdentity { ring.identity }
    public var newest: UInt64 { ring.newest }
    public func latest() -> StatsFrame? { ring.latest() }
    public func recent(_ count: Int) -> [StatsFrame] { ring.recent(count) }
    public var ended: String? { nil }
    public var endDescriptor: Int32 { -1 }
}
