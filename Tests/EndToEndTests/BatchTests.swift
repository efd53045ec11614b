import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop --batch`, text and JSON, from the built binary.
@Suite struct BatchTests {
    @Test func jsonLinesFollowTheDocumentedSchema() throws {
        // stdout is a pipe: iocptop falls back to batch mode by itself.
        let run = try ChildProcess(shell: "exec '\(iocptopPath)' --port 0 --workers 3 --json --iterations 3 --refresh-ms 100 2>/dev/null")
        let status = try #require(run.waitForExit())
        #expect(status == 0)
        #expect(run.lines.count == 3, "\(run.lines)")
        var frames: [Int] = []
        for line in run.lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            for key in ["frame", "uptime_s", "backend", "address", "workers_live", "concurrency", "queue_depth",
                        "pending", "busy_pct", "cpu_pct", "connections_open", "completions", "completions_per_s",
                        "mb_in_per_s", "mb_out_per_s", "draining", "drained"] {
                #expect(object[key] != nil, "missing \(key)")
            }
            let workers = try #require(object["workers"] as? [[String: Any]])
            #expect(workers.count == 3)
            for worker in workers {
                for key in ["id", "state", "busy_pct", "cpu_pct", "completions_per_s", "completions", "mb_in_per_s",
                            "mb_out_per_s", "pending", "connections"] {
                    #expect(worker[key] != nil, "missing worker \(key)")
                }
            }
            frames.append(try #require(object["frame"] as? Int))
        }
        #expect(frames == frames.sorted() && Set(frames).count == 3)
    }

    @Test func textBlocksShowTrafficAndSIGTERMDrains() throws {
        let server = try ChildProcess(shell: "exec '\(iocptopPath)' --batch --port 0 --workers 2 --refresh-ms 100")
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        let port = try #require(listenPort(fromStartLine: start))
        let client = connectClient(port: port)
        #expect(client >= 0)
        defer { close(client) }
        for index in 0..<20 { #expect(echo(client, "message \(index)") == "message \(index)") }
        #expect(server.waitForLine { $0.hasPrefix("connections 1 open") } != nil, "\(server.lines.suffix(10))")
        #expect(server.waitForLine { $0.contains("ID  STATE    BUSY%   CPU%") } != nil)
        server.signal(SIGTERM)
        let status = try #require(server.waitForExit())
        #expect(status == 0)
        #expect(server.lines.contains { $0.contains("drained in") })
        // Two worker rows per block.
        #expect(server.lines.filter { $0.hasPrefix("    0  ") || $0.hasPrefix("    1  ") }.count >= 2)
    }

    @Test func theBuiltInLoadMakesASelfContainedMeasurement() throws {
        let run = try ChildProcess(shell: "exec '\(iocptopPath)' --batch --json --port 0 --workers 2 --load 16 --iterations 4 --refresh-ms 200 2>/dev/null")
        #expect(run.waitForExit() == 0)
        let last = try #require(run.lines.last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], "\(last)")
        #expect(object["connections_open"] as? Int == 16)
        #expect((object["completions_per_s"] as? Double ?? 0) > 0, "\(last)")
        #expect((object["mb_in_per_s"] as? Double ?? 0) > 0)
    }

    @Test func badRefreshIsRejected() throws {
        let run = try ChildProcess(shell: "exec '\(iocptopPath)' --batch --refresh-ms 5")
        let status = try #require(run.waitForExit())
        #expect(status != 0)
        #expect(run.lines.contains { $0.contains("--refresh-ms") })
    }
}
