import CIOURing
import CShare
import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// A client of an engine's control socket: one short connection per request, with a deadline,
/// so a viewer never hangs on an engine that stopped answering.
public final class ControlClient: EngineControl {
    public let socketPath: String
    /// How long a request may take before it counts as failed.
    public let timeoutMilliseconds: Int32

    public init(socketPath: String, timeoutMilliseconds: Int32 = 2000) {
        self.socketPath = socketPath
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    public func send(_ command: EngineCommand) -> CommandOutcome {
        do {
            let (line, descriptor) = try exchange(.command(command))
            if descriptor >= 0 { close(descriptor) }
            return ControlProtocol.outcome(of: line)
        } catch {
            return CommandOutcome(succeeded: false, message: "\(error)")
        }
    }

    /// Asks for the stats ring and maps it read-only.
    public func attachRing() throws(LinkError) -> StatsRing {
        let (line, descriptor) = try exchange(.hello)
        guard line.hasPrefix("ok"), descriptor >= 0 else {
            if descriptor >= 0 { close(descriptor) }
            throw .refused(ControlProtocol.outcome(of: line).message)
        }
        do {
            return try StatsRing(attaching: descriptor)
        } catch {
            throw .ring(RingAttachErrorText(text: error.description))
        }
    }

    /// Sends one request and reads one reply line (and a descriptor, when one comes with it).
    private func exchange(_ request: ControlProtocol.Request) throws(LinkError) -> (String, CInt) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system("socket", errno) }
        defer { close(fd) }
        // Timeouts before connecting: a Unix connect waits while the listener's backlog is full
        // (an engine that stopped answering), and SO_SNDTIMEO bounds that wait too.
        var timeout = timeval(tv_sec: Int(timeoutMilliseconds / 1000), tv_usec: Int(timeoutMilliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw .pathTooLong(socketPath) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            if code == EACCES { throw .system("cannot reach the engine's control socket", code) }
            throw .refused("its control socket does not answer (\(String(cString: strerror(code))))")
        }
        var line = ControlProtocol.line(for: request)
        let sent = line.withUTF8 { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == line.utf8.count else { throw .refused("the engine did not take the request") }
        var reply: [UInt8] = []
        var descriptor: CInt = -1
        var chunk = [UInt8](repeating: 0, count: ControlProtocol.maxLine)
        while !reply.contains(10), reply.count < ControlProtocol.maxLine {
            var received: CInt = -1
            let n = chunk.withUnsafeMutableBytes { CShare_receiveWithDescriptor(fd, $0.baseAddress, $0.count, &received) }
            if received >= 0 {
                if descriptor >= 0 { close(descriptor) }
                descriptor = received
            }
            guard n > 0 else { break }
            reply += chunk[0..<n]
        }
        guard let newline = reply.firstIndex(of: 10) else {
            if descriptor >= 0 { close(descriptor) }
            throw .refused("no reply within \(timeoutMilliseconds) ms")
        }
        return (String(decoding: reply[..<newline], as: UTF8.self), descriptor)
    }
}
