import ArgumentParser
import ServerCore
import LoadGen

/// The built-in load generator's options, shared by every mode that runs the engine.
struct LoadOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Start the built-in load generator with N connections to the engine (0: off).")
    var load = 0

    @Option(name: .customLong("load-size"), parsing: .unconditional, help: "Bytes per message of the built-in load.")
    var loadSize = 128

    @Option(name: .customLong("load-pipeline"), parsing: .unconditional, help: "Messages outstanding per connection of the built-in load.")
    var loadPipeline = 1

    func validate() throws {
        guard load >= 0, load <= 100_000 else { throw ValidationError("--load must be between 0 and 100000") }
        guard loadSize >= 1, loadSize <= 1 << 20 else { throw ValidationError("--load-size must be between 1 and 1048576") }
        guard loadPipeline >= 1, loadPipeline <= 4096 else { throw ValidationError("--load-pipeline must be between 1 and 4096") }
    }

    /// The built-in load aimed at `engine` (its connection count is at least 1, so the
    /// dashboard can switch it on even when `--load` is 0).
    func builtInLoad(for engine: PortServer) -> BuiltInLoad {
        var configuration = LoadConfiguration()
        let bind = engine.configuration.bindAddress
        configuration.host = bind == "0.0.0.0" ? "127.0.0.1" : bind == "::" ? "::1" : bind
        configuration.port = engine.listenPort
        configuration.connections = max(1, load == 0 ? 64 : load)
        configuration.messageSize = loadSize
        configuration.pipeline = loadPipeline
        // An HTTP engine is loaded with GET /plaintext (its cheapest route).
        if engine.serving.name == "http" { configuration.httpPath = "/plaintext" }
        let load = BuiltInLoad(configuration: configuration)
        engine.setLoadProbe { load.sample }
        return load
    }

    /// The built-in load aimed at an engine listening on `address` ("host:port"; a wildcard
    /// host is reached on loopback).
    func builtInLoad(forAddress address: String, protocolName: String) -> BuiltInLoad {
        var configuration = LoadConfiguration()
        let colon = address.lastIndex(of: ":") ?? address.endIndex
        let host = String(address[..<colon].filter { $0 != "[" && $0 != "]" })
        configuration.host = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host
        configuration.port = colon < address.endIndex ? UInt16(address[address.index(after: colon)...]) ?? 0 : 0
        configuration.connections = max(1, load == 0 ? 64 : load)
        configuration.messageSize = loadSize
        configuration.pipeline = loadPipeline
        if protocolName == "http" { configuration.httpPath = "/plaintext" }
        return BuiltInLoad(configuration: configuration)
    }

    /// Starts `load` when `--load` asked for it; false (after one line on stderr) if it failed.
    func startIfAsked(_ load: BuiltInLoad) -> Bool {
        guard self.load > 0 else { return true }
        do {
            let connected = try load.start()
            let what = load.configuration.httpPath.map { "GET \($0)" } ?? "\(loadSize) B"
            printError("iocptop: built-in load: \(connected) connections × \(what), pipeline \(loadPipeline)")
            return true
        } catch {
            printError("iocptop: built-in load: \(error)")
            return false
        }
    }
}
