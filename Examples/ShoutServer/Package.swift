// swift-tools-version:6.1
// A server of its own on iocptop's server core: `swift run shout-server [PORT]`, then
// `iocptop list` and `iocptop attach` watch it like iocptop's own engine.
import PackageDescription

let package = Package(
    name: "shout-server",
    platforms: [.macOS(.v15)],
    products: [.executable(name: "shout-server", targets: ["ShoutServer"])],
    dependencies: [.package(name: "iocptop", path: "../..")],
    targets: [
        .executableTarget(name: "ShoutServer", dependencies: [
            .product(name: "ServerCore", package: "iocptop"),
            .product(name: "EngineLink", package: "iocptop"),
        ]),
    ]
)
