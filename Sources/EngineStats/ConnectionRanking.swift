/// Chooses which connections a frame carries: a bounded number, so that a frame and the
/// sampler's cost stay flat at 10 000 connections.
///
/// First the connections that wait longest (blocked in their handler, paused by a client that
/// does not read, or whose last packet waited longest in the port's FIFO) — up to
/// `waitingReserve` of them, always, however little they move — then the rest by bytes per
/// second. Ties go to the older connection (the smaller id), so the order is the same for the
/// same figures. One pass over the candidates, keeping the best in small sorted arrays: no
/// sort of the whole table.
public enum ConnectionRanking {
    /// A connection's figures for the choice.
    public struct Candidate: Sendable, Hashable {
        /// Where the caller keeps it (returned by `select`).
        public var index: Int
        public var id: UInt64
        /// The sort key: bytes (in + out) over the interval.
        public var rate: UInt64
        /// How long it has waited, in ns (0: not waiting).
        public var waitNs: UInt64

        public init(index: Int, id: UInt64, rate: UInt64, waitNs: UInt64) {
            (self.index, self.id, self.rate, self.waitNs) = (index, id, rate, waitNs)
        }
    }

    /// How many of `limit` rows go to the longest waiting: a quarter, at least one.
    public static func waitingReserve(limit: Int) -> Int { limit <= 0 ? 0 : max(1, limit / 4) }

    /// The lists `select` keeps while it chooses: reused from one call to the next, so a
    /// sampler that keeps one allocates nothing per frame.
    public struct Workspace: Sendable {
        var waiting: [Candidate] = []
        var busiest: [Candidate] = []
        public init() {}
    }

    /// The candidates to show, at most `limit`: the `waitingReserve` longest waiting (wait > 0)
    /// first, longest first, then the highest rates, highest first. `chosen` is cleared and
    /// filled with the candidates' `index` values (its capacity is reused).
    /// (An array, not any collection: called across modules, a generic would run unspecialised,
    /// several times slower per candidate.)
    public static func select(_ candidates: [Candidate], limit: Int, waitingReserve: Int,
                              into chosen: inout [Int]) {
        var workspace = Workspace()
        select(candidates, limit: limit, waitingReserve: waitingReserve, into: &chosen, workspace: &workspace)
    }

    /// `select`, keeping its lists in `workspace`.
    public static func select(_ candidates: [Candidate], limit: Int, waitingReserve: Int,
                              into chosen: inout [Int], workspace: inout Workspace) {
        chosen.removeAll(keepingCapacity: true)
        workspace.waiting.removeAll(keepingCapacity: true)
        workspace.busiest.removeAll(keepingCapacity: true)
        guard limit > 0 else { return }
        let reserve = min(limit, max(0, waitingReserve))
        if reserve > 0 {
            for candidate in candidates where candidate.waitNs > 0 {
                insert(candidate, into: &workspace.waiting, bound: reserve, before: waitsLonger)
            }
        }
        let rest = limit - workspace.waiting.count
        if rest > 0 {
            for candidate in candidates {
                if candidate.waitNs > 0, !workspace.waiting.isEmpty, isAmong(candidate, workspace.waiting) { continue }
                insert(candidate, into: &workspace.busiest, bound: rest, before: movesMore)
            }
        }
        for candidate in workspace.waiting { chosen.append(candidate.index) }
        for candidate in workspace.busiest { chosen.append(candidate.index) }
    }

    /// Longer wait first; the older connection on a tie.
    static func waitsLonger(_ a: Candidate, _ b: Candidate) -> Bool {
        a.waitNs != b.waitNs ? a.waitNs > b.waitNs : a.id < b.id
    }

    /// Higher rate first; the older connection on a tie.
    static func movesMore(_ a: Candidate, _ b: Candidate) -> Bool {
        a.rate != b.rate ? a.rate > b.rate : a.id < b.id
    }

    /// Whether `candidate` made it into `waiting` (it is then not ranked by rate again).
    private static func isAmong(_ candidate: Candidate, _ waiting: [Candidate]) -> Bool {
        // The list holds the best waiting ones in a strict order (ids are unique): a waiting
        // candidate is in it exactly when it does not rank after its last.
        !waitsLonger(waiting[waiting.count - 1], candidate)
    }

    /// Inserts into a list kept sorted by `before` and at most `bound` long.
    private static func insert(_ candidate: Candidate, into list: inout [Candidate], bound: Int,
                               before: (Candidate, Candidate) -> Bool) {
        if list.count == bound {
            guard before(candidate, list[bound - 1]) else { return }
            list.removeLast()
        }
        var position = list.count
        while position > 0 && before(candidate, list[position - 1]) { position -= 1 }
        list.insert(candidate, at: position)
    }
}
