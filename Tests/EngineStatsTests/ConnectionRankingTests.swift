@testable import EngineStats
import Testing

/// The choice of a frame's connection rows (`ConnectionRanking`): bounded, the longest
/// waiting always in, the rest by bytes per second, ties to the older connection.
@Suite struct ConnectionRankingTests {
    typealias Candidate = ConnectionRanking.Candidate

    func choose(_ candidates: [Candidate], limit: Int, reserve: Int? = nil) -> [Int] {
        var chosen: [Int] = []
        ConnectionRanking.select(candidates, limit: limit,
                                 waitingReserve: reserve ?? ConnectionRanking.waitingReserve(limit: limit), into: &chosen)
        return chosen
    }

    @Test func theBusiestComeFirstAndTheRowsAreBounded() {
        let candidates = (0..<10_000).map { Candidate(index: $0, id: UInt64($0 + 1), rate: UInt64(($0 * 7919) % 10_007), waitNs: 0) }
        let chosen = choose(candidates, limit: 32)
        #expect(chosen.count == 32)
        let expected = candidates.sorted { ($0.rate, UInt64.max - $0.id) > ($1.rate, UInt64.max - $1.id) }.prefix(32).map(\.index)
        #expect(chosen == Array(expected))
    }

    @Test func theLongestWaitingAreAlwaysIn() {
        // 100 busy connections and 3 that wait without moving a byte.
        var candidates = (0..<100).map { Candidate(index: $0, id: UInt64($0 + 1), rate: 1_000 + UInt64($0), waitNs: 0) }
        candidates.append(Candidate(index: 100, id: 101, rate: 0, waitNs: 5_000_000))
        candidates.append(Candidate(index: 101, id: 102, rate: 0, waitNs: 9_000_000))
        candidates.append(Candidate(index: 102, id: 103, rate: 0, waitNs: 1_000))
        let chosen = choose(candidates, limit: 8)
        #expect(ConnectionRanking.waitingReserve(limit: 8) == 2)
        // The two longest waiting, longest first, then six by rate.
        #expect(chosen == [101, 100, 99, 98, 97, 96, 95, 94])
    }

    @Test func unusedWaitingRowsGoToTheBusiest() {
        let candidates = (0..<10).map { Candidate(index: $0, id: UInt64($0 + 1), rate: UInt64($0), waitNs: $0 == 0 ? 7 : 0) }
        let chosen = choose(candidates, limit: 4)
        #expect(chosen == [0, 9, 8, 7])
    }

    @Test func aWaitingConnectionIsNotShownTwice() {
        // It waits and is also the busiest: one row.
        let candidates = [Candidate(index: 0, id: 1, rate: 500, waitNs: 10),
                          Candidate(index: 1, id: 2, rate: 100, waitNs: 0),
                          Candidate(index: 2, id: 3, rate: 50, waitNs: 0)]
        #expect(choose(candidates, limit: 4) == [0, 1, 2])
        #expect(choose(candidates, limit: 2) == [0, 1])
    }

    @Test func tiesGoToTheOlderConnectionWhateverTheOrder() {
        // Equal rates: the smaller id (older) first, wherever the slots are.
        let candidates = [Candidate(index: 0, id: 40, rate: 9, waitNs: 0),
                          Candidate(index: 1, id: 7, rate: 9, waitNs: 0),
                          Candidate(index: 2, id: 12, rate: 9, waitNs: 0),
                          Candidate(index: 3, id: 3, rate: 1, waitNs: 0)]
        #expect(choose(candidates, limit: 2, reserve: 0) == [1, 2])
        #expect(choose(Array(candidates.reversed()), limit: 2, reserve: 0) == [1, 2])
        // Equal waits likewise.
        let waiting = [Candidate(index: 0, id: 9, rate: 0, waitNs: 5), Candidate(index: 1, id: 2, rate: 0, waitNs: 5)]
        #expect(choose(waiting, limit: 1, reserve: 1) == [1])
    }

    @Test func churnAndSlotReuse() {
        // A slot reused by a new connection is a new candidate (a new id): the old one's
        // figures do not carry over, and with equal rates the older connection stays ahead.
        var candidates = [Candidate(index: 0, id: 1, rate: 100, waitNs: 0), Candidate(index: 1, id: 2, rate: 100, waitNs: 0)]
        #expect(choose(candidates, limit: 1, reserve: 0) == [0])
        candidates[0] = Candidate(index: 0, id: 3, rate: 100, waitNs: 0)
        #expect(choose(candidates, limit: 1, reserve: 0) == [1])
        // Nothing open: nothing chosen, and a reused result array is emptied.
        var chosen = [1, 2, 3]
        ConnectionRanking.select([Candidate](), limit: 32, waitingReserve: 8, into: &chosen)
        #expect(chosen.isEmpty)
        ConnectionRanking.select(candidates, limit: 0, waitingReserve: 0, into: &chosen)
        #expect(chosen.isEmpty)
    }

    @Test func peerAddressesReadAsUsersWriteThem() {
        #expect(PeerAddress(ipv4: (127, 0, 0, 1), port: 5150).description == "127.0.0.1:5150")
        var loopback6 = [UInt8](repeating: 0, count: 16)
        loopback6[15] = 1
        #expect(PeerAddress(ipv6: loopback6, port: 80).description == "[::1]:80")
        let documentation: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]
        #expect(PeerAddress(ipv6: documentation, port: 443).description == "[2001:db8::1:0:0:1]:443")
        #expect(PeerAddress().description == "?")
    }

    @Test func connectionRowsSurviveTheRing() {
        let ring = StatsRing(capacity: 4, workerCapacity: 2, connectionCapacity: 3)
        var frame = StatsFrame()
        for index in 0..<5 {
            var row = ConnectionSample()
            row.id = UInt64(index + 1)
            row.slot = index
            row.state = index == 4 ? .closed : .paused
            row.closeReason = index == 4 ? .byOperator : .none
            row.bytesIn = UInt64(index) * 1000
            row.peer = PeerAddress(ipv4: (10, 0, 0, UInt8(index)), port: 1000)
            row.worker = -1
            frame.connections.append(row)
        }
        ring.publish(frame)
        let read = ring.latest()
        // Bounded by the ring's connection capacity; every field comes back.
        #expect(read?.connections == Array(frame.connections.prefix(3)))
        #expect(read?.connections.first?.peer.description == "10.0.0.0:1000")
    }
}
