import CNcurses
#if canImport(Glibc)
import Glibc
#endif

/// The real terminal, through ncursesw: copies a `Screen` to it and reads keys.
///
/// Keys are read without blocking (the caller polls standard input and sleeps in `poll`), so
/// the dashboard wakes only for a key, a signal or the next frame. `end()` restores the
/// terminal; it is idempotent and also registered with `atexit`, so every way out restores it.
public final class CursesTerminal {
    private let colors: Bool
    private var ended = false
    private nonisolated(unsafe) static var active = false

    /// Why the terminal could not be taken over.
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Takes over the terminal on stdin/stdout. `colors`: use colour when the terminal has it.
    public init(colors wanted: Bool) throws(StartError) {
        guard let term = getenv("TERM"), strlen(term) > 0 else {
            throw StartError(description: "TERM is not set; run iocptop in a terminal, or use --batch")
        }
        switch CNcurses_start() {
        case 0: break
        case -2: throw StartError(description: "terminal type '\(String(cString: term))' cannot move the cursor; use --batch")
        default: throw StartError(description: "unknown terminal type '\(String(cString: term))'; use --batch")
        }
        Self.active = true
        atexit { if CursesTerminal.active { endwin() } }
        colors = wanted && has_colors()
        if colors {
            start_color()
            use_default_colors()
            for role in ColorRole.allCases {
                let (foreground, background) = Self.pair(role)
                init_pair(Int16(role.rawValue) + 1, foreground, background)
            }
        }
    }

    deinit { end() }

    /// Restores the terminal (idempotent).
    public func end() {
        guard !ended else { return }
        ended = true
        Self.active = false
        endwin()
    }

    /// Rows and columns of the screen.
    public var size: (width: Int, height: Int) { (Int(CNcurses_columns()), Int(CNcurses_lines())) }

    /// Follows a terminal resize (after SIGWINCH, which the caller receives: ncurses' own
    /// handler never runs because the signal is blocked): asks the kernel for the new size.
    public func followResize() {
        var rows: CInt = 0, columns: CInt = 0
        CNcurses_windowSize(STDOUT_FILENO, &rows, &columns)
        // Only on a real change: resizeterm queues a KEY_RESIZE, which would bring us back here.
        guard rows > 0, columns > 0, rows != CNcurses_lines() || columns != CNcurses_columns() else { return }
        resizeterm(rows, columns)
    }

    /// The next key, or nil when none is waiting.
    public func readKey() -> Int32? {
        let key = getch()
        return key == ERR ? nil : key
    }

    /// Copies `screen` to the terminal and refreshes it (ncurses sends only what changed).
    public func draw(_ screen: Screen) {
        for y in 0..<screen.height {
            var x = 0
            while x < screen.width {
                let style = screen[x, y].style
                var run = ""
                let start = x
                while x < screen.width && screen[x, y].style == style {
                    run.append(screen[x, y].character)
                    x += 1
                }
                attrset(attributes(style))
                // The bottom-right cell makes ncurses report a scroll it does not do: ignored.
                _ = mvaddstr(Int32(y), Int32(start), run)
            }
        }
        attrset(CNcurses_attrNormal())
        refresh()
    }

    private func attributes(_ style: CellStyle) -> Int32 {
        var value = CNcurses_attrNormal()
        if style.bold { value |= CNcurses_attrBold() }
        if style.dim { value |= CNcurses_attrDim() }
        if colors {
            value |= CNcurses_colorPair(Int32(style.color.rawValue) + 1)
            // Roles with their own background are drawn with it, not reversed.
            if style.reverse && !Self.hasBackground(style.color) { value |= CNcurses_attrReverse() }
        } else {
            if style.reverse { value |= CNcurses_attrReverse() }
            switch style.color {
            case .label, .accent, .critical, .keyName: value |= CNcurses_attrBold()
            case .muted: value |= CNcurses_attrDim()
            default: break
            }
        }
        return value
    }

    private static func hasBackground(_ role: ColorRole) -> Bool {
        role == .header || role == .selection || role == .keyText
    }

    /// Foreground and background of each role's colour pair (-1: the terminal's default).
    private static func pair(_ role: ColorRole) -> (Int16, Int16) {
        switch role {
        case .normal: (-1, -1)
        case .label: (Int16(COLOR_CYAN), -1)
        case .good: (Int16(COLOR_GREEN), -1)
        case .warning: (Int16(COLOR_YELLOW), -1)
        case .critical: (Int16(COLOR_RED), -1)
        case .muted: (CNcurses_colorCount() >= 16 ? 8 : Int16(COLOR_WHITE), -1)
        case .accent: (Int16(COLOR_CYAN), -1)
        case .header: (Int16(COLOR_BLACK), Int16(COLOR_GREEN))
        case .selection: (Int16(COLOR_BLACK), Int16(COLOR_CYAN))
        case .keyName: (-1, -1)
        case .keyText: (Int16(COLOR_BLACK), Int16(COLOR_CYAN))
        case .kernel: (Int16(COLOR_BLUE), -1)
        }
    }
}
