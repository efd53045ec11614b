import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `Examples/ShoutServer`, a server of its own on the server core, as its users run it: built
/// by `.ci/run` (`swift build --package-path Examples/ShoutServer`), watched by `iocptop`.
enum ExampleServer {
    static let path: String = {
        var root = #filePath
        for _ in 0..<3 { root = (root as NSString).deletingLastPathComponent }
        return root + "/Examples/ShoutServer/.build/debug/shout-server"
    }()

    /// Built, or required to be (`.ci/run` sets IOCPTOP_REQUIRE_EXAMPLE): then a missing
    /// binary fails the test instead of skipping it.
    static var isAvailable: Bool {
        access(path, X_OK) == 0 || ProcessInfo.processInfo.environment["IOCPTOP_REQUIRE_EXAMPLE"] == "1"
    }
}

@Suite(.serialized) struct ExampleServerTests {
    @Test(.enabled(if: ExampleServer.isAvailable, "build it first: swift build --package-path Examples/ShoutServer"))
    func iocptopListsAndAttachesToAServerOfItsOwn() throws {
        #expect(access(ExampleServer.path, X_OK) == 0, "\(ExampleServer.path) is not built")
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let server = try ChildProcess(shell: "XDG_RUNTIME_DIR='\(sandbox.path)' exec '\(ExampleServer.path)' 0")
        let start = try #require(server.waitForLine { $0.contains("shout on") }, "\(server.lines)")
        let pid = try #require(enginePID(fromStartLine: start))
        let port = try #require(listenPort(fromStartLine: start))

        let client = connectClient(port: port)
        defer { close(client) }
        #expect(echo(client, "hello, core\n") == "HELLO, CORE\n")

        // `list` reads the newest frame: the connection shows from the next one on.
        var listed: [[String: Any]] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let list = try ChildProcess(shell: sandbox.command("list --json"))
            #expect(list.waitForExit() == 0)
            listed = try #require(try JSONSerialization.jsonObject(with: Data(list.lines.joined().utf8)) as? [[String: Any]], "\(list.lines)")
            if listed.first?["connections"] as? Int == 1 { break }
            usleep(100_000)
        }
        #expect(listed.count == 1)
        #expect(listed.first?["pid"] as? Int == Int(pid))
        #expect(listed.first?["protocol"] as? String == "shout")
        #expect(listed.first?["connections"] as? Int == 1)
        #expect(listed.first?["workers"] as? Int ?? 0 > 0)

        let viewer = try ChildProcess(shell: sandbox.command("attach \(pid) --batch --json --iterations 2 2>/dev/null"))
        #expect(viewer.waitForExit() == 0)
        let frames = jsonObjects(viewer.lines)
        #expect(frames.count == 2, "\(viewer.lines)")
        // What the client sent and got back, counted by the core's workers.
        #expect(frames.last?["bytes_in"] as? Int == 12)
        #expect(frames.last?["bytes_out"] as? Int == 12)
        // Its own metric, declared by the server, read by a viewer that was never told of it.
        let handler = try #require(frames.last?["handler"] as? [String: Any], "\(viewer.lines)")
        #expect(handler["lines"] as? Int == 1)
        #expect(handler["lines_per_s"] != nil)

        #expect(write(client, "QUIT\n", 5) == 5)
        var bye = [UInt8](repeating: 0, count: 8)
        #expect(read(client, &bye, bye.count) == 4 && bye.starts(with: "bye\n".utf8))
        #expect(read(client, &bye, bye.count) == 0, "closed after the goodbye")
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
        #expect(sandbox.entries.isEmpty, "the server withdrew its socket: \(sandbox.entries)")
    }
}
