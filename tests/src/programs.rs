//! Small C test programs (tests/programs/*.c), compiled on demand with `cc`.

use crate::process::Cmd;
use std::path::{Path, PathBuf};

/// The source directory of the test programs.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

/// Compiles `tests/programs/<name>.c` into `<out_dir>/<name>` (with `-pthread`) and returns the
/// executable's path; fails the test with the compiler's output if it does not build.
#[track_caller]
pub fn build_c(name: &str, out_dir: &Path) -> PathBuf {
    let src = source_dir().join(format!("{name}.c"));
    assert!(src.exists(), "no test program {}", src.display());
    let exe = out_dir.join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Cmd::new(&cc)
        .args(["-O1", "-g", "-Wall", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .capture_in(out_dir)
        .run(std::time::Duration::from_secs(60));
    assert_eq!(
        out.code(),
        Some(0),
        "compiling {name}.c failed:\n{}",
        out.describe()
    );
    exe
}
