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
/// connection never buffers more than `ioBufferSize` bytes.
///
/// ## Serialisation without a lock
/// Completions for one connection may reach two workers at once (its receive on one, its send on
/// another). A connection is a *strand*: `state` holds a busy bit plus one "arrived" bit per
/// event kind. A worker stores its result, then sets its bit together with busy; if busy was
/// already set, the owner will see the bit and process the result, and the worker moves on. The
/// owner takes all arrived bits, processes them, and releases busy only if no new bit arrived
/// meanwhile (compare-exchange), otherwise it loops. So exactly one thread at a time touches the
/// fields below, and no thread ever waits. `EchoEngineTests.echoIntegrity` fails if two threads
/// ever process the same connection at once (bytes would be lost or reordered).
final class Connection: @unchecked Sendable {
    // Strand bits.
    static let busy: UInt32 = 1
    static let receiveArrived: UInt32 = 2
    static let sendArrived: UInt32 = 4
    static let closeArrived: UInt32 = 8
    static let arrivedMask: UInt32 = receiveArrived | sendArrived | closeArrived

    /// The completion key of this connection.
    let slot: Int
    let buffer: UnsafeMutableRawBufferPointer
    let state = Atomic<UInt32>(0)
    /// Whether the connection is in use (set at accept, cleared when it returns to the pool).
    /// Read by the drain without owning the strand.
    let isOpen = Atomic<Bool>(false)
    /// Which workers the sampler charges this connection and its operations to, packed as
    /// slot index + 1 (0: none) in 16-bit fields: bits 0–15 the worker that last ran the
    /// strand, 16–31 the submitter of the receive in flight, 32–47 of the send in flight.
    /// Written by the strand owner, read by the sampler.
    let attribution = Atomic<UInt64>(0)

    // Results posted by arriving workers, read by the owner after the acquiring RMW that takes
    // the arrived bits (they are written before the releasing RMW that sets the bit).
    var receiveResult: Int32 = 0
    var receiveErrno: Int32 = 0
    var sendResult: Int32 = 0
    var sendErrno: Int32 = 0

    // Owned by the strand owner.
    var fd: CInt = -1
    /// Bytes received and bytes sent since the connection opened; the ring holds the difference.
    var received = 0
    var sent = 0
    var receiving = false
    var sending = false
    var peerClosed = false
    var closing = false
    var closeIssued = false
    var failed = false
    var inflight = 0
    var receiveSubmitter = 0
    var sendSubmitter = 0

    /// `buffer` belongs to the connection table's slab, which outlives the connection.
    init(slot: Int, buffer: UnsafeMutableRawBufferPointer) {
        self.slot = slot
        self.buffer = buffer
    }

    /// Resets the owner's fields for a new connection on `fd`.
    func reset(fd: CInt) {
        self.fd = fd
        received = 0
        sent = 0
        receiving = false
        sending = false
        peerClosed = false
        closing = false
        closeIssued = false
        failed = false
        inflight = 0
        receiveSubmitter = 0
        sendSubmitter = 0
    }

    /// Publishes who last ran the strand and who submitted the operations in flight.
    @inline(__always)
    func publishAttribution(lastWorker: Int) {
        let value = UInt64(truncatingIfNeeded: lastWorker & 0xFFFF)
            | UInt64(truncatingIfNeeded: (receiving ? receiveSubmitter : 0) & 0xFFFF) << 16
            | UInt64(truncatingIfNeeded: (sending ? sendSubmitter : 0) & 0xFFFF) << 32
        // relaxed: a sampled attribution, read on its own; the line is this connection's,
        // already written by the owner, so the store costs no extra sharing.
        attribution.store(value, ordering: .relaxed)
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

    var buffered: Int { received - sent }
    var free: Int { buffer.count - buffered }
}
