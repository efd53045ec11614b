@testable import EngineStats
import Foundation
@testable import MetricsServer
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A frame with three workers (one exited), histograms and a load: what a scrape sees.
func sampleFrame() -> (EngineIdentity, StatsFrame) {
    var identity = EngineIdentity()
    identity.backend = "io_uring"
    identity.address = "127.0.0.1:5150"
    var frame = StatsFrame()
    frame.number = 7
    frame.timestampNs = 9_000_000_000
    frame.uptimeNs = 4_000_000_000
    frame.port.concurrency = 2
    frame.port.queueDepth = 3
    frame.engine.accepted = 12
    frame.settings.workMicroseconds = 250
    for index in 0..<3 {
        var worker = WorkerSample()
        worker.id = 10 + index
        worker.slot = index
        worker.state = index == 2 ? .exited : index == 0 ? .blocked : .waiting
        worker.counts.receives = UInt64(100 * (index + 1))
        worker.counts.bytesIn = 4096
        worker.runningNs = 1_500_000_000
        for sample in 0..<50 { worker.queueWait.record(UInt64(2_000 * (sample + 1))) }
        worker.service.record(30_000_000)
        frame.workers.append(worker)
    }
    frame.load.roundTrip.record(80_000)
    // A protocol's own figures: 10 requests per live worker, 3 in flight, one latency each.
    identity.handler = try! HandlerSchema([
        .counter("requests", help: "Requests answered."),
        .counter("response", unit: .bytes, help: "Bytes of responses."),
        .gauge("in_flight", help: "Requests in progress."),
        .histogram("request_latency", help: "Request latency."),
    ])
    frame.retiredHandler = [UInt64](repeating: 0, count: identity.handler.wordCount)
    for index in frame.workers.indices {
        var row = [UInt64](repeating: 0, count: identity.handler.wordCount)
        row[0] = 10
        row[1] = 1300
        row[2] = index == 0 ? 3 : 0
        row[3 + LatencyBuckets.index(2_000_000)] = 1
        frame.workers[index].handler = row
    }
    return (identity, frame)
}

@Suite struct ExpositionTests {
    @Test func namesFollowThePrometheusConventions() {
        let (identity, frame) = sampleFrame()
        let text = MetricsExposition.render(identity: identity, frame: frame, openMetrics: false)
        let lines = text.split(separator: "\n")
        var types: [String: String] = [:]
        for line in lines where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            types[String(parts[2])] = String(parts[3])
        }
        for line in lines where !line.hasPrefix("#") {
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            #expect(name.hasPrefix("iocptop_"), "\(line)")
            for abbreviation in ["_us", "_ns", "_ms", "_mb"] { #expect(!name.contains(abbreviation + "_") && !name.hasSuffix(abbreviation), "\(name)") }
            if name.hasSuffix("_total") { #expect(types[name] == "counter", "\(name)") }
        }
        for (name, type) in types where type == "counter" { #expect(name.hasSuffix("_total"), "\(name)") }
        // The kinds of series the issue names, with base units.
        for expected in ["iocptop_worker_receives_total{slot=\"0\"} 100", "iocptop_worker_bytes_in_bytes_total{slot=\"1\"} 4096",
                         "iocptop_accepted_total 12", "iocptop_queue_depth 3", "iocptop_concurrency 2",
                         "iocptop_workers{state=\"blocked\"} 1", "iocptop_worker_running_seconds_total{slot=\"0\"} 1.5",
                         "iocptop_work_seconds 0.00025", "iocptop_engine_info{backend=\"io_uring\",address=\"127.0.0.1:5150\"} 1"] {
            #expect(lines.contains { $0 == expected }, "\(expected)")
        }
        // The exited worker's series are gone; identifiers and clock instants are not metrics.
        #expect(!text.contains("slot=\"2\""))
        #expect(!text.contains("iocptop_timestamp") && !text.contains("iocptop_worker_id") && !text.contains("state_since"))
        #expect(!text.contains("# EOF"))
    }

    @Test func histogramsAreCumulativeWithSumAndCount() {
        let (identity, frame) = sampleFrame()
        let text = MetricsExposition.render(identity: identity, frame: frame, openMetrics: false)
        let buckets = text.split(separator: "\n").filter { $0.hasPrefix("iocptop_worker_queue_wait_seconds_bucket{slot=\"0\",") }
        #expect(buckets.count == 26)
        let counts = buckets.compactMap { Double($0.split(separator: " ").last!) }
        #expect(counts == counts.sorted(), "cumulative")
        #expect(buckets.last?.contains("le=\"+Inf\"} 50") == true)
        #expect(text.contains("iocptop_worker_queue_wait_seconds_count{slot=\"0\"} 50"))
        let sum = text.split(separator: "\n").first { $0.hasPrefix("iocptop_worker_queue_wait_seconds_sum{slot=\"0\"}") }
        let value = Double(sum?.split(separator: " ").last ?? "") ?? 0
        // 2 µs … 100 µs, 50 samples: 2.55 ms in all, within the buckets' 6.25 %.
        #expect(abs(value - 0.00255) < 0.00255 * 0.07, "\(value)")
        // A bound between two samples: 32.768 µs holds the 16 samples ≤ 32 µs.
        #expect(buckets.contains { $0.contains("le=\"3.2768e-05\"} 16") }, "\(buckets)")
    }

    @Test func handlerMetricsAreExportedWithTheirUnitsAndTotals() {
        let (identity, frame) = sampleFrame()
        let text = MetricsExposition.render(identity: identity, frame: frame, openMetrics: false)
        #expect(text.contains("# TYPE iocptop_handler_requests_total counter\n"))
        #expect(text.contains("\niocptop_handler_requests_total 30\n"), "summed over every worker")
        #expect(text.contains("\niocptop_handler_response_bytes_total 3900\n"))
        #expect(text.contains("\niocptop_handler_in_flight 3\n"))
        #expect(text.contains("# TYPE iocptop_handler_request_latency_seconds histogram\n"))
        #expect(text.contains("\niocptop_handler_request_latency_seconds_count 3\n"))
    }

    @Test func openMetricsNamesFamiliesAndEnds() {
        let (identity, frame) = sampleFrame()
        let text = MetricsExposition.render(identity: identity, frame: frame, openMetrics: true)
        #expect(text.hasSuffix("# EOF\n"))
        #expect(text.contains("# TYPE iocptop_accepted counter\n"))
        #expect(text.contains("\niocptop_accepted_total 12\n"))
    }

    @Test func promtoolFindsNothingToSay() throws {
        guard promtoolPath() != nil else {
            #expect(!promtoolRequired, "promtool is required (IOCPTOP_REQUIRE_PROMTOOL=1) but not on PATH")
            return
        }
        // promtool reads the text format (the one Prometheus asks for by default).
        let (identity, frame) = sampleFrame()
        let text = MetricsExposition.render(identity: identity, frame: frame, openMetrics: false)
        let (status, output) = try promtool(["check", "metrics"], input: text)
        #expect(status == 0 && output.isEmpty, "\(output)")
    }
}

@Suite(.serialized) struct MetricsServerTests {
    func server() throws -> MetricsServer {
        let (identity, frame) = sampleFrame()
        let server = try MetricsServer(address: MetricsAddress("127.0.0.1:0")!) { (identity, frame) }
        try server.start()
        return server
    }

    @Test func addressesParse() {
        #expect(MetricsAddress("127.0.0.1:9464") == MetricsAddress("9464"))
        #expect(MetricsAddress(":9464")?.host == "127.0.0.1")
        #expect(MetricsAddress("[::1]:9464")?.host == "::1")
        #expect(MetricsAddress("0.0.0.0:80")?.port == 80)
        for bad in ["", "host", "host:", "::1:9464", "1.2.3.4:99999", "a b:1", "[::1]9464", "1.2.3.4:-1"] {
            #expect(MetricsAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func scrapesAndRefusals() throws {
        let server = try server()
        defer { server.stop() }
        let port = server.address.port
        let text = exchange(port: port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(text.prefix(200))")
        #expect(text.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(body(text).contains("iocptop_accepted_total 12"))
        let open = exchange(port: port, "GET /metrics?x=1 HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\nHost: x\r\n\r\n")
        #expect(open.contains("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"))
        #expect(open.hasSuffix("# EOF\n"))
        // What Prometheus 2.x sends, Accept after other fields: OpenMetrics.
        let prometheus = exchange(port: port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: Prometheus/2.42.0\r\n"
            + "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
            + "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n")
        #expect(prometheus.contains("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"), "\(prometheus.prefix(200))")
        #expect(prometheus.hasSuffix("# EOF\n"))
        // What curl sends: the text format.
        let curl = exchange(port: port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n")
        #expect(curl.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "\(curl.prefix(200))")
        #expect(exchange(port: port, "HEAD /metrics HTTP/1.0\r\n\r\n").hasSuffix("\r\n\r\n"))
        #expect(exchange(port: port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 404"))
        #expect(exchange(port: port, "GET /metrics HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 400"), "HTTP/1.1 needs Host")
        #expect(exchange(port: port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").hasPrefix("HTTP/1.1 405"))
        #expect(exchange(port: port, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n").hasPrefix("HTTP/1.1 400"))
        #expect(exchange(port: port, "\u{16}\u{03}\u{01}\u{02}\u{00}garbage\r\n\r\n").hasPrefix("HTTP/1.1 400"))
        #expect(exchange(port: port, "GET /metrics SPDY/3\r\n\r\n").hasPrefix("HTTP/1.1 400"))
        #expect(exchange(port: port, "GET /metrics HTTP/1.1\r\nX: \u{7f}\r\n\r\n").hasPrefix("HTTP/1.1 400"))
        let huge = "GET /metrics HTTP/1.1\r\nX-Filler: " + String(repeating: "a", count: 9000) + "\r\n\r\n"
        #expect(exchange(port: port, huge).hasPrefix("HTTP/1.1 431"))
    }

    @Test func theFormatFollowsTheAcceptFields() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        #expect(ExpositionNegotiation.prefersOpenMetrics([prometheus]))
        #expect(!ExpositionNegotiation.prefersOpenMetrics(["*/*"]))
        #expect(!ExpositionNegotiation.prefersOpenMetrics([]))
        #expect(!ExpositionNegotiation.prefersOpenMetrics(["text/plain;version=0.0.4"]))
        #expect(!ExpositionNegotiation.prefersOpenMetrics(["text/plain, application/openmetrics-text;q=0.5"]))
        #expect(!ExpositionNegotiation.prefersOpenMetrics(["application/openmetrics-text;q=0"]))
        #expect(ExpositionNegotiation.prefersOpenMetrics(["text/plain;q=0.5", "Application/OpenMetrics-Text ; q=0.9"]))
    }

    @Test func slowClientsAreTimedOutAndCannotKeepAScraperOut() throws {
        let server = try server()
        defer { server.stop() }
        let port = server.address.port
        // 200 clients that connect and say half a request, then nothing.
        var idle: [CInt] = []
        defer { for fd in idle { close(fd) } }
        for _ in 0..<200 {
            let fd = connectTo(port: port)
            #expect(fd >= 0)
            _ = "GET /metr".withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            idle.append(fd)
        }
        // A scrape still gets through, at once.
        let started = ContinuousClock.now
        let reply = exchange(port: port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 200 OK"))
        #expect(ContinuousClock.now - started < .seconds(2))
        // The silent ones are closed after the read timeout (5 s): reading them ends.
        let waited = ContinuousClock.now
        let last = idle[idle.count - 1]
        #expect(readAll(last).isEmpty)
        #expect(ContinuousClock.now - waited < .seconds(8))
    }

    @Test func anAddressInUseIsOneLine() throws {
        let first = try server()
        defer { first.stop() }
        #expect(throws: MetricsServer.StartError.self) {
            _ = try MetricsServer(address: MetricsAddress("127.0.0.1:\(first.address.port)")!) { (EngineIdentity(), nil) }
        }
        do {
            _ = try MetricsServer(address: MetricsAddress("127.0.0.1:\(first.address.port)")!) { (EngineIdentity(), nil) }
        } catch {
            #expect(error.message.contains("Address already in use") && !error.message.contains("\n"), "\(error.message)")
        }
    }
}

/// The README's Prometheus blocks stay valid: the rules pass `promtool check rules`, the scrape
/// block `promtool check config`.
@Suite struct FleetDocumentationTests {
    /// The fenced blocks of README.md in `language`.
    func blocks(_ language: String) throws -> [String] {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        var result: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```\(language)" { current = [] } else if current != nil, line == "```" {
                result.append(current!.joined(separator: "\n") + "\n")
                current = nil
            } else if current != nil { current!.append(line) }
        }
        return result
    }

    func check(_ kind: String, _ text: String) throws -> (Int32, String) {
        let path = "/tmp/iocptop-promtool-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).yml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        return try promtool(["check", kind, path], input: "")
    }

    @Test func theRulesAndTheScrapeBlockAreValid() throws {
        let yaml = try blocks("yaml")
        let rules = try #require(yaml.first { $0.hasPrefix("groups:") }, "README has a rules block")
        let scrape = try #require(yaml.first { $0.hasPrefix("scrape_configs:") }, "README has a scrape block")
        #expect(rules.contains("alert: IocptopQueueWaitHigh") && rules.contains("for: 5m") && rules.contains("alert: IocptopAllWorkersBlocked"))
        guard promtoolPath() != nil else {
            #expect(!promtoolRequired, "promtool is required (IOCPTOP_REQUIRE_PROMTOOL=1) but not on PATH")
            return
        }
        let (rulesStatus, rulesOutput) = try check("rules", rules)
        #expect(rulesStatus == 0, "\(rulesOutput)")
        let (configStatus, configOutput) = try check("config", scrape)
        #expect(configStatus == 0, "\(configOutput)")
    }
}
