// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

func example(_ name: String) -> Target {
    .executableTarget(name: name, dependencies: ["AsyncSockets"], path: "Examples/\(name)", swiftSettings: strict)
}

let package = Package(
    name: "AsyncSockets",
    products: [
        .library(name: "AsyncSockets", targets: ["AsyncSockets"]),
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
        .testTarget(name: "AsyncSocketsTests", dependencies: ["AsyncSockets"], swiftSettings: strict),
        example("Demo"),
        example("EchoServer"),
        example("EchoClient"),
        example("HappyEyeballs"),
        example("ChatServer"),
        example("PortForwarder"),
        example("Soak"),
        example("FileServer"),
        // Test support: scenarios the tests run in a child process (in namespaces of their own).
        .executableTarget(name: "AsyncSocketsProbe", dependencies: ["AsyncSockets"], path: "Tests/AsyncSocketsProbe",
                          swiftSettings: strict),
        example("DatagramEcho"),
    ],
    swiftLanguageModes: [.v6]
)
