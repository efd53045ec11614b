import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `--backend auto` where io_uring is refused, as Docker's default seccomp profile refuses it:
/// a launcher (compiled here with gcc) installs a seccomp filter that fails `io_uring_setup`
/// with ENOSYS, then runs the built binary.
@Suite(.serialized) struct FallbackTests {
    static let launcherSource = """
    #include <errno.h>
    #include <linux/filter.h>
    #include <linux/seccomp.h>
    #include <stddef.h>
    #include <sys/prctl.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    int main(int argc, char **argv) {
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog program = { sizeof filter / sizeof filter[0], filter };
        if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program)) return 125;
        execv(argv[1], argv + 1);
        return 126;
    }
    """

    /// Builds the launcher in a temporary directory, runs `body` with its path, removes it.
    func withLauncher(_ body: (String) throws -> Void) throws {
        var template = Array("/tmp/iocptop-seccomp-XXXXXX".utf8CString)
        let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = directory + "/no_uring.c", binary = directory + "/no_uring"
        try Self.launcherSource.write(toFile: source, atomically: true, encoding: .utf8)
        let build = try ChildProcess(shell: "gcc -O1 -o '\(binary)' '\(source)' 2>&1")
        #expect(build.waitForExit(within: 60) == 0, "gcc could not build the seccomp launcher: \(build.lines)")
        try body(binary)
    }

    @Test func autoFallsBackToEpollAndSaysWhy() throws { try withLauncher { launcher in
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let server = try ChildProcess(shell: "XDG_RUNTIME_DIR='\(sandbox.path)' exec '\(launcher)' '\(iocptopPath)' serve --port 0 --workers 1 --backend auto --quiet")
        let start = try #require(server.waitForLine { $0.contains("echo on") }, "\(server.lines)")
        #expect(start.contains("epoll") && start.contains("io_uring unavailable"), "\(start)")
        let port = try #require(listenPort(fromStartLine: start))
        let client = connectClient(port: port)
        #expect(echo(client, "served by epoll") == "served by epoll")
        close(client)
        server.signal(SIGTERM)
        #expect(server.waitForExit() == 0)
    } }

    @Test func askingForIOURingThereIsOneLineAndStatus1() throws { try withLauncher { launcher in
        let sandbox = RuntimeSandbox()
        defer { sandbox.remove() }
        let run = try ChildProcess(shell: "XDG_RUNTIME_DIR='\(sandbox.path)' exec '\(launcher)' '\(iocptopPath)' serve --port 0 --workers 1 --backend io_uring")
        #expect(run.waitForExit() == 1)
        #expect(run.lines.count == 1 && run.lines[0].contains("io_uring"), "\(run.lines)")
    } }
}
