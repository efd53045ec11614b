import CompletionPort
import Testing

/// The dashboard in a real terminal: the built binary in a tmux pane, driven by keys.
@Suite(.serialized) struct DashboardEndToEndTests {
    /// "Workers  N" from the header line.
    func liveWorkers(_ screen: String) -> Int? {
        guard let line = screen.split(separator: "\n").first(where: { $0.hasPrefix(" Workers") }) else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    /// The status the shell echoed on a line of its own ("EXIT=N"), once the command ended.
    func exitStatus(_ screen: String) -> Int? {
        screen.split(separator: "\n").compactMap { line in
            line.hasPrefix("EXIT=") ? Int(line.dropFirst(5).prefix { $0.isNumber }) : nil
        }.last
    }

    func line(_ screen: String, startingWith prefix: String) -> String {
        screen.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init) ?? ""
    }

    @Test func keysActOnTheEngineAndQuitRestoresTheShell() throws {
        let tmux = try Tmux(width: 120, height: 40)
        // Defaults: 2 × CPUs workers, concurrency = CPUs.
        let cpus = CompletionPort.onlineCPUs
        try tmux.type("'\(iocptopPath)' --port 0 --refresh-ms 100; echo EXIT=$?")
        var screen = tmux.waitFor { self.liveWorkers($0) == 2 * cpus && $0.contains("F1Help") }
        #expect(screen != nil, "the dashboard shows the default \(2 * cpus) workers: \(tmux.screen())")
        #expect(screen.map { self.line($0, startingWith: " Workers").contains("/\(cpus)") } == true)

        try tmux.press("+")
        #expect(tmux.waitFor { self.liveWorkers($0) == 2 * cpus + 1 && $0.contains("added worker") } != nil, "\(tmux.screen())")
        try tmux.press("-")
        #expect(tmux.waitFor { self.liveWorkers($0) == 2 * cpus && $0.contains("exited") } != nil, "\(tmux.screen())")

        try tmux.press("C")
        #expect(tmux.waitFor { $0.contains("concurrency \(cpus) → \(cpus + 1)") && self.line($0, startingWith: " Workers").contains("/\(cpus + 1)") } != nil,
                "\(tmux.screen())")
        try tmux.press("c")
        #expect(tmux.waitFor { $0.contains("concurrency \(cpus + 1) → \(cpus)") && self.line($0, startingWith: " Workers").contains("/\(cpus)") } != nil,
                "\(tmux.screen())")

        try tmux.press("l")
        screen = tmux.waitFor { screen in
            let compl = self.line(screen, startingWith: " Compl/s")
            return screen.contains("built-in load on") && !compl.isEmpty && !compl.contains("       0  ")
        }
        #expect(screen != nil, "throughput is non-zero under the built-in load: \(tmux.screen())")

        try tmux.press("h")
        #expect(tmux.waitFor { $0.contains("iocptop keys") } != nil)
        try tmux.press("x")
        #expect(tmux.waitFor { !$0.contains("iocptop keys") } != nil, "any key closes the help")

        try tmux.press("d")
        #expect(tmux.waitFor { $0.contains("drained:") && self.liveWorkers($0) == 0 } != nil, "\(tmux.screen())")

        try tmux.press("q")
        screen = tmux.waitFor { self.exitStatus($0) != nil }
        #expect(screen.flatMap(exitStatus) == 0, "\(tmux.screen())")
        #expect(screen?.contains("drained in") == true, "the drain report follows the restored screen")
    }

    @Test func theLayoutFollowsResizes() throws {
        let tmux = try Tmux(width: 120, height: 40)
        try tmux.type("'\(iocptopPath)' --port 0 --workers 2 --refresh-ms 100; echo EXIT=$?")
        #expect(tmux.waitFor { $0.contains("TOTAL") && $0.contains("F1Help") } != nil, "120 columns show TOTAL: \(tmux.screen())")
        try tmux.resize(width: 80, height: 24)
        #expect(tmux.waitFor { !$0.contains("TOTAL") && $0.contains("COMPL/S") } != nil, "80 columns drop TOTAL: \(tmux.screen())")
        try tmux.resize(width: 50, height: 10)
        #expect(tmux.waitFor { $0.contains("enlarge the terminal") } != nil, "\(tmux.screen())")
        try tmux.resize(width: 100, height: 30)
        #expect(tmux.waitFor { $0.contains("F1Help") } != nil)
        try tmux.press("C-c")
        #expect(tmux.waitFor { self.exitStatus($0) != nil }.flatMap(exitStatus) == 0, "Ctrl-C quits cleanly: \(tmux.screen())")
    }

    @Test func startupErrorsPrintOneLineBeforeTheScreen() throws {
        let tmux = try Tmux(width: 100, height: 30)
        try tmux.type("'\(iocptopPath)' --port 0 --refresh-ms 5; echo EXIT=$?")
        let screen = tmux.waitFor { self.exitStatus($0) != nil }
        #expect(screen?.contains("--refresh-ms must be between 50 and 60000") == true)
        #expect(screen.flatMap(exitStatus) == 64)
    }

    @Test(arguments: [("TERM=dumb", "cannot move the cursor"), ("env -u TERM", "TERM is not set"),
                      ("TERM=no-such-terminal", "unknown terminal type")])
    func anUnusableTerminalIsOneLineAndStatus1(prefix: String, message: String) throws {
        let tmux = try Tmux(width: 100, height: 30)
        try tmux.type("\(prefix) '\(iocptopPath)' --port 0 --workers 1; echo EXIT=$?")
        let screen = tmux.waitFor { self.exitStatus($0) != nil }
        #expect(screen.flatMap(exitStatus) == 1, "\(tmux.screen())")
        #expect(screen?.contains("iocptop: ") == true && screen?.contains(message) == true)
    }

    @Test func sigtermRestoresTheTerminal() throws {
        let tmux = try Tmux(width: 100, height: 30)
        // The dashboard in the foreground (it execs over the shell); SIGTERM arrives after 2 s.
        try tmux.type("sh -c '(sleep 2; kill -TERM $$) & exec \"\(iocptopPath)\" --port 0 --workers 2'; echo EXIT=$?")
        let screen = tmux.waitFor(within: 20) { self.exitStatus($0) != nil }
        #expect(screen.flatMap(exitStatus) == 0, "\(tmux.screen())")
        #expect(screen?.contains("drained in") == true)
    }
}
