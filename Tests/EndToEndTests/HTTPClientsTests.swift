import Foundation
import Loopback
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// HTTP clients nobody here wrote (curl, ab, wrk, h2load, hey — Debian's packages) against
/// `iocptop serve --protocol http`: no errors, no unexpected status, and the engine's frames
/// count exactly the requests the client made.
///
/// `.ci/run` installs the clients and sets `IOCPTOP_REQUIRE_HTTP_CLIENTS=1`, which turns a
/// missing one into a failure; a plain `swift test` without them skips these tests.
@Suite(.serialized) struct HTTPClientsTests {
    static let required = ProcessInfo.processInfo.environment["IOCPTOP_REQUIRE_HTTP_CLIENTS"] == "1"

    static func has(_ tool: String) -> Bool {
        required || (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains {
            access("\($0)/\(tool)", X_OK) == 0
        }
    }

    /// An HTTP engine with its metrics port; stops (drains) when released.
    struct Server {
        let sandbox = RuntimeSandbox()
        let process: ChildProcess
        let port: UInt16
        let metricsPort: UInt16

        init() throws {
            process = try ChildProcess(shell: sandbox.command("serve --protocol http --port 0 --quiet --refresh-ms 100 --metrics 127.0.0.1:0"))
            let metricsLine = try #require(process.waitForLine { $0.contains("metrics on http://") }, "\(process.lines)")
            let startLine = try #require(process.waitForLine { $0.contains("http on 127.0.0.1:") }, "\(process.lines)")
            port = try #require(listenPort(fromStartLine: startLine))
            let range = try #require(metricsLine.range(of: "http://127.0.0.1:"))
            metricsPort = try #require(UInt16(metricsLine[range.upperBound...].prefix { $0.isNumber }))
        }

        var url: String { "http://127.0.0.1:\(port)" }

        /// `iocptop_handler_requests_total` as the engine's frames count it.
        func requestsCounted() -> Int? {
            let fd = connectClient(port: metricsPort)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            _ = "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            let text = String(decoding: Loopback.readToEnd(fd), as: UTF8.self)
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("iocptop_handler_requests_total ") }) else { return nil }
            return Int(line.split(separator: " ").last ?? "")
        }

        /// Waits until the frames count `expected` requests (they lag by a sampling period).
        func counts(_ expected: ClosedRange<Int>) -> Int? {
            var last: Int?
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                last = requestsCounted()
                if let last, expected.contains(last) {
                    // Settled: nothing more arrives after the client is done.
                    usleep(300_000)
                    return requestsCounted()
                }
                usleep(50_000)
            }
            return last
        }

        func stop() {
            process.signal(SIGTERM)
            _ = process.waitForExit()
            sandbox.remove()
        }
    }

    /// Runs `command` to its end; its output lines and exit status.
    func run(_ command: String, within seconds: Double = 60) throws -> (lines: [String], status: CInt?) {
        let child = try ChildProcess(shell: command + " 2>&1")
        let status = child.waitForExit(within: seconds)
        return (child.lines, status)
    }

    func field(_ lines: [String], _ prefix: String) -> String? {
        lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(prefix) }
            .map { $0.trimmingCharacters(in: .whitespaces).dropFirst(prefix.count).trimmingCharacters(in: .whitespaces) }
    }

    @Test(.enabled(if: has("curl"), "curl not installed"))
    func curlReusesTheConnectionAndGetsEveryAnswer() throws {
        let server = try Server()
        defer { server.stop() }
        let url = server.url
        // Two transfers, one connection: the second makes no new connect.
        let keepAlive = try run("curl -s -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\\n' \(url)/ \(url)/json")
        #expect(keepAlive.status == 0, "\(keepAlive.lines)")
        #expect(keepAlive.lines == ["200 1", "200 0"], "\(keepAlive.lines)")
        let head = try run("curl -sI \(url)/plaintext")
        #expect(head.lines.first?.hasPrefix("HTTP/1.1 200 OK") == true, "\(head.lines)")
        #expect(head.lines.contains { $0.hasPrefix("Content-Length: 13") })
        let body = server.sandbox.path + "/body.bin"
        try Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: URL(fileURLWithPath: body))
        let echoed = try run("curl -s --data-binary @\(body) \(url)/echo | cmp - \(body) && echo SAME")
        #expect(echoed.lines == ["SAME"], "\(echoed.lines)")
        let missing = try run("curl -s -o /dev/null -w '%{http_code}\\n' \(url)/nowhere")
        #expect(missing.lines == ["404"])
        #expect(server.counts(5...5) == 5)
    }

    @Test(.enabled(if: has("ab"), "ab (apache2-utils) not installed"))
    func abWithKeepAlive() throws {
        let server = try Server()
        defer { server.stop() }
        let result = try run("ab -k -n 20000 -c 50 \(server.url)/plaintext")
        #expect(result.status == 0, "\(result.lines)")
        #expect(field(result.lines, "Complete requests:") == "20000", "\(result.lines)")
        #expect(field(result.lines, "Failed requests:") == "0", "\(result.lines)")
        #expect(field(result.lines, "Keep-Alive requests:") == "20000", "\(result.lines)")
        #expect(field(result.lines, "Non-2xx responses:") == nil, "\(result.lines)")
        #expect(server.counts(20000...20000) == 20000)
    }

    @Test(.enabled(if: has("wrk"), "wrk not installed"))
    func wrkPipelinedSixteenDeep() throws {
        let server = try Server()
        defer { server.stop() }
        let script = server.sandbox.path + "/pipeline.lua"
        try """
        init = function(args)
          local r = {}
          for i = 1, 16 do r[i] = wrk.format(nil, "/plaintext") end
          req = table.concat(r)
        end
        request = function() return req end
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try run("wrk -t1 -c20 -d2s -s \(script) \(server.url)/plaintext")
        #expect(result.status == 0, "\(result.lines)")
        #expect(!result.lines.contains { $0.contains("Non-2xx") || $0.contains("Socket errors") }, "\(result.lines)")
        let summary = try #require(result.lines.first { $0.contains("requests in") }, "\(result.lines)")
        let completed = try #require(Int(summary.trimmingCharacters(in: .whitespaces).prefix { $0.isNumber }))
        #expect(completed > 1000)
        // wrk stops with up to 16 requests in flight on each of its 20 connections: the server
        // may have answered those too.
        let counted = try #require(server.counts(completed...(completed + 20 * 16)))
        #expect((completed...(completed + 20 * 16)).contains(counted), "wrk \(completed), engine \(counted)")
    }

    @Test(.enabled(if: has("h2load"), "h2load (nghttp2-client) not installed"))
    func h2loadOverHTTP1Pipelined() throws {
        let server = try Server()
        defer { server.stop() }
        let result = try run("h2load --h1 -n 20000 -c 20 -m 8 \(server.url)/json")
        #expect(result.status == 0, "\(result.lines)")
        #expect(field(result.lines, "requests:")?.hasPrefix("20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored") == true,
                "\(result.lines)")
        #expect(field(result.lines, "status codes:")?.hasPrefix("20000 2xx, 0 3xx, 0 4xx, 0 5xx") == true, "\(result.lines)")
        #expect(server.counts(20000...20000) == 20000)
    }

    @Test(.enabled(if: has("hey"), "hey not installed"))
    func hey() throws {
        let server = try Server()
        defer { server.stop() }
        let result = try run("hey -n 5000 -c 20 \(server.url)/")
        #expect(result.status == 0, "\(result.lines)")
        #expect(result.lines.contains { $0.contains("[200]") && $0.contains("5000 responses") }, "\(result.lines)")
        #expect(!result.lines.contains { $0.contains("Error distribution") }, "\(result.lines)")
        #expect(server.counts(5000...5000) == 5000)
    }

    /// `--batch --protocol http --load N`: the built-in load requests GET /plaintext, and every
    /// frame's JSON carries the server's own figures.
    @Test func batchJSONCarriesTheHTTPFigures() throws {
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let batch = try run(sandbox.command("--batch --protocol http --port 0 --load 16 --iterations 4 --refresh-ms 200 --json"))
        #expect(batch.status == 0, "\(batch.lines)")
        #expect(batch.lines.contains { $0.contains("http on 127.0.0.1:") }, "\(batch.lines)")
        #expect(batch.lines.contains { $0.contains("built-in load: 16 connections × GET /plaintext") }, "\(batch.lines)")
        let last = try #require(jsonObjects(batch.lines).last, "\(batch.lines)")
        let handler = try #require(last["handler"] as? [String: Any], "\(last)")
        let requests = try #require(handler["requests"] as? Int)
        #expect(requests > 100)
        // The load still runs as the last frame is taken: a worker may be between two of a
        // request's counters (at most one request per worker, a few workers).
        let ok = try #require(handler["status_2xx"] as? Int)
        #expect(abs(ok - requests) <= 8, "\(handler)")
        #expect(handler["status_4xx"] as? Int == 0 && handler["status_5xx"] as? Int == 0)
        #expect(handler["latency_p99_us"] is Double, "\(handler)")
        let responseBytes = try #require(handler["response"] as? Int)
        #expect(abs(responseBytes - requests * 132) <= 8 * 132, "every response is 132 bytes: \(handler)")
    }
}
