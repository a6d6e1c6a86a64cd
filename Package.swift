// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Recurrent",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Recurrent", targets: ["Recurrent"]),
        .executable(name: "recurrent", targets: ["recurrent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Element-wise kernels (gate non-linearities) in C so they vectorize to the
        // widest SIMD the CPU has (function multi-versioning on x86-64).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=fast"])]),
        .target(
            name: "Recurrent",
            dependencies: ["CKernels"],
            linkerSettings: [
                .linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS])),
                .linkedLibrary("dl", .when(platforms: [.linux])),
            ]
        ),
        .executableTarget(
            name: "recurrent",
            dependencies: ["Recurrent", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(
            name: "RecurrentTests",
            dependencies: ["Recurrent"],
            resources: [.copy("Fixtures")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
