import CShare
import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// An engine of this user running in another process, attached: its ring mapped read-only (a
/// `FrameSource`) and its control socket (an `EngineControl`).
public final class AttachedEngine: FrameSource {
    public let entry: RuntimeDirectory.Entry
    public let ring: StatsRing
    public let control: ControlClient
    /// Becomes readable when the engine's process exits (-1 on kernels without pidfd).
    public let endDescriptor: Int32

    /// Attaches the engine with `pid`, or the only one running when `pid` is nil.
    /// - Parameter directoryPath: another directory than the user's runtime directory (tests).
    public init(pid: Int32?, directoryPath: String = RuntimeDirectory.defaultPath) throws(LinkError) {
        let directory: RuntimeDirectory?
        do { directory = try RuntimeDirectory.lookUp(path: directoryPath) } catch { throw .directory(error.description) }
        let live = directory?.entries().filter(\.isLive) ?? []
        let chosen: RuntimeDirectory.Entry
        if let pid {
            guard let found = live.first(where: { $0.pid == pid }) else {
                var status = stat()
                if stat("/proc/\(pid)", &status) == 0, status.st_uid != geteuid(), geteuid() != 0 {
                    throw .permissionDenied(pid)
                }
                throw .noEngine(pid)
            }
            chosen = found
        } else {
            guard let only = live.first else { throw .noneRunning }
            guard live.count == 1 else { throw .several(live.map(\.pid)) }
            chosen = only
        }
        entry = chosen
        control = ControlClient(socketPath: chosen.socketPath)
        ring = try control.attachRing()
        let identity = ring.identity
        guard identity.pid == chosen.pid, identity.processStartTicks == chosen.startTicks else {
            throw .refused("the socket of pid \(chosen.pid) belongs to another process")
        }
        let pidfd = CShare_pidfd(chosen.pid)
        // The pidfd names whatever process has the pid now: check it is still the engine.
        if ProcessStart.ticks(of: chosen.pid) != chosen.startTicks {
            if pidfd >= 0 { close(pidfd) }
            throw .noEngine(chosen.pid)
        }
        endDescriptor = pidfd
    }

    deinit { if endDescriptor >= 0 { close(endDescriptor) } }

    public var identity: EngineIdentity { ring.identity }
    public var newest: UInt64 { ring.newest }
    public func latest() -> StatsFrame? { ring.latest() }
    public func recent(_ count: Int) -> [StatsFrame] { ring.recent(count) }

    public var ended: String? {
        let gone: Bool
        if endDescriptor >= 0 {
            var descriptor = pollfd(fd: endDescriptor, events: Int16(POLLIN), revents: 0)
            gone = poll(&descriptor, 1, 0) > 0
        } else {
            gone = !entry.isLive
        }
        return gone ? "engine \(entry.pid) exited" : nil
    }
}

/// One running engine as `iocptop list` shows it.
public struct EngineListing: Sendable {
    public var pid: Int32
    public var address: String
    public var backend: String
    /// The protocol it serves ("echo", "http", a server's own).
    public var protocolName: String
    public var workers: Int
    public var connections: Int
    public var uptimeSeconds: Double
    public var draining: Bool

    /// Every running engine of this user that answers (stale entries are skipped).
    public static func all(directoryPath: String = RuntimeDirectory.defaultPath) throws(LinkError) -> [EngineListing] {
        let directory: RuntimeDirectory?
        do { directory = try RuntimeDirectory.lookUp(path: directoryPath) } catch { throw .directory(error.description) }
        guard let directory else { return [] }
        var listings: [EngineListing] = []
        for entry in directory.entries() where entry.isLive {
            guard let ring = try? ControlClient(socketPath: entry.socketPath, timeoutMilliseconds: 1000).attachRing() else { continue }
            let identity = ring.identity
            let frame = ring.latest() ?? StatsFrame()
            listings.append(EngineListing(pid: entry.pid, address: identity.address, backend: identity.backend,
                                          protocolName: identity.protocolName, workers: frame.liveWorkers, connections: frame.engine.openConnections,
                                          uptimeSeconds: Double(frame.uptimeNs) / 1e9,
                                          draining: frame.engine.draining))
        }
        return listings
    }
}
