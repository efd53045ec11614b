import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop serve` driven as a user runs it: the built binary in a child process.
@Suite(.serialized) struct ServeTests {
    /// A negative number is read as the option's value (not as an unknown flag) and rejected
    /// by its range check, with the option's name in the message.
    @Test(arguments: [("serve --workers -1", "--workers must be between 0 and 256"),
                      ("load --connections -3", "connections must be between 1 and 1000000"),
                      ("--batch --iterations -2", "--iterations must not be negative"),
                      ("serve --work-us -5", "--work-us must be between 0 and 1000000"),
                      ("serve --provided-buffers 1000", "--provided-buffers must be 0 or a power of two up to 32768")])
    func negativeNumbersAreRangeErrors(arguments: String, message: String) throws {
        let run = try ChildProcess(shell: "exec '\(iocptopPath)' \(arguments)")
        #expect(run.waitForExit() == 64)
        #expect(run.lines.contains { $0.contains(message) }, "\(run.lines)")
    }

    @Test(arguments: ["io_uring", "epoll"])
    func serveEchoesAndDrainsOnSIGTERM(backend: String) throws {
        let server = try ChildProcess(shell: "exec '\(iocptopPath)' serve --port 0 --workers 2 --backend \(backend)")
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "no start line: \(server.lines)")
        #expect(start.contains(backend))
        #expect(start.contains("one-shot receive"), "the default: one receive per message")
        let port = try #require(listenPort(fromStartLine: start))
        let client = connectClient(port: port)
        #expect(client >= 0)
        #expect(echo(client, "through the binary") == "through the binary")
        #expect(server.waitForLine { $0.contains("open 1") } != nil, "a per-second totals line shows the connection")
        close(client)
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
        #expect(server.lines.contains { $0.contains("drained in") }, "\(server.lines)")
    }

    /// `--provided-buffers` turns on multishot receives where io_uring has them, and says so.
    @Test func providedBuffersTurnOnMultishotReceives() throws {
        let server = try ChildProcess(shell: "exec '\(iocptopPath)' serve --port 0 --workers 2 --provided-buffers 64")
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "no start line: \(server.lines)")
        if start.contains("io_uring") {
            #expect(start.contains("multishot receive") || getenv("IOCPTOP_ALLOW_NO_URING") != nil, "\(start)")
        } else {
            #expect(start.contains("one-shot receive"), "\(start)")
        }
        let port = try #require(listenPort(fromStartLine: start))
        let client = connectClient(port: port)
        #expect(client >= 0)
        #expect(echo(client, "multishot") == "multishot")
        #expect(echo(client, "and again") == "and again")
        close(client)
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
    }

    @Test func sigintDrainsToo() throws {
        let server = try ChildProcess(shell: "exec '\(iocptopPath)' serve --port 0 --workers 1 --quiet")
        _ = try #require(server.waitForLine { $0.contains("echo on") })
        server.signal(SIGINT)
        #expect(server.waitForExit() == 0)
        #expect(server.lines.contains { $0.contains("SIGINT, draining") })
    }

    @Test func portInUseIsOneClearLineAndStatus1() throws {
        let first = try ChildProcess(shell: "exec '\(iocptopPath)' serve --port 0 --workers 1 --quiet")
        let start = try #require(first.waitForLine { $0.contains("echo on") })
        let port = try #require(listenPort(fromStartLine: start))
        let second = try ChildProcess(shell: "exec '\(iocptopPath)' serve --port \(port) --workers 1")
        #expect(second.waitForExit() == 1)
        #expect(second.lines == ["iocptop: 127.0.0.1:\(port) is already in use (another server is listening there)"])
        first.signal(SIGTERM)
        #expect(first.waitForExit() == 0)
    }

    @Test(arguments: ["--workers -1", "--port 70000", "--backend kqueue", "--no-such-flag", "--bind nowhere"])
    func badInputIsAnErrorNotATrap(arguments: String) throws {
        let run = try ChildProcess(shell: "exec '\(iocptopPath)' serve --port 0 \(arguments)")
        let status = try #require(run.waitForExit())
        #expect(status != 0)
        #expect(status < 128, "terminated by a signal: \(run.lines)")
        #expect(run.lines.contains { $0.lowercased().contains("error") || $0.contains("iocptop:") }, "\(run.lines)")
    }

    @Test(arguments: ["io_uring", "epoll"])
    func runningOutOfDescriptorsBacksOffAndRecovers(backend: String) throws {
        // 48 descriptors in all: a few for the process, the rest for connections.
        let server = try ChildProcess(shell: "ulimit -n 48 && exec '\(iocptopPath)' serve --port 0 --workers 2 --backend \(backend)")
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        let port = try #require(listenPort(fromStartLine: start))
        // More clients than the server has descriptors: the surplus waits in the backlog.
        var clients: [CInt] = []
        for _ in 0..<80 {
            let fd = connectClient(port: port)
            if fd >= 0 { clients.append(fd) }
        }
        #expect(clients.count == 80)
        // Served connections still echo while accept fails with EMFILE.
        #expect(echo(clients[0], "still serving") == "still serving")
        #expect(server.waitForLine { $0.contains("accept-failures") && !$0.contains("open 0 ") } != nil,
                "accept hit EMFILE: \(server.lines.suffix(2))")
        // Free the descriptors; the server accepts the backlog (all closed) and serves anew.
        clients.forEach { close($0) }
        #expect(server.waitForLine { $0.contains("open 0 ") && $0.contains("accepted 80") } != nil, "\(server.lines.suffix(3))")
        let fresh = connectClient(port: port)
        #expect(echo(fresh, "after the storm") == "after the storm")
        close(fresh)
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
    }
}
