// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "iocptop",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CompletionPort", targets: ["CompletionPort"]),
        .executable(name: "iocptop-port-bench", targets: ["PortBenchmark"]),
    ],
    targets: [
        .target(name: "CIOURing", cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "CompletionPort", dependencies: ["CIOURing"]),
        .executableTarget(name: "PortBenchmark", dependencies: ["CIOURing", "CompletionPort"]),
        .testTarget(name: "CompletionPortTests", dependencies: ["CompletionPort"]),
    ]
)
