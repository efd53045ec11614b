// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "iocptop",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "iocptop", targets: ["iocptop"]),
        .executable(name: "iocptop-port-bench", targets: ["PortBenchmark"]),
        .executable(name: "iocptop-engine-bench", targets: ["EngineBenchmark"]),
        .library(name: "CompletionPort", targets: ["CompletionPort"]),
        .library(name: "ServerCore", targets: ["ServerCore"]),
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
        .library(name: "EngineStats", targets: ["EngineStats"]),
        .library(name: "EngineLink", targets: ["EngineLink"]),
        .library(name: "LoadGen", targets: ["LoadGen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // Tests only: NIOHTTP1's decoder (llhttp) is the reference the HTTP parser is checked against.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // io_uring, futex and accept4 over the kernel ABI, with the ring's barriers (no liburing).
        .target(name: "CIOURing", cSettings: [.define("_GNU_SOURCE")]),
        // The completion port: IOCP's model (a FIFO of packets, a thread pool, a concurrency limit)
        // over io_uring or epoll.
        .target(name: "CompletionPort", dependencies: ["CIOURing"]),
        // Atomic loads, stores and fences on raw 64-bit words (worker slots, the shared ring).
        .target(name: "CAtomicWords"),
        // Threads that report a failed start and are joined at most once (workers, samplers, servers).
        .target(name: "NativeThreads"),
        // memfd, descriptor passing and peer credentials: sharing an engine with its viewers.
        .target(name: "CShare"),
        // What every viewer shares: frames, the stats ring, commands and the control they go through,
        // recordings, warnings, auto mode's policy and sizer. Knows no protocol and no engine.
        .target(name: "EngineStats", dependencies: ["CAtomicWords", "CIOURing", "CShare", "NativeThreads"]),
        // The server core: listener, connections, buffers, back-pressure, the worker pool, drain,
        // frames, commands — serving any protocol through ConnectionHandler; echo is the first.
        .target(name: "ServerCore", dependencies: ["CAtomicWords", "CIOURing", "CompletionPort", "EngineStats", "NativeThreads"]),
        // Publishing an engine (runtime directory, control socket) and attaching to one.
        .target(name: "EngineLink", dependencies: ["CIOURing", "CShare", "EngineStats", "NativeThreads"]),
        // HTTP/1.1 on the server core: the protocol, its routes, the request-head parser and the
        // chunked decoder (zero-copy, strict framing).
        .target(name: "HTTPServer", dependencies: ["ServerCore"]),
        // ncursesw, with a shim for the macros Swift cannot import.
        .systemLibrary(name: "CNcurses", providers: [.apt(["libncurses-dev"])]),
        // Model, view and key map are pure (tested without a terminal); CursesTerminal draws.
        .target(name: "Dashboard", dependencies: ["EngineStats", "CNcurses"]),
        // The echo load generator: verification, pipelining, streaming, HdrHistogram latency.
        .target(name: "LoadGen", dependencies: ["CIOURing", "CAtomicWords", "EngineStats", "NativeThreads", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        // --metrics: the Prometheus exposition over HTTP, on a completion port of its own.
        .target(name: "MetricsServer", dependencies: ["CIOURing", "CompletionPort", "EngineStats", "HTTPServer", "NativeThreads"]),
        // Loopback sockets and joinable threads shared by the tests and the benchmarks.
        .target(name: "Loopback", dependencies: ["CompletionPort", "NativeThreads"]),
        // The executable: argument parsing and modes (dashboard, --batch, serve, list, attach, replay, load).
        .executableTarget(name: "iocptop", dependencies: [
            "ServerCore", "HTTPServer", "EngineStats", "EngineLink", "CShare", "CompletionPort", "LoadGen", "Dashboard", "MetricsServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // iocptop-port-bench and iocptop-engine-bench: the port alone, and the server core in-process.
        .executableTarget(name: "PortBenchmark", dependencies: ["CIOURing", "CompletionPort", "Loopback"]),
        .executableTarget(name: "EngineBenchmark", dependencies: ["CIOURing", "CompletionPort", "ServerCore", "EngineStats", "Loopback"]),
        .testTarget(name: "CompletionPortTests", dependencies: ["CIOURing", "CompletionPort", "Loopback"]),
        .testTarget(name: "ServerCoreTests", dependencies: ["CIOURing", "ServerCore", "EngineStats", "CompletionPort", "Loopback"]),
        .testTarget(name: "EngineStatsTests", dependencies: ["EngineStats", "CIOURing", "Loopback"]),
        .testTarget(name: "MetricsServerTests", dependencies: ["MetricsServer", "EngineStats", "Loopback"]),
        .testTarget(name: "HTTPServerTests", dependencies: [
            "HTTPServer", "ServerCore", "EngineStats", "CompletionPort", "Loopback",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "EngineStats"]),
        .testTarget(name: "EngineLinkTests", dependencies: ["EngineLink", "ServerCore", "EngineStats", "CShare", "Loopback"]),
        .testTarget(name: "LoadGenTests", dependencies: ["LoadGen", "ServerCore", "HTTPServer", "EngineStats", "CompletionPort", "Loopback"]),
        // Drives the built binary; depending on it makes `swift test` build it first.
        .testTarget(name: "EndToEndTests", dependencies: ["iocptop", "Loopback", "CompletionPort", "CShare"]),
    ]
)
