import EngineLink
import ServerCore
#if canImport(Glibc)
import Glibc
#endif

/// Every line comes back in upper case; `QUIT` says goodbye and closes.
struct Shout: ServerProtocol {
    let name = "shout"
    /// Shown by `iocptop attach` beside the core's figures, and in its `--json` and `/metrics`.
    let metrics: [HandlerMetric] = [.counter("lines", help: "Lines shouted back.")]
    func makeHandler() -> any ConnectionHandler { ShoutHandler() }
}

final class ShoutHandler: ConnectionHandler {
    func received(_ input: inout InputBuffer, _ output: inout OutputBuffer,
                  _ connection: inout ConnectionContext) -> HandlerVerdict {
        while let newline = input.unconsumed.firstIndex(of: UInt8(ascii: "\n")) {
            let line = UnsafeRawBufferPointer(rebasing: input.unconsumed[...newline])
            guard output.free >= line.count else { return .pauseReading }   // sent, then called again
            if line.starts(with: "QUIT".utf8) {
                output.write("bye\n")
                input.consume(line.count)
                return .closeAfterFlush
            }
            output.withFreeSpace { space in
                for (index, byte) in line.enumerated() { space[index] = (97...122).contains(byte) ? byte - 32 : byte }
                return line.count
            }
            input.consume(line.count)
            connection.count(0)   // metric 0: lines
        }
        return input.isFull ? .closeNow : .continue   // a line longer than the server can hold
    }
}

/// One line on a descriptor, unbuffered (a pipe's reader sees it at once).
func say(_ line: String, to descriptor: CInt = 1) { _ = (line + "\n").utf8CString.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count - 1) } }

// Signals are taken by `sigwait` below: blocked before any thread starts, so none inherits them.
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
for signal in [SIGINT, SIGTERM] { sigaddset(&stopSignals, signal) }
pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

var configuration = EngineConfiguration()
configuration.port = CommandLine.arguments.dropFirst().first.flatMap(UInt16.init) ?? 7070
do {
    let server = try PortServer(configuration: configuration, serving: Shout())
    // Published: `iocptop list` shows it, `iocptop attach` watches and steers it.
    let publication = try EnginePublication(stats: server.stats, control: LocalControl(engine: server))
    say("shout on \(server.address), pid \(getpid())")
    var received: CInt = 0
    sigwait(&stopSignals, &received)
    publication.withdraw()
    say("\(server.drain())")
} catch {
    say("shout-server: \(error)", to: 2)
    exit(1)
}
