import CIOURing
import CompletionPort
import EngineStats
import NativeThreads
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `--metrics HOST:PORT`: `GET /metrics` in the Prometheus text format (or OpenMetrics when the
/// request's `Accept` asks for it), served by a completion port of its own — the port's second
/// protocol — on one thread that only reads frames, never the workers: a scrape never blocks or
/// slows the engine.
///
/// It survives the internet: a request (line and headers) is at most `requestLimit` bytes (431
/// past it), anything that is not an HTTP/1.x request gets 400, other paths 404, other methods
/// 405; a client has `readTimeoutNs` to send its request and as long again to take the reply;
/// at most `maxConnections` are open, and a new one evicts the oldest (sending its request or
/// taking its reply slowly), so slow clients holding connections cannot keep a scraper out. The
/// exposition is rendered once per frame and format and reused by every scrape of that frame. One request per connection
/// (`Connection: close`).
public final class MetricsServer: @unchecked Sendable {
    // @unchecked: everything below `frames` belongs to the server thread after `start`;
    // `stopping` is atomic; `stop` joins before touching the connections.
    public static let maxConnections = 128
    public static let requestLimit = 8192
    public static let readTimeoutNs: Int64 = 5_000_000_000

    /// The address it listens on (the kernel's port when 0 was asked for).
    public let address: MetricsAddress
    private let port: CompletionPort
    private let listenFD: CInt
    private let frames: @Sendable () -> (EngineIdentity, StatsFrame?)
    private let stopping = Atomic<Bool>(false)
    private var thread: NativeThread?
    private var started = false
    /// Connection slots: room for `maxConnections` open plus as many closing (their cancelled
    /// operations still to come back).
    private var connections: [Connection?] = Array(repeating: nil, count: 2 * MetricsServer.maxConnections)
    private var acceptArmed = false
    /// The last exposition rendered, per format: a burst of scrapes renders each frame once.
    private var cache = HTTPRequest.RenderCache()
    /// The listener was closed through the port (by `shutDown`), not to be closed again.
    private var listenerClosed = false

    /// Why the server could not start, in one line.
    public struct StartError: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    final class Connection {
        let fd: CInt
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: MetricsServer.requestLimit, alignment: 16)
        var received = 0
        var reply: UnsafeMutableRawBufferPointer?
        var sent = 0
        var inflight = 0
        var closing = false
        let acceptedNs: Int64
        var deadlineNs: Int64

        init(fd: CInt, now: Int64) {
            self.fd = fd
            acceptedNs = now
            deadlineNs = now + MetricsServer.readTimeoutNs
        }

        deinit {
            buffer.deallocate()
            reply?.deallocate()
        }
    }

    /// Binds and listens; `frames` gives the engine's identity and newest frame on each scrape.
    public init(address: MetricsAddress, frames: @escaping @Sendable () -> (EngineIdentity, StatsFrame?)) throws(StartError) {
        self.frames = frames
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(address.host, String(address.port), &hints, &list)
        guard status == 0, let info = list else {
            throw StartError(message: "--metrics \(address): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StartError(message: "--metrics \(address): \(String(cString: strerror(errno)))") }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        // A deep backlog: a burst of connections (slow clients, then a scraper) waits to be accepted
        // instead of being dropped by the kernel.
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, 4096) == 0 else {
            let code = errno
            close(fd)
            throw StartError(message: "--metrics \(address): \(String(cString: strerror(code)))")
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var actual = address
        if withUnsafeMutablePointer(to: &bound, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }) == 0 {
            actual.port = withUnsafePointer(to: &bound) { pointer in
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            }
        }
        self.address = actual
        listenFD = fd
        do {
            port = try CompletionPort(concurrency: 1, maxOperations: 2 * connections.count + 8)
            try port.associate(fd, key: 0)
        } catch {
            // deinit runs for this failed init (every property is set): it must not close again.
            listenerClosed = true
            close(fd)
            throw StartError(message: "--metrics \(address): \(error)")
        }
    }

    deinit {
        stop()
        if !listenerClosed { close(listenFD) }
    }

    /// Starts serving on a thread of its own.
    public func start() throws(StartError) {
        guard !started else { return }
        do { try port.acceptMultishot(on: listenFD, context: 0) } catch {
            throw StartError(message: "--metrics \(address): \(error)")
        }
        acceptArmed = true
        do {
            thread = try NativeThread.start { self.run() }
        } catch {
            throw StartError(message: "--metrics \(address): \(error)")
        }
        started = true
    }

    /// Stops serving: closes every connection, waits for their operations, closes the port.
    public func stop() {
        guard started, !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try? port.post(key: UInt64.max)
        thread?.join()
        port.close()
    }

    // MARK: the server thread

    private func run() {
        var nextSweep = CIOURing_now_ns() + 250_000_000
        while true {
            switch port.dequeue(timeout: .milliseconds(250)) {
            case .completion(let packet): handle(packet)
            case .timeout: break
            case .portClosed: return
            }
            if stopping.load(ordering: .acquiring) { return shutDown() }
            let now = CIOURing_now_ns()
            if now >= nextSweep {
                nextSweep = now + 250_000_000
                sweep(now: now)
            }
        }
    }

    private func handle(_ packet: Completion) {
        switch packet.operation {
        case .accept: accepted(packet)
        case .receive, .send:
            let index = Int(packet.key) - 1
            guard connections.indices.contains(index), let connection = connections[index] else { return }
            connection.inflight -= 1
            if connection.closing {
                if connection.inflight == 0 { connections[index] = nil }
                return
            }
            if packet.operation == .receive { received(packet, index, connection) } else { sent(packet, index, connection) }
        case .posted: break
        }
    }

    private func accepted(_ packet: Completion) {
        if !packet.hasMore { acceptArmed = false }
        guard packet.succeeded else { return }  // EMFILE and the like: re-armed by the sweep
        let fd = packet.acceptedDescriptor
        // Accepted while shutting down: nobody would serve or close it.
        if stopping.load(ordering: .acquiring) { close(fd); return }
        let now = CIOURing_now_ns()
        let open = connections.filter { $0 != nil && !$0!.closing }.count
        if open >= Self.maxConnections,
           let oldest = connections.indices.filter({ connections[$0].map { !$0.closing } ?? false })
               .min(by: { connections[$0]!.acceptedNs < connections[$1]!.acceptedNs }) {
            // Full: the oldest connection — still sending its request, or slow to take its
            // reply — makes room, so clients that hold connections cannot keep a scraper out.
            closeConnection(oldest)
        }
        guard connections.filter({ $0 != nil && !$0!.closing }).count < Self.maxConnections,
              let free = connections.firstIndex(where: { $0 == nil }) else {
            close(fd)
            return
        }
        do { try port.associate(fd, key: UInt64(free + 1)) } catch {
            close(fd)
            return
        }
        let connection = Connection(fd: fd, now: now)
        connections[free] = connection
        receiveMore(free, connection)
    }

    private func receiveMore(_ index: Int, _ connection: Connection) {
        let room = UnsafeMutableRawBufferPointer(rebasing: connection.buffer[connection.received...])
        do {
            try port.receive(on: connection.fd, into: room, context: 1)
            connection.inflight += 1
        } catch {
            closeConnection(index)
        }
    }

    private func received(_ packet: Completion, _ index: Int, _ connection: Connection) {
        guard packet.succeeded, packet.result > 0 else { return closeConnection(index) }
        connection.received += Int(packet.result)
        let bytes = UnsafeRawBufferPointer(rebasing: connection.buffer[..<connection.received])
        if let response = HTTPRequest.respond(to: bytes, frames: frames, cache: &cache) {
            reply(response, index, connection)
        } else if connection.received == Self.requestLimit {
            reply(HTTPRequest.status(431, "Request Header Fields Too Large"), index, connection)
        } else {
            receiveMore(index, connection)
        }
    }

    private func reply(_ bytes: [UInt8], _ index: Int, _ connection: Connection) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        buffer.copyBytes(from: bytes)
        connection.reply = buffer
        connection.deadlineNs = CIOURing_now_ns() + Self.readTimeoutNs
        sendMore(index, connection)
    }

    private func sendMore(_ index: Int, _ connection: Connection) {
        guard let reply = connection.reply else { return }
        do {
            try port.send(on: connection.fd, from: UnsafeRawBufferPointer(rebasing: reply[connection.sent...]), context: 2)
            connection.inflight += 1
        } catch {
            closeConnection(index)
        }
    }

    private func sent(_ packet: Completion, _ index: Int, _ connection: Connection) {
        guard packet.succeeded, packet.result > 0, let reply = connection.reply else { return closeConnection(index) }
        connection.sent += Int(packet.result)
        if connection.sent < reply.count { return sendMore(index, connection) }
        shutdown(connection.fd, Int32(SHUT_WR))
        closeConnection(index)
    }

    /// Closes through the port: operations in flight come back cancelled, and the slot is
    /// freed when the last one has (the buffers stay valid until then).
    private func closeConnection(_ index: Int) {
        guard let connection = connections[index], !connection.closing else { return }
        connection.closing = true
        try? port.close(handle: connection.fd)
        if connection.inflight == 0 { connections[index] = nil }
    }

    /// Closes connections past their deadline and re-arms a failed accept.
    private func sweep(now: Int64) {
        for index in connections.indices {
            if let connection = connections[index], !connection.closing, now >= connection.deadlineNs { closeConnection(index) }
        }
        if !acceptArmed, (try? port.acceptMultishot(on: listenFD, context: 0)) != nil { acceptArmed = true }
    }

    private func shutDown() {
        if (try? port.close(handle: listenFD)) != nil { listenerClosed = true }
        for index in connections.indices { closeConnection(index) }
        let deadline = CIOURing_now_ns() + 1_000_000_000
        while connections.contains(where: { $0 != nil }), CIOURing_now_ns() < deadline {
            guard case .completion(let packet) = port.dequeue(timeout: .milliseconds(50)) else { continue }
            handle(packet)
        }
        // Connections whose operations did not come back keep their buffers (never freed
        // under the kernel): a leak at exit, not a use after free.
        for case let connection? in connections { _ = Unmanaged.passRetained(connection) }
    }
}
