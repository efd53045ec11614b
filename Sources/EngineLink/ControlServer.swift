import NativeThreads
import CIOURing
import CShare
import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// The engine's control socket: a Unix stream socket served by one thread of its own, never by
/// a port worker, so nothing a client does can make a worker wait.
///
/// What a client can do is bounded: only this uid (or root) is served (`SO_PEERCRED`, and the
/// socket is mode 0600 in a 0700 directory); a request is one line of at most
/// `ControlProtocol.maxLine` bytes; a connection that has not completed a request within
/// `timeoutNs` is closed; at most `maxClients` connections are held, the oldest is dropped
/// to make room. A bad request gets an `error` reply and a close. Replies are one short line
/// written with a non-blocking send: a client that does not read them is dropped.
public final class ControlServer: @unchecked Sendable {
    // @unchecked: after `start`, every mutable field belongs to the server thread; `stop` only
    // writes to the wake-up pipe and joins the thread.
    public static let maxClients = 32
    public static let timeoutNs: Int64 = 2_000_000_000

    private let control: any EngineControl
    private let listener: CInt
    /// A read-only descriptor of the stats ring, handed to `hello` requests (-1: none).
    private let ringDescriptor: CInt
    private let wakeRead: CInt
    private let wakeWrite: CInt
    private var thread: NativeThread?
    private var clients: [Client] = []
    /// While accept fails for want of descriptors (EMFILE, ENFILE), the listener is left out of
    /// the poll set until then (monotonic ns): it stays readable, and would make the loop spin.
    private var acceptPausedUntil: Int64 = 0

    private struct Client {
        let fd: CInt
        var buffer: [UInt8] = []
        /// When the connection was accepted or last completed a request.
        var since: Int64
    }

    /// Binds `path` (mode 0600) and prepares to pass commands to `control` (the engine's own).
    /// Call `start()`.
    public init(path: String, control: any EngineControl, ringDescriptor shared: CInt) throws(LinkError) {
        self.control = control
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw .pathTooLong(path) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .system("socket", errno) }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o600) == 0, listen(fd, 64) == 0 else {
            let code = errno
            close(fd)
            unlink(path)
            throw .system("cannot listen on \(path)", code)
        }
        listener = fd
        // A read-only descriptor of the same memory: a viewer can map it only for reading.
        ringDescriptor = shared >= 0 ? open("/proc/self/fd/\(shared)", O_RDONLY | O_CLOEXEC) : -1
        var pipeFDs: [CInt] = [-1, -1]
        _ = pipe(&pipeFDs)
        for fd in pipeFDs {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        }
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
    }

    deinit {
        stop()
        close(listener)
        close(wakeRead)
        close(wakeWrite)
        if ringDescriptor >= 0 { close(ringDescriptor) }
    }

    /// Starts the server thread.
    /// - Throws: `LinkError.system` when the thread cannot be created.
    public func start() throws(LinkError) {
        guard thread == nil else { return }
        do {
            thread = try NativeThread.start { self.serve() }
        } catch {
            throw .system("pthread_create", error.code)
        }
    }

    /// Stops the thread and closes every connection.
    public func stop() {
        guard let thread else { return }
        self.thread = nil
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        thread.join()
    }

    private func serve() {
        var descriptors: [pollfd] = []
        while true {
            descriptors.removeAll(keepingCapacity: true)
            descriptors.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            let accepting = CIOURing_now_ns() >= acceptPausedUntil
            descriptors.append(pollfd(fd: accepting ? listener : -1, events: Int16(POLLIN), revents: 0))
            for client in clients { descriptors.append(pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&descriptors, nfds_t(descriptors.count), 250)
            if ready < 0 && errno != EINTR { break }
            if descriptors[0].revents != 0 { break }
            let now = CIOURing_now_ns()
            // Clients first (their indices match `descriptors`), then new connections.
            var index = clients.count - 1
            while index >= 0 {
                let events = descriptors[index + 2].revents
                if events != 0 && !receive(at: index, now: now) {
                    drop(at: index)
                } else if now - clients[index].since > Self.timeoutNs {
                    // Checked whether or not it sent something: a client that drips bytes
                    // without finishing a request is as slow as one that sends nothing.
                    reply(clients[index].fd, "error timeout: no complete request within 2 s\n")
                    drop(at: index)
                }
                index -= 1
            }
            if descriptors[1].revents != 0 { acceptClients(now: now) }
        }
        for client in clients { close(client.fd) }
        clients.removeAll()
    }

    private func acceptClients(now: Int64) {
        while true {
            let fd = CIOURing_accept(listener)
            guard fd >= 0 else {
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                    acceptPausedUntil = now + 100_000_000
                }
                return
            }
            var uid: uid_t = 0, pid: pid_t = 0
            guard CShare_peerCredentials(fd, &uid, &pid) == 0, uid == geteuid() || uid == 0 else {
                reply(fd, "error permission denied: this engine serves only uid \(geteuid())\n")
                close(fd)
                continue
            }
            if clients.count >= Self.maxClients {
                // Full: the connection that has waited longest makes room.
                let oldest = clients.indices.min { clients[$0].since < clients[$1].since }!
                reply(clients[oldest].fd, "error too many control connections\n")
                drop(at: oldest)
            }
            clients.append(Client(fd: fd, since: now))
        }
    }

    /// Reads what a client sent and answers every complete request; false to drop it.
    private func receive(at index: Int, now: Int64) -> Bool {
        var chunk = [UInt8](repeating: 0, count: ControlProtocol.maxLine)
        let room = ControlProtocol.maxLine - clients[index].buffer.count
        let n = chunk.withUnsafeMutableBytes { read(clients[index].fd, $0.baseAddress, room) }
        if n < 0 { return errno == EAGAIN || errno == EINTR }
        if n == 0 { return false }
        clients[index].buffer += chunk[0..<n]
        while let newline = clients[index].buffer.firstIndex(of: 10) {
            let line = String(decoding: clients[index].buffer[..<newline], as: UTF8.self)
            clients[index].buffer.removeSubrange(...newline)
            clients[index].since = now
            guard answer(line, on: clients[index].fd) else { return false }
        }
        if clients[index].buffer.count >= ControlProtocol.maxLine {
            reply(clients[index].fd, "error request too long (at most \(ControlProtocol.maxLine) bytes)\n")
            return false
        }
        return true
    }

    /// Answers one request; false when the connection must close.
    private func answer(_ line: String, on fd: CInt) -> Bool {
        switch ControlProtocol.parse(line) {
        case .failure(let error):
            reply(fd, "error \(error.message)\n")
            return false
        case .success(.hello):
            guard ringDescriptor >= 0 else {
                reply(fd, "error this engine's stats ring cannot be shared\n")
                return false
            }
            let text = Array("ok \(ControlProtocol.version) pid \(getpid())\n".utf8)
            return text.withUnsafeBytes { CShare_sendWithDescriptor(fd, $0.baseAddress, $0.count, ringDescriptor) } == text.count
        case .success(.command(let command)):
            return reply(fd, ControlProtocol.reply(control.send(command)))
        }
    }

    @discardableResult
    private func reply(_ fd: CInt, _ text: String) -> Bool {
        var line = text
        return line.withUTF8 { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) } == line.utf8.count
    }

    private func drop(at index: Int) {
        close(clients[index].fd)
        clients.remove(at: index)
    }
}

/// Why publishing, attaching or talking to an engine failed.
public enum LinkError: Error, Hashable, Sendable, CustomStringConvertible {
    case pathTooLong(String)
    case system(String, Int32)
    case directory(String)
    /// No engine of this user has that pid.
    case noEngine(Int32)
    /// The pid belongs to another user's process.
    case permissionDenied(Int32)
    /// Several engines run and none was named.
    case several([Int32])
    /// No engine runs.
    case noneRunning
    /// The engine answered with an error, or not at all.
    case refused(String)
    case ring(RingAttachErrorText)

    public var description: String {
        switch self {
        case .pathTooLong(let path): "\(path) is too long for a Unix socket path (set XDG_RUNTIME_DIR to a shorter directory)"
        case .system(let what, let code): "\(what): \(String(cString: strerror(code)))"
        case .directory(let text): text
        case .noEngine(let pid): "no iocptop engine of this user has pid \(pid) (iocptop list shows the running ones)"
        case .permissionDenied(let pid): "permission denied: pid \(pid) belongs to another user; only its owner (or root) may attach"
        case .several(let pids): "several engines are running (pids \(pids.map(String.init).joined(separator: ", "))): name one, e.g. iocptop attach \(pids[0])"
        case .noneRunning: "no iocptop engine of this user is running (start one with iocptop serve)"
        case .refused(let why): "the engine refused: \(why)"
        case .ring(let text): text.text
        }
    }
}

/// A ring error's text (keeps `LinkError` Hashable without importing the ring's error type).
public struct RingAttachErrorText: Hashable, Sendable {
    public let text: String
}
