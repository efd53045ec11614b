/// What the operator can ask for.
public enum Action: Sendable, Hashable {
    case addWorker
    case retireWorker
    case lowerConcurrency
    case raiseConcurrency
    case toggleLoad
    case lessWork
    case moreWork
    case drain
    /// Auto mode on / off (`a`).
    case toggleAuto
    case togglePause
    case toggleHelp
    case quit
    case sortNext
    case sortPrevious
    case reverseSort
    case selectUp
    case selectDown
    case pageUp
    case pageDown
    case selectFirst
    case selectLast
    /// Open the selected worker's detail pane (Enter).
    case showDetail
    /// Close the detail pane (Esc).
    case closeDetail
}

/// Key codes → actions. Codes are ncurses' (characters as their code point; function and arrow
/// keys as ncurses KEY_ values), so the mapping is testable without a terminal.
public enum KeyMap {
    // ncurses key codes (curses.h), fixed by the library's ABI.
    public static let keyDown: Int32 = 0o402
    public static let keyUp: Int32 = 0o403
    public static let keyHome: Int32 = 0o406
    public static let keyEnd: Int32 = 0o550
    public static let keyNextPage: Int32 = 0o522
    public static let keyPreviousPage: Int32 = 0o523
    public static let keyResize: Int32 = 0o632
    public static func keyF(_ n: Int32) -> Int32 { 0o410 + n }
    public static let controlC: Int32 = 3
    public static let escape: Int32 = 27
    public static let keyEnter: Int32 = 0o527

    /// The action for a key, or nil for keys that do nothing.
    public static func action(for key: Int32) -> Action? {
        switch key {
        case Int32(UInt8(ascii: "+")), Int32(UInt8(ascii: "=")): return .addWorker
        case Int32(UInt8(ascii: "-")), Int32(UInt8(ascii: "_")): return .retireWorker
        case Int32(UInt8(ascii: "c")): return .lowerConcurrency
        case Int32(UInt8(ascii: "C")): return .raiseConcurrency
        case Int32(UInt8(ascii: "l")), Int32(UInt8(ascii: "L")): return .toggleLoad
        case Int32(UInt8(ascii: "w")): return .lessWork
        case Int32(UInt8(ascii: "W")): return .moreWork
        case Int32(UInt8(ascii: "d")), Int32(UInt8(ascii: "D")): return .drain
        case Int32(UInt8(ascii: "a")), Int32(UInt8(ascii: "A")): return .toggleAuto
        case Int32(UInt8(ascii: " ")): return .togglePause
        case Int32(UInt8(ascii: "h")), Int32(UInt8(ascii: "?")), keyF(1): return .toggleHelp
        case Int32(UInt8(ascii: "q")), Int32(UInt8(ascii: "Q")), keyF(10), controlC: return .quit
        case Int32(UInt8(ascii: "s")), Int32(UInt8(ascii: ">")), Int32(UInt8(ascii: ".")), keyF(6): return .sortNext
        case Int32(UInt8(ascii: "<")), Int32(UInt8(ascii: ",")): return .sortPrevious
        case Int32(UInt8(ascii: "r")), Int32(UInt8(ascii: "R")): return .reverseSort
        case keyUp, Int32(UInt8(ascii: "k")): return .selectUp
        case keyDown, Int32(UInt8(ascii: "j")): return .selectDown
        case keyPreviousPage: return .pageUp
        case keyNextPage: return .pageDown
        case keyHome, Int32(UInt8(ascii: "g")): return .selectFirst
        case keyEnd, Int32(UInt8(ascii: "G")): return .selectLast
        case keyEnter, 10, 13: return .showDetail
        case escape: return .closeDetail
        default: return nil
        }
    }

    /// Every key, for the help overlay: (keys, what they do).
    public static let help: [(String, String)] = [
        ("+", "add a worker thread"),
        ("-", "post one shutdown packet (a worker retires)"),
        ("c  C", "lower / raise the concurrency limit"),
        ("l", "start / stop the built-in load generator"),
        ("w  W", "less / more simulated work per completion"),
        ("d", "drain: stop accepting, close, wait, retire all"),
        ("a", "auto mode: the pool sizes itself (+ - c C pause it 30 s)"),
        ("space", "pause the display (the engine keeps running)"),
        ("s > <", "sort by the next / previous column"),
        ("r", "reverse the sort order"),
        ("↑ ↓ j k", "select a worker (PgUp PgDn Home End too)"),
        ("Enter Esc", "open / close the selected worker's detail"),
        ("h ? F1", "this help"),
        ("q F10 ^C", "quit: drain (bounded), restore the terminal"),
    ]

    /// The keys of `iocptop replay`, for its help overlay.
    public static let replayHelp: [(String, String)] = [
        ("space", "play / pause the recording"),
        ("← →", "one frame back / forward (pauses)"),
        ("[ ]", "slower / faster: ×0.25 … ×16"),
        ("Home End", "first / last frame of the recording"),
        ("s > <", "sort by the next / previous column"),
        ("r", "reverse the sort order"),
        ("↑ ↓ j k", "select a worker (PgUp PgDn g G too)"),
        ("Enter Esc", "open / close the selected worker's detail"),
        ("+ - c C a …", "acting keys say \"replay: read-only\""),
        ("h ? F1", "this help"),
        ("q F10 ^C", "quit"),
    ]
}
