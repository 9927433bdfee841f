//! Is a program dynamically linked? The runtime is loaded with `LD_PRELOAD`, which only the
//! dynamic loader honours, so a statically linked program would run outside the computation and
//! the coordinator would wait for it forever. `dmtcp_launch` refuses such programs up front.

use object::elf::PT_INTERP;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, FileKind, ReadCache};
use std::fs::File;
use std::path::Path;

/// How a program file is linked, as far as loading the runtime is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    /// An ELF executable with a program interpreter (`ld.so`): `LD_PRELOAD` works.
    Dynamic,
    /// An ELF executable without one (static, or static-pie): the runtime cannot be loaded.
    Static,
    /// Not an ELF file (a script: its interpreter is what runs, and is checked when it execs),
    /// or unreadable (the exec itself will report why).
    Other,
}

/// Reads only the ELF header and program headers, not the whole file.
pub fn linkage(path: &Path) -> Linkage {
    let Ok(file) = File::open(path) else {
        return Linkage::Other;
    };
    let data = ReadCache::new(file);
    let has_interp = match FileKind::parse(&data) {
        Ok(FileKind::Elf64) => has_interp::<object::elf::FileHeader64<Endianness>>(&data),
        Ok(FileKind::Elf32) => has_interp::<object::elf::FileHeader32<Endianness>>(&data),
        _ => return Linkage::Other,
    };
    match has_interp {
        Some(true) => Linkage::Dynamic,
        Some(false) => Linkage::Static,
        None => Linkage::Other,
    }
}

fn has_interp<H: FileHeader<Endian = Endianness>>(data: &ReadCache<File>) -> Option<bool> {
    let header = H::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let phdrs = header.program_headers(endian, data).ok()?;
    Some(phdrs.iter().any(|ph| ph.p_type(endian) == PT_INTERP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_is_dynamic() {
        let me = std::env::current_exe().unwrap();
        assert_eq!(linkage(&me), Linkage::Dynamic);
    }

    #[test]
    fn scripts_and_missing_files_are_other() {
        let dir = std::env::temp_dir().join(format!("dmtcp-elf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("s.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(linkage(&script), Linkage::Other);
        assert_eq!(linkage(&dir.join("missing")), Linkage::Other);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
