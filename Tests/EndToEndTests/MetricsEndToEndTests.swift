import Foundation
import Loopback
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `--metrics` on the built binary: a live engine's exposition under load, with a retired
/// worker, passes `promtool check metrics`; an attached viewer exports the same engine.
@Suite(.serialized) struct MetricsEndToEndTests {
    /// The port from "metrics on http://127.0.0.1:PORT/metrics".
    func metricsPort(_ line: String) -> UInt16? {
        guard let range = line.range(of: "http://127.0.0.1:") else { return nil }
        return UInt16(line[range.upperBound...].prefix { $0.isNumber })
    }

    func scrape(_ port: UInt16) -> String {
        let fd = connectClient(port: port)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        _ = "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n".withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        let text = String(decoding: Loopback.readToEnd(fd), as: UTF8.self)
        return text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    }

    /// Sends one control request over the engine's socket in `sandbox`; the reply line.
    func control(_ sandbox: RuntimeSandbox, _ request: String) -> String {
        guard let name = sandbox.entries.first(where: { $0.hasSuffix(".sock") }) else { return "" }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = sandbox.path + "/iocptop/" + name
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return "" }
        _ = "iocptop/1 \(request)\n".withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var chunk = [UInt8](repeating: 0, count: 256)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: chunk[0..<n], as: UTF8.self) : ""
    }

    func liveSlots(_ exposition: String) -> Set<String> {
        Set(exposition.split(separator: "\n").filter { $0.hasPrefix("iocptop_worker_receives_total{") }.compactMap { line in
            line.split(separator: "\"").dropFirst().first.map(String.init)
        })
    }

    @Test func aLiveEnginesExpositionPassesPromtool() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let serve = try ChildProcess(shell: sandbox.command("serve --port 0 --workers 3 --load 16 --refresh-ms 100 --quiet --metrics 127.0.0.1:0"))
        let line = try #require(serve.waitForLine { $0.contains("metrics on http://") }, "\(serve.lines)")
        let port = try #require(metricsPort(line))
        #expect(serve.waitForLine { $0.contains("built-in load") } != nil, "\(serve.lines)")
        // Under load, with histograms filled.
        var exposition = ""
        let deadline = ContinuousClock.now + .seconds(15)
        repeat {
            exposition = scrape(port)
            if exposition.contains("iocptop_worker_queue_wait_seconds_count{slot=\"0\"}") && liveSlots(exposition).count == 3 { break }
            usleep(100_000)
        } while ContinuousClock.now < deadline
        #expect(liveSlots(exposition) == ["0", "1", "2"], "\(exposition.prefix(400))")
        // A retired worker's series disappear.
        #expect(control(sandbox, "retire-worker").hasPrefix("ok"))
        repeat {
            exposition = scrape(port)
            if liveSlots(exposition).count == 2 { break }
            usleep(100_000)
        } while ContinuousClock.now < deadline + .seconds(10)
        #expect(liveSlots(exposition).count == 2, "\(liveSlots(exposition))")
        #expect(exposition.contains("iocptop_workers{state=\"waiting\"}"))
        let count = exposition.split(separator: "\n").first { $0.hasPrefix("iocptop_completions_total ") }
        #expect((Double(count?.split(separator: " ").last ?? "0") ?? 0) > 0, "\(count ?? "")")

        let path = sandbox.path + "/scrape.txt"
        try exposition.write(toFile: path, atomically: true, encoding: .utf8)
        let check = try ChildProcess(shell: "command -v promtool >/dev/null || { echo NO-PROMTOOL; exit 0; }; exec promtool check metrics < '\(path)' 2>&1")
        let status = check.waitForExit()
        if check.lines.contains("NO-PROMTOOL") {
            #expect(ProcessInfo.processInfo.environment["IOCPTOP_REQUIRE_PROMTOOL"] != "1", "promtool is required but not on PATH")
        } else {
            #expect(status == 0 && check.lines.isEmpty, "\(check.lines)")
        }

        // An attached viewer exports the same engine.
        let pid = try #require(enginePID(fromStartLine: serve.lines.first { $0.contains("pid ") } ?? ""))
        let viewer = try ChildProcess(shell: sandbox.command("attach \(pid) --batch --json --metrics 127.0.0.1:0 > /dev/null"))
        let viewerLine = try #require(viewer.waitForLine { $0.contains("metrics on http://") }, "\(viewer.lines)")
        let viewerPort = try #require(metricsPort(viewerLine))
        var attached = ""
        repeat {
            attached = scrape(viewerPort)
            if liveSlots(attached).count == 2 { break }
            usleep(100_000)
        } while ContinuousClock.now < deadline + .seconds(20)
        #expect(liveSlots(attached).count == 2, "\(attached.prefix(300))")
        #expect(attached.contains("iocptop_engine_info{backend="))
    }

    @Test func badOrBusyAddressesAreOneLine() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let first = try ChildProcess(shell: sandbox.command("serve --port 0 --quiet --metrics 127.0.0.1:0"))
        let line = try #require(first.waitForLine { $0.contains("metrics on http://") })
        let port = try #require(metricsPort(line))
        let busy = try ChildProcess(shell: sandbox.command("serve --port 0 --quiet --metrics 127.0.0.1:\(port) 2>&1"))
        #expect(busy.waitForExit() == 1)
        #expect(busy.lines.count == 1 && busy.lines[0].contains("Address already in use"), "\(busy.lines)")
        for bad in ["nonsense:x", "1.2.3.4:99999", "::1:80"] {
            let run = try ChildProcess(shell: sandbox.command("serve --port 0 --quiet --metrics '\(bad)' 2>&1"))
            #expect(run.waitForExit() == 1)
            #expect(run.lines.count == 1 && run.lines[0].contains("--metrics"), "\(bad): \(run.lines)")
        }
    }
}
