import CIOURing
import CompletionPort
import ServerCore
import Loopback
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The backends under test (see `testedBackends`: io_uring fails loudly where the kernel refuses it).
let availableBackends = testedBackends

/// How echo is served: from where it arrived (the core's fast path for protocols that reply
/// with their input), or through `EchoHandler`, the path every other protocol takes.
enum EchoPath: CaseIterable, Sendable, CustomStringConvertible {
    case inPlace
    case handler

    var description: String { self == .inPlace ? "in place" : "handler" }
}

/// An engine on an ephemeral loopback port.
func makeEngine(_ backend: BackendChoice, path: EchoPath = .inPlace, workers: Int = 4,
                configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> PortServer {
    try makeServer(backend, serving: EchoProtocol(inPlace: path == .inPlace), workers: workers, configure: configure)
}

/// A server of `serving` on an ephemeral loopback port.
func makeServer(_ backend: BackendChoice, serving: any ServerProtocol, workers: Int = 4,
                configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> PortServer {
    var configuration = EngineConfiguration()
    configuration.port = 0
    configuration.backend = backend
    configuration.workers = workers
    configure(&configuration)
    return try PortServer(configuration: configuration, serving: serving)
}

typealias TestThread = JoinableThread

/// A blocking client socket connected to 127.0.0.1:`port`.
func connectClient(port: UInt16) throws -> CInt { try Loopback.connect(port: port) }

func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) -> Bool { Loopback.writeAll(fd, bytes) }

func readExactly(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer) -> Int { Loopback.readExactly(fd, into: buffer) }

/// SplitMix64: a small deterministic generator for message lengths and contents.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Drives many echo connections from one thread with epoll: each connection sends a message of
/// random length and content, waits for it to come back byte for byte, and sends the next.
struct EchoDriver {
    struct Outcome {
        var completedMessages = 0
        var mismatches = 0
        var closedEarly = 0
        var bytesEchoed = 0
    }

    /// Runs `messages` round trips on each of `connections` connections, or until `stop`.
    static func run(port: UInt16, connections: Int, messages: Int, maxLength: Int, seed: UInt64 = 1,
                    stop: (() -> Bool)? = nil, deadlineSeconds: Double = 60) throws -> Outcome {
        var fds: [CInt] = []
        for _ in 0..<connections { fds.append(try connectClient(port: port)) }
        defer { fds.forEach { if $0 >= 0 { close($0) } } }
        let epfd = epoll_create1(CInt(EPOLL_CLOEXEC))
        defer { close(epfd) }
        var generators = (0..<connections).map { SplitMix64(state: seed &* 1_000_003 &+ UInt64($0)) }
        var expected = [[UInt8]](repeating: [], count: connections)
        var got = [Int](repeating: 0, count: connections)
        var remaining = [Int](repeating: messages, count: connections)
        var outcome = Outcome()
        var active = connections
        func sendNext(_ index: Int) {
            let length = Int(generators[index].next() % UInt64(maxLength)) + 1
            var message = [UInt8](repeating: 0, count: length)
            for i in 0..<length { message[i] = UInt8(truncatingIfNeeded: generators[index].next()) }
            expected[index] = message
            got[index] = 0
            if !message.withUnsafeBytes({ writeAll(fds[index], $0) }) {
                outcome.closedEarly += 1
                finish(index)
            }
        }
        func finish(_ index: Int) {
            epoll_ctl(epfd, EPOLL_CTL_DEL, fds[index], nil)
            remaining[index] = 0
            active -= 1
        }
        for (index, fd) in fds.enumerated() {
            var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64(index)))
            epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event)
            sendNext(index)
        }
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = ContinuousClock.now + .milliseconds(Int(deadlineSeconds * 1000))
        while active > 0 && ContinuousClock.now < deadline {
            if let stop, stop() { break }
            let ready = epoll_wait(epfd, &events, 256, 100)
            for i in 0..<max(0, Int(ready)) {
                let index = Int(events[i].data.u64)
                guard remaining[index] > 0 else { continue }
                let want = expected[index].count - got[index]
                let n = scratch.withUnsafeMutableBytes { read(fds[index], $0.baseAddress, min(want, $0.count)) }
                if n <= 0 {
                    outcome.closedEarly += 1
                    finish(index)
                    continue
                }
                for j in 0..<n where scratch[j] != expected[index][got[index] + j] {
                    outcome.mismatches += 1
                    break
                }
                got[index] += n
                outcome.bytesEchoed += n
                if got[index] == expected[index].count {
                    outcome.completedMessages += 1
                    remaining[index] -= 1
                    if remaining[index] == 0 { finish(index) } else { sendNext(index) }
                }
            }
        }
        return outcome
    }
}
