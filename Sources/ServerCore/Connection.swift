import CompletionPort
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One client connection: the per-handle data (its slot index is the completion key), its
/// echo buffer, and the per-I/O state of its receive and send.
///
/// Full duplex: the buffer is a ring. A receive fills the free part while a send drains the
/// filled part, so at most one receive and one send are in flight, on disjoint bytes. When the
/// ring is full (a client that does not read) receiving pauses until a send makes room, so a
/// connection never buffers more than its buffer holds. A receive that did not fill its space
/// (a whole message, request/response) is followed by the next one only once its echo's send
/// is done, at the start of the emptied ring: a connection keeps reusing the same bytes.
///
/// ## Buffers that grow while data flows
/// A connection starts on its own small buffer (`PortServer.smallBufferSize`, from the
/// connection table's slab). A receive that fills the ring says more is arriving than it
/// holds: the connection then borrows a large buffer (`ioBufferSize`, 256 KiB by default)
/// from the engine's `BufferPool`, moving what it holds, as soon as no send reads the small one.
/// When it has been quiet for a sweep interval, the engine's sweep asks it to give the large
/// buffer back (`shrinkArrived`): with nothing buffered and no send in flight, its pending
/// receive is cancelled (`CompletionPort.cancel`, as `CancelIoEx`) and the next receive goes
/// into the small buffer again. So bulk transfers move up to 256 KiB per system call (a C loop
/// with a 64 KiB buffer moves 64 KiB; measured faster than it, see Benchmarks/README.md), and an idle
/// connection — fresh, or after traffic — costs its object and 1 KiB.
///
/// ## Multishot receives (`EngineConfiguration.providedBuffers`)
/// On its small buffer a connection may keep one multishot receive armed instead: each arrival
/// is a provided buffer the kernel picked, numbered by the port. Workers push arrivals on
/// `arrivals` (lock-free); the owner orders them by number (`heldArrivals`, `nextShot`) and
/// copies each into the ring once it has room (`PortServer.deliverArrivals`); the receive's
/// last completion (`shotsEnded`) is applied only after every arrival before it.
///
/// ## Serialisation without a lock
/// Completions for one connection may reach two workers at once (its receive on one, its send on
/// another). A connection is a *strand*: `state` holds a busy bit plus one "arrived" bit per
/// event kind. A worker stores its result, then sets its bit together with busy; if busy was
/// already set, the owner will see the bit and process the result, and the worker moves on. The
/// owner takes all arrived bits, processes them, and releases busy only if no new bit arrived
/// meanwhile (compare-exchange), otherwise it loops. So exactly one thread at a time touches the
/// fields below, and no thread ever waits. `EchoTests.echoIntegrity` fails if two threads
/// ever process the same connection at once (bytes would be lost or reordered).
final class Connection: @unchecked Sendable {
    // @unchecked: the owner's fields are touched only by the strand's owner (above); results are written before the releasing RMW that hands them over; the rest are atomics.
    // Strand bits.
    static let busy: UInt32 = 1
    static let receiveArrived: UInt32 = 2
    static let sendArrived: UInt32 = 4
    static let closeArrived: UInt32 = 8
    static let shrinkArrived: UInt32 = 16
    /// Bytes of the multishot receive arrived (on the `arrivals` stack).
    static let shotArrived: UInt32 = 32
    /// The multishot receive ended (`shotsEnd`, `receiveResult`, `receiveErrno`).
    static let shotsEnded: UInt32 = 64
    /// The maintenance thread found the connection's deadline passed (`deadline`).
    static let deadlineArrived: UInt32 = 128
    /// An operator asked to close connection `operatorCloseID` (checked by the owner: the
    /// slot may serve another connection by then).
    static let operatorCloseArrived: UInt32 = 256
    static let arrivedMask: UInt32 = receiveArrived | sendArrived | closeArrived | shrinkArrived
        | shotArrived | shotsEnded | deadlineArrived | operatorCloseArrived
    /// The bits that are completions or packets (counted in the connection's figures).
    static let packetMask: UInt32 = receiveArrived | sendArrived | shotArrived | shotsEnded | deadlineArrived
        | operatorCloseArrived | shrinkArrived

    /// The completion key of this connection.
    let slot: Int
    /// Its figures for the connections view (written by the strand's owner).
    let figures: ConnectionFigures
    /// The connection an operator asked to close (`ConnectionFigures.id`): written by the
    /// command before it posts `operatorCloseArrived` (a releasing store), read by the owner (an
    /// acquiring load); a stale value only fails the id check, and nothing closes.
    let operatorCloseID = Atomic<UInt64>(0)
    /// The connection's own buffer, used whenever it holds no large one.
    let smallBuffer: UnsafeMutableRawBufferPointer
    let state = Atomic<UInt32>(0)
    /// Whether a receive completed since the engine's last sweep: set by the owner on a
    /// large buffer, taken by the sweep, which asks a connection without it to shrink.
    /// relaxed: a hint; a wrong read costs one shrink request or one sweep of delay.
    let active = Atomic<Bool>(false)
    /// Whether the connection holds a large buffer (read by the sweep without owning it).
    /// relaxed: a hint, as `active`.
    let holdsLarge = Atomic<Bool>(false)
    /// Whether the connection is in use (set at accept, cleared when it returns to the pool).
    /// Read by the drain without owning the strand.
    let isOpen = Atomic<Bool>(false)
    /// When the connection times out (`CIOURing_now_ns` clock), 0 for never: set by its
    /// handler (`ConnectionContext.setDeadline`) or by a lingering close, read by the
    /// maintenance thread, which posts `deadlineArrived` once it has passed. The owner checks
    /// it again before closing (a handler may have moved it since, or the slot serves another
    /// connection). relaxed: a hint read on its own; a stale read costs one packet that finds
    /// nothing to do, or one more tick.
    let deadline = Atomic<Int64>(0)
    /// A `deadlineArrived` packet is queued for this slot (set by the maintenance thread,
    /// cleared by the worker that dequeues it): one at a time. relaxed, as `deadline`.
    let deadlinePosted = Atomic<Bool>(false)

    // Results posted by arriving workers, read by the owner after the acquiring RMW that takes
    // the arrived bits (they are written before the releasing RMW that sets the bit).
    var receiveResult: Int32 = 0
    var receiveErrno: Int32 = 0
    var sendResult: Int32 = 0
    var sendErrno: Int32 = 0
    /// The sequence number after the multishot receive's last arrival (see `Arrivals`).
    var shotsEnd: UInt32 = 0
    /// Multishot arrivals pushed by workers and not yet taken by the owner: id + 1 of the top
    /// entry of a stack in `PortServer.arrivals`, 0 when empty.
    let arrivals = Atomic<UInt32>(0)

    // Owned by the strand owner.
    var fd: CInt = -1
    /// The buffer in use: `smallBuffer`, or the pool's buffer `largeIndex`.
    var buffer: UnsafeMutableRawBufferPointer
    /// The pool buffer held, or -1.
    var largeIndex = -1
    /// Ring position of the first byte not yet sent, and how many bytes the ring holds.
    var head = 0
    var buffered = 0
    /// Bytes the receive in flight was given, and whether the last receive filled them.
    var receiveLength = 0
    var moreWaiting = false
    /// The receive in flight is multishot; its arrivals the owner holds (ordered, id + 1 of
    /// the first), the sequence number it copies next, and whether its end has arrived.
    var multishot = false
    var heldArrivals: UInt32 = 0
    var nextShot: UInt32 = 0
    var multishotEnded = false
    /// One-shot receives to make before arming a multishot receive again: set when one found
    /// no provided buffer free (ENOBUFS).
    var oneShotReceivesLeft = 0
    static let oneShotReceivesAfterENOBUFS = 64
    /// The small ring filled up: borrow a large buffer when no send reads the small one.
    var wantsLarge = false
    /// The sweep asked for the large buffer back; `cancelling`: its receive is being cancelled.
    var wantsSmall = false
    var cancelling = false
    var receiveToken = OperationToken.none
    var receiving = false
    var sending = false
    var peerClosed = false
    var closing = false
    var closeIssued = false
    var failed = false
    var inflight = 0
    var receiveSubmitter = 0
    var sendSubmitter = 0

    // MARK: the handler's side (see `PortServer+Handlers.swift`)
    // A protocol that replies with its input (echo) has no handler: `buffer` is its ring.
    // Otherwise `buffer` holds the input linearly (`head`, `buffered`: unconsumed bytes) and
    // what is sent comes from `output`.

    /// Made once per slot, on its first connection (`ServerProtocol.makeHandler`).
    var handler: (any ConnectionHandler)?
    /// The connection's own output buffer (empty when there is no handler).
    let smallOutput: UnsafeMutableRawBufferPointer
    /// The output buffer in use: `smallOutput`, or the pool's buffer `outputLargeIndex`.
    var output: UnsafeMutableRawBufferPointer
    var outputLargeIndex = -1
    /// Output written and not yet sent: `outputCount` bytes from `outputHead`.
    var outputHead = 0
    var outputCount = 0
    /// The handler has been told the connection opened.
    var handlerOpened = false
    /// The handler asked to be called again only once the output has been sent.
    var readingPaused = false
    /// The handler asked to close once the output has been sent.
    var closeAfterFlush = false
    /// ... and to linger first (`HandlerVerdict.lingeringClose`); `lingering`: the sending
    /// side is shut down and what arrives is discarded until the peer closes or the deadline.
    var lingerAfterFlush = false
    var lingering = false
    /// Why the connection is closing (told to the handler); nil while it is not.
    var closeReason: CloseReason?

    /// `smallBuffer` and `smallOutput` belong to the connection table's slab, which outlives
    /// the connection.
    init(slot: Int, smallBuffer: UnsafeMutableRawBufferPointer, smallOutput: UnsafeMutableRawBufferPointer,
         figures: ConnectionFigures) {
        self.slot = slot
        self.figures = figures
        self.smallBuffer = smallBuffer
        buffer = smallBuffer
        self.smallOutput = smallOutput
        output = smallOutput
    }

    /// Resets the owner's fields for a new connection on `fd` (its large buffer, if any, has
    /// been returned).
    func reset(fd: CInt) {
        self.fd = fd
        buffer = smallBuffer
        largeIndex = -1
        head = 0
        buffered = 0
        receiveLength = 0
        moreWaiting = false
        multishot = false
        heldArrivals = 0
        nextShot = 0
        multishotEnded = false
        oneShotReceivesLeft = 0
        wantsLarge = false
        wantsSmall = false
        cancelling = false
        receiveToken = .none
        receiving = false
        sending = false
        peerClosed = false
        closing = false
        closeIssued = false
        failed = false
        inflight = 0
        receiveSubmitter = 0
        sendSubmitter = 0
        output = smallOutput
        outputLargeIndex = -1
        outputHead = 0
        outputCount = 0
        handlerOpened = false
        readingPaused = false
        closeAfterFlush = false
        lingerAfterFlush = false
        lingering = false
        closeReason = nil
        // relaxed: see `deadline`; the owner's store, before the slot's connection is open.
        deadline.store(0, ordering: .relaxed)
    }

    /// Publishes who last ran the strand and who submitted the operations in flight, packed as
    /// slot index + 1 (0: none) in 16-bit fields: bits 0–15 the worker that last ran the strand,
    /// 16–31 the submitter of the receive in flight, 32–47 of the send in flight. Written by the
    /// strand owner, read by the sampler (`ConnectionFigures.Word.attribution`).
    @inline(__always)
    func publishAttribution(lastWorker: Int) {
        let value = UInt64(truncatingIfNeeded: lastWorker & 0xFFFF)
            | UInt64(truncatingIfNeeded: (receiving ? receiveSubmitter : 0) & 0xFFFF) << 16
            | UInt64(truncatingIfNeeded: (sending ? sendSubmitter : 0) & 0xFFFF) << 32
        // A sampled attribution, read on its own, on the connection's own figures line.
        figures.store(ConnectionFigures.Word.attribution, value)
    }

    /// Records an event and returns the bits the caller must now process as the owner, or 0
    /// when the current owner will process it.
    func arrive(_ bit: UInt32) -> UInt32 {
        // acquiring and releasing: releasing publishes the result fields written before this
        // call to whoever takes the bit; acquiring (when we become the owner) makes the previous
        // owner's writes to the owned fields visible, pairing with its releasing hand-off below.
        let old = state.bitwiseOr(bit | Self.busy, ordering: .acquiringAndReleasing).oldValue
        guard old & Self.busy == 0 else { return 0 }
        return take()
    }

    /// Takes the strand of a pooled connection (free, nothing arrived). False if it is not free.
    func acquireFresh() -> Bool {
        // acquiring: the previous owner's writes (its releasing `release`) are visible.
        state.compareExchange(expected: 0, desired: Self.busy, ordering: .acquiring).exchanged
    }

    /// The owner takes every arrived bit.
    func take() -> UInt32 {
        // acquiring: pairs with the releasing part of `arrive`, so the results are visible.
        state.bitwiseAnd(~Self.arrivedMask, ordering: .acquiring).oldValue & Self.arrivedMask
    }

    /// The owner tries to hand the strand back. Returns false if new events arrived (the owner
    /// keeps it and must `take()` again).
    func release() -> Bool {
        // releasing: the owned fields written while we held the strand happen before the next
        // owner's acquiring `arrive`.
        state.compareExchange(expected: Self.busy, desired: 0, ordering: .releasing).exchanged
    }

    var free: Int { buffer.count - buffered }

    /// Appends `count` bytes to the ring (the caller checked `free`), wrapping at its end.
    func append(_ bytes: UnsafeRawPointer, count: Int) {
        if buffered == 0 { head = 0 }
        let capacity = buffer.count
        let tail = (head + buffered) % capacity
        let first = min(count, capacity - tail)
        (buffer.baseAddress! + tail).copyMemory(from: bytes, byteCount: first)
        if count > first {
            buffer.baseAddress!.copyMemory(from: bytes + first, byteCount: count - first)
        }
        buffered += count
    }

    /// Moves the ring's bytes to the front of `target` and makes it the buffer in use. No
    /// receive or send may be in flight, and `target` must hold `buffered` bytes.
    func moveContents(to target: UnsafeMutableRawBufferPointer) {
        let capacity = buffer.count
        let first = min(buffered, capacity - head)
        if first > 0 {
            target.baseAddress!.copyMemory(from: buffer.baseAddress! + head, byteCount: first)
        }
        if buffered > first {
            (target.baseAddress! + first).copyMemory(from: buffer.baseAddress!, byteCount: buffered - first)
        }
        buffer = target
        head = 0
    }
}
