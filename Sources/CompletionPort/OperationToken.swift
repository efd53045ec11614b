/// Names one receive or send in flight, for `CompletionPort.cancel(_:on:)` (the `OVERLAPPED`
/// pointer `CancelIoEx` takes on Windows).
///
/// It carries the operation's slot and that slot's generation, so a token kept after its
/// operation completed is stale and cancels nothing, even once the slot serves another
/// operation.
public struct OperationToken: Sendable, Hashable {
    let userData: UInt64

    /// No operation (generation 0 is never given out).
    public static let none = OperationToken(userData: 0)
}
