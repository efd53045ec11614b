import Foundation
import Loopback
#if canImport(Glibc)
import Glibc
#endif

/// `promtool` from PATH (Debian's prometheus package; `.ci/run` installs it), or nil.
func promtoolPath() -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/promtool" }.first { access($0, X_OK) == 0 }
}

/// Whether a missing promtool fails the tests that need it (set by `.ci/run` once installed).
var promtoolRequired: Bool { ProcessInfo.processInfo.environment["IOCPTOP_REQUIRE_PROMTOOL"] == "1" }

/// Runs promtool with `arguments`, `input` on its stdin; its exit status and output.
func promtool(_ arguments: [String], input: String) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: promtoolPath()!)
    process.arguments = arguments
    let stdin = Pipe(), stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stdout
    try process.run()
    stdin.fileHandleForWriting.write(Data(input.utf8))
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// A loopback TCP client: connects to `port`, or returns -1.
func connectTo(port: UInt16) -> CInt {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let status = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if status != 0 { close(fd); return -1 }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// Sends `request` (if any) and reads until the server closes: the whole reply.
func exchange(port: UInt16, _ request: String) -> String {
    let fd = connectTo(port: port)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    return readAll(fd)
}

func readAll(_ fd: CInt) -> String {
    String(decoding: Loopback.readToEnd(fd), as: UTF8.self)
}

/// The body of an HTTP reply.
func body(_ reply: String) -> String {
    guard let range = reply.range(of: "\r\n\r\n") else { return "" }
    return String(reply[range.upperBound...])
}
