/// One step of a Happy Eyeballs race, reported to the observer of
/// ``AsyncSocket/connect(to:timeout:sourceAddress:allErrors:happyEyeballsDelay:resolver:multipath:observer:)``.
public struct ConnectionRaceEvent: Sendable, CustomStringConvertible {
    /// What happened.
    public enum Kind: Sendable {
        /// The resolver answered; ``ConnectionRaceEvent/addresses`` holds the addresses in attempt order.
        case resolved
        /// An attempt to ``ConnectionRaceEvent/address`` started.
        case started
        /// That attempt failed with this error.
        case failed(any Error)
        /// That attempt connected first: its socket is the result.
        case won
        /// That attempt was cancelled (another won, or the caller was cancelled); its descriptor is closed.
        case cancelled
    }

    /// What happened.
    public var kind: Kind
    /// The attempt's address (nil for ``Kind/resolved``).
    public var address: SocketAddress?
    /// The attempt's position in attempt order, from 0 (nil for ``Kind/resolved``).
    public var attempt: Int?
    /// The addresses in attempt order (for ``Kind/resolved``; empty otherwise).
    public var addresses: [SocketAddress]
    /// Time since `connect` was called.
    public var elapsed: Duration

    /// `"  12.3 ms  #1 [::1]:80  failed: connect to [::1]:80 failed: Connection refused (ECONNREFUSED)"`.
    public var description: String {
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        var text = String(format3(ms)) + " ms  "
        if let attempt, let address { text += "#\(attempt + 1) \(address)  " }
        switch kind {
        case .resolved: text += "resolved: " + addresses.map(\.description).joined(separator: ", ")
        case .started: text += "started"
        case .failed(let error): text += "failed: \(error)"
        case .won: text += "won"
        case .cancelled: text += "cancelled"
        }
        return text
    }
}

/// `ms` with one decimal, right-aligned to 7 characters (no Foundation).
private func format3(_ ms: Double) -> String {
    let tenths = Int((ms * 10).rounded())
    let text = "\(tenths / 10).\(tenths % 10)"
    return String(repeating: " ", count: max(0, 7 - text.count)) + text
}
