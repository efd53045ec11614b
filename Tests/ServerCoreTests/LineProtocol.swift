import ServerCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A small line protocol for testing the handler seam: a greeting on open, then one reply per
/// `\n`-terminated line — the line in upper case, `bye` (and close) for `QUIT`, `slept` after a
/// 1 ms sleep in the blocking scope for `SLEEP`, and `too long` (and close) for a line longer
/// than the server's largest input buffer. Every close is recorded with its reason.
struct LineProtocol: ServerProtocol {
    let name = "line"
    let closes = Closes()

    final class Closes: Sendable {
        let reasons = Mutex<[CloseReason]>([])
    }

    func makeHandler() -> any ConnectionHandler { LineHandler(closes: closes) }
}

final class LineHandler: ConnectionHandler {
    let closes: LineProtocol.Closes

    init(closes: LineProtocol.Closes) { self.closes = closes }

    func opened(_ output: inout OutputBuffer, _ connection: inout ConnectionContext) -> HandlerVerdict {
        output.write("hello\n")
        return .continue
    }

    func received(_ input: inout InputBuffer, _ output: inout OutputBuffer,
                  _ connection: inout ConnectionContext) -> HandlerVerdict {
        while let newline = input.unconsumed.firstIndex(of: UInt8(ascii: "\n")) {
            let line = UnsafeRawBufferPointer(rebasing: input.unconsumed[..<newline])
            // The reply is as long as the line plus its newline; wait for room if it does not fit.
            guard output.free > line.count else { return .pauseReading }
            if line.elementsEqual("QUIT".utf8) {
                output.write("bye\n")
                input.consume(newline + 1)
                return .closeAfterFlush
            }
            if line.elementsEqual("SLEEP".utf8) {
                connection.blocking { _ = usleep(1000) }
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
