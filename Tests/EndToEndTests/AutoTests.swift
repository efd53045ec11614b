import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `--auto` from the built binary: the pool grows when workers block, stays put when the work
/// is CPU-bound or healthy, and says why in every JSON frame and on screen.
@Suite(.serialized) struct AutoTests {
    func frames(_ arguments: String) throws -> [[String: Any]] {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let run = try ChildProcess(shell: sandbox.command("--batch --json --port 0 --auto \(arguments) 2>/dev/null"))
        #expect(run.waitForExit(within: 60) == 0)
        return jsonObjects(run.lines)
    }

    func rate(_ frames: ArraySlice<[String: Any]>) -> Double {
        let rates = frames.compactMap { $0["completions_per_s"] as? Double }
        return rates.isEmpty ? 0 : rates.reduce(0, +) / Double(rates.count)
    }

    @Test func blockingWorkersMakeThePoolGrowAndThroughputFollow() throws {
        let run = try frames("--workers 2 --concurrency 2 --block-us 20000 --load 64 --refresh-ms 500 --iterations 50")
        #expect(run.count == 50)
        let workers = run.compactMap { $0["workers_live"] as? Int }
        #expect(workers.first == 2)
        #expect((workers.last ?? 0) >= 6, "\(workers)")
        // Completions/s at least doubles within 25 s.
        let before = rate(run[1...2]), after = rate(run[46...49])
        #expect(after >= 2 * before, "\(before) → \(after) completions/s")
        // Every frame says auto mode is on; the decisions say why.
        let autos = run.compactMap { $0["auto"] as? [String: Any] }
        #expect(autos.count == 50 && autos.allSatisfy { $0["enabled"] as? Bool == true })
        let last = try #require(autos.last)
        #expect((last["changes"] as? Int ?? 0) >= 4)
        #expect(["add", "retire"].contains(last["decision"] as? String ?? ""), "\(last)")
        #expect(["starvation", "probe", "revert"].contains(last["reason"] as? String ?? ""), "\(last)")
        #expect((last["message"] as? String ?? "").hasPrefix("auto: "), "\(last)")
        let starvation = run.contains { (($0["auto"] as? [String: Any])?["reason"] as? String) == "starvation" }
        #expect(starvation, "the pool grew because workers starved")
        #expect(last["at_uptime_s"] is Double)
    }

    @Test func cpuBoundWorkDoesNotGrowThePool() throws {
        let run = try frames("--workers 2 --concurrency 2 --work-us 500 --load 32 --refresh-ms 500 --iterations 30")
        #expect(run.count == 30)
        let workers = run.compactMap { $0["workers_live"] as? Int }
        // Nobody blocks: no starvation, no probe; the pool stays at the limit.
        #expect(workers.allSatisfy { $0 == 2 }, "\(workers)")
    }

    @Test func aSteadyLoadMakesFewChanges() throws {
        // Four workers over a limit of two: the idle two may retire, nothing more.
        let run = try frames("--workers 4 --concurrency 2 --load 8 --refresh-ms 500 --iterations 40")
        #expect(run.count == 40)
        let changes = (run.last?["auto"] as? [String: Any])?["changes"] as? Int
        #expect((changes ?? 99) <= 3, "\(changes ?? -1) changes in 20 s")
        let limit = run.last?["concurrency"] as? Int ?? 0
        #expect((run.last?["workers_live"] as? Int ?? 0) >= limit, "never below the concurrency limit")
    }

    @Test func theKeyTurnsItOnAndAnOperatorKeyHoldsItBack() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let tmux = try Tmux(width: 130, height: 36)
        try tmux.type("XDG_RUNTIME_DIR='\(sandbox.path)' '\(iocptopPath)' --port 0 --workers 2 --concurrency 2 --block-us 20000 --load 32 --refresh-ms 200; echo EXIT=$?")
        #expect(tmux.waitFor { $0.contains("F1Help") && $0.contains("load 32") } != nil, "\(tmux.screen())")
        #expect(!tmux.screen().contains("AUTO"))
        try tmux.press("a")
        #expect(tmux.waitFor { $0.contains("auto mode on") } != nil, "\(tmux.screen())")
        // A decision shows on the status line and in the event log, and the header says AUTO.
        let decided = tmux.waitFor(within: 20) { screen in
            screen.contains("AUTO ") && screen.components(separatedBy: "auto: +1 worker — ").count >= 3
        }
        #expect(decided != nil, "\(tmux.screen())")
        try tmux.press("+")
        #expect(tmux.waitFor { $0.contains("auto paused 30 s") && $0.contains("AUTO held") } != nil, "\(tmux.screen())")
        try tmux.press("a")
        #expect(tmux.waitFor { $0.contains("auto mode off") && !$0.contains("AUTO") } != nil, "\(tmux.screen())")
        try tmux.press("q")
        #expect(tmux.waitFor { $0.contains("EXIT=0") } != nil, "\(tmux.screen())")
    }
}
