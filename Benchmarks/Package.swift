// swift-tools-version:6.1
// Allocation budgets of iocptop's hot paths, checked with package-benchmark:
//   cd Benchmarks && swift package benchmark thresholds check
import PackageDescription

let package = Package(
    name: "iocptop-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "iocptop", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "EchoAllocations",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ServerCore", package: "iocptop"),
                .product(name: "HTTPServer", package: "iocptop"),
                .product(name: "CompletionPort", package: "iocptop"),
            ],
            path: "Benchmarks/EchoAllocations",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
