import CShare
import Loopback
#if canImport(Glibc)
import Glibc
#endif

/// A private tmux server (its own socket, no user configuration) with one pane running `sh`:
/// the real terminal the dashboard tests type into and read back.
final class Tmux {
    let socket = "iocptop-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    init(width: Int, height: Int) throws {
        try run(["-f", "/dev/null", "new-session", "-d", "-x", "\(width)", "-y", "\(height)",
                 "env", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TERM=tmux-256color", "PS1=$ ", "sh"])
    }

    deinit { _ = try? run(["kill-server"]) }

    /// Runs `tmux -L socket ARGUMENTS` and waits for it; returns its standard output when
    /// `capture` (only then: the server that new-session starts keeps inherited descriptors
    /// open, so a pipe there would never reach end of file).
    @discardableResult
    func run(_ arguments: [String], capture: Bool = false) throws -> String {
        var pipeFDs: [CInt] = [-1, -1]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if capture {
            guard CShare_pipeCloseOnExec(&pipeFDs) == 0 else { throw POSIXFailure(errno: errno) }
            posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
            posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let child = spawnCleanly(["tmux", "-L", socket] + arguments, fileActions: &actions)
        if capture { close(pipeFDs[1]) }
        guard child > 0 else {
            if capture { close(pipeFDs[0]) }
            throw POSIXFailure(errno: -child)
        }
        var output: [UInt8] = []
        if capture {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
                if n <= 0 { break }
                output += buffer[0..<n]
            }
            close(pipeFDs[0])
        }
        var status: CInt = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        return String(decoding: output, as: UTF8.self)
    }

    /// Types a line into the shell.
    func type(_ line: String) throws { try run(["send-keys", "-t", "0", "-l", line]); try run(["send-keys", "-t", "0", "Enter"]) }

    /// Presses keys (tmux key names: "+", "q", "F1", "C-c").
    func press(_ key: String) throws { try run(["send-keys", "-t", "0", key]) }

    /// What the pane shows now.
    func screen() -> String { (try? run(["capture-pane", "-p", "-t", "0"], capture: true)) ?? "" }

    /// Polls the pane until `condition` holds on its text (or `seconds` pass); returns the
    /// last capture when it held, nil otherwise.
    func waitFor(within seconds: Double = 15, _ condition: (String) -> Bool) -> String? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        repeat {
            let text = screen()
            if condition(text) { return text }
            usleep(50_000)
        } while ContinuousClock.now < deadline
        return nil
    }

    func resize(width: Int, height: Int) throws {
        try run(["resize-window", "-t", "0", "-x", "\(width)", "-y", "\(height)"])
    }
}
