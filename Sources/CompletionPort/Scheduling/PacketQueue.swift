/// The port's FIFO of packets waiting for a thread: a ring buffer that doubles when full.
///
/// Growth is the only allocation, and it is amortised away once the queue has seen its
/// working depth. Confined to the scheduler's lock.
struct PacketQueue: ~Copyable {
    private var storage: UnsafeMutablePointer<Completion>
    private var capacity: Int
    private var head = 0
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var rounded = 16
        while rounded < capacity { rounded <<= 1 }
        self.capacity = rounded
        storage = .allocate(capacity: self.capacity)
    }

    deinit {
        storage.deinitialize(count: 0)
        storage.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    /// When the packet at the head entered the FIFO (`Completion.queuedAtNs`); 0 when empty.
    /// The head is the oldest, nearly always: packets are appended as they complete, and a
    /// batch given back goes in front with its original stamps. (Two give-backs in a row put
    /// the later one's packets, dequeued later and so younger, in front of the earlier one's;
    /// the age then reads low until those are taken — tens of microseconds at most.)
    var oldestQueuedAtNs: Int64 { count == 0 ? 0 : storage[head].queuedAtNs }

    mutating func append(_ packet: Completion) {
        if count == capacity { grow() }
        (storage + ((head &+ count) & (capacity - 1))).initialize(to: packet)
        count &+= 1
    }

    /// Removes the oldest packet. The queue must not be empty.
    mutating func removeFirst() -> Completion {
        let packet = (storage + head).move()
        head = (head &+ 1) & (capacity - 1)
        count &-= 1
        return packet
    }

    /// Puts `packets` back in front of the queue, in their order: the first of them leaves next.
    mutating func prepend(_ packets: UnsafeMutableBufferPointer<Completion>) {
        while count + packets.count > capacity { grow() }
        var index = packets.count
        while index > 0 {
            index -= 1
            head = (head &- 1) & (capacity - 1)
            (storage + head).initialize(to: packets[index])
            count &+= 1
        }
    }

    private mutating func grow() {
        let newCapacity = capacity * 2
        let newStorage = UnsafeMutablePointer<Completion>.allocate(capacity: newCapacity)
        for i in 0..<count {
            (newStorage + i).initialize(to: (storage + ((head + i) & (capacity - 1))).move())
        }
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
        head = 0
    }
}
