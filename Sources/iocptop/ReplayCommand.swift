import ArgumentParser
import Dashboard
import EngineStats
import LoadGen
#if canImport(Glibc)
import Glibc
#endif

/// `iocptop replay FILE`: a recording made with `--record`, in the dashboard (play, pause, step,
/// speed, jump), or printed as the same `--batch` tables or JSON lines the live run printed.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Play a recording made with --record in the dashboard, or print it with --batch.",
        discussion: """
            Keys: space plays / pauses, ← → step one frame, [ ] change the speed (×0.25 … ×16), \
            Home / End jump to the first / last frame. Sorting, selection, the detail pane and help \
            work as live; keys that would act on an engine say "replay: read-only".
            """
    )

    @Argument(help: "The recording (written by --record FILE).")
    var file: String

    @OptionGroup var display: DisplayOptions

    func run() throws {
        let contents: FrameRecording.Contents
        do { contents = try FrameRecording.read(path: file) } catch {
            printError("iocptop: \(file): \(error)")
            throw ExitCode(1)
        }
        guard contents.count > 0 else {
            printError("iocptop: \(file): the recording holds no whole frame" + (contents.truncation.map { " (\($0))" } ?? ""))
            throw ExitCode(1)
        }
        if let truncation = contents.truncation {
            printError("iocptop: \(file): \(truncation): replaying the \(contents.count) whole frames before it")
        }
        guard display.wantsDashboard() else {
            // Ctrl-C and a closed pipe end the export as they would `cat`: no signal is blocked.
            signal(SIGPIPE, SIG_IGN)
            printBatch(contents)
            return
        }
        let signals = StopSignals(resize: true)
        let replay = ReplaySource(contents: contents)
        let mode: DashboardMode
        do {
            mode = try DashboardMode(source: replay, control: ReadOnlyControl(.replay),
                                     load: BuiltInLoad(configuration: LoadConfiguration()), attachedTo: nil,
                                     signals: signals.set, colors: display.colors, replay: replay)
        } catch {
            printError("iocptop: \(error)")
            throw ExitCode(1)
        }
        mode.run {}
    }

    /// Each recorded frame as the live `--batch` printed it: rates against the recorded frame
    /// before it. Stops early when stdout closes.
    private func printBatch(_ contents: FrameRecording.Contents) {
        var previous: StatsFrame?
        for index in 0..<contents.count {
            if display.iterations > 0, index >= display.iterations { return }
            let frame = contents.frame(at: index)
            let rates = FrameRates(previous: previous, current: frame)
            let report = BatchReport(identity: contents.identity, frame: frame, previous: previous, rates: rates,
                                     warnings: Warnings.evaluate(previous: previous, current: frame, rates: rates))
            guard printLine(display.json ? report.json : report.text) else { return }
            previous = frame
        }
    }
}
