/// What the operator can ask for.
public enum Action: Sendable, Hashable, CaseIterable {
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
    /// Switch between the workers and the connections table (Tab).
    case toggleTable
    /// Close the selected connection, after asking (`x`).
    case closeConnection
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
    public static let tab: Int32 = 9

    /// One row of the key table: the codes that do it, what they do, and how the help overlay
    /// shows them (`keys` and `help`; nil: the row is described together with the row before,
    /// as `c` and `C` are on one help line).
    public struct Binding: Sendable {
        public let codes: [Int32]
        public let action: Action
        public let keys: String?
        public let help: String?

        init(_ codes: [Int32], _ action: Action, _ keys: String? = nil, _ help: String? = nil) {
            (self.codes, self.action, self.keys, self.help) = (codes, action, keys, help)
        }
    }

    private static func ascii(_ characters: String) -> [Int32] { characters.unicodeScalars.map { Int32($0.value) } }

    /// Every key of the dashboard, htop-style: one table that both the key handling and the
    /// help overlay read.
    public static let bindings: [Binding] = [
        Binding(ascii("+="), .addWorker, "+", "add a worker thread"),
        Binding(ascii("-_"), .retireWorker, "-", "post one shutdown packet (a worker retires)"),
        Binding(ascii("c"), .lowerConcurrency, "c  C", "lower / raise the concurrency limit"),
        Binding(ascii("C"), .raiseConcurrency),
        Binding(ascii("lL"), .toggleLoad, "l", "start / stop the built-in load generator"),
        Binding(ascii("w"), .lessWork, "w  W", "less / more simulated work per completion"),
        Binding(ascii("W"), .moreWork),
        Binding(ascii("dD"), .drain, "d", "drain: stop accepting, close, wait, retire all"),
        Binding(ascii("aA"), .toggleAuto, "a", "auto mode: the pool sizes itself (+ - c C pause it 30 s)"),
        Binding([tab], .toggleTable, "Tab", "switch between the workers and the connections table"),
        Binding(ascii("x"), .closeConnection, "x", "close the selected connection (asks first)"),
        Binding(ascii(" "), .togglePause, "space", "pause the display (the engine keeps running)"),
        Binding(ascii("s>.") + [keyF(6)], .sortNext, "s > <", "sort by the next / previous column"),
        Binding(ascii("<,"), .sortPrevious),
        Binding(ascii("rR"), .reverseSort, "r", "reverse the sort order"),
        Binding([keyUp] + ascii("k"), .selectUp, "↑ ↓ j k", "select a row (PgUp PgDn Home End too)"),
        Binding([keyDown] + ascii("j"), .selectDown),
        Binding([keyPreviousPage], .pageUp),
        Binding([keyNextPage], .pageDown),
        Binding([keyHome] + ascii("g"), .selectFirst),
        Binding([keyEnd] + ascii("G"), .selectLast),
        Binding([keyEnter, 10, 13], .showDetail, "Enter Esc", "open / close the selected row's detail"),
        Binding([escape], .closeDetail),
        Binding(ascii("h?") + [keyF(1)], .toggleHelp, "h ? F1", "this help"),
        Binding(ascii("qQ") + [keyF(10), controlC], .quit, "q F10 ^C", "quit: drain (bounded), restore the terminal"),
    ]

    /// The action for a key, or nil for keys that do nothing.
    public static func action(for key: Int32) -> Action? {
        bindings.first { $0.codes.contains(key) }?.action
    }

    /// Every key, for the help overlay: (keys, what they do).
    public static let help: [(String, String)] = bindings.compactMap { binding in
        guard let keys = binding.keys, let help = binding.help else { return nil }
        return (keys, help)
    }

    /// The keys of `iocptop replay`, for its help overlay.
    public static let replayHelp: [(String, String)] = [
        ("space", "play / pause the recording"),
        ("← →", "one frame back / forward (pauses)"),
        ("[ ]", "slower / faster: ×0.25 … ×16"),
        ("Home End", "first / last frame of the recording"),
        ("Tab", "switch between the workers and the connections table"),
        ("s > <", "sort by the next / previous column"),
        ("r", "reverse the sort order"),
        ("↑ ↓ j k", "select a row (PgUp PgDn g G too)"),
        ("Enter Esc", "open / close the selected row's detail"),
        ("+ - c C a x …", "acting keys say \"replay: read-only\""),
        ("h ? F1", "this help"),
        ("q F10 ^C", "quit"),
    ]
}
