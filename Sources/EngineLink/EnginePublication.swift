import EngineStats
#if canImport(Glibc)
import Glibc
#endif

/// An engine made visible to other processes of its user: its control socket in the runtime
/// directory, served by a `ControlServer`, through which viewers get the stats ring (mapped
/// read-only) and send commands. Publishing costs the engine nothing per completion: the ring
/// is already shared memory, and the server runs on its own thread.
public final class EnginePublication {
    public let directory: RuntimeDirectory
    public let socketPath: String
    private let server: ControlServer
    private var withdrawn = false

    /// Publishes an engine: prepares the runtime directory, removes entries of engines that are
    /// gone, and starts serving the control socket.
    /// - Parameters:
    ///   - stats: the engine's stats ring (its identity names the socket; viewers map it).
    ///   - control: the engine's own control, which applies the commands viewers send.
    ///   - directoryPath: another directory than the user's runtime directory (tests).
    public init(stats: StatsRing, control: any EngineControl,
                directoryPath: String = RuntimeDirectory.defaultPath) throws(LinkError) {
        do {
            directory = try RuntimeDirectory.prepare(path: directoryPath)
        } catch {
            throw .directory(error.description)
        }
        directory.removeStaleEntries()
        let identity = stats.identity
        socketPath = directory.socketPath(pid: identity.pid, startTicks: identity.processStartTicks)
        server = try ControlServer(path: socketPath, control: control, ringDescriptor: stats.descriptor)
        try server.start()
    }

    deinit { withdraw() }

    /// Stops serving and removes the socket (every normal exit does this).
    public func withdraw() {
        guard !withdrawn else { return }
        withdrawn = true
        server.stop()
        unlink(socketPath)
    }
}
