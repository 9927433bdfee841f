//! The computation's secret: creation, owner-only storage, and the HMAC proofs of the hello.
//!
//! A coordinator creates a random secret and stores it in `<secret dir>/<coord_id>.secret`
//! (directory 0700, file 0600). Processes it launches get it through `DMTCP_SECRET`; other
//! clients of the same user read the file named by the coordinator's id. Nobody else can.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

/// Environment variable carrying `<coord_id>:<hex secret>` into launched processes.
pub const SECRET_ENV: &str = "DMTCP_SECRET";
/// Overrides the directory that holds secret files.
pub const SECRET_DIR_ENV: &str = "DMTCP_SECRET_DIR";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot create secret directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error(
        "secret directory {path} is not private to uid {uid} (mode or owner); fix it with `chmod 700 {path}`"
    )]
    UnsafeDir { path: PathBuf, uid: u32 },
    #[error("cannot write secret file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "no secret for coordinator {coord_id} at {path}: it belongs to another user or its files were removed"
    )]
    Missing { coord_id: String, path: PathBuf },
    #[error("secret file {path} is malformed")]
    Malformed { path: PathBuf },
    #[error("no randomness available: {0}")]
    Random(String),
}

#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Fills a buffer from the kernel's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(b)
}

/// A fresh random coordinator id (16 hex digits).
pub fn new_coord_id() -> Result<String, SecretError> {
    Ok(hex::encode(random_bytes::<8>()?))
}

impl Secret {
    pub fn generate() -> Result<Self, SecretError> {
        Ok(Secret(random_bytes()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s.trim()).ok()?;
        Some(Secret(v.try_into().ok()?))
    }

    /// The value of `DMTCP_SECRET` for processes of this coordinator.
    pub fn env_value(&self, coord_id: &str) -> String {
        format!("{coord_id}:{}", self.to_hex())
    }

    /// The secret in `DMTCP_SECRET`, if it was issued by `coord_id`.
    pub fn from_env(coord_id: &str) -> Option<Self> {
        let v = std::env::var(SECRET_ENV).ok()?;
        let (id, hex) = v.split_once(':')?;
        (id == coord_id).then(|| Self::from_hex(hex)).flatten()
    }

    fn mac(&self, label: &[u8], nonce: &[u8; 32]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label);
        mac.update(nonce);
        mac
    }

    pub fn client_proof(&self, server_nonce: &[u8; 32]) -> [u8; 32] {
        self.mac(b"client", server_nonce)
            .finalize()
            .into_bytes()
            .into()
    }

    pub fn server_proof(&self, client_nonce: &[u8; 32]) -> [u8; 32] {
        self.mac(b"server", client_nonce)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Constant-time check of a client's proof.
    pub fn verify_client(&self, server_nonce: &[u8; 32], proof: &[u8; 32]) -> bool {
        self.mac(b"client", server_nonce)
            .verify_slice(proof)
            .is_ok()
    }

    pub fn verify_server(&self, client_nonce: &[u8; 32], proof: &[u8; 32]) -> bool {
        self.mac(b"server", client_nonce)
            .verify_slice(proof)
            .is_ok()
    }
}

/// The current real uid.
pub fn my_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Where secret files live: `$DMTCP_SECRET_DIR`, else `$HOME/.dmtcp/coordinators`, else
/// `/tmp/dmtcp-<uid>/coordinators`. A shared home makes secrets visible on every node.
pub fn secret_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(SECRET_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) if Path::new(&home).is_dir() => Path::new(&home).join(".dmtcp/coordinators"),
        _ => PathBuf::from(format!("/tmp/dmtcp-{}/coordinators", my_uid())),
    }
}

pub fn secret_path(coord_id: &str) -> PathBuf {
    secret_dir().join(format!("{coord_id}.secret"))
}

fn ensure_private_dir(dir: &Path) -> Result<(), SecretError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| SecretError::CreateDir {
            path: dir.into(),
            source,
        })?;
    let meta = fs::metadata(dir).map_err(|source| SecretError::CreateDir {
        path: dir.into(),
        source,
    })?;
    if meta.uid() != my_uid() || meta.mode() & 0o077 != 0 {
        return Err(SecretError::UnsafeDir {
            path: dir.into(),
            uid: my_uid(),
        });
    }
    Ok(())
}

/// Stores the secret of coordinator `coord_id` readable by its owner only.
pub fn store_secret(coord_id: &str, secret: &Secret) -> Result<PathBuf, SecretError> {
    let dir = secret_dir();
    ensure_private_dir(&dir)?;
    let path = dir.join(format!("{coord_id}.secret"));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| SecretError::Write {
            path: path.clone(),
            source,
        })?;
    f.write_all(format!("{}\n", secret.to_hex()).as_bytes())
        .map_err(|source| SecretError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

/// Loads the secret of coordinator `coord_id`: from the environment if it was issued there,
/// else from the owner's secret file.
pub fn load_secret(coord_id: &str) -> Result<Secret, SecretError> {
    if let Some(s) = Secret::from_env(coord_id) {
        return Ok(s);
    }
    let path = secret_path(coord_id);
    let text = fs::read_to_string(&path).map_err(|_| SecretError::Missing {
        coord_id: coord_id.into(),
        path: path.clone(),
    })?;
    Secret::from_hex(&text).ok_or(SecretError::Malformed { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_only_with_the_same_secret() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        let nonce = random_bytes::<32>().unwrap();
        assert!(a.verify_client(&nonce, &a.client_proof(&nonce)));
        assert!(!b.verify_client(&nonce, &a.client_proof(&nonce)));
        // Client and server proofs are not interchangeable.
        assert!(!a.verify_server(&nonce, &a.client_proof(&nonce)));
    }

    #[test]
    fn env_secret_is_bound_to_its_coordinator() {
        let s = Secret::generate().unwrap();
        let v = s.env_value("abcd");
        let (id, hex) = v.split_once(':').unwrap();
        assert_eq!(id, "abcd");
        assert_eq!(Secret::from_hex(hex), Some(s));
    }

    #[test]
    fn stored_secret_is_private() {
        let dir = std::env::temp_dir().join(format!("dmtcp-secret-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        // SAFETY: single-threaded use of the environment inside this test.
        unsafe { std::env::set_var(SECRET_DIR_ENV, &dir) };
        let s = Secret::generate().unwrap();
        let path = store_secret("feed", &s).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(load_secret("feed").unwrap(), s);
        assert!(matches!(
            load_secret("beef"),
            Err(SecretError::Missing { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
