/// TCP echo: every byte received is sent back, in order. The seed's protocol, and the
/// server core's fastest: by default the core sends the bytes from where they arrived
/// (`repliesWithInput`), with one ring per connection shared by its receive and its send.
public struct EchoProtocol: ServerProtocol {
    public let name = "echo"
    public let repliesWithInput: Bool

    /// - Parameter inPlace: false runs echo through an `EchoHandler` that copies the input into
    ///   the output, as any protocol's handler does (tests check the two agree; benchmarks
    ///   measure what the copy and the handler cost).
    public init(inPlace: Bool = true) { repliesWithInput = inPlace }

    public func makeHandler() -> any ConnectionHandler { EchoHandler() }
}

/// Echo as a handler: copies what arrived into the output, as far as it fits.
public final class EchoHandler: ConnectionHandler {
    public init() {}

    public func received(_ input: inout InputBuffer, _ output: inout OutputBuffer,
                         _ connection: inout ConnectionContext) -> HandlerVerdict {
        let count = min(input.bytes.count, output.free)
        output.write(UnsafeRawBufferPointer(rebasing: input.bytes[0..<count]))
        input.consume(count)
        // What did not fit is handed over again once the output has been sent.
        return count < input.bytes.count ? .pauseReading : .continue
    }
}
