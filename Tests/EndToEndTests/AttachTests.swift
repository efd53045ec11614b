import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A private runtime directory (XDG_RUNTIME_DIR) for the engines and viewers of one test, so
/// `list` and `attach` without a pid see only them. Removed by `remove()`.
struct RuntimeSandbox {
    let path: String

    init() {
        var template = Array("/tmp/iocptop-e2e-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        chmod(path, 0o755)
    }

    /// `iocptop ARGUMENTS` run with this runtime directory.
    func command(_ arguments: String) -> String { "XDG_RUNTIME_DIR='\(path)' exec '\(iocptopPath)' \(arguments)" }

    /// What the engines left in the directory (nothing after they all exited normally).
    var entries: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path + "/iocptop")) ?? [] }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// "pid N" from a start line.
func enginePID(fromStartLine line: String) -> Int32? {
    guard let range = line.range(of: "pid ") else { return nil }
    return Int32(line[range.upperBound...].prefix { $0.isNumber })
}

/// One JSON object per line.
func jsonObjects(_ lines: [String]) -> [[String: Any]] {
    lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

/// `iocptop serve` in one process; `list`, `attach --batch` and an attached dashboard in others.
@Suite(.serialized) struct AttachTests {
    @Test func listAndAttachBatchShowTheServingEngine() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let server = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 3 --load 8 --quiet"))
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        let pid = try #require(enginePID(fromStartLine: start))

        let list = try ChildProcess(shell: sandbox.command("list --json"))
        #expect(list.waitForExit() == 0)
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(list.lines.joined().utf8)) as? [[String: Any]], "\(list.lines)")
        #expect(listed.count == 1)
        #expect(listed.first?["pid"] as? Int == Int(pid))
        #expect(listed.first?["workers"] as? Int == 3)
        #expect(listed.first?["backend"] as? String != nil)
        #expect(listed.first?["protocol"] as? String == "echo")
        #expect((listed.first?["address"] as? String)?.hasPrefix("127.0.0.1:") == true)
        for key in ["connections", "uptime_s"] { #expect(listed.first?[key] != nil, "\(key)") }

        let viewer = try ChildProcess(shell: sandbox.command("attach \(pid) --batch --json --iterations 3 2>/dev/null"))
        #expect(viewer.waitForExit() == 0)
        let frames = jsonObjects(viewer.lines)
        #expect(frames.count == 3, "\(viewer.lines)")
        #expect(frames.allSatisfy { ($0["workers"] as? [Any])?.count == 3 && $0["pid"] as? Int == Int(pid) })
        let completions = frames.compactMap { $0["completions"] as? Int }
        #expect(completions.count == 3 && completions.last! > completions.first!, "counters move: \(completions)")
        let numbers = frames.compactMap { $0["frame"] as? Int }
        #expect(numbers == numbers.sorted() && Set(numbers).count == 3)

        // Without a pid: the only engine. Text mode works as well.
        let text = try ChildProcess(shell: sandbox.command("attach --batch --iterations 1"))
        #expect(text.waitForExit() == 0)
        #expect(text.lines.contains { $0.contains("   ID  STATE") }, "\(text.lines)")

        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
        #expect(sandbox.entries.isEmpty, "the engine removed its socket: \(sandbox.entries)")
        let after = try ChildProcess(shell: sandbox.command("list --json"))
        #expect(after.waitForExit() == 0)
        #expect(after.lines == ["[]"])
    }

    @Test func anAttachedDashboardSteersTheServingEngine() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let server = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 2 --concurrency 1 --quiet"))
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        let pid = try #require(enginePID(fromStartLine: start))
        let port = try #require(listenPort(fromStartLine: start))

        let tmux = try Tmux(width: 120, height: 40)
        try tmux.type("XDG_RUNTIME_DIR='\(sandbox.path)' '\(iocptopPath)' attach \(pid); echo EXIT=$?")
        #expect(tmux.waitFor { $0.contains("attached to pid \(pid)") && $0.contains("F1Help") } != nil, "\(tmux.screen())")
        try tmux.press("+")
        #expect(tmux.waitFor { $0.contains("added worker") } != nil, "\(tmux.screen())")
        try tmux.press("C")
        #expect(tmux.waitFor { $0.contains("concurrency 1 → 2") } != nil, "\(tmux.screen())")
        try tmux.press("C")
        #expect(tmux.waitFor { $0.contains("concurrency 2 → 3") } != nil, "\(tmux.screen())")

        // A second viewer at once (batch) sees the serving process changed (in the frame
        // sampled after it attached: the first may be older than the keys).
        let check = try ChildProcess(shell: sandbox.command("attach \(pid) --batch --json --iterations 2 2>/dev/null"))
        #expect(check.waitForExit() == 0)
        let frame = try #require(jsonObjects(check.lines).last, "\(check.lines)")
        #expect(frame["concurrency"] as? Int == 3)
        #expect(frame["workers_live"] as? Int == 3)

        try tmux.press("-")
        #expect(tmux.waitFor { $0.contains("worker") && $0.contains("exited") } != nil, "\(tmux.screen())")
        let again = try ChildProcess(shell: sandbox.command("attach \(pid) --batch --json --iterations 2 2>/dev/null"))
        #expect(again.waitForExit() == 0)
        #expect(jsonObjects(again.lines).last?["workers_live"] as? Int == 2)

        // q leaves the viewer; the engine keeps serving.
        try tmux.press("q")
        #expect(tmux.waitFor { $0.contains("EXIT=0") } != nil, "\(tmux.screen())")
        let client = connectClient(port: port)
        #expect(echo(client, "still serving") == "still serving")
        close(client)
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
    }

    @Test func readOnlyViewersRefuseActingKeys() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let server = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 2 --quiet"))
        _ = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        let tmux = try Tmux(width: 120, height: 40)
        try tmux.type("XDG_RUNTIME_DIR='\(sandbox.path)' '\(iocptopPath)' attach --read-only; echo EXIT=$?")
        #expect(tmux.waitFor { $0.contains("read-only") && $0.contains("F1Help") } != nil, "\(tmux.screen())")
        try tmux.press("+")
        #expect(tmux.waitFor { $0.contains("read-only: add worker refused") } != nil, "\(tmux.screen())")
        try tmux.press("q")
        #expect(tmux.waitFor { $0.contains("EXIT=0") } != nil, "\(tmux.screen())")
        let check = try ChildProcess(shell: sandbox.command("attach --batch --json --iterations 2 2>/dev/null"))
        #expect(check.waitForExit() == 0)
        #expect(jsonObjects(check.lines).last?["workers_live"] as? Int == 2)
    }

    @Test func aKilledEngineIsReportedAndCleanedUp() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let server = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 2 --quiet"))
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        let pid = try #require(enginePID(fromStartLine: start))
        let tmux = try Tmux(width: 120, height: 40)
        try tmux.type("XDG_RUNTIME_DIR='\(sandbox.path)' '\(iocptopPath)' attach \(pid); echo EXIT=$?")
        #expect(tmux.waitFor { $0.contains("attached to pid \(pid)") } != nil, "\(tmux.screen())")
        server.signal(SIGKILL)
        _ = server.waitForExit()
        #expect(tmux.waitFor { $0.contains("engine \(pid) exited") } != nil, "\(tmux.screen())")
        try tmux.press("+")
        #expect(tmux.waitFor { $0.contains("press q to quit") } != nil)
        try tmux.press("q")
        #expect(tmux.waitFor { $0.contains("EXIT=0") } != nil, "\(tmux.screen())")

        #expect(sandbox.entries.count == 1, "kill -9 leaves the socket behind")
        let list = try ChildProcess(shell: sandbox.command("list --json"))
        #expect(list.waitForExit() == 0)
        #expect(list.lines == ["[]"], "a dead engine is not listed")
        let attach = try ChildProcess(shell: sandbox.command("attach \(pid) --batch"))
        #expect(attach.waitForExit() == 1)
        #expect(attach.lines.count == 1 && attach.lines[0].contains("no iocptop engine"), "\(attach.lines)")

        let next = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 1 --quiet"))
        let nextStart = try #require(next.waitForLine { $0.contains("echo on") })
        let nextPID = try #require(enginePID(fromStartLine: nextStart))
        #expect(sandbox.entries.count == 1 && sandbox.entries[0].hasPrefix("\(nextPID)-"), "the stale entry was cleaned: \(sandbox.entries)")
        next.signal(SIGTERM)
        #expect(next.waitForExit() == 0)
    }

    /// Needs root to become `nobody` (setpriv), as on the CI machine.
    @Test(.enabled(if: geteuid() == 0, "needs root to run a client as another user"))
    func anotherUserCannotAttachOrControl() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let server = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 2 --quiet"))
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        let pid = try #require(enginePID(fromStartLine: start))
        let nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups"
        // With the owner's directory named: refused, it belongs to another user.
        let intruder = try ChildProcess(shell: "XDG_RUNTIME_DIR='\(sandbox.path)' exec \(nobody) '\(iocptopPath)' attach \(pid) --batch")
        #expect(intruder.waitForExit() == 1)
        #expect(intruder.lines.count == 1 && intruder.lines[0].contains("refusing to use"), "\(intruder.lines)")
        // With its own directory: the pid is another user's.
        let other = try ChildProcess(shell: "env -u XDG_RUNTIME_DIR \(nobody) '\(iocptopPath)' attach \(pid) --batch")
        #expect(other.waitForExit() == 1)
        #expect(other.lines.count == 1 && other.lines[0].contains("permission denied"), "\(other.lines)")
        // Straight at the socket: the directory (0700) keeps it out.
        let socket = try #require(sandbox.entries.first)
        let direct = try ChildProcess(shell: "\(nobody) python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b\"iocptop/1 add-worker\\n\"); print(s.recv(100))' '\(sandbox.path)/iocptop/\(socket)' 2>&1")
        #expect(direct.waitForExit() != 0)
        #expect(direct.lines.contains { $0.contains("Permission denied") }, "\(direct.lines)")

        let check = try ChildProcess(shell: sandbox.command("attach --batch --json --iterations 1 2>/dev/null"))
        #expect(check.waitForExit() == 0)
        #expect(jsonObjects(check.lines).first?["workers_live"] as? Int == 2, "the engine is unaffected")
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
    }

    @Test func badAttachRequestsAreOneLine() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let none = try ChildProcess(shell: sandbox.command("attach --batch"))
        #expect(none.waitForExit() == 1)
        #expect(none.lines.count == 1 && none.lines[0].contains("no iocptop engine of this user is running"), "\(none.lines)")
        let missing = try ChildProcess(shell: sandbox.command("attach 999999 --batch"))
        #expect(missing.waitForExit() == 1)
        #expect(missing.lines.count == 1 && missing.lines[0].contains("pid 999999"), "\(missing.lines)")

        let first = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 1 --quiet"))
        _ = try #require(first.waitForLine { $0.contains("echo on") })
        let second = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 1 --quiet"))
        _ = try #require(second.waitForLine { $0.contains("echo on") })
        let ambiguous = try ChildProcess(shell: sandbox.command("attach --batch"))
        #expect(ambiguous.waitForExit() == 1)
        #expect(ambiguous.lines.count == 1 && ambiguous.lines[0].contains("several engines"), "\(ambiguous.lines)")
        let list = try ChildProcess(shell: sandbox.command("list"))
        #expect(list.waitForExit() == 0)
        #expect(list.lines.count == 3, "a header and two engines: \(list.lines)")
    }
}
