import CompletionPort

/// Why the engine could not start or act.
public enum EngineError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The listen address is taken by another socket.
    case addressInUse(String)
    /// The bind address is not an IPv4 address.
    case invalidAddress(String)
    /// A setting is out of range.
    case invalidConfiguration(String)
    /// Setting up the listening socket failed.
    case listen(String, SystemCallError)
    /// The completion port refused something.
    case port(PortError)
    /// The engine has been drained; it no longer accepts commands.
    case drained
    /// Every worker counter slot is taken by a live worker.
    case tooManyWorkers(Int)
    /// A thread (a worker, the sampler) could not be created.
    case thread(String)

    public var description: String {
        switch self {
        case .addressInUse(let address): "\(address) is already in use (another server is listening there)"
        case .invalidAddress(let address): "\(address) is not an IPv4 or IPv6 address"
        case .invalidConfiguration(let what): "invalid configuration: \(what)"
        case .listen(let address, let error): "cannot listen on \(address): \(error)"
        case .port(let error): "\(error)"
        case .drained: "the engine has been drained"
        case .tooManyWorkers(let limit): "at most \(limit) workers can run at once"
        case .thread(let why): why
        }
    }
}
