/// What a connection is doing, as its strand's owner last recorded it.
public enum ConnectionState: UInt64, Sendable, CaseIterable, CustomStringConvertible {
    /// A receive is in flight and nothing is owed to the peer: waiting for the client.
    case receiving = 1
    /// A send is in flight: the server is answering.
    case sending = 2
    /// Its handler runs inside the port's blocking scope.
    case blocked = 3
    /// Back-pressure: the client does not read, so the server neither reads nor runs the
    /// handler until what it owes has been sent.
    case paused = 4
    /// The server is closing it (its socket is closed or its sending side shut down).
    case closing = 5
    /// Closed during the interval (the row says why).
    case closed = 6

    public var description: String {
        switch self {
        case .receiving: "receiving"
        case .sending: "sending"
        case .blocked: "blocked"
        case .paused: "paused"
        case .closing: "closing"
        case .closed: "closed"
        }
    }
}

/// Why a connection closed, as frames carry it (`ConnectionSample.closeReason`).
public enum ConnectionCloseReason: UInt64, Sendable, CaseIterable, CustomStringConvertible {
    /// Open (or the reason is not known).
    case none = 0
    /// The peer closed its side and everything owed to it was sent.
    case peerClosed = 1
    /// The peer reset it (ECONNRESET, EPIPE).
    case reset = 2
    /// An operation failed otherwise (`closeErrno` says how).
    case failed = 3
    /// A header or idle timeout passed.
    case timedOut = 4
    /// Accepted and closed at once: over `--max-connections`, or draining.
    case refused = 5
    /// An operator closed it (`x` in the connections view, `close-connection`).
    case byOperator = 6
    /// Its handler closed it (an error response, `Connection: close`, `QUIT`).
    case byHandler = 7
    /// The server closed it: the drain, or input larger than every buffer.
    case byServer = 8

    public var description: String {
        switch self {
        case .none: "open"
        case .peerClosed: "peer closed"
        case .reset: "reset"
        case .failed: "failed"
        case .timedOut: "timeout"
        case .refused: "refused"
        case .byOperator: "closed by operator"
        case .byHandler: "closed by handler"
        case .byServer: "closed by server"
        }
    }
}

/// One connection as the sampler saw it: a row of the connections table.
///
/// A frame carries the top connections of its interval (`ConnectionRanking`) and the ones that
/// closed in it; the engine computes the interval's rates, so a row is complete on its own
/// (the same connection need not be in the frame before).
public struct ConnectionSample: Sendable, Hashable {
    /// The connection's number: 1 for the engine's first accepted connection, never reused.
    public var id: UInt64 = 0
    /// Its slot (the completion key), reused by later connections.
    public var slot = 0
    public var stateWord: UInt64 = ConnectionState.receiving.rawValue
    /// `ConnectionCloseReason` raw value (0 while open).
    public var closeReasonWord: UInt64 = 0
    /// The errno of a failed operation that closed it (0: none).
    public var closeErrno = 0
    /// CLOCK_MONOTONIC when it was accepted, when its strand was last served, when its current
    /// wait (blocked or paused) began (0: not waiting), when it closed (0: open).
    public var openedAtNs: UInt64 = 0
    public var lastActivityNs: UInt64 = 0
    public var waitingSinceNs: UInt64 = 0
    public var closedAtNs: UInt64 = 0
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    /// Completions its strand applied (receives, sends, multishot arrivals, posted packets).
    public var completions: UInt64 = 0
    /// Time its strand held a worker in its handler's calls (blocking included), in ns.
    public var handlerNs: UInt64 = 0
    /// The longest any of its packets waited in the port's FIFO, and the last one's wait, in ns.
    public var longestWaitNs: UInt64 = 0
    public var lastWaitNs: UInt64 = 0
    /// The handler's own per-connection count (`ServerProtocol.connectionFigure`: requests
    /// for HTTP; 0 when the protocol has none).
    public var handlerFigure: UInt64 = 0
    /// Receives and sends in flight.
    public var inflight = 0
    /// Buffer bytes the connection holds (its small buffers, or the large ones it borrowed),
    /// and how many of them hold data not yet consumed or sent.
    public var heldBytes = 0
    public var bufferedBytes = 0
    /// Whether its input or output is a large buffer borrowed from the shared pool.
    public var largeInput = false
    public var largeOutput = false
    /// The engine's id of the worker that last ran its strand (-1: none yet).
    public var worker = -1
    /// Its peer, packed (`PeerAddress`).
    public var peerMeta: UInt64 = 0
    public var peerHigh: UInt64 = 0
    public var peerLow: UInt64 = 0
    /// Per second over the frame's interval (from the engine's previous sample of it).
    public var bytesInPerSecond: UInt64 = 0
    public var bytesOutPerSecond: UInt64 = 0
    public var figurePerSecond: UInt64 = 0

    public init() {}

    /// A send in flight this long without completing is a client that does not read: the
    /// engine reports the connection as paused (back-pressure), waiting since the send began.
    public static let stalledSendNs: UInt64 = 500_000_000

    public var state: ConnectionState {
        get { ConnectionState(rawValue: stateWord) ?? .receiving }
        set { stateWord = newValue.rawValue }
    }

    public var closeReason: ConnectionCloseReason {
        get { ConnectionCloseReason(rawValue: closeReasonWord) ?? .none }
        set { closeReasonWord = newValue.rawValue }
    }

    public var peer: PeerAddress {
        get { PeerAddress(meta: peerMeta, high: peerHigh, low: peerLow) }
        set { (peerMeta, peerHigh, peerLow) = (newValue.meta, newValue.high, newValue.low) }
    }

    /// How long it has been open at `now` (or was, once closed).
    public func ageNs(at now: UInt64) -> UInt64 {
        let end = closedAtNs > 0 ? closedAtNs : now
        return end > openedAtNs ? end - openedAtNs : 0
    }

    /// How long since its strand was last served.
    public func idleNs(at now: UInt64) -> UInt64 {
        let end = closedAtNs > 0 ? closedAtNs : now
        return end > lastActivityNs ? end - lastActivityNs : 0
    }

    /// How long its current wait (blocked or paused) has lasted, 0 when it does not wait.
    public func waitingNs(at now: UInt64) -> UInt64 {
        waitingSinceNs > 0 && now > waitingSinceNs && closedAtNs == 0 ? now - waitingSinceNs : 0
    }

    /// Bytes per second in both directions over the interval: the default sort key.
    public var bytesPerSecond: UInt64 { bytesInPerSecond &+ bytesOutPerSecond }

    func write(to words: UnsafeMutablePointer<UInt64>, _ store: (UnsafeMutablePointer<UInt64>, UInt64) -> Void) {
        var at = words
        for field in FrameLayout.connectionFields { at += field.store(self, to: at, store) }
    }

    mutating func read(from words: UnsafeMutablePointer<UInt64>, _ load: (UnsafeMutablePointer<UInt64>) -> UInt64) {
        var at = words
        for field in FrameLayout.connectionFields { at += field.load(into: &self, from: at, load) }
    }
}
