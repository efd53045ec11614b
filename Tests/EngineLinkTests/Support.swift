import ServerCore
import EngineLink
import Loopback
#if canImport(Glibc)
import Glibc
#endif

/// A private runtime directory for one test (removed with everything in it by `remove`).
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/iocptop-link-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    /// The per-user directory inside it.
    var runtime: String { path + "/iocptop" }

    func remove() {
        if let directory = opendir(runtime) {
            while let item = readdir(directory) {
                let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(runtime + "/" + name) }
            }
            closedir(directory)
        }
        rmdir(runtime)
        rmdir(path)
    }
}

/// An engine on an ephemeral loopback port.
func makeEngine(workers: Int = 2) throws -> PortServer {
    var configuration = EngineConfiguration()
    configuration.port = 0
    configuration.workers = workers
    configuration.concurrency = 2
    configuration.statsPeriodMilliseconds = 50
    return try PortServer(configuration: configuration)
}

/// Sends `text` on a new connection to the engine and returns what came back.
func echoOnce(port: UInt16, _ text: String) -> String? {
    guard let fd = try? Loopback.connect(port: port) else { return nil }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ Loopback.writeAll(fd, $0) }) else { return nil }
    var back = [UInt8](repeating: 0, count: bytes.count)
    guard back.withUnsafeMutableBytes({ Loopback.readExactly(fd, into: $0) }) == bytes.count else { return nil }
    return String(decoding: back, as: UTF8.self)
}

/// A raw connection to a Unix socket (nil when it cannot connect).
func connectUnix(_ path: String) -> CInt? {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        return nil
    }
    return fd
}

/// Reads until end of stream or `milliseconds` pass; what came.
func readAll(_ fd: CInt, milliseconds: Int32 = 5000) -> String {
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    while poll(&descriptor, 1, milliseconds) > 0 {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        received += chunk[0..<n]
    }
    return String(decoding: received, as: UTF8.self)
}
