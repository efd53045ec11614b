import CIOURing
import Dashboard
import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop replay`: a recording's frames as a `FrameSource`, played at the recorded pace times
/// a speed, paused, stepped and jumped by the operator.
///
/// Time is the recording's own: frame n+1 shows when the recorded gap between the two frames'
/// timestamps has elapsed at the chosen speed. Gaps longer than `longestGapNs` (the engine was
/// suspended, say) are played as that long.
final class ReplaySource: FrameSource {
    let contents: FrameRecording.Contents
    /// Frames in the recording.
    var count: Int { contents.count }
    /// The frame at `index`, decoded from the recording.
    func frame(at index: Int) -> StatsFrame { contents.frame(at: index) }
    private var timestamps: [UInt64] { contents.timestamps }
    /// Index of the frame shown.
    private(set) var position = 0
    private(set) var playing = true
    /// Playback speeds, ×0.25 … ×16; `speedIndex` points at ×1 to start.
    static let speeds: [Double] = [0.25, 0.5, 1, 2, 4, 8, 16]
    private(set) var speedIndex = 2
    var speed: Double { Self.speeds[speedIndex] }
    /// Recorded time played since the shown frame (ns).
    private var elapsedNs: Double = 0
    private var lastTickNs: Int64 = CIOURing_now_ns()
    static let longestGapNs: UInt64 = 5_000_000_000

    /// A recording with at least one frame.
    init(contents: FrameRecording.Contents) {
        precondition(contents.count > 0, "ReplaySource needs a frame")
        self.contents = contents
    }

    // MARK: FrameSource

    var identity: EngineIdentity { contents.identity }
    var newest: UInt64 { frame(at: position).number }
    func latest() -> StatsFrame? { frame(at: position) }
    func recent(_ count: Int) -> [StatsFrame] { (max(0, position - count + 1)...position).map(frame(at:)) }
    var ended: String? { nil }
    var endDescriptor: Int32 { -1 }

    // MARK: playing

    /// Advances by the time passed since the last tick; stops playing at the last frame.
    func tick(nowNs: Int64 = CIOURing_now_ns()) {
        defer { lastTickNs = nowNs }
        guard playing else { return }
        elapsedNs += Double(max(0, nowNs - lastTickNs)) * speed
        while position + 1 < count {
            let gap = gapNs(after: position)
            guard elapsedNs >= gap else { return }
            elapsedNs -= gap
            position += 1
        }
        playing = false
        elapsedNs = 0
    }

    /// Milliseconds until the next frame is due (for the view's poll), or nil when paused.
    var millisecondsToNextFrame: Int? {
        guard playing, position + 1 < count else { return nil }
        let gap = gapNs(after: position)
        return Int(max(0, (gap - elapsedNs) / speed / 1e6)) + 1
    }

    /// The recorded time from frame `index` to the next, as played (at most `longestGapNs`).
    private func gapNs(after index: Int) -> Double {
        let gap = timestamps[index + 1] > timestamps[index] ? timestamps[index + 1] - timestamps[index] : 0
        return Double(min(Self.longestGapNs, gap))
    }

    /// A replay key: space, ← →, [ ], Home, End. True when the key was the replay's.
    func handle(_ key: Int32, nowNs: Int64 = CIOURing_now_ns()) -> Bool {
        switch key {
        case Int32(UInt8(ascii: " ")):
            if !playing && position + 1 == count { position = 0 }  // at the end: again from the start
            playing.toggle()
        case Self.keyLeft: step(to: position - 1)
        case Self.keyRight: step(to: position + 1)
        case Int32(UInt8(ascii: "[")): speedIndex = max(0, speedIndex - 1)
        case Int32(UInt8(ascii: "]")): speedIndex = min(Self.speeds.count - 1, speedIndex + 1)
        case KeyMap.keyHome: position = 0
        case KeyMap.keyEnd: position = count - 1
        default: return false
        }
        // Playing resumes from this moment, not from the last tick before the key.
        elapsedNs = 0
        lastTickNs = nowNs
        return true
    }

    static let keyLeft: Int32 = 0o404
    static let keyRight: Int32 = 0o405

    /// One frame back or forward, paused there. Home and End keep playing (or pausing).
    private func step(to index: Int) {
        playing = false
        position = min(count - 1, max(0, index))
    }

    // MARK: showing

    /// The status line's timeline: play state, speed, recorded wall-clock time, position and a bar.
    func timeline(barWidth: Int, unicode: Bool) -> String {
        let state = playing ? (unicode ? "▶" : ">") : (unicode ? "❚❚" : "||")
        let frame = frame(at: position)
        let filled = count <= 1 ? barWidth : barWidth * position / (count - 1)
        let bar = String(repeating: unicode ? "━" : "=", count: filled) + String(repeating: unicode ? "─" : "-", count: barWidth - filled)
        return "replay \(state) ×\(Self.speedLabel(speed)) · \(Self.clock(contents.wallClockNs(of: frame)))"
            + " · frame \(position + 1)/\(count) [\(bar)]"
            + (frame.engine.drained ? " · drained" : frame.engine.draining ? " · draining" : "")
    }

    static func speedLabel(_ speed: Double) -> String {
        speed == speed.rounded() ? String(Int(speed)) : String(speed)
    }

    /// Local date and time, to the tenth of a second.
    static func clock(_ ns: UInt64) -> String {
        var seconds = time_t(ns / 1_000_000_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))"
            + " \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ns % 1_000_000_000 / 100_000_000)"
    }
}
