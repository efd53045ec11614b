import CIOURing
import EngineStats
import Loopback
import ServerCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `--sampler`: what the connections view costs the sampler, at 0 and at N open connections.
///
/// An engine with N idle connections (each served once) and 8 streaming ones: the CPU time to
/// fill one frame (`PortServer.currentFrame`: every worker slot, one pass over every
/// connection's figures, the top-N choice), its share of one core at the default 500 ms period,
/// and a frame's size in the ring and in a recording. Run with 0 connections first: the
/// difference is the connection scan.
enum SamplerCost {
    static func run(connections counts: [Int], rounds: Int) {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        print("connections  fill CPU µs (median of \(rounds))  % of a core at 500 ms  rows  ring bytes/frame  recording bytes/frame")
        for count in counts {
            var configuration = EngineConfiguration()
            configuration.port = 0
            configuration.workers = 2
            configuration.maxConnections = max(1000, count + 100)
            configuration.statsPeriodMilliseconds = 60_000
            guard let server = try? PortServer(configuration: configuration, serving: EchoProtocol()) else {
                print("cannot start the engine"); return
            }
            var fds: [CInt] = []
            for _ in 0..<count {
                // Both ends are in this process: two descriptors per connection.
                guard let fd = try? Loopback.connect(port: server.listenPort) else { break }
                var byte: UInt8 = 1
                _ = write(fd, &byte, 1)
                _ = read(fd, &byte, 1)
                fds.append(fd)
            }
            // Eight streaming connections keep the workers and the figures moving.
            let streaming = (0..<8).compactMap { _ in try? Loopback.connect(port: server.listenPort) }
            let stop = StopFlag()
            let streamers = streaming.map { fd in
                JoinableThread {
                    let chunk = [UInt8](repeating: 7, count: 16384)
                    var back = [UInt8](repeating: 0, count: 16384)
                    while !stop.isSet {
                        guard chunk.withUnsafeBytes({ Loopback.writeAll(fd, $0) }),
                              back.withUnsafeMutableBytes({ Loopback.readExactly(fd, into: $0) }) == 16384 else { return }
                    }
                }
            }
            usleep(200_000)
            _ = server.currentFrame()  // the first pass grows the sampler's buffers
            var samples: [Double] = []
            var frame = server.currentFrame()
            for _ in 0..<rounds {
                // This thread's CPU time: the streamers share the cores, so wall time would
                // count the sampler's waits for a core too.
                let start = threadCPUNanoseconds()
                frame = server.currentFrame()
                samples.append(Double(threadCPUNanoseconds() - start) / 1000)
                usleep(20_000)
            }
            stop.set()
            streamers.forEach { $0.join() }
            samples.sort()
            let median = samples[samples.count / 2]
            let ringBytes = server.stats.frameBytes
            let recordBytes = FrameRecording.record(frame, handler: server.handlerSchema).count
            print(pad(String(fds.count + streaming.count), 11) + pad(fixed(median, 1), 26) + pad(fixed(median / 5000, 3), 24)
                  + pad(String(frame.connections.count), 6) + pad(String(ringBytes), 18) + pad(String(recordBytes), 23))
            fds.forEach { close($0) }
            streaming.forEach { close($0) }
            _ = server.drain()
        }
    }

    private static func threadCPUNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    final class StopFlag: Sendable {
        private let stopped = Atomic<Bool>(false)
        // relaxed: a stop request, ordered with nothing else; a stale read costs one more round.
        var isSet: Bool { stopped.load(ordering: .relaxed) }
        func set() { stopped.store(true, ordering: .relaxed) }
    }

    /// `value` with `decimals` decimals.
    private static func fixed(_ value: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = scaled / Int(scale), fraction = scaled % Int(scale)
        let digits = String(fraction)
        return "\(whole)." + String(repeating: "0", count: decimals - digits.count) + digits
    }
}
