import CShare
#if canImport(Glibc)
import Glibc
#endif

/// Writes one line to standard output, unbuffered (lines appear at once in a pipe too).
/// False when standard output is gone (a closed pipe).
@discardableResult
func printLine(_ message: String) -> Bool {
    writeLine(message, to: STDOUT_FILENO)
}

/// Writes one line to standard error.
func printError(_ message: String) {
    writeLine(message, to: STDERR_FILENO)
}

@discardableResult
private func writeLine(_ message: String, to fd: CInt) -> Bool {
    var line = message
    line += "\n"
    return line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}

/// SIGINT, SIGTERM and SIGHUP, blocked in every thread and received synchronously by the main loop.
///
/// Blocking them before any thread starts means the workers inherit the mask, so a signal
/// never interrupts a worker; the main thread takes it with `sigtimedwait`, which doubles as the
/// once-per-interval tick.
struct StopSignals {
    /// The blocked signals.
    private(set) var set = sigset_t()

    /// `resize`: also block SIGWINCH (the dashboard reads it through a signalfd).
    init(resize: Bool = false) {
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        // A closed terminal (or tmux kill-server) ends the process as SIGTERM does: cleanly —
        // unless SIGHUP is ignored (nohup), which a blocked signal would no longer honour.
        if CShare_signalIsIgnored(SIGHUP) == 0 { sigaddset(&set, SIGHUP) }
        if resize { sigaddset(&set, SIGWINCH) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        // A closed stdout (a pipe to `head`) must not kill the process.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Waits up to `milliseconds`; returns the signal number, or nil when the time passed.
    func wait(milliseconds: Int) -> CInt? {
        var timeout = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var pending = set
        let signal = sigtimedwait(&pending, nil, &timeout)
        return signal > 0 ? signal : nil
    }
}

/// "SIGINT", "SIGTERM", "SIGHUP" (or the number) for messages.
func signalName(_ signal: CInt) -> String {
    switch signal {
    case SIGINT: "SIGINT"
    case SIGTERM: "SIGTERM"
    case SIGHUP: "SIGHUP"
    default: "signal \(signal)"
    }
}
