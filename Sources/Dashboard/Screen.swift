/// How a cell is drawn. Colours are roles; the terminal maps them to colour pairs, or to
/// bold/dim/reverse in monochrome.
public enum ColorRole: UInt8, Sendable, CaseIterable {
    case normal, label, good, warning, critical, muted, accent, header, selection, keyName, keyText, kernel
}

/// A cell's style: a colour role plus attributes.
public struct CellStyle: Sendable, Hashable {
    public var color: ColorRole
    public var bold: Bool
    public var dim: Bool
    public var reverse: Bool

    public init(_ color: ColorRole = .normal, bold: Bool = false, dim: Bool = false, reverse: Bool = false) {
        self.color = color
        self.bold = bold
        self.dim = dim
        self.reverse = reverse
    }

    public static let plain = CellStyle()
}

/// One character cell.
public struct Cell: Sendable, Hashable {
    public var character: Character
    public var style: CellStyle

    public init(_ character: Character = " ", _ style: CellStyle = .plain) {
        self.character = character
        self.style = style
    }
}

/// A grid of cells the view draws into: the terminal copies it to the screen, tests read it.
public struct Screen: Sendable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: Cell(), count: self.width * self.height)
    }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set { cells[y * width + x] = newValue }
    }

    /// Writes `text` at (x, y), clipped to the screen and to `limit` columns. Returns the
    /// column after the last character written. Every character takes one column.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, style: CellStyle = .plain, limit: Int = .max) -> Int {
        guard y >= 0, y < height else { return x }
        var column = x
        let end = min(width, limit == .max ? width : x + limit)
        for character in text {
            guard column < end else { break }
            if column >= 0 { self[column, y] = Cell(character, style) }
            column += 1
        }
        return column
    }

    /// Paints `count` cells from (x, y) with `style`, keeping their characters.
    public mutating func paint(x: Int, y: Int, count: Int, style: CellStyle) {
        guard y >= 0, y < height else { return }
        for column in max(0, x)..<min(width, x + count) { self[column, y].style = style }
    }

    /// The text of row `y` (trailing spaces kept).
    public func line(_ y: Int) -> String {
        String(cells[(y * width)..<((y + 1) * width)].map(\.character))
    }

    /// Every row, trailing spaces removed: what a test or a capture compares.
    public var text: String {
        (0..<height).map { y in
            var row = Substring(line(y))
            while row.last == " " { row.removeLast() }
            return String(row)
        }.joined(separator: "\n")
    }
}
