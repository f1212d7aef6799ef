//! The local adapters: state in SQLite (`<data_dir>/state.sqlite`, WAL mode) and objects as
//! files under `<data_dir>/<key>`, with the same keys as on S3. One [`LocalStore`] implements
//! every port, so `polytape run` and the tests use a single handle.
//!
//! rusqlite is synchronous: the one connection sits behind a mutex and every call runs on
//! tokio's blocking pool, so the async runtime never waits on disk.

mod objects;
mod state;

use crate::error::{Result, StoreError};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// File name of the state database inside the data directory; object keys may not use it.
pub const STATE_DB: &str = "state.sqlite";

/// SQLite state and a directory of objects. Cheap to clone: clones share one connection.
#[derive(Clone, Debug)]
pub struct LocalStore {
    dir: Arc<PathBuf>,
    conn: Arc<Mutex<Connection>>,
}

impl LocalStore {
    /// Opens (creating when needed) the data directory and its state database.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let conn = state::open(&data_dir.join(STATE_DB))?;
        Ok(LocalStore {
            dir: Arc::new(data_dir.to_path_buf()),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The data directory: objects live under it at their keys.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        blocking(move || {
            // A panic mid-call rolled its transaction back when the Transaction dropped, so
            // the connection is still usable after a poisoned lock.
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
    }

    /// Runs `f` with the data directory on the blocking pool.
    async fn with_dir<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T> + Send + 'static,
    {
        let dir = Arc::clone(&self.dir);
        blocking(move || f(&dir)).await
    }
}

async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend {
            reason: format!("local store task failed: {e}"),
            retryable: false,
        })?
}
