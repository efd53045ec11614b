import CAtomicWords
import EngineStats

/// One connection's figures for the connections view: 16 words in the connection table's
/// figures slab, written only by whoever owns the connection's strand (a relaxed load and a
/// relaxed store: no read-modify-write, no lock), read by the sampler.
///
/// The words of one connection share two cache lines nobody else writes. The sampler reads
/// them without owning the strand: each word is atomic, the set is not. It takes the row only
/// if `id` reads the same non-zero value before and after (an acquiring load, then an
/// acquiring fence before the re-check), so a row never mixes two connections of one slot;
/// within one connection, a row may mix figures a few nanoseconds apart, which a sample is.
struct ConnectionFigures {
    /// Word indices.
    enum Word {
        /// The connection's number (`acceptedCount` at its accept); 0 while the slot is free.
        static let id = 0
        static let openedAt = 1
        static let bytesIn = 2
        static let bytesOut = 3
        static let completions = 4
        static let handlerNs = 5
        /// Bits 0–31 the longest FIFO wait of its packets, 32–63 the last one's, in µs.
        static let waits = 6
        /// Which workers the sampler charges it and its operations to (`Connection.publishAttribution`).
        static let attribution = 7
        static let lastActivity = 8
        /// Bits 0–7 `ConnectionState`, 8–15 operations in flight, 16 large input, 17 large output.
        static let status = 9
        static let waitingSince = 10
        static let handlerFigure = 11
        /// Bits 0–31 buffer bytes held, 32–63 bytes buffered.
        static let buffers = 12
        static let peerMeta = 13
        static let peerHigh = 14
        static let peerLow = 15
        static let count = 16
    }

    let words: UnsafeMutablePointer<UInt64>

    @inline(__always)
    func load(_ word: Int) -> UInt64 {
        // relaxed: a sampled figure, read on its own (see the type's comment for `id`).
        AtomicWord_loadRelaxed(words + word)
    }

    @inline(__always)
    func store(_ word: Int, _ value: UInt64) {
        // relaxed: one writer, the strand's owner; readers sample it.
        AtomicWord_storeRelaxed(words + word, value)
    }

    @inline(__always)
    func add(_ word: Int, _ amount: UInt64) {
        AtomicWord_addSingleWriter(words + word, amount)
    }

    /// Starts a new connection's figures (its owner, before its first completion).
    func open(id: UInt64, at now: UInt64, peer: PeerAddress) {
        // releasing fence: the slot's id = 0 (its last connection's `close`) is ordered before
        // the new figures, so a sampler that read the old id twice around them read none of them.
        AtomicWord_fenceRelease()
        for word in 1..<Word.count { store(word, 0) }
        store(Word.openedAt, now)
        store(Word.lastActivity, now)
        store(Word.status, ConnectionState.receiving.rawValue)
        store(Word.peerMeta, peer.meta)
        store(Word.peerHigh, peer.high)
        store(Word.peerLow, peer.low)
        // releasing: the figures above are in place before a sampler that reads this id.
        AtomicWord_storeRelease(words + Word.id, id)
    }

    /// The slot is free again: the sampler skips it.
    func close() { store(Word.id, 0) }

    var id: UInt64 { load(Word.id) }

    /// Records the packet the owner now serves: its FIFO wait and when it started.
    @inline(__always)
    func served(at start: UInt64, queueWait: UInt64, completions: UInt64) {
        add(Word.completions, completions)
        store(Word.lastActivity, start)
        let waits = load(Word.waits)
        let micros = UInt64(UInt32(clamping: queueWait / 1000))
        store(Word.waits, max(waits & 0xFFFF_FFFF, micros) | micros << 32)
    }

    /// Records the connection's state, and since when it waits: blocked or paused since it
    /// became so; sending since its last send completed (`progressed`: one completed in this
    /// pass) or began — a send that does not complete for long is a client that does not read
    /// (the sampler shows it as paused, `ConnectionSample.stalledSendNs`). 0 otherwise.
    @inline(__always)
    func record(state: ConnectionState, inflight: Int, largeInput: Bool, largeOutput: Bool,
                held: Int, buffered: Int, progressed: Bool, now: UInt64) {
        let status = state.rawValue | UInt64(clamping: min(inflight, 255)) << 8
            | (largeInput ? 1 << 16 : 0) | (largeOutput ? 1 << 17 : 0)
        let previous = load(Word.status)
        if previous != status { store(Word.status, status) }
        let since = load(Word.waitingSince)
        switch state {
        case .paused, .blocked:
            if since == 0 { store(Word.waitingSince, max(now, 1)) }
        case .sending:
            if since == 0 || progressed { store(Word.waitingSince, max(now, 1)) }
        default:
            if since != 0 { store(Word.waitingSince, 0) }
        }
        let buffers = UInt64(UInt32(clamping: held)) | UInt64(UInt32(clamping: buffered)) << 32
        if load(Word.buffers) != buffers { store(Word.buffers, buffers) }
    }

    /// Shows the connection as blocked (its handler entered the port's blocking scope) from
    /// `now` (a nested scope keeps the outer one's start); returns what to put back with
    /// `endBlocking`.
    func beginBlocking(now: UInt64) -> (status: UInt64, since: UInt64) {
        let status = load(Word.status), since = load(Word.waitingSince)
        store(Word.status, status & ~0xFF | ConnectionState.blocked.rawValue)
        if status & 0xFF != ConnectionState.blocked.rawValue || since == 0 { store(Word.waitingSince, max(now, 1)) }
        return (status, since)
    }

    /// The handler left the blocking scope: the status and wait before it (the owner records
    /// the state anew when the strand's pass ends).
    func endBlocking(restoring saved: (status: UInt64, since: UInt64)) {
        store(Word.status, saved.status)
        store(Word.waitingSince, saved.since)
    }

    /// The row as the words hold it now (the caller checks `id` around the read). `worker` is
    /// the slot index + 1 of the worker that last ran the strand (the sampler maps it to an id).
    /// FIFO waits are kept in µs.
    func sample(slot: Int) -> ConnectionSample {
        var row = ConnectionSample()
        row.id = load(Word.id)
        row.slot = slot
        row.openedAtNs = load(Word.openedAt)
        row.bytesIn = load(Word.bytesIn)
        row.bytesOut = load(Word.bytesOut)
        row.completions = load(Word.completions)
        row.handlerNs = load(Word.handlerNs)
        let waits = load(Word.waits)
        row.longestWaitNs = (waits & 0xFFFF_FFFF) &* 1000
        row.lastWaitNs = (waits >> 32) &* 1000
        row.worker = Int(load(Word.attribution) & 0xFFFF)
        row.lastActivityNs = load(Word.lastActivity)
        let status = load(Word.status)
        row.stateWord = status & 0xFF
        row.inflight = Int(status >> 8 & 0xFF)
        row.largeInput = status & 1 << 16 != 0
        row.largeOutput = status & 1 << 17 != 0
        row.waitingSinceNs = load(Word.waitingSince)
        row.handlerFigure = load(Word.handlerFigure)
        let buffers = load(Word.buffers)
        row.heldBytes = Int(buffers & 0xFFFF_FFFF)
        row.bufferedBytes = Int(buffers >> 32)
        row.peerMeta = load(Word.peerMeta)
        row.peerHigh = load(Word.peerHigh)
        row.peerLow = load(Word.peerLow)
        return row
    }
}
