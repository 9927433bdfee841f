//! Can this image be restored here? Compares the header with the restarting host.

use crate::header::Header;

/// What the restarting host offers (filled by `dmtcp_restart`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Host {
    pub arch: String,
    pub kernel_release: String,
    /// Same function as the checkpointing runtime used for the image's fingerprint.
    pub vdso_fingerprint: Vec<u8>,
    pub page_size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incompatible {
    #[error("image is for {image}, this machine is {host}: restart on a {image} machine")]
    Arch { image: String, host: String },
    #[error(
        "image uses {image}-byte pages, this machine {host}-byte pages: restart on a machine \
         with {image}-byte pages"
    )]
    PageSize { image: u32, host: u32 },
    #[error(
        "image comes from kernel {image} whose vdso differs from this kernel's ({host}): \
         restart on a node running kernel {image}"
    )]
    Vdso { image: String, host: String },
}

/// Checks architecture, page size and vdso fingerprint. A different kernel release alone is
/// fine: only the vdso layout is baked into the restored memory.
pub fn check(header: &Header, host: &Host) -> Result<(), Incompatible> {
    if header.arch != host.arch {
        return Err(Incompatible::Arch {
            image: header.arch.clone(),
            host: host.arch.clone(),
        });
    }
    if header.page_size != host.page_size {
        return Err(Incompatible::PageSize {
            image: header.page_size,
            host: host.page_size,
        });
    }
    if header.vdso_fingerprint != host.vdso_fingerprint {
        return Err(Incompatible::Vdso {
            image: header.kernel_release.clone(),
            host: host.kernel_release.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_arch_page_and_vdso() {
        let mut h = Header::new();
        h.kernel_release = "6.1.0".into();
        h.vdso_fingerprint = vec![1, 2];
        let mut host = Host {
            arch: h.arch.clone(),
            kernel_release: "6.18.0".into(),
            vdso_fingerprint: vec![1, 2],
            page_size: 4096,
        };
        assert_eq!(check(&h, &host), Ok(()));
        host.vdso_fingerprint = vec![1, 3];
        let e = check(&h, &host).unwrap_err();
        assert_eq!(
            e.to_string(),
            "image comes from kernel 6.1.0 whose vdso differs from this kernel's (6.18.0): \
             restart on a node running kernel 6.1.0"
        );
        host.page_size = 16384;
        assert!(matches!(
            check(&h, &host),
            Err(Incompatible::PageSize { .. })
        ));
        host.arch = "aarch64".into();
        assert!(matches!(check(&h, &host), Err(Incompatible::Arch { .. })));
    }
}
