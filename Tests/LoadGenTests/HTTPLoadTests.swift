import CompletionPort
import EngineStats
import HTTPServer
import LoadGen
import Loopback
import ServerCore
import Testing

/// A server whose every other response has another body (a length or a byte): what the load
/// generator's body check must catch.
private struct FickleHTTP: ServerProtocol {
    let name = "fickle"

    final class Handler: ConnectionHandler {
        var served = 0
        func received(_ input: inout InputBuffer, _ output: inout OutputBuffer,
                      _ connection: inout ConnectionContext) -> HandlerVerdict {
            // One response per request head (every request is a bodiless GET).
            var at = 0
            let bytes = input.bytes
            while at + 3 < bytes.count {
                if bytes[at] == 13 && bytes[at + 1] == 10 && bytes[at + 2] == 13 && bytes[at + 3] == 10 {
                    served += 1
                    let reply: StaticString = served % 3 == 0 ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                        : served % 3 == 1 ? "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK" : "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok!"
                    guard output.write(reply) else { return .pauseReading }
                    input.consume(at + 4 - input.consumed)
                }
                at += 1
            }
            return .continue
        }
    }

    func makeHandler() -> any ConnectionHandler { Handler() }
}

@Suite struct HTTPLoadTests {
    private func server(_ serving: any ServerProtocol) throws -> PortServer {
        var configuration = EngineConfiguration()
        configuration.port = 0
        configuration.workers = 2
        return try PortServer(configuration: configuration, serving: serving)
    }

    private func run(_ port: UInt16, path: String, pipeline: Int, messages: Int) throws -> LoadReport {
        var configuration = LoadConfiguration()
        configuration.port = port
        configuration.connections = 8
        configuration.pipeline = pipeline
        configuration.messages = messages
        configuration.threads = 2
        configuration.httpPath = path
        let generator = try LoadGenerator(configuration: configuration)
        _ = try generator.start()
        generator.wait()
        return generator.report()
    }

    @Test func everyResponseIsCheckedAndTheServerCountsTheSame() throws {
        let engine = try server(HTTPProtocol())
        defer { _ = engine.drain() }
        let report = try run(engine.listenPort, path: "/json", pipeline: 16, messages: 20_000)
        #expect(report.clean, "\(report.errors)")
        #expect(report.messages == 20_000)
        #expect(report.latency.p50 > 0 && report.latency.p50 <= report.latency.p99)
        let requests = { engine.handlerSchema.values(of: engine.currentFrame().handlerRows).counters[0] }
        #expect(eventually { requests() == 20_000 }, "\(requests())")
    }

    @Test func statusesOutside2xxAreErrors() throws {
        let engine = try server(HTTPProtocol())
        defer { _ = engine.drain() }
        let report = try run(engine.listenPort, path: "/nowhere", pipeline: 1, messages: 100)
        #expect(!report.clean)
        #expect(report.errors == [ErrorCount(kind: "HTTP 404", count: 100)])
        #expect(report.messages == 100)
    }

    @Test func aBodyUnlikeTheFirstIsAMismatch() throws {
        let engine = try server(FickleHTTP())
        defer { _ = engine.drain() }
        let report = try run(engine.listenPort, path: "/", pipeline: 1, messages: 300)
        #expect(report.messages == 300)
        #expect(report.mismatches > 50, "\(report.mismatches)")
        #expect(!report.clean)
    }

    @Test func theConfigurationIsChecked() {
        var configuration = LoadConfiguration()
        configuration.httpPath = "no-slash"
        #expect(configuration.problem != nil)
        configuration.httpPath = "/a b"
        #expect(configuration.problem != nil)
        configuration.httpPath = "/ok?x=1"
        #expect(configuration.problem == nil)
        configuration.mode = .stream
        #expect(configuration.problem != nil)
    }
}
