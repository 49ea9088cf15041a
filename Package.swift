// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

func example(_ name: String, _ more: [Target.Dependency] = []) -> Target {
    .executableTarget(name: name, dependencies: ["AsyncSockets"] + more, path: "Examples/\(name)", swiftSettings: strict)
}

let package = Package(
    name: "AsyncSockets",
    products: [
        .library(name: "AsyncSockets", targets: ["AsyncSockets"]),
        .library(name: "AsyncSocketsTLS", targets: ["AsyncSocketsTLS"]),
    ],
    dependencies: [
        // Documentation only (`swift package generate-documentation`): adds no dependency to any target.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // libevent, found through pkg-config; only link flags, see its module.modulemap.
        .systemLibrary(
            name: "CLibevent",
            pkgConfig: "libevent",
            providers: [.apt(["libevent-dev"]), .brew(["libevent"])]
        ),
        // The C surface Swift calls: libevent's headers stay inside shim.c (they clash with Glibc's fd_set).
        .target(name: "CLibeventShim", dependencies: ["CLibevent"]),
        .target(name: "AsyncSockets", dependencies: ["CLibeventShim"], swiftSettings: strict),
        .testTarget(name: "AsyncSocketsTests", dependencies: ["AsyncSockets", "AsyncSocketsTLS"], swiftSettings: strict),
        // TLS over the system's OpenSSL 3: a second product, so that AsyncSockets alone links libevent only.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        // OpenSSL's headers stay inside tls_shim.c (macros, STACK_OF): Swift sees opaque pointers only.
        .target(name: "CTLSShim", dependencies: ["COpenSSL"]),
        .target(name: "AsyncSocketsTLS", dependencies: ["AsyncSockets", "CTLSShim"], swiftSettings: strict),
        // What the examples share (console output, a log that never blocks, Ctrl-C): not part of the library.
        .target(name: "ExampleSupport", path: "Examples/Support", swiftSettings: strict),
        example("Demo"),
        example("EchoServer", ["AsyncSocketsTLS", "ExampleSupport"]),
        example("EchoClient", ["AsyncSocketsTLS"]),
        example("HappyEyeballs"),
        example("ChatServer", ["ExampleSupport"]),
        example("PortForwarder", ["ExampleSupport"]),
        example("Soak"),
        example("FileServer", ["ExampleSupport"]),
        // Test support: scenarios the tests run in a child process (in namespaces of their own).
        .executableTarget(name: "AsyncSocketsProbe", dependencies: ["AsyncSockets"], path: "Tests/AsyncSocketsProbe",
                          swiftSettings: strict),
        example("DatagramEcho", ["ExampleSupport"]),
        example("HTTPSGet", ["AsyncSocketsTLS"]),
    ],
    swiftLanguageModes: [.v6]
)
