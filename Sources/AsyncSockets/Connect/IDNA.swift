/// Internationalised host names, encoded as Python's `idna` codec does (IDNA 2003, RFC 3490) before
/// `getaddrinfo` sees them: `"bücher.example"` becomes `"xn--bcher-kva.example"`.
///
/// Per label (labels are separated by `.`, `。`, `．` or `｡`):
/// - an all-ASCII label is kept as it is (case included), as Python does;
/// - any other label is mapped as nameprep (RFC 3491) does for the common cases: the characters nameprep
///   removes (soft hyphen, zero-width joiners, variation selectors, …) are dropped, letters are case-folded
///   (`lowercased()`, with `ß` → `ss` and final `ς` → `σ`), and a letter followed by combining marks is
///   composed into its precomposed form where one exists (Latin, Greek and Cyrillic: the NFC step). If the
///   result is ASCII it is used as is; otherwise it is Punycode-encoded (RFC 3492) behind `xn--`.
/// Not covered (Python would apply them): NFKC's compatibility mappings (`ﬁ` → `fi`, full-width letters)
/// and stringprep's prohibited-character checks; such names go to `getaddrinfo` as this mapping leaves them.
enum IDNA {
    /// Why a host cannot be encoded.
    enum Failure: Error, CustomStringConvertible {
        /// A label is empty (`a..b`) or longer than 63 bytes once encoded.
        case badLabelLength(String)
        /// A label's encoding does not fit Punycode's integers.
        case overflow(String)

        var description: String {
            switch self {
            case .badLabelLength(let label): return "the label \(label.debugDescription) is empty or longer than 63 bytes"
            case .overflow(let label): return "the label \(label.debugDescription) cannot be encoded"
            }
        }
    }

    /// `host` as `getaddrinfo` should see it: unchanged when it is all ASCII, else its IDNA encoding.
    static func encode(_ host: String) throws(Failure) -> String {
        if host.utf8.allSatisfy({ $0 < 0x80 }) { return host }
        var labels: [String] = []
        var current: [Unicode.Scalar] = []
        for scalar in host.unicodeScalars {
            if separators.contains(scalar.value) {
                labels.append(try encodeLabel(current))
                current = []
            } else {
                current.append(scalar)
            }
        }
        // A trailing dot (an absolute name) is kept; an empty label elsewhere is an error, as in Python.
        if !current.isEmpty || labels.isEmpty {
            labels.append(try encodeLabel(current))
        } else {
            labels.append("")
        }
        return labels.joined(separator: ".")
    }

    /// The label separators of RFC 3490 section 3.1: full stop, ideographic, full-width and half-width
    /// ideographic full stops.
    private static let separators: Set<UInt32> = [0x2E, 0x3002, 0xFF0E, 0xFF61]

    private static func encodeLabel(_ scalars: [Unicode.Scalar]) throws(Failure) -> String {
        let original = String(String.UnicodeScalarView(scalars))
        var label = scalars
        if !label.allSatisfy(\.isASCII) {
            label = compose(map(label))
        }
        let encoded: String
        if label.allSatisfy(\.isASCII) {
            encoded = String(String.UnicodeScalarView(label))
        } else {
            guard let punycode = Punycode.encode(label) else { throw .overflow(original) }
            encoded = "xn--" + punycode
        }
        guard (1...63).contains(encoded.utf8.count) else { throw .badLabelLength(original) }
        return encoded
    }

    /// Nameprep's tables B.1 (removed) and B.2 (case folding), for the common cases.
    private static func map(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        for scalar in scalars {
            switch scalar.value {
            case 0xAD, 0x34F, 0x1806, 0x180B...0x180D, 0x200B...0x200D, 0x2060, 0xFE00...0xFE0F, 0xFEFF:
                continue  // B.1: mapped to nothing
            case 0xDF:
                result += ["s", "s"]  // ß
            case 0x3C2:
                result.append("\u{3C3}")  // final sigma
            default:
                result += String(scalar).lowercased().unicodeScalars
            }
        }
        return result
    }

    /// The NFC step, light: a base letter followed by combining marks (U+0300-U+036F) becomes the
    /// precomposed letter Swift's canonical equivalence finds among Latin, Greek and Cyrillic letters.
    private static func compose(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        for scalar in scalars {
            if (0x300...0x36F).contains(scalar.value), let base = result.last,
               let composed = precomposed(base, scalar) {
                result[result.count - 1] = composed
            } else {
                result.append(scalar)
            }
        }
        return result
    }

    /// The single scalar canonically equivalent to `base` followed by `mark`, if there is one in the
    /// ranges searched. (String comparison in Swift is by canonical equivalence.)
    private static func precomposed(_ base: Unicode.Scalar, _ mark: Unicode.Scalar) -> Unicode.Scalar? {
        var pair = String.UnicodeScalarView()
        pair.append(base)
        pair.append(mark)
        let target = String(pair)
        for range in [0xC0...0x24F, 0x370...0x4FF, 0x1E00...0x1FFF] as [ClosedRange<UInt32>] {
            for value in range {
                if let candidate = Unicode.Scalar(value), String(candidate) == target { return candidate }
            }
        }
        return nil
    }
}

/// Punycode (RFC 3492): Unicode labels as ASCII letters, digits and hyphens.
enum Punycode {
    private static let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700
    private static let initialBias = 72, initialN = 128

    /// The Punycode of `input` (without the `xn--` prefix), or nil when it overflows.
    static func encode(_ input: [Unicode.Scalar]) -> String? {
        var output: [UInt8] = input.filter(\.isASCII).map { UInt8($0.value) }
        let basicCount = output.count
        var handled = basicCount
        if basicCount > 0 { output.append(UInt8(ascii: "-")) }
        var n = initialN, delta = 0, bias = initialBias
        let codes = input.map { Int($0.value) }
        while handled < codes.count {
            guard let m = codes.filter({ $0 >= n }).min() else { return nil }
            let (product, overflow) = (m - n).multipliedReportingOverflow(by: handled + 1)
            guard !overflow, delta <= Int(Int32.max) - product else { return nil }
            delta += product
            n = m
            for code in codes {
                if code < n {
                    delta += 1
                    guard delta <= Int(Int32.max) else { return nil }
                }
                if code == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = threshold(k, bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, handled + 1, first: handled == basicCount)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The Unicode label that `input` (without `xn--`) encodes, or nil when it is not valid Punycode.
    static func decode(_ input: String) -> [Unicode.Scalar]? {
        let bytes = Array(input.utf8)
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
        let delimiter = bytes.lastIndex(of: UInt8(ascii: "-")) ?? 0
        var output: [Unicode.Scalar] = bytes[..<delimiter].map { Unicode.Scalar($0) }
        var position = delimiter > 0 ? delimiter + 1 : 0
        var n = initialN, i = 0, bias = initialBias
        while position < bytes.count {
            let oldI = i
            var w = 1
            var k = base
            while true {
                guard position < bytes.count, let value = digitValue(bytes[position]) else { return nil }
                position += 1
                let (product, overflow) = value.multipliedReportingOverflow(by: w)
                guard !overflow, i <= Int(Int32.max) - product else { return nil }
                i += product
                let t = threshold(k, bias)
                if value < t { break }
                let (weight, weightOverflow) = w.multipliedReportingOverflow(by: base - t)
                guard !weightOverflow, weight <= Int(Int32.max) else { return nil }
                w = weight
                k += base
            }
            bias = adapt(i - oldI, output.count + 1, first: oldI == 0)
            n += i / (output.count + 1)
            i %= output.count + 1
            guard n <= 0x10FFFF, let scalar = Unicode.Scalar(UInt32(n)) else { return nil }
            output.insert(scalar, at: i)
            i += 1
        }
        return output
    }

    private static func threshold(_ k: Int, _ bias: Int) -> Int {
        k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
    }

    private static func adapt(_ delta: Int, _ count: Int, first: Bool) -> Int {
        var delta = first ? delta / damp : delta / 2
        delta += delta / count
        var k = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }

    private static func digit(_ value: Int) -> UInt8 {
        value < 26 ? UInt8(ascii: "a") + UInt8(value) : UInt8(ascii: "0") + UInt8(value - 26)
    }

    private static func digitValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return Int(byte - UInt8(ascii: "a"))
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return Int(byte - UInt8(ascii: "A"))
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0")) + 26
        default: return nil
        }
    }
}
