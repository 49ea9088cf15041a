// swift-tools-version:6.1
// The benchmark suite is its own package so that the AsyncSockets library keeps zero Swift dependencies.
// Build one product at a time (`swift build -c release --product EchoNIOAsync`) or everything via run.sh.
import PackageDescription

let package = Package(
    name: "AsyncSocketsBenchmarks",
    dependencies: [
        .package(name: "AsyncSockets", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swhitty/FlyingFox", exact: "0.27.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // Echo servers: same CLI (`PORT`, binds 127.0.0.1, prints `listening PORT` when ready).
        .executableTarget(
            name: "EchoAsyncSockets",
            dependencies: [.product(name: "AsyncSockets", package: "AsyncSockets")]
        ),
        .executableTarget(
            name: "EchoNIOAsync",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "EchoNIOHandler",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "EchoFlyingSocks",
            dependencies: [.product(name: "FlyingSocks", package: "FlyingFox")]
        ),

        // UDP echo servers (datagram benchmarks, udp.sh): same CLI as the TCP ones.
        .executableTarget(
            name: "UDPEchoAsyncSockets",
            dependencies: [.product(name: "AsyncSockets", package: "AsyncSockets")]
        ),
        .executableTarget(
            name: "UDPEchoNIOHandler",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "UDPEchoNIOAsync",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "UDPEchoFlyingSocks",
            dependencies: [.product(name: "FlyingSocks", package: "FlyingFox")]
        ),

        // TLS echo servers (tls.sh): `NAME PORT CERT.pem KEY.pem`, otherwise the same CLI as the TCP ones.
        .executableTarget(
            name: "TLSEchoAsyncSockets",
            dependencies: [
                .product(name: "AsyncSockets", package: "AsyncSockets"),
                .product(name: "AsyncSocketsTLS", package: "AsyncSockets"),
            ]
        ),
        .executableTarget(
            name: "TLSEchoNIOHandler",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "TLSEchoNIOAsync",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),

        // Client-side ping-pong against the C echo server: same CLI and output as loadgen's pingpong.
        .target(name: "BenchSupport"),
        .executableTarget(
            name: "PingAsyncSockets",
            dependencies: ["BenchSupport", .product(name: "AsyncSockets", package: "AsyncSockets")]
        ),
        .executableTarget(
            name: "PingNIOAsync",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "PingFlyingSocks",
            dependencies: ["BenchSupport", .product(name: "FlyingSocks", package: "FlyingFox")]
        ),

        // In-process micro benchmarks: ping-pong over a socketpair, round trips/s and mallocs per round trip.
        .executableTarget(
            name: "PairAsyncSockets",
            dependencies: ["BenchSupport", .product(name: "AsyncSockets", package: "AsyncSockets")]
        ),
        .executableTarget(
            name: "CountAsyncSockets",
            dependencies: [.product(name: "AsyncSockets", package: "AsyncSockets")]
        ),
        .executableTarget(
            name: "PairsAsyncSockets",
            dependencies: ["BenchSupport", .product(name: "AsyncSockets", package: "AsyncSockets")]
        ),
        .executableTarget(
            name: "ConnectAsyncSockets",
            dependencies: ["BenchSupport", .product(name: "AsyncSockets", package: "AsyncSockets")]
        ),
        .executableTarget(
            name: "ConnectNIOAsync",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "PairNIOAsync",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
