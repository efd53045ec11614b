import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// A protocol the server core speaks: echo (`EchoProtocol`), HTTP, or yours.
///
/// The core does everything every protocol needs — accepting, receiving and sending,
/// partial sends, buffers that grow from a shared pool under load and shrink when quiet,
/// back-pressure, half-close, closing, drain, the worker pool, stats and commands. The
/// protocol supplies one `ConnectionHandler` per connection, which turns the bytes received
/// into the bytes to send.
public protocol ServerProtocol: Sendable {
    /// A short name ("echo", "http"), shown in the start line and the frames.
    var name: String { get }

    /// Whether every byte received is sent back unchanged, in order (echo). The core then sends
    /// the input from where it arrived — no handler runs and nothing is copied — and
    /// `makeHandler` is never called.
    var repliesWithInput: Bool { get }

    /// A handler for one connection slot. It is made once per slot, the first time the slot
    /// serves a connection, and reused for every later connection of that slot: `opened`
    /// starts it over, so nothing is allocated per connection.
    func makeHandler() -> any ConnectionHandler

    /// The figures its handlers keep (`ConnectionContext.count`, `adjust`, `record`, by index
    /// into this array): shown by every viewer beside the core's. At most 16.
    var metrics: [HandlerMetric] { get }

    /// The name of the one figure its handlers count per connection
    /// (`ConnectionContext.countForConnection`), shown in the connections view: "requests"
    /// for HTTP. Nil (the default) when it has none. At most 15 bytes.
    var connectionFigure: String? { get }

    /// A packet a handler posted (`ConnectionContext.post`, IOCP's
    /// `PostQueuedCompletionStatus`) has been dequeued: runs on that worker, after the packets
    /// queued before it and outside every connection's strand (work handed off, a timer's
    /// tick). It may block inside the port's blocking scope like a handler.
    func posted(_ context: UInt64)
}

extension ServerProtocol {
    public var repliesWithInput: Bool { false }
    public var metrics: [HandlerMetric] { [] }
    public var connectionFigure: String? { nil }
    public func posted(_ context: UInt64) {}
}

/// One connection's protocol state, run under the connection's strand: on whichever worker
/// dequeued the connection's completion, never on two threads at once, and never waiting for
/// a lock (the IOCP per-I/O shape, not a pipeline pinned to a thread).
///
/// A handler reads what arrived from an `InputBuffer`, consumes what it used (the rest is
/// handed to it again with the next bytes), and writes replies into an `OutputBuffer`; the
/// core sends them. What it returns says how the connection goes on (`HandlerVerdict`).
/// It may block — a database call, a file read — inside `ConnectionContext.blocking`, where the
/// port lets another worker run meanwhile (the seed's lesson).
public protocol ConnectionHandler: AnyObject {
    /// A connection was accepted (the handler's state from any earlier connection must be
    /// forgotten here). It may write a greeting.
    func opened(_ output: inout OutputBuffer, _ connection: inout ConnectionContext) -> HandlerVerdict

    /// Bytes arrived. Called again while it consumes something and input is left, and, after
    /// a `pauseReading`, once the output has been sent.
    func received(_ input: inout InputBuffer, _ output: inout OutputBuffer,
                  _ connection: inout ConnectionContext) -> HandlerVerdict

    /// The connection closed, and why. Its slot (and this handler) may serve another next.
    func closed(_ reason: CloseReason)
}

extension ConnectionHandler {
    public func opened(_ output: inout OutputBuffer, _ connection: inout ConnectionContext) -> HandlerVerdict { .continue }
    public func closed(_ reason: CloseReason) {}
}

/// How a connection goes on after its handler ran.
public enum HandlerVerdict: Sendable, Hashable {
    /// Keep receiving; send what was written.
    case `continue`
    /// Stop reading until everything written has been sent, then hand the handler what is
    /// left of the input (back-pressure: a client that sends without reading cannot grow the
    /// server's memory). The core also never calls a handler whose output is full.
    case pauseReading
    /// Send what was written, then close (a `Connection: close` response).
    case closeAfterFlush
    /// Send what was written, shut down the sending side, then read and discard whatever
    /// the peer still sends until it closes, for at most `PortServer.lingerNs` — then close.
    /// For refusing a request whose rest is still arriving (a body too large, garbage): closed
    /// at once, the socket would reset and the client could lose the response it is owed.
    case lingeringClose
    /// Close at once; what was written and not sent is dropped.
    case closeNow
}

/// Why a connection closed.
public enum CloseReason: Sendable, Hashable {
    /// The peer closed its side and everything owed to it was sent.
    case peerClosed
    /// The handler asked (`closeAfterFlush`, `closeNow`).
    case byHandler
    /// A receive or send failed (`errno`: ECONNRESET for a reset peer).
    case failed(errno: Int32)
    /// The server closed it: drain, or the input outgrew every buffer.
    case byServer
    /// Its deadline passed (`ConnectionContext.setDeadline`: a header or idle timeout).
    case timedOut
    /// An operator closed it (the connections view's `x`, the `close-connection` command).
    case byOperator
}

extension CloseReason {
    /// How frames name it.
    var frameReason: (reason: ConnectionCloseReason, errno: Int) {
        switch self {
        case .peerClosed: (.peerClosed, 0)
        case .byHandler: (.byHandler, 0)
        case .failed(let code): (code == ECONNRESET || code == EPIPE ? .reset : .failed, Int(code))
        case .byServer: (.byServer, 0)
        case .timedOut: (.timedOut, 0)
        case .byOperator: (.byOperator, 0)
        }
    }
}

/// A handler metric's declaration (defined beside the frames that carry it), named here so a
/// server needs only `import ServerCore` to declare its figures.
public typealias HandlerMetric = EngineStats.HandlerMetric
