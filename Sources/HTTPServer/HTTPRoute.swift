/// What a request asks for: the lab's routes, reachable by any HTTP client.
///
/// - `GET /`, `GET /plaintext`: `Hello, World!` (text/plain).
/// - `GET /json`: `{"message":"Hello, World!"}`.
/// - `GET /work?us=N`: burns N µs of CPU on the worker (0 ≤ N ≤ `maxMicroseconds`).
/// - `GET /block?us=N`: blocks N µs inside the port's blocking scope (a database call, a
///   disk read): another worker serves meanwhile, and the dashboard shows the worker blocked.
/// - `POST /echo`: the request's body, back (chunked if it came chunked).
///
/// `HEAD` is answered wherever `GET` is, without the body.
public enum HTTPRoute: Sendable, Hashable {
    case plaintext
    case json
    case work(microseconds: Int)
    case block(microseconds: Int)
    case echo
    /// The path is known but not with this method: 405, with the methods it takes.
    case methodNotAllowed(allow: Allowed)
    /// The path is known but its query is not (`us` missing or out of range): 400.
    case badQuery
    case notFound
    /// A method this server does not implement at all: 501.
    case notImplemented

    /// The methods a path takes (the `Allow` field of a 405).
    public enum Allowed: Sendable, Hashable {
        case getAndHead, post

        var field: StaticString { self == .post ? "POST" : "GET, HEAD" }
    }

    /// Largest N of `/work?us=N` and `/block?us=N`: one second.
    public static let maxMicroseconds = 1_000_000

    /// Finds the route of `method` on the request target `bytes[target]`.
    public static func match(_ method: HTTPMethod, target: Range<Int>, in bytes: UnsafeRawBufferPointer) -> HTTPRoute {
        guard method != .other else { return .notImplemented }
        var start = target.lowerBound
        let end = target.upperBound
        // Absolute form (a request to a proxy, which servers must accept): skip to the path.
        if start < end && bytes[start] != UInt8(ascii: "/") {
            guard let schemeEnd = find(UInt8(ascii: ":"), in: bytes, start..<end),
                  schemeEnd + 3 <= end, bytes[schemeEnd + 1] == UInt8(ascii: "/"), bytes[schemeEnd + 2] == UInt8(ascii: "/") else {
                return .notFound
            }
            start = find(UInt8(ascii: "/"), in: bytes, (schemeEnd + 3)..<end) ?? end
            if start == end { return route(method, path: "/", query: nil) }
        }
        let queryStart = find(UInt8(ascii: "?"), in: bytes, start..<end)
        let path = UnsafeRawBufferPointer(rebasing: bytes[start..<(queryStart ?? end)])
        let query = queryStart.map { UnsafeRawBufferPointer(rebasing: bytes[($0 + 1)..<end]) }
        return route(method, path: path, query: query)
    }

    private static func route(_ method: HTTPMethod, path: StaticString, query: UnsafeRawBufferPointer?) -> HTTPRoute {
        route(method, path: UnsafeRawBufferPointer(start: path.utf8Start, count: path.utf8CodeUnitCount), query: query)
    }

    private static func route(_ method: HTTPMethod, path: UnsafeRawBufferPointer, query: UnsafeRawBufferPointer?) -> HTTPRoute {
        let readable = method == .get || method == .head
        func on(_ route: @autoclosure () -> HTTPRoute) -> HTTPRoute {
            readable ? route() : .methodNotAllowed(allow: .getAndHead)
        }
        if equals(path, "/plaintext") || equals(path, "/") { return on(.plaintext) }
        if equals(path, "/json") { return on(.json) }
        if equals(path, "/work") {
            return on(microseconds(query).map { .work(microseconds: $0) } ?? .badQuery)
        }
        if equals(path, "/block") {
            return on(microseconds(query).map { .block(microseconds: $0) } ?? .badQuery)
        }
        if equals(path, "/echo") { return method == .post ? .echo : .methodNotAllowed(allow: .post) }
        return .notFound
    }

    /// The value of `us=` in the query: decimal digits, at most `maxMicroseconds`.
    static func microseconds(_ query: UnsafeRawBufferPointer?) -> Int? {
        guard let query else { return nil }
        var at = 0
        while at < query.count {
            var end = at
            while end < query.count && query[end] != UInt8(ascii: "&") { end += 1 }
            if end - at > 3 && query[at] == UInt8(ascii: "u") && query[at + 1] == UInt8(ascii: "s") && query[at + 2] == UInt8(ascii: "=") {
                var value = 0
                for index in (at + 3)..<end {
                    let digit = Int(query[index]) - Int(UInt8(ascii: "0"))
                    guard digit >= 0 && digit <= 9 else { return nil }
                    value = value * 10 + digit
                    guard value <= maxMicroseconds else { return nil }
                }
                return value
            }
            at = end + 1
        }
        return nil
    }

    private static func find(_ byte: UInt8, in bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        var at = range.lowerBound
        while at < range.upperBound {
            if bytes[at] == byte { return at }
            at += 1
        }
        return nil
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        return memcmp(bytes.baseAddress!, literal.utf8Start, bytes.count) == 0
    }
}

#if canImport(Glibc)
import Glibc
#endif
