import CIOURing
import ServerCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A small line protocol for testing the handler seam: a greeting on open, then one reply per
/// `\n`-terminated line — the line in upper case, `bye` (and close) for `QUIT`, `slept` after a
/// 1 ms sleep in the blocking scope for `SLEEP` (`NAP N`: N ms), `posted` after posting a packet for `POST N`,
/// and `too long` (and close) for a line longer
/// than the server's largest input buffer. Every close is recorded with its reason.
struct LineProtocol: ServerProtocol {
    let name = "line"
    let closes = Closes()
    /// Handlers that do not pause when the output is full (see `LineHandler.received`).
    var careless = false
    /// Lines answered, their bytes, handlers asleep now, and how long each sleep took.
    let metrics: [HandlerMetric] = [
        .counter("lines", help: "Lines answered."),
        .counter("line_size", unit: .bytes, help: "Bytes of the lines answered, newlines included."),
        .gauge("sleeping", help: "Handlers inside a SLEEP now."),
        .histogram("sleep_time", help: "How long each SLEEP took."),
    ]
    static let lines = 0, lineBytes = 1, sleeping = 2, sleepTime = 3
    /// Each connection's lines, in the connections view.
    var connectionFigure: String? { "lines" }

    final class Closes: Sendable {
        let reasons = Mutex<[CloseReason]>([])
        /// Contexts of the packets `posted` received, in order.
        let posted = Mutex<[UInt64]>([])
    }

    func posted(_ context: UInt64) { closes.posted.withLock { $0.append(context) } }

    func makeHandler() -> any ConnectionHandler { LineHandler(closes: closes, careless: careless) }
}

final class LineHandler: ConnectionHandler {
    let closes: LineProtocol.Closes
    let careless: Bool

    init(closes: LineProtocol.Closes, careless: Bool) {
        self.closes = closes
        self.careless = careless
    }

    func opened(_ output: inout OutputBuffer, _ connection: inout ConnectionContext) -> HandlerVerdict {
        output.write("hello\n")
        return .continue
    }

    func received(_ input: inout InputBuffer, _ output: inout OutputBuffer,
                  _ connection: inout ConnectionContext) -> HandlerVerdict {
        while let newline = input.unconsumed.firstIndex(of: UInt8(ascii: "\n")) {
            let line = UnsafeRawBufferPointer(rebasing: input.unconsumed[..<newline])
            // The reply is as long as the line plus its newline; wait for room if it does not fit
            // (a careless handler returns `.continue` instead: the core calls it again on the
            // next event, the send's completion).
            guard output.free > line.count else { return careless ? .continue : .pauseReading }
            if line.elementsEqual("QUIT".utf8) {
                output.write("bye\n")
                input.consume(newline + 1)
                return .closeAfterFlush
            }
            connection.count(LineProtocol.lines)
            connection.countForConnection()
            connection.count(LineProtocol.lineBytes, by: UInt64(newline + 1))
            if line.starts(with: "POST ".utf8), let value = UInt64(String(decoding: line.dropFirst(5), as: UTF8.self)) {
                // Posts a packet with the number; `posted` runs on whichever worker takes it.
                connection.post(value)
                output.write("posted\n")
            } else if line.starts(with: "NAP ".utf8), let milliseconds = UInt32(String(decoding: line.dropFirst(4), as: UTF8.self)) {
                connection.blocking { _ = usleep(milliseconds * 1000) }
                output.write("napped\n")
            } else if line.elementsEqual("SLEEP".utf8) {
                connection.adjust(LineProtocol.sleeping, by: 1)
                let start = CIOURing_now_ns()
                connection.blocking { _ = usleep(1000) }
                connection.record(LineProtocol.sleepTime, nanoseconds: UInt64(CIOURing_now_ns() - start))
                connection.adjust(LineProtocol.sleeping, by: -1)
                output.write("slept\n")
            } else {
                output.withFreeSpace { space in
                    for (index, byte) in line.enumerated() {
                        space[index] = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte - 32 : byte
                    }
                    space[line.count] = UInt8(ascii: "\n")
                    return line.count + 1
                }
            }
            input.consume(newline + 1)
        }
        if input.isFull && input.consumed == 0 {
            // No newline in a full buffer: a line longer than the server can hold.
            output.write("too long\n")
            return .closeAfterFlush
        }
        return .continue
    }

    func closed(_ reason: CloseReason) {
        closes.reasons.withLock { $0.append(reason) }
    }
}
