import CompletionPort
import Loopback
import Synchronization
import Testing

/// The lock-free index stack behind the port's free slots and the engine's buffer pools.
@Suite struct IndexStackTests {
    @Test func aFilledStackPopsInOrderAndAnEmptyOneHasNothing() {
        let filled = IndexStack(capacity: 3, filled: true)
        #expect([filled.pop(), filled.pop(), filled.pop(), filled.pop()] == [0, 1, 2, nil])
        let empty = IndexStack(capacity: 3, filled: false)
        #expect(empty.pop() == nil)
        empty.push(2)
        empty.push(0)
        #expect([empty.pop(), empty.pop(), empty.pop()] == [0, 2, nil])
    }

    @Test func threadsPoppingAndPushingNeverShareAnIndexOrLoseOne() {
        let capacity = 8
        let stack = IndexStack(capacity: capacity, filled: true)
        // One owner flag per index: a pop that hands out an index already out trips it.
        let owned = UnsafeMutablePointer<Atomic<Bool>>.allocate(capacity: capacity)
        for i in 0..<capacity { (owned + i).initialize(to: Atomic(false)) }
        defer {
            owned.deinitialize(count: capacity)
            owned.deallocate()
        }
        let doubleOwned = Atomic<Int>(0)
        nonisolated(unsafe) let flags = owned
        let threads = (0..<4).map { _ in
            JoinableThread {
                for _ in 0..<50_000 {
                    guard let index = stack.pop() else { continue }
                    if flags[index].exchange(true, ordering: .acquiringAndReleasing) {
                        doubleOwned.add(1, ordering: .relaxed)
                    }
                    flags[index].store(false, ordering: .releasing)
                    stack.push(index)
                }
            }
        }
        threads.forEach { $0.join() }
        #expect(doubleOwned.load(ordering: .relaxed) == 0)
        var seen = Set<Int>()
        while let index = stack.pop() { seen.insert(index) }
        #expect(seen == Set(0..<capacity))
    }
}
