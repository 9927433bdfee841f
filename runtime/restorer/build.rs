//! Link arguments for the freestanding restorer binary only (the library part is ordinary).
//!
//! The binary is a static, non-PIE executable linked at the hole's address: its code is
//! position independent (RIP-relative) and its GOT is filled by the linker, so it needs no
//! runtime relocation and runs as soon as its segments are placed at their addresses.

fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--image-base=0x3f0000000000",
        "-Wl,--build-id=none",
        "-Wl,-z,norelro",
        "-Wl,--no-dynamic-linker",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
