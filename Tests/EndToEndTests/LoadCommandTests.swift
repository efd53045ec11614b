import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop load` and the built-in `--load`, from the built binary.
@Suite struct LoadCommandTests {
    @Test func loadAgainstServeVerifiesAndReportsJSON() throws {
        let server = try ChildProcess(shell: "exec '\(iocptopPath)' serve --port 0 --workers 2 --quiet")
        let start = try #require(server.waitForLine { $0.contains("echo on") })
        let port = try #require(listenPort(fromStartLine: start))
        let load = try ChildProcess(shell: "exec '\(iocptopPath)' load --port \(port) --connections 8 --messages 4000 --pipeline 2 --json 2>/dev/null")
        #expect(load.waitForExit() == 0)
        let line = try #require(load.lines.last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        #expect(object["messages"] as? Int == 4000)
        #expect(object["connections"] as? Int == 8)
        #expect(object["mismatches"] as? Int == 0)
        let latency = try #require(object["latency_us"] as? [String: Any])
        #expect(["p50", "p90", "p99", "p999", "max"].allSatisfy { latency[$0] != nil })
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
    }

    @Test func aRefusedPortIsOneLineAndStatus1() throws {
        let listener = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: UInt32(0x7F00_0001).bigEndian), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        close(listener) // bound, never listened: connecting is refused
        let port = UInt16(bigEndian: address.sin_port)
        let load = try ChildProcess(shell: "exec '\(iocptopPath)' load --port \(port) --connections 4 --duration 1")
        #expect(load.waitForExit() == 1)
        #expect(load.lines == ["iocptop load: cannot connect to 127.0.0.1:\(port): 4 × connection refused"])
    }

    @Test func sigintPrintsTheSummarySoFar() throws {
        let server = try ChildProcess(shell: "exec '\(iocptopPath)' serve --port 0 --workers 2 --quiet")
        let start = try #require(server.waitForLine { $0.contains("echo on") })
        let port = try #require(listenPort(fromStartLine: start))
        let load = try ChildProcess(shell: "exec '\(iocptopPath)' load --port \(port) --connections 4 --duration 60")
        #expect(load.waitForLine { $0.hasPrefix("1s ·") } != nil)
        load.signal(SIGINT)
        #expect(load.waitForExit() == 0)
        #expect(load.lines.contains { $0.hasPrefix("messages ") })
        #expect(load.lines.contains { $0.hasPrefix("errors: none · mismatches 0") })
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
    }

    @Test func serveWithBuiltInLoadShowsTraffic() throws {
        let server = try ChildProcess(shell: "exec '\(iocptopPath)' serve --port 0 --workers 2 --load 16")
        #expect(server.waitForLine { $0.contains("built-in load: 16 connections") } != nil, "\(server.lines)")
        #expect(server.waitForLine { $0.contains("open 16") && !$0.contains(" 0 completions/s") } != nil, "\(server.lines.suffix(5))")
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
    }
}

/// IPv6: the engine on `::1` and `::`, the load generator to `::1`.
@Suite(.serialized) struct IPv6Tests {
    func port(_ line: String, host: String) -> UInt16? {
        guard let range = line.range(of: "\(host):") else { return nil }
        return UInt16(line[range.upperBound...].prefix { $0.isNumber })
    }

    @Test(arguments: ["::1", "::"])
    func theEngineListensOnIPv6AndTheLoadReachesIt(bind: String) throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let server = try ChildProcess(shell: sandbox.command("serve --bind \(bind) --port 0 --workers 2 --quiet"))
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        let listening = try #require(port(start, host: "[\(bind)]"), "\(start)")
        let load = try ChildProcess(shell: sandbox.command("load --host ::1 --port \(listening) --connections 4 --messages 2000 --json 2>/dev/null"))
        #expect(load.waitForExit() == 0, "\(load.lines)")
        let summary = try #require(jsonObjects(load.lines).first)
        #expect(summary["messages"] as? Int == 2000)
        #expect(summary["mismatches"] as? Int == 0)
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
    }

    @Test func aBadBindAddressIsOneLine() throws {
        let run = try ChildProcess(shell: "exec '\(iocptopPath)' serve --bind not-an-address --port 0")
        #expect(run.waitForExit() == 1)
        #expect(run.lines.count == 1 && run.lines[0].contains("not an IPv4 or IPv6 address"), "\(run.lines)")
    }
}
