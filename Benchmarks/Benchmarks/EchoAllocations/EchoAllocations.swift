// The echo path allocates nothing per completion: in place (echo's ring), and through a
// handler (`EchoProtocol(inPlace: false)`: the path every protocol with a handler takes); nor
// does HTTP per request (`GET /plaintext`: parse, route, Date, response, metrics).
//
// An engine and an in-process client share the benchmark process; the malloc interposer counts
// every allocation in it. One iteration is 1000 round trips over one connection (each: a
// receive completion and a send completion on the engine, a write and a read on the client,
// which reuses one buffer): 64 bytes of echo, or one HTTP request and its 132-byte response.
// Setup (engine start, connect, accept, warm-up) is outside the measured region.
import Benchmark
import CompletionPort
import HTTPServer
import ServerCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A connected client of an engine on an ephemeral loopback port.
final class EchoFixture: @unchecked Sendable {
    let engine: PortServer
    let fd: CInt
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 64)
    /// Bytes written per round trip, and bytes read back.
    let requestLength: Int
    let replyLength: Int

    static let request: StaticString = "GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n"

    init(backend: BackendChoice, serving: any ServerProtocol) throws {
        var configuration = EngineConfiguration()
        configuration.port = 0
        configuration.backend = backend
        configuration.workers = 2
        engine = try PortServer(configuration: configuration, serving: serving)
        if serving is HTTPProtocol {
            requestLength = Self.request.utf8CodeUnitCount
            buffer.baseAddress!.copyMemory(from: Self.request.utf8Start, byteCount: requestLength)
            replyLength = 132
        } else {
            requestLength = 64
            replyLength = 64
            for i in 0..<64 { buffer[128 + i] = UInt8(i) }
            buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + 128, byteCount: 64)
        }
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = engine.listenPort.bigEndian
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var one: CInt = 1
        setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        guard roundTrips(1000) else {  // warm-up: pools, rings and queues reach their working size
            throw BenchmarkFixtureError.noReply
        }  // warm-up: pools, rings and queues reach their working size
    }

    /// `count` round trips; returns false if the connection broke.
    @discardableResult
    func roundTrips(_ count: Int) -> Bool {
        for _ in 0..<count {
            guard write(fd, buffer.baseAddress, requestLength) == requestLength else { return false }
            var got = 0
            while got < replyLength {
                let n = read(fd, buffer.baseAddress! + 128 + got, replyLength - got)
                if n <= 0 { return false }
                got += n
            }
        }
        return true
    }

    func shutdown() {
        close(fd)
        _ = engine.drain()
    }
}

enum BenchmarkFixtureError: Error { case noReply }

/// Fixtures set up for the benchmark in progress, shut down by its teardown.
let fixtures = Mutex<[EchoFixture]>([])

let benchmarks: @Sendable () -> Void = {
    let servings: [(name: String, make: @Sendable () -> any ServerProtocol)] = [
        ("Echo1000RoundTrips-", { EchoProtocol() }),
        ("Echo1000RoundTrips-handler-", { EchoProtocol(inPlace: false) }),
        ("HTTP1000Requests-", { HTTPProtocol() }),
    ]
    for backend in [BackendChoice.ioURing, .epoll] {
      for serving in servings {
        Benchmark(
            "\(serving.name)\(backend.rawValue)",
            configuration: .init(
                metrics: [.mallocCountTotal],
                scalingFactor: .kilo,
                maxDuration: .seconds(3),
                maxIterations: 50,
                thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])]
            )
        ) { (benchmark: Benchmark, fixture: EchoFixture) in
            benchmark.startMeasurement()
            fixture.roundTrips(1000)
            benchmark.stopMeasurement()
        } setup: {
            let fixture = try EchoFixture(backend: backend, serving: serving.make())
            fixtures.withLock { $0.append(fixture) }
            return fixture
        } teardown: {
            fixtures.withLock { list in
                list.forEach { $0.shutdown() }
                list.removeAll()
            }
        }
      }
    }
}
