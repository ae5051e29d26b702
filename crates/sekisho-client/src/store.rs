//! Where the tokens live between calls: [`TokenStore`], with an in-memory and a file
//! implementation.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A login: the refresh token, and the access token last issued for it (if any is kept).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    pub refresh: String,
}

impl Tokens {
    pub fn new(access: impl Into<String>, refresh: impl Into<String>) -> Tokens {
        Tokens {
            access: Some(access.into()),
            refresh: refresh.into(),
        }
    }
}

impl fmt::Debug for Tokens {
    /// Never prints a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access", &self.access.as_ref().map(|_| "…"))
            .field("refresh", &"…")
            .finish()
    }
}

/// Persistence for [`Tokens`]. The client keeps the current tokens in memory and writes every
/// change through: after a login, after **every** refresh (the server rotates the refresh token,
/// and the one presented is then spent), and on logout or a refused refresh (`clear`). Before a
/// refresh it reads the store again, so a process that shares the store with another one picks
/// up the other's newer tokens instead of presenting a spent refresh token.
///
/// Calls are bounded by the client's timeout. Implementations should be atomic: a reader never
/// sees half a write.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// The stored tokens, or `None` when there are none.
    async fn load(&self) -> io::Result<Option<Tokens>>;
    async fn save(&self, tokens: &Tokens) -> io::Result<()>;
    /// Removes the stored tokens; removing nothing is not an error.
    async fn clear(&self) -> io::Result<()>;
}

/// Keeps the tokens in this process only (the default).
#[derive(Default)]
pub struct MemoryStore(Mutex<Option<Tokens>>);

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that already holds `tokens` (obtained elsewhere, or restored by the app).
    pub fn with_tokens(tokens: Tokens) -> MemoryStore {
        MemoryStore(Mutex::new(Some(tokens)))
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Tokens>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MemoryStore").field(&*self.slot()).finish()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self) -> io::Result<Option<Tokens>> {
        Ok(self.slot().clone())
    }
    async fn save(&self, tokens: &Tokens) -> io::Result<()> {
        *self.slot() = Some(tokens.clone());
        Ok(())
    }
    async fn clear(&self) -> io::Result<()> {
        *self.slot() = None;
        Ok(())
    }
}

/// Keeps the tokens in a JSON file readable by its owner only (mode 0600 on Unix; a missing
/// parent directory is created with mode 0700). Writes go to a temporary file in the same
/// directory, are synced, and replace the file by `rename`, so a crash leaves either the old
/// tokens or the new ones — never half of either.
///
/// Several processes may share one file: each reads it again before refreshing. Two processes
/// refreshing at the same instant both succeed within the server's grace window
/// (`jwt.reuse_grace`), which hands both the same successor.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load_sync(path: &Path) -> io::Result<Option<Tokens>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a token file: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn save_sync(path: &Path, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&dir)?;
        }
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let tmp = dir.join(format!(
            ".{}.{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let result = (|| {
            let mut f = opts.open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, path)?;
            // The rename is durable only once the directory is synced.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn clear_sync(path: &Path) -> io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("token store task failed: {e}")))?
}

#[async_trait]
impl TokenStore for FileStore {
    async fn load(&self) -> io::Result<Option<Tokens>> {
        let path = self.path.clone();
        blocking(move || FileStore::load_sync(&path)).await
    }

    async fn save(&self, tokens: &Tokens) -> io::Result<()> {
        let bytes = serde_json::to_vec(tokens).map_err(io::Error::other)?;
        let path = self.path.clone();
        blocking(move || FileStore::save_sync(&path, &bytes)).await
    }

    async fn clear(&self) -> io::Result<()> {
        let path = self.path.clone();
        blocking(move || FileStore::clear_sync(&path)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_round_trips() {
        let s = MemoryStore::new();
        assert_eq!(s.load().await.unwrap(), None);
        s.save(&Tokens::new("a", "r")).await.unwrap();
        assert_eq!(s.load().await.unwrap(), Some(Tokens::new("a", "r")));
        s.clear().await.unwrap();
        s.clear().await.unwrap();
        assert_eq!(s.load().await.unwrap(), None);
    }

    #[tokio::test]
    async fn file_store_is_private_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/tokens.json");
        let s = FileStore::new(&path);
        assert_eq!(s.load().await.unwrap(), None);
        s.save(&Tokens::new("a1", "r1")).await.unwrap();
        s.save(&Tokens {
            access: None,
            refresh: "r2".into(),
        })
        .await
        .unwrap();
        assert_eq!(
            FileStore::new(&path).load().await.unwrap(),
            Some(Tokens {
                access: None,
                refresh: "r2".into()
            })
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("tokens.json")]);
        s.clear().await.unwrap();
        s.clear().await.unwrap();
        assert_eq!(s.load().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_corrupt_file_is_an_error_not_a_logout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, b"{not json").unwrap();
        let e = FileStore::new(&path).load().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn debug_hides_tokens() {
        let t = Tokens::new("secret-a", "secret-r");
        let text = format!("{t:?} {:?}", MemoryStore::with_tokens(t.clone()));
        assert!(!text.contains("secret"), "{text}");
    }
}
