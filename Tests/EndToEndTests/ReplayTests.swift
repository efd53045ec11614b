import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `--record FILE` and `iocptop replay FILE`, from the built binary.
@Suite(.serialized) struct ReplayTests {
    func size(_ path: String) -> Int {
        var status = stat()
        return stat(path, &status) == 0 ? Int(status.st_size) : -1
    }

    /// A `--batch --json --load 8` run recorded to `path`; its JSON lines.
    func recordedRun(_ sandbox: RuntimeSandbox, to path: String, iterations: Int = 8) throws -> [[String: Any]] {
        let live = try ChildProcess(shell: sandbox.command(
            "--batch --json --port 0 --workers 3 --load 8 --iterations \(iterations) --refresh-ms 100 --record '\(path)' 2>/dev/null"))
        #expect(live.waitForExit() == 0)
        return jsonObjects(live.lines)
    }

    @Test func aReplayPrintsTheFramesTheLiveRunPrinted() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let path = sandbox.path + "/run.rec"
        let live = try recordedRun(sandbox, to: path)
        #expect(live.count == 8)
        let replay = try ChildProcess(shell: "exec '\(iocptopPath)' replay '\(path)' --batch --json 2>&1")
        #expect(replay.waitForExit() == 0)
        let replayed = jsonObjects(replay.lines)
        #expect(replayed.count >= live.count, "\(replay.lines.suffix(3))")
        let byFrame = Dictionary(replayed.map { ($0["frame"] as? Int ?? -1, $0) }, uniquingKeysWith: { first, _ in first })
        var compared = 0
        var livePrevious: Int?
        for frame in live {
            let number = try #require(frame["frame"] as? Int)
            defer { livePrevious = number }
            // The live run printed each frame against the one it printed before; the replay,
            // against the one recorded before. They agree where the live run skipped none.
            guard livePrevious == number - 1 else { continue }
            let again = try #require(byFrame[number], "frame \(number) was recorded")
            #expect(again["completions"] as? Int == frame["completions"] as? Int, "frame \(number)")
            #expect(again["workers_live"] as? Int == 3)
            // The connection rows are recorded too (compared key by key below).
            #expect((again["connections"] as? [Any])?.count == 8, "frame \(number)")
            let workers = try #require(frame["workers"] as? [[String: Any]])
            let workersAgain = try #require(again["workers"] as? [[String: Any]])
            #expect(workers.map { $0["id"] as? Int } == workersAgain.map { $0["id"] as? Int })
            #expect(workers.map { $0["completions"] as? Int } == workersAgain.map { $0["completions"] as? Int })
            // Not one key differs: the replay prints what the live run printed.
            let differing = frame.keys.filter { key in
                canonical(again[key]) != canonical(frame[key])
            }
            #expect(differing.isEmpty, "frame \(number): \(differing.map { "\($0): \(frame[$0]!) vs \(again[$0] ?? "none")" })")
            compared += 1
        }
        #expect(compared >= 4, "\(compared) frames compared")
        #expect((live.last?["completions"] as? Int ?? 0) > 0, "the load was echoed")

        // --iterations and the text tables.
        let text = try ChildProcess(shell: "exec '\(iocptopPath)' replay '\(path)' --batch --iterations 2 2>&1")
        #expect(text.waitForExit() == 0)
        #expect(text.lines.filter { $0.hasPrefix("iocptop - up") }.count == 2, "\(text.lines)")
    }

    @Test func aTornTailPlaysTheWholeFramesAndSaysWhereItStopped() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let path = sandbox.path + "/run.rec"
        _ = try recordedRun(sandbox, to: path, iterations: 10)
        let wholeSize = size(path)
        _ = try ChildProcess(shell: "exec cp '\(path)' '\(path).whole'").waitForExit()
        #expect(truncate(path, off_t(wholeSize * 6 / 10)) == 0)
        let replay = try ChildProcess(shell: "exec '\(iocptopPath)' replay '\(path)' --batch --json")
        #expect(replay.waitForExit() == 0)
        let frames = jsonObjects(replay.lines)
        let wholeRun = try ChildProcess(shell: "exec '\(iocptopPath)' replay '\(path).whole' --batch --json 2>/dev/null")
        #expect(wholeRun.waitForExit() == 0)
        let whole = jsonObjects(wholeRun.lines)
        #expect(!frames.isEmpty && frames.count < whole.count, "\(frames.count) of \(whole.count)")
        let first = frames.first?["frame"] as? Int ?? 0
        #expect(frames.map { $0["frame"] as? Int ?? 0 } == Array(first..<(first + frames.count)))
        let said = replay.lines.filter { $0.hasPrefix("iocptop:") }
        #expect(said.count == 1 && said[0].contains("torn record") && said[0].contains("\(frames.count) whole frames"), "\(said)")
    }

    @Test func badFilesGetOneLineAndStatusOne() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let dir = sandbox.path
        FileManager.default.createFile(atPath: dir + "/empty.rec", contents: Data())
        FileManager.default.createFile(atPath: dir + "/garbage.rec", contents: Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }))
        FileManager.default.createFile(atPath: dir + "/script.rec", contents: Data("#!/bin/sh\necho not a recording\n".utf8))
        _ = try recordedRun(sandbox, to: dir + "/future.rec", iterations: 2)
        var future = try Data(contentsOf: URL(fileURLWithPath: dir + "/future.rec"))
        future[8] = 99
        try future.write(to: URL(fileURLWithPath: dir + "/future.rec"))
        let cases = [
            ("missing.rec", "No such file"),
            ("empty.rec", "empty"),
            ("garbage.rec", "not an iocptop recording"),
            ("script.rec", "not an iocptop recording"),
            ("future.rec", "newer than this iocptop reads"),
        ]
        for (name, words) in cases {
            for mode in ["--batch --json", ""] {
                let run = try ChildProcess(shell: "exec '\(iocptopPath)' replay '\(dir)/\(name)' \(mode) 2>&1")
                #expect(run.waitForExit() == 1, "\(name)")
                #expect(run.lines.count == 1 && run.lines[0].contains(words), "\(name): \(run.lines)")
            }
        }
        // A recording that cannot be written: one line, status 1, no engine left running.
        let unwritable = try ChildProcess(shell: sandbox.command("--batch --port 0 --iterations 2 --record /nonexistent/dir/x.rec 2>&1"))
        #expect(unwritable.waitForExit() == 1)
        #expect(unwritable.lines.contains { $0.contains("cannot write /nonexistent/dir/x.rec") }, "\(unwritable.lines)")
        let existing = sandbox.path + "/existing.txt"
        FileManager.default.createFile(atPath: existing, contents: Data("keep me\n".utf8))
        let refused = try ChildProcess(shell: sandbox.command("--batch --port 0 --iterations 2 --record '\(existing)' 2>&1"))
        #expect(refused.waitForExit() == 1)
        #expect(refused.lines.contains { $0.contains("already exists: not overwritten") }, "\(refused.lines)")
        #expect((try? String(contentsOfFile: existing, encoding: .utf8)) == "keep me\n")
        let bound = try ChildProcess(shell: sandbox.command("serve --port 0 --record x.rec --record-max-mb 0 2>&1"))
        #expect(bound.waitForExit() == 64)
        #expect(bound.lines.contains { $0.contains("--record-max-mb") }, "\(bound.lines)")
    }

    @Test func theDashboardRecordsWhileItRunsAndReplaysWithItsKeys() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let path = sandbox.path + "/dashboard.rec"
        let tmux = try Tmux(width: 130, height: 36)
        try tmux.type("XDG_RUNTIME_DIR='\(sandbox.path)' '\(iocptopPath)' --port 0 --workers 3 --load 8 --refresh-ms 100 --record '\(path)'; echo EXIT=$?")
        #expect(tmux.waitFor { $0.contains("F1Help") && $0.contains("load 8") } != nil, "\(tmux.screen())")
        // The file grows while the dashboard runs.
        var sizes: [Int] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while sizes.count < 8 && ContinuousClock.now < deadline {
            let now = size(path)
            if now > (sizes.last ?? 0) { sizes.append(now) }
            usleep(150_000)
        }
        #expect(sizes.count == 8, "the recording grew: \(sizes)")
        try tmux.press("q")
        #expect(tmux.waitFor { $0.contains("EXIT=0") } != nil, "\(tmux.screen())")
        try tmux.type("clear")

        try tmux.type("'\(iocptopPath)' replay '\(path)'; echo EXIT=$?")
        // The recorded workers, and the timeline.
        var screen = tmux.waitFor { $0.contains("REPLAY") && $0.contains("replay ") && $0.contains("frame ") && $0.contains("    2 ") }
        #expect(screen != nil, "\(tmux.screen())")
        // At the end playing stops; Home keeps it stopped; stepping pauses.
        try tmux.press("End")
        #expect(tmux.waitFor { $0.contains("replay ❚❚") && self.position($0) == self.totalFrames($0) } != nil, "\(tmux.screen())")
        try tmux.press("Home")
        #expect(tmux.waitFor { $0.contains("replay ❚❚") && self.position($0) == 1 } != nil, "\(tmux.screen())")
        try tmux.press("Right")
        screen = tmux.waitFor { $0.contains("replay ❚❚") && self.position($0) == 2 }
        #expect(screen != nil, "\(tmux.screen())")
        usleep(400_000)
        #expect(position(tmux.screen()) == 2, "paused stays put")
        try tmux.press("Right")
        #expect(tmux.waitFor { self.position($0) == 3 } != nil, "\(tmux.screen())")
        try tmux.press("Left")
        try tmux.press("Left")
        #expect(tmux.waitFor { self.position($0) == 1 } != nil, "\(tmux.screen())")
        try tmux.press("End")
        #expect(tmux.waitFor { self.position($0) == self.totalFrames($0) } != nil, "\(tmux.screen())")
        try tmux.press("Home")
        #expect(tmux.waitFor { self.position($0) == 1 } != nil, "\(tmux.screen())")
        let total = try #require(totalFrames(tmux.screen()))
        try tmux.press("End")
        #expect(tmux.waitFor { self.position($0) == total } != nil, "\(tmux.screen())")
        try tmux.press("]")
        try tmux.press("]")
        #expect(tmux.waitFor { $0.contains("×4 ") } != nil, "\(tmux.screen())")
        try tmux.press("[")
        #expect(tmux.waitFor { $0.contains("×2 ") } != nil, "\(tmux.screen())")
        // Playing from the start at ×2 moves the position forward by itself.
        try tmux.press("Home")
        try tmux.press("Space")
        #expect(tmux.waitFor { (self.position($0) ?? 0) > 3 } != nil, "\(tmux.screen())")
        // Acting keys are refused, and say so.
        try tmux.press("+")
        #expect(tmux.waitFor { $0.contains("replay: read-only") } != nil, "\(tmux.screen())")
        #expect(tmux.screen().split(separator: "\n").contains { $0.hasPrefix(" Workers 3 ") }, "the recorded pool, unchanged")
        try tmux.press("l")
        #expect(tmux.waitFor { $0.contains("load generator does nothing") } != nil, "\(tmux.screen())")
        // Help and the detail pane work as live.
        try tmux.press("h")
        #expect(tmux.waitFor { $0.contains("play / pause the recording") } != nil, "\(tmux.screen())")
        try tmux.press("x")
        try tmux.press("Enter")
        #expect(tmux.waitFor { $0.contains("worker 0") || $0.contains("Worker 0") } != nil, "\(tmux.screen())")
        try tmux.press("Escape")
        try tmux.press("q")
        #expect(tmux.waitFor { $0.contains("EXIT=0") } != nil, "\(tmux.screen())")
    }

    /// A JSON value as sorted-key JSON text, for comparing parsed values.
    func canonical(_ value: Any?) -> String? {
        guard let value, let data = try? JSONSerialization.data(withJSONObject: ["v": value], options: .sortedKeys) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// "frame i/N" on the status line: i.
    func position(_ screen: String) -> Int? {
        guard let range = screen.range(of: "· frame ") else { return nil }
        return Int(screen[range.upperBound...].prefix { $0.isNumber })
    }

    func totalFrames(_ screen: String) -> Int? {
        guard let range = screen.range(of: "· frame ") else { return nil }
        let rest = screen[range.upperBound...].drop { $0.isNumber }.dropFirst()
        return Int(rest.prefix { $0.isNumber })
    }
}
