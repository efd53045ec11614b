import Foundation
import Loopback
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The connections view with the built binary: `--json`'s connections array under mixed
/// clients, and the dashboard's Tab, Enter and `x` in a real terminal.
@Suite(.serialized) struct ConnectionsViewTests {
    /// The client's own port: the server's row names it as the peer's.
    func localPort(_ fd: CInt) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func row(_ frame: [String: Any], port: Int) -> [String: Any]? {
        (frame["connections"] as? [[String: Any]])?.first { ($0["peer"] as? String) == "127.0.0.1:\(port)" && $0["state"] as? String != "closed" }
    }

    final class StopFlag: Sendable {
        let stopped = Atomic<Bool>(false)
    }

    /// A client that echoes 64 KiB chunks back to back until `stop`.
    func stream(_ fd: CInt, until stop: StopFlag) -> Int {
        let chunk = [UInt8](repeating: 0x5a, count: 65536)
        var back = [UInt8](repeating: 0, count: 65536)
        var rounds = 0
        while !stop.stopped.load(ordering: .relaxed) {
            guard chunk.withUnsafeBytes({ Loopback.writeAll(fd, $0) }),
                  back.withUnsafeMutableBytes({ Loopback.readExactly(fd, into: $0) }) == 65536 else { break }
            rounds += 1
        }
        return rounds
    }

    @Test func aStreamerLeadsIdleClientsFollowAndANonReaderIsPaused() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let server = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 2 --refresh-ms 250 --quiet"))
        defer { server.signal(SIGTERM); _ = server.waitForExit() }
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        let pid = try #require(enginePID(fromStartLine: start))
        let port = try #require(listenPort(fromStartLine: start))

        // 50 idle clients (one round trip each), a streamer, and one that sends without reading.
        let idle = (0..<50).map { _ in connectClient(port: port) }
        defer { idle.forEach { close($0) } }
        for fd in idle { #expect(echo(fd, "hi") == "hi") }
        let streamer = connectClient(port: port)
        let nonReader = connectClient(port: port)
        defer { close(streamer); close(nonReader) }
        let stop = StopFlag()
        let streaming = JoinableThread { _ = self.stream(streamer, until: stop) }
        defer { stop.stopped.store(true, ordering: .relaxed); streaming.join() }
        _ = fcntl(nonReader, F_SETFL, fcntl(nonReader, F_GETFL) | O_NONBLOCK)
        let chunk = [UInt8](repeating: 1, count: 65536)
        var stalled = 0, sent = 0
        while stalled < 20 && sent < 64 << 20 {
            let n = chunk.withUnsafeBytes { write(nonReader, $0.baseAddress, $0.count) }
            if n > 0 { sent += n; stalled = 0 } else { stalled += 1; usleep(20_000) }
        }

        let viewer = try ChildProcess(shell: sandbox.command("attach \(pid) --batch --json --iterations 8 2>/dev/null"))
        #expect(viewer.waitForExit() == 0)
        let frame = try #require(jsonObjects(viewer.lines).last, "\(viewer.lines)")
        let rows = try #require(frame["connections"] as? [[String: Any]])
        #expect(frame["connections_open"] as? Int == 52)
        #expect(frame["connections_paused"] as? Int == 1, "\(rows)")
        #expect(rows.count == 32, "the default --connections bounds the rows: \(rows.count)")
        // By bytes/s the streamer is first.
        let byRate = rows.sorted { (($0["bytes_in_per_s"] as? Int ?? 0) + ($0["bytes_out_per_s"] as? Int ?? 0))
            > (($1["bytes_in_per_s"] as? Int ?? 0) + ($1["bytes_out_per_s"] as? Int ?? 0)) }
        #expect(byRate.first?["peer"] as? String == "127.0.0.1:\(localPort(streamer))", "\(byRate.prefix(3))")
        #expect((byRate.first?["bytes_out_per_s"] as? Int ?? 0) > 1_000_000)
        // The non-reader waits first, paused, holding a large buffer full of what it sent.
        let paused = try #require(row(frame, port: localPort(nonReader)), "\(rows)")
        #expect(rows.first?["peer"] as? String == paused["peer"] as? String)
        #expect(paused["state"] as? String == "paused")
        #expect((paused["held_bytes"] as? Int ?? 0) >= 262_144 && (paused["buffered_bytes"] as? Int ?? 0) > 0)
        #expect((paused["waiting_s"] as? Double ?? 0) > 0)
        // Idle ones are there too, with their one round trip.
        let quiet = rows.filter { $0["bytes_in"] as? Int == 2 && $0["bytes_out"] as? Int == 2 && $0["state"] as? String == "receiving" }
        #expect(quiet.count >= 20, "\(rows.count) rows")
    }

    @Test func xClosesTheSelectedConnectionAndAReadOnlyViewerCannot() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let server = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 2 --refresh-ms 100 --quiet"))
        defer { server.signal(SIGTERM); _ = server.waitForExit() }
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        let pid = try #require(enginePID(fromStartLine: start))
        let port = try #require(listenPort(fromStartLine: start))
        let client = connectClient(port: port)
        defer { close(client) }
        #expect(echo(client, "before") == "before")
        let peer = "127.0.0.1:\(localPort(client))"

        // A read-only viewer: x is refused and the client keeps its connection.
        let readOnly = try Tmux(width: 132, height: 36)
        try readOnly.type("XDG_RUNTIME_DIR='\(sandbox.path)' '\(iocptopPath)' attach \(pid) --read-only; echo EXIT=$?")
        #expect(readOnly.waitFor { $0.contains("F1Help") } != nil, "\(readOnly.screen())")
        try readOnly.press("Tab")
        #expect(readOnly.waitFor { $0.contains("PEER") && $0.contains(peer) } != nil, "\(readOnly.screen())")
        try readOnly.press("x")
        #expect(readOnly.waitFor { $0.contains("read-only: close connection refused") } != nil, "\(readOnly.screen())")
        try readOnly.press("q")
        #expect(readOnly.waitFor { $0.contains("EXIT=0") } != nil, "\(readOnly.screen())")
        #expect(echo(client, "still open") == "still open")

        // An operator's viewer: Tab, Enter (the detail), x, y — the client sees the close.
        let tmux = try Tmux(width: 132, height: 36)
        try tmux.type("XDG_RUNTIME_DIR='\(sandbox.path)' '\(iocptopPath)' attach \(pid); echo EXIT=$?")
        #expect(tmux.waitFor { $0.contains("F1Help") } != nil, "\(tmux.screen())")
        try tmux.press("Tab")
        #expect(tmux.waitFor { $0.contains("PEER") && $0.contains(peer) && $0.contains("receiving") } != nil, "\(tmux.screen())")
        try tmux.press("Enter")
        #expect(tmux.waitFor { $0.contains("connection ") && $0.contains("in 16 B") && $0.contains("Esc closes") } != nil, "\(tmux.screen())")
        try tmux.press("x")
        #expect(tmux.waitFor { $0.contains("Close connection") && $0.contains(peer) } != nil, "\(tmux.screen())")
        // Any other key cancels.
        try tmux.press("n")
        #expect(tmux.waitFor { $0.contains("cancelled") } != nil, "\(tmux.screen())")
        #expect(echo(client, "still here") == "still here")
        try tmux.press("x")
        #expect(tmux.waitFor { $0.contains("Close connection") } != nil, "\(tmux.screen())")
        try tmux.press("y")
        var byte: UInt8 = 0
        #expect(read(client, &byte, 1) == 0, "the client reads end of file")
        // The row stays, dimmed, with why; the event log says who closed it.
        try tmux.press("Escape")
        #expect(tmux.waitFor { $0.contains("closed by operator") && $0.contains(peer) } != nil, "\(tmux.screen())")
        try tmux.press("q")
        #expect(tmux.waitFor { $0.contains("EXIT=0") } != nil, "\(tmux.screen())")
    }
}
