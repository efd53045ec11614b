// iocptop-engine-bench: the echo engine under a simple in-process load, per backend.
//
//   swift run -c release iocptop-engine-bench [--seconds S] [--churn N] [--both-paths]
//   swift run -c release iocptop-engine-bench --stats [--seconds S] [--rounds R]
//   swift run -c release iocptop-engine-bench --sampler [--rounds R]   (8 and 9 988 connections; needs ulimit -n 20000)
//
// For each backend, an engine with the default workers (2 × CPUs, concurrency = CPUs) and one
// epoll client thread keeping one message in flight per connection, at 1, 100 and 1000
// connections × 128 B and 4 KiB. Reports round trips/s, MB/s (echoed payload, one direction) and
// the round-trip latency p50/p99 seen by the client. Then the connection churn: N connect →
// echo 16 B → close cycles, with the process RSS before and after, to show that connection and
// per-I/O memory is pooled and returned. `--both-paths` also runs echo through `EchoHandler`
// (the path every protocol with a handler takes: input copied into an output buffer) next to
// the in-place ring, in the same run.
//
// The client shares the 2 cores with the engine, so these are figures of the pair; the load
// generator issue brings a proper external client.
import CIOURing
import CompletionPort
import ServerCore
import Loopback
#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var seconds = 3.0
    var churn = 100_000
    var stats = false
    var sampler = false
    var rounds = 5
    /// Echo in place only, or in place and through a handler.
    var inPlacePaths = [true]
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--seconds":
            guard let value = arguments.popFirst().flatMap(Double.init), value > 0 else { usage() }
            options.seconds = value
        case "--churn":
            guard let value = arguments.popFirst().flatMap(Int.init), value >= 0 else { usage() }
            options.churn = value
        case "--both-paths":
            options.inPlacePaths = [true, false]
        case "--stats":
            options.stats = true
        case "--sampler":
            options.sampler = true
        case "--rounds":
            guard let value = arguments.popFirst().flatMap(Int.init), value > 0 else { usage() }
            options.rounds = value
        default:
            usage()
        }
    }
    return options
}

func usage() -> Never {
    print("usage: iocptop-engine-bench [--seconds S] [--churn N] [--both-paths] | --stats [--seconds S] [--rounds R] | --sampler [--rounds R]")
    exit(2)
}

struct Result {
    var roundTrips = 0
    var seconds = 0.0
    var latenciesNs: [Int64] = []
}

/// One message in flight per connection; returns round trips and their latencies.
func drive(port: UInt16, connections: Int, size: Int, seconds: Double) -> Result {
    var fds: [CInt] = []
    for _ in 0..<connections {
        if let fd = try? Loopback.connect(port: port, noDelay: true, nonBlocking: true) { fds.append(fd) }
    }
    defer { fds.forEach { close($0) } }
    let epfd = epoll_create1(CInt(EPOLL_CLOEXEC))
    defer { close(epfd) }
    let message = [UInt8](repeating: 0x5a, count: size)
    var scratch = [UInt8](repeating: 0, count: 1 << 16)
    var remaining = [Int](repeating: 0, count: fds.count)
    var unsent = [Int](repeating: 0, count: fds.count)
    var sentAt = [Int64](repeating: 0, count: fds.count)
    var result = Result()
    result.latenciesNs.reserveCapacity(4_000_000)
    func send(_ index: Int) {
        // Write as much of the message as the socket takes; the rest on EPOLLOUT.
        let offset = size - unsent[index]
        let n = message.withUnsafeBytes { write(fds[index], $0.baseAddress! + offset, unsent[index]) }
        if n > 0 { unsent[index] -= n }
        var event = epoll_event(events: EPOLLIN.rawValue | (unsent[index] > 0 ? EPOLLOUT.rawValue : 0),
                                data: epoll_data_t(u64: UInt64(index)))
        epoll_ctl(epfd, EPOLL_CTL_MOD, fds[index], &event)
    }
    for index in fds.indices {
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64(index)))
        epoll_ctl(epfd, EPOLL_CTL_ADD, fds[index], &event)
        remaining[index] = size
        unsent[index] = size
        sentAt[index] = CIOURing_now_ns()
        send(index)
    }
    var events = [epoll_event](repeating: epoll_event(), count: 512)
    let start = CIOURing_now_ns()
    let end = start + Int64(seconds * 1e9)
    while true {
        let now = CIOURing_now_ns()
        if now >= end { break }
        let ready = epoll_wait(epfd, &events, 512, 50)
        for i in 0..<max(0, Int(ready)) {
            let index = Int(events[i].data.u64)
            if events[i].events & EPOLLOUT.rawValue != 0 && unsent[index] > 0 { send(index) }
            guard events[i].events & EPOLLIN.rawValue != 0 else { continue }
            let n = scratch.withUnsafeMutableBytes { read(fds[index], $0.baseAddress, min(remaining[index], $0.count)) }
            guard n > 0 else { continue }
            remaining[index] -= n
            if remaining[index] == 0 {
                let done = CIOURing_now_ns()
                result.roundTrips += 1
                result.latenciesNs.append(done - sentAt[index])
                remaining[index] = size
                unsent[index] = size
                sentAt[index] = done
                send(index)
            }
        }
    }
    result.seconds = Double(CIOURing_now_ns() - start) / 1e9
    return result
}

func percentile(_ sorted: [Int64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000
}

func residentKiB() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    var size = 0, resident = 0
    _ = withUnsafeMutablePointer(to: &size) { s in
        withUnsafeMutablePointer(to: &resident) { r in
            withVaList([s, r]) { vfscanf(file, "%ld %ld", $0) }
        }
    }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
}

func churn(port: UInt16, cycles: Int) -> Int {
    var done = 0
    var buffer = [UInt8](repeating: 7, count: 16)
    for _ in 0..<cycles {
        guard let fd = try? Loopback.connect(port: port) else { continue }
        if buffer.withUnsafeBytes({ Loopback.writeAll(fd, $0) }),
           buffer.withUnsafeMutableBytes({ Loopback.readExactly(fd, into: $0) }) == 16 {
            done += 1
        }
        // Reset instead of FIN: no TIME_WAIT pile-up on the client's ephemeral ports.
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
    }
    return done
}

let options = parseOptions()
if options.stats {
    StatsCost.run(seconds: options.seconds, rounds: options.rounds)
    exit(0)
}
if options.sampler {
    SamplerCost.run(connections: [0, 9_980], rounds: max(options.rounds, 21))
    exit(0)
}
print("iocptop-engine-bench: \(options.seconds) s per figure, \(CompletionPort.onlineCPUs) online CPUs")
print("backend  path       conns   size   round trips/s      MB/s   p50 µs   p99 µs")
for backend in [BackendChoice.ioURing, .epoll] {
  for inPlace in options.inPlacePaths {
    var configuration = EngineConfiguration()
    configuration.port = 0
    configuration.backend = backend
    let engine: PortServer
    do { engine = try PortServer(configuration: configuration, serving: EchoProtocol(inPlace: inPlace)) } catch {
        print("\(backend.rawValue): skipped (\(error))")
        continue
    }
    let path = inPlace ? "in place" : "handler"
    for connections in [1, 100, 1000] {
        for size in [128, 4096] {
            var result = drive(port: engine.listenPort, connections: connections, size: size, seconds: options.seconds)
            result.latenciesNs.sort()
            let rate = Double(result.roundTrips) / result.seconds
            let line = [
                backend.rawValue + String(repeating: " ", count: max(0, 8 - backend.rawValue.count)),
                path + String(repeating: " ", count: max(0, 8 - path.count)),
                String(connections).leftPad(6), String(size).leftPad(6),
                String(Int(rate)).leftPad(15),
                fixed1(rate * Double(size) / 1e6).leftPad(9),
                fixed1(percentile(result.latenciesNs, 0.50)).leftPad(8),
                fixed1(percentile(result.latenciesNs, 0.99)).leftPad(8),
            ].joined(separator: " ")
            print(line)
        }
    }
    if options.churn > 0 && inPlace {
        // Warm the pools first, then measure the growth over the full run.
        _ = churn(port: engine.listenPort, cycles: 1000)
        let before = residentKiB()
        let served = churn(port: engine.listenPort, cycles: options.churn)
        let after = residentKiB()
        print("\(backend.rawValue): churn \(served)/\(options.churn) connect-echo-close cycles, RSS \(before) KiB → \(after) KiB (\(after - before >= 0 ? "+" : "")\(after - before) KiB), pooled connection objects: \(engine.currentFrame().engine.peakConnections) peak open")
    }
    _ = engine.drain()
  }
}

func fixed1(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
