// iocptop-port-bench: throughput of the completion port itself, per backend.
//
//   swift run -c release iocptop-port-bench [--seconds S]
//
// 1. post→dequeue: N threads each loop { post one packet; dequeue one packet } for S seconds
//    (concurrency = N, so the gate never parks a thread); packets/s over all threads.
// 2. echo: an echo server of 2 workers on the port (receive → send → receive …), driven over
//    loopback by one epoll client thread keeping 64-byte messages in flight on 32 connections;
//    round trips/s.
// 3. outstanding receives (io_uring; epoll allows one receive per socket): 4 connections stream
//    into one server thread that keeps 1, 2 or 4 receives of 64 KiB outstanding per socket;
//    MiB/s, the server thread's CPU µs per MiB, completions out of order (see
//    OutstandingReceives.swift).
import CIOURing
import CompletionPort
import Loopback
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

func parseSeconds() -> Double {
    var arguments = CommandLine.arguments.dropFirst()
    var seconds = 2.0
    while let argument = arguments.popFirst() {
        if argument == "--seconds", let value = arguments.popFirst().flatMap(Double.init), value > 0 {
            seconds = value
        } else {
            print("usage: iocptop-port-bench [--seconds S]")
            exit(argument == "--help" ? 0 : 2)
        }
    }
    return seconds
}
let seconds = parseSeconds()
// A client write to a connection the benchmark has shut down fails with EPIPE, not a signal.
signal(SIGPIPE, SIG_IGN)

typealias BenchThread = JoinableThread

func formatRate(_ value: Double) -> String {
    if value >= 1_000_000 {
        let millions = (value / 10_000).rounded() / 100
        return "\(millions) M/s"
    }
    let thousands = Int((value / 1_000).rounded())
    return "\(thousands) k/s"
}

func perSecond(_ count: Int, _ elapsed: Duration) -> Double {
    let (whole, fraction) = elapsed.components
    return Double(count) / (Double(whole) + Double(fraction) / 1e18)
}

func postDequeue(backend: BackendChoice, threads: Int, seconds: Double) throws -> Double {
    let port = try CompletionPort(concurrency: threads, backend: backend)
    let stop = Atomic<Bool>(false)
    let total = Atomic<Int>(0)
    let workers = (0..<threads).map { id in
        BenchThread {
            var count = 0
            while !stop.load(ordering: .relaxed) {
                for _ in 0..<256 {
                    try? port.post(key: UInt64(id))
                    _ = port.dequeue(timeout: .seconds(1))
                }
                count += 256
            }
            total.add(count, ordering: .relaxed)
        }
    }
    let clock = ContinuousClock()
    let start = clock.now
    usleep(useconds_t(seconds * 1_000_000))
    stop.store(true, ordering: .relaxed)
    workers.forEach { $0.join() }
    let elapsed = clock.now - start
    port.close()
    return perSecond(total.load(ordering: .relaxed), elapsed)
}

/// Per-connection state of the benchmark's echo server: one buffer, full round trips.
final class EchoConnection: @unchecked Sendable {
    // @unchecked: its buffer is used by one operation at a time (receive, then send), each completion handing it on.
    let fd: CInt
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 64)
    var received = 0
    var sent = 0
    init(fd: CInt) { self.fd = fd }
}

func echoRoundTrips(backend: BackendChoice, connections: Int, messageSize: Int, seconds: Double) throws -> Double {
    let port = try CompletionPort(concurrency: 0, backend: backend)
    // Connections, accepted synchronously and handed to the port.
    let listener = try Loopback.listen()
    var clients: [CInt] = []
    var servers: [EchoConnection] = []
    for _ in 0..<connections {
        clients.append(try Loopback.connect(port: listener.port, noDelay: true))
        let server = accept(listener.fd, nil, nil)
        var one: CInt = 1
        setsockopt(server, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        servers.append(EchoConnection(fd: server))
    }
    close(listener.fd)
    nonisolated(unsafe) let table = servers
    for (index, connection) in servers.enumerated() {
        try port.associate(connection.fd, key: UInt64(index))
        try port.receive(on: connection.fd, into: connection.buffer, context: 0)
    }
    // Workers: receive → send everything → receive.
    let workers = (0..<2).map { _ in
        BenchThread {
            var batch = [Completion](repeating: Completion(operation: .posted, result: 0, key: 0, context: 0), count: 64)
            batch.withUnsafeMutableBufferPointer { batch in
                while case .completions(let n) = port.dequeue(into: batch) {
                    for completion in batch[0..<n] {
                        let connection = table[Int(completion.key)]
                        guard completion.succeeded, completion.bytes > 0 else { continue }
                        if completion.operation == .receive {
                            connection.received = completion.bytes
                            connection.sent = 0
                        } else {
                            connection.sent += completion.bytes
                        }
                        if connection.sent < connection.received {
                            try? port.send(on: connection.fd, from: UnsafeRawBufferPointer(rebasing: connection.buffer[connection.sent..<connection.received]), context: 1)
                        } else {
                            try? port.receive(on: connection.fd, into: connection.buffer, context: 0)
                        }
                    }
                }
            }
        }
    }
    // Client: one epoll thread, one message in flight per connection.
    let epfd = epoll_create1(0)
    for (index, client) in clients.enumerated() {
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64(index)))
        epoll_ctl(epfd, EPOLL_CTL_ADD, client, &event)
    }
    let message = [UInt8](repeating: 0x61, count: messageSize)
    var pending = [Int](repeating: 0, count: connections)
    var scratch = [UInt8](repeating: 0, count: 65536)
    var events = [epoll_event](repeating: epoll_event(), count: 256)
    for (index, client) in clients.enumerated() {
        _ = message.withUnsafeBytes { write(client, $0.baseAddress, messageSize) }
        pending[index] = messageSize
    }
    var roundTrips = 0
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = start + .milliseconds(Int(seconds * 1000))
    while clock.now < deadline {
        let ready = epoll_wait(epfd, &events, 256, 100)
        for i in 0..<max(0, Int(ready)) {
            let index = Int(events[i].data.u64)
            let n = scratch.withUnsafeMutableBytes { read(clients[index], $0.baseAddress, $0.count) }
            guard n > 0 else { continue }
            pending[index] -= n
            if pending[index] == 0 {
                roundTrips += 1
                _ = message.withUnsafeBytes { write(clients[index], $0.baseAddress, messageSize) }
                pending[index] = messageSize
            }
        }
    }
    let elapsed = clock.now - start
    // Closing the port cancels the pending receives; once they are delivered every dequeue
    // returns .portClosed and the workers leave their loop.
    port.close()
    workers.forEach { $0.join() }
    clients.forEach { close($0) }
    for connection in servers { close(connection.fd); connection.buffer.deallocate() }
    close(epfd)
    return perSecond(roundTrips, elapsed)
}

print("iocptop-port-bench: \(seconds) s per figure, \(CompletionPort.onlineCPUs) online CPUs")
for backend in [BackendChoice.ioURing, .epoll] {
    let probe: CompletionPort
    do { probe = try CompletionPort(backend: backend) } catch {
        print("\(backend.rawValue): skipped (\(error))")
        continue
    }
    probe.close()
    print("\(probe.backend):")
    for threads in [1, 2, 4] {
        let rate = try postDequeue(backend: backend, threads: threads, seconds: seconds)
        print("  post→dequeue, \(threads) thread\(threads == 1 ? " " : "s"): \(formatRate(rate)) packets")
    }
    let echo = try echoRoundTrips(backend: backend, connections: 32, messageSize: 64, seconds: seconds)
    print("  echo, 2 workers, 32 connections × 64 B: \(formatRate(echo)) round trips")
    guard backend == .ioURing else { continue }
    for receives in [1, 2, 4] {
        let sink = try outstandingReceives(backend: backend, receivesPerSocket: receives, connections: 4,
                                           size: 65536, seconds: seconds)
        print("  \(receives) receive\(receives == 1 ? " " : "s") outstanding per socket, 4 streaming connections × 64 KiB: "
              + "\(Int(sink.mebibytesPerSecond.rounded())) MiB/s, \(Int(sink.cpuMicrosecondsPerMebibyte.rounded())) µs CPU per MiB, "
              + "\(sink.outOfOrder) out of order")
    }
}
