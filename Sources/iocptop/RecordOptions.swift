import ArgumentParser
import EngineStats

/// `--record FILE` and `--record-max-mb`, on every mode that watches an engine.
struct RecordOptions: ParsableArguments {
    @Option(name: .customLong("record"), help: "Append every frame to FILE (replay it with iocptop replay FILE).")
    var path: String?

    @Option(name: .customLong("record-max-mb"), parsing: .unconditional, help: "Stop recording when the file reaches this size, in MB (10^6 bytes).")
    var maxMegabytes = 256

    func validate() throws {
        // iocptop replay reads files up to FrameRecording.largestFile (4000 MB).
        guard (1...4000).contains(maxMegabytes) else { throw ValidationError("--record-max-mb must be between 1 and 4000") }
    }

    /// The recorder for `ring`, started; nil without --record. One line and exit 1 when the file
    /// cannot be written.
    func start(on ring: StatsRing) throws -> FrameRecorder? {
        guard let path else { return nil }
        do {
            let recorder = try FrameRecorder(path: path, ring: ring, maxBytes: maxMegabytes * 1_000_000)
            recorder.start()
            return recorder
        } catch {
            printError("iocptop: \(error)")
            throw ExitCode(1)
        }
    }
}

extension FrameRecorder {
    /// Stops, and says on stderr why it stopped early, if it did.
    func finish() {
        stop()
        if let stopReason { printError("iocptop: \(stopReason)") }
        if missed > 0 { printError("iocptop: the recording lacks \(missed) frames the ring overwrote before they were written") }
    }
}
