import ArgumentParser

/// `iocptop`: a completion-port echo engine, and the tools around it.
@main
struct IOCPTop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iocptop",
        abstract: "A completion-port (IOCP model) TCP echo engine on io_uring or epoll.",
        subcommands: [ServeCommand.self]
    )
}
