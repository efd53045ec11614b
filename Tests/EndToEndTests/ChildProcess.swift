import CShare
import Loopback
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The built `iocptop` binary, next to the test bundle.
let iocptopPath: String = {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let exe = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    var directory = exe
    while let last = directory.last, last != "/" { directory.removeLast() }
    return directory + "iocptop"
}()

/// A child process with its standard output and error captured through one pipe.
final class ChildProcess {
    let pid: pid_t
    private let output: CInt
    private var pending: [UInt8] = []
    private(set) var lines: [String] = []

    /// Runs `/bin/sh -c command`.
    init(shell command: String) throws {
        var pipeFDs: [CInt] = [0, 0]
        // Both ends close-on-exec from the start: a child spawned by another test meanwhile
        // must not hold this pipe open (the dup2 below gives this child its own copies).
        guard CShare_pipeCloseOnExec(&pipeFDs) == 0 else { throw POSIXFailure(errno: errno) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        let child = spawnCleanly(["/bin/sh", "-c", command], fileActions: &actions)
        close(pipeFDs[1])
        guard child > 0 else {
            close(pipeFDs[0])
            throw POSIXFailure(errno: -child)
        }
        pid = child
        output = pipeFDs[0]
    }

    /// Ends the process: SIGTERM first (an engine drains and removes its runtime files), SIGKILL
    /// when it has not exited within 5 s.
    deinit {
        var status: CInt = 0
        if waitpid(pid, &status, WNOHANG) == 0 {
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(5)
            while waitpid(pid, &status, WNOHANG) == 0 {
                if ContinuousClock.now > deadline {
                    kill(pid, SIGKILL)
                    waitpid(pid, &status, 0)
                    break
                }
                usleep(2000)
            }
        }
        close(output)
    }

    /// Reads output until a line satisfies `match` or `seconds` pass; returns that line.
    ///
    /// Whole lines already read but not yet looked at (a match returns before the rest of its
    /// chunk is split) are looked at first: a process that wrote several lines at once, and
    /// then nothing, must not make the next wait miss them.
    func waitForLine(within seconds: Double = 20, _ match: (String) -> Bool) -> String? {
        if let line = lines.first(where: match) { return line }
        if let line = splitPending(match) { return line }
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            var descriptor = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(output, &chunk, chunk.count)
            if n <= 0 { break }
            pending += chunk[0..<n]
            if let line = splitPending(match) { return line }
        }
        return nil
    }

    /// Moves whole lines from `pending` to `lines`, up to and including the first that matches.
    private func splitPending(_ match: (String) -> Bool) -> String? {
        while let newline = pending.firstIndex(of: 10) {
            let line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeSubrange(...newline)
            lines.append(line)
            if match(line) { return line }
        }
        return nil
    }

    /// Waits for the process to exit (at most `seconds`); returns its exit status, or nil.
    func waitForExit(within seconds: Double = 20) -> CInt? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        var status: CInt = 0
        while ContinuousClock.now < deadline {
            _ = waitForLine(within: 0.05) { _ in false }
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                _ = waitForLine(within: 0.2) { _ in false }
                return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            }
        }
        return nil
    }

    func signal(_ number: CInt) { kill(pid, number) }
}

struct POSIXFailure: Error { let errno: CInt }

/// The port from a serve start line: "iocptop: echo on 127.0.0.1:PORT · …".
func listenPort(fromStartLine line: String) -> UInt16? {
    guard let marker = line.split(separator: " ").first(where: { $0.hasPrefix("127.0.0.1:") }) else { return nil }
    return UInt16(marker.dropFirst("127.0.0.1:".count).prefix { $0.isNumber })
}

/// Connects to 127.0.0.1:port with a 5 s receive timeout; -1 on failure.
func connectClient(port: UInt16) -> CInt {
    guard let fd = try? Loopback.connect(port: port) else { return -1 }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// Sends `message` and reads the same number of bytes back (5 s receive timeout).
func echo(_ fd: CInt, _ message: String) -> String? {
    let bytes = Array(message.utf8)
    guard write(fd, bytes, bytes.count) == bytes.count else { return nil }
    var received = [UInt8](repeating: 0, count: bytes.count)
    var offset = 0
    while offset < bytes.count {
        let n = received[offset...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return nil }
        offset += n
    }
    return String(decoding: received, as: UTF8.self)
}
