import CompletionPort
#if canImport(Glibc)
import Glibc
#endif

/// The backends the tests run against: io_uring and epoll.
///
/// io_uring is the main backend, so a kernel (or sandbox) that refuses it fails the io_uring
/// cases loudly instead of dropping them. Set `IOCPTOP_ALLOW_NO_URING=1` to run on such a
/// machine with epoll only (the skip is then said once on stderr).
public let testedBackends: [BackendChoice] = {
    let allowed = getenv("IOCPTOP_ALLOW_NO_URING").map { String(cString: $0) == "1" } ?? false
    guard allowed else { return [.ioURing, .epoll] }
    do {
        _ = try CompletionPort(backend: .ioURing)
        return [.ioURing, .epoll]
    } catch {
        var line = "io_uring unavailable (\(error)); IOCPTOP_ALLOW_NO_URING=1: testing epoll only\n"
        _ = line.withUTF8 { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        return [.epoll]
    }
}()
