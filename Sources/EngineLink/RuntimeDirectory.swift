import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// The per-user directory where running engines publish their control sockets:
/// `$XDG_RUNTIME_DIR/iocptop/` when that is set, else `/tmp/iocptop-<uid>/`, mode 0700.
///
/// A directory owned by another user, or that group or others may write, is refused: whoever
/// controls it could put a socket there that a viewer would trust.
public struct RuntimeDirectory: Sendable {
    /// Absolute path, without a trailing slash.
    public let path: String

    /// Why the directory cannot be used.
    public enum Problem: Error, CustomStringConvertible, Sendable {
        case unsafe(String, String)
        case system(String, Int32)

        public var description: String {
            switch self {
            case .unsafe(let path, let why): "refusing to use \(path): \(why)"
            case .system(let what, let code): "\(what): \(String(cString: strerror(code)))"
            }
        }
    }

    /// The directory this user's engines use (not created, not checked).
    public static var defaultPath: String {
        if let runtime = getenv("XDG_RUNTIME_DIR"), runtime.pointee != 0 {
            return String(cString: runtime) + "/iocptop"
        }
        return "/tmp/iocptop-\(geteuid())"
    }

    /// Creates the directory when missing (mode 0700) and checks it.
    /// - Parameter path: another directory than `defaultPath` (tests).
    public static func prepare(path: String = defaultPath) throws(Problem) -> RuntimeDirectory {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw .system("cannot create \(path)", errno) }
        return try existing(path)
    }

    /// The directory if it exists and is safe; nil when it does not exist.
    public static func lookUp(path: String = defaultPath) throws(Problem) -> RuntimeDirectory? {
        var status = stat()
        if lstat(path, &status) != 0 {
            if errno == ENOENT { return nil }
            throw .system("cannot read \(path)", errno)
        }
        return try existing(path)
    }

    private static func existing(_ path: String) throws(Problem) -> RuntimeDirectory {
        var status = stat()
        guard lstat(path, &status) == 0 else { throw .system("cannot read \(path)", errno) }
        guard status.st_mode & S_IFMT == S_IFDIR else { throw .unsafe(path, "not a directory") }
        guard status.st_uid == geteuid() else { throw .unsafe(path, "owned by uid \(status.st_uid), not by uid \(geteuid())") }
        guard status.st_mode & 0o022 == 0 else {
            throw .unsafe(path, "group or others may write to it (mode \(String(status.st_mode & 0o777, radix: 8)))")
        }
        return RuntimeDirectory(path: path)
    }

    /// One engine's entry: its control socket `<pid>-<start ticks>.sock`.
    public struct Entry: Sendable, Hashable {
        public let pid: Int32
        public let startTicks: UInt64
        public let socketPath: String

        /// Whether the process that made the entry still runs (same pid, same start time).
        public var isLive: Bool { ProcessStart.ticks(of: pid) == startTicks }
    }

    /// The socket path an engine with this pid and start time publishes.
    public func socketPath(pid: Int32, startTicks: UInt64) -> String { "\(path)/\(pid)-\(startTicks).sock" }

    /// Every entry in the directory, live or stale, by pid.
    public func entries() -> [Entry] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var found: [Entry] = []
        while let item = readdir(directory) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasSuffix(".sock") else { continue }
            let parts = name.dropLast(5).split(separator: "-")
            guard parts.count == 2, let pid = Int32(parts[0]), let ticks = UInt64(parts[1]) else { continue }
            found.append(Entry(pid: pid, startTicks: ticks, socketPath: "\(path)/\(name)"))
        }
        return found.sorted { $0.pid < $1.pid }
    }

    /// Removes the entries of processes that are gone (or whose pid now names another process).
    public func removeStaleEntries() {
        for entry in entries() where !entry.isLive { unlink(entry.socketPath) }
    }
}
