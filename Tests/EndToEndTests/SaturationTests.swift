import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Queue wait, service time and warnings from the built binary (`--batch --json`).
@Suite(.serialized) struct SaturationTests {
    /// Frames of a self-contained batch run (the engine and its built-in load).
    func frames(_ arguments: String, iterations: Int = 6) throws -> [[String: Any]] {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let run = try ChildProcess(shell: sandbox.command("--batch --json --port 0 --refresh-ms 250 --iterations \(iterations) \(arguments) 2>/dev/null"))
        #expect(run.waitForExit(within: 60) == 0)
        return jsonObjects(run.lines)
    }

    /// The largest pool queue-wait p99 of the frames after the first two (warm-up).
    func worstWait(_ frames: [[String: Any]]) -> Double {
        frames.dropFirst(2).compactMap { $0["queue_wait_p99_us"] as? Double }.max() ?? 0
    }

    @Test func workBehindALimitOfOneMakesPacketsWait() throws {
        let busy = try frames("--workers 4 --concurrency 1 --work-us 2000 --load 64")
        let idle = try frames("--workers 4 --concurrency 1 --load 64")
        let slow = worstWait(busy), fast = worstWait(idle)
        #expect(slow > 0 && fast > 0, "\(slow) \(fast)")
        #expect(slow >= 10 * fast, "queue wait p99 with 2 ms of work per completion: \(slow) µs, without: \(fast) µs")
        let kinds = busy.dropFirst(2).flatMap { ($0["warnings"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String } }
        #expect(kinds.contains("raise_concurrency"), "\(kinds)")
        // Every frame has the keys; an interval in which no worker came back to dequeue (a batch
        // of 64 packets × 2 ms outlasts a 250 ms interval) has null percentiles.
        for frame in busy {
            for key in ["queue_wait_p50_us", "queue_wait_p90_us", "queue_wait_p99_us", "queue_wait_p999_us",
                        "service_p50_us", "service_p90_us", "service_p99_us", "service_p999_us", "warnings"] {
                #expect(frame.keys.contains(key), "\(key)")
            }
        }
        #expect(busy.contains { $0["service_p99_us"] is Double && $0["queue_wait_p50_us"] is Double })
        let workers = busy.flatMap { $0["workers"] as? [[String: Any]] ?? [] }
        #expect(workers.contains { $0["queue_wait_p99_us"] is Double })
        #expect(workers.allSatisfy { $0["bytes_in"] is Int && $0["bytes_out"] is Int })
    }

    @Test func blockedWorkersRaiseTheirWarning() throws {
        let frames = try frames("--workers 2 --concurrency 2 --block-us 30000 --load 64", iterations: 8)
        let kinds = frames.flatMap { ($0["warnings"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String } }
        #expect(kinds.contains("workers_blocked"), "\(kinds)")
        let message = frames.flatMap { ($0["warnings"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String } }.first { $0.contains("blocked") }
        #expect(message?.contains("press +") == true)
    }

    @Test func aHealthyEngineHasNoWarnings() throws {
        let frames = try frames("--load 8", iterations: 8)
        #expect(frames.count == 8)
        for frame in frames {
            let warnings = frame["warnings"] as? [[String: Any]]
            #expect(warnings?.isEmpty == true, "\(warnings ?? [])")
        }
    }

    @Test func theDashboardShowsQueueWaitInItsHeader() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let tmux = try Tmux(width: 100, height: 30)
        try tmux.type("XDG_RUNTIME_DIR='\(sandbox.path)' '\(iocptopPath)' --port 0 --workers 2 --load 16 --refresh-ms 100; echo EXIT=$?")
        let screen = tmux.waitFor { text in
            text.split(separator: "\n").contains { $0.hasPrefix(" Wait") && $0.contains("p99") && $0.contains("µs") }
        }
        #expect(screen != nil, "\(tmux.screen())")
        try tmux.press("Enter")
        #expect(tmux.waitFor { $0.contains("queue wait") && $0.contains("Esc closes") } != nil, "\(tmux.screen())")
        try tmux.press("Escape")
        #expect(tmux.waitFor { !$0.contains("Esc closes") } != nil, "\(tmux.screen())")
        try tmux.press("q")
        #expect(tmux.waitFor(within: 20) { $0.contains("EXIT=0") } != nil, "\(tmux.screen())")
    }
}
