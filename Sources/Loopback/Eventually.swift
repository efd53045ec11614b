#if canImport(Glibc)
import Glibc
#endif

/// Polls `condition` until it holds or `seconds` pass, and returns whether it held: how tests
/// wait for another thread's progress (never a fixed sleep standing in for it).
public func eventually(within seconds: Double = 10, pollMicroseconds: UInt32 = 500, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(pollMicroseconds)
    }
    return condition()
}
