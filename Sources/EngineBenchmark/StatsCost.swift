import CIOURing
import ServerCore
import EngineStats

/// `--stats`: what publishing worker statistics costs.
///
/// 1. The counter updates a worker makes per receive completion (completion count + bytes),
///    and per dequeue (two state transitions), in a tight loop on a real slot: ns each.
/// 2. Echo throughput with counting on (sampler at 50 ms, ten times the default rate) and off,
///    interleaved round by round in one run; medians and their ratio.
enum StatsCost {
    static func run(seconds: Double, rounds: Int) {
        let slots = WorkerSlots(capacity: 4)
        guard let slot = slots.claim(workerID: 0, now: 0) else { return }
        let iterations = 200_000_000
        var start = CIOURing_now_ns()
        for index in 0..<iterations {
            slot.countReceiveCompletion()
            slot.countBytesIn(UInt64(truncatingIfNeeded: index & 127))
        }
        let perCompletion = Double(CIOURing_now_ns() - start) / Double(iterations)
        let transitions = 20_000_000
        start = CIOURing_now_ns()
        for index in 0..<transitions {
            slot.enter(index & 1 == 0 ? .running : .waiting, at: UInt64(index))
        }
        let perTransition = Double(CIOURing_now_ns() - start) / Double(transitions)
        // Both histograms, as a worker records them: a queue wait and a service time per
        // packet, over values that spread across the buckets.
        let recordings = 100_000_000
        start = CIOURing_now_ns()
        for index in 0..<recordings {
            let value = UInt64(truncatingIfNeeded: (index &* 2_654_435_761) & 0xFF_FFFF) &+ 1000
            slot.recordQueueWait(value)
            slot.recordService(value &* 3)
        }
        let perRecording = Double(CIOURing_now_ns() - start) / Double(recordings)
        // The clock read each packet's start costs (its queue wait ends and the previous
        // packet's service ends there).
        let clockReads = 50_000_000
        var sink: Int64 = 0
        start = CIOURing_now_ns()
        for _ in 0..<clockReads { sink &+= CIOURing_now_ns() }
        let perClockRead = Double(CIOURing_now_ns() - start) / Double(clockReads)
        var frame: [WorkerSample] = []
        _ = slots.sample(into: &frame, now: 1)
        print("counter updates per receive completion: \(fixed2(perCompletion)) ns (\(iterations) iterations)")
        print("state transition (twice per dequeue, plus a clock read each): \(fixed2(perTransition)) ns")
        print("queue-wait + service-time histogram recording (both, one each per packet): \(fixed2(perRecording)) ns")
        print("clock read per packet start: \(fixed2(perClockRead)) ns\(sink == 0 ? " " : "")")

        print("echo 100 conns × 128 B, \(seconds) s per figure, \(rounds) rounds, counting on/off interleaved")
        var on: [Double] = [], off: [Double] = []
        for round in 1...rounds {
            for counting in [true, false] {
                var configuration = EngineConfiguration()
                configuration.port = 0
                configuration.countsWorkerActivity = counting
                configuration.statsPeriodMilliseconds = 50
                guard let engine = try? PortServer(configuration: configuration) else { return }
                let result = drive(port: engine.listenPort, connections: 100, size: 128, seconds: seconds)
                _ = engine.drain()
                let rate = Double(result.roundTrips) / result.seconds
                if counting { on.append(rate) } else { off.append(rate) }
                print("  round \(round) counting \(counting ? "on " : "off"): \(Int(rate)) round trips/s")
            }
        }
        let medianOn = median(on), medianOff = median(off)
        print("median on \(Int(medianOn)) / off \(Int(medianOff)) round trips/s: on/off = \(fixed2(medianOn / medianOff * 100)) %")
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    static func fixed2(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
