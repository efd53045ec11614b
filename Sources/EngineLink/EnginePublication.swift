import EchoEngine
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

    /// Publishes `engine`: prepares the runtime directory, removes entries of engines that are
    /// gone, and starts serving the control socket.
    /// - Parameter directoryPath: another directory than the user's runtime directory (tests).
    public init(engine: EchoEngine, directoryPath: String = RuntimeDirectory.defaultPath) throws(LinkError) {
        do {
            directory = try RuntimeDirectory.prepare(path: directoryPath)
        } catch {
            throw .directory(error.description)
        }
        directory.removeStaleEntries()
        let identity = engine.stats.identity
        socketPath = directory.socketPath(pid: identity.pid, startTicks: identity.processStartTicks)
        server = try ControlServer(path: socketPath, engine: engine, ringDescriptor: engine.stats.descriptor)
        server.start()
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
