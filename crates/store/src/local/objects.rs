//! Objects as files: `<data_dir>/<key>`. A write goes to a hidden temporary file in the same
//! directory and is renamed over the key, so a reader sees the old object or the new one,
//! never half of one. Content types are not kept locally (nothing reads them back). A delete
//! removes the file (a missing one is fine); emptied directories stay, as S3 prefixes would.

use super::{LocalStore, STATE_DB};
use crate::error::Result;
use crate::ports::{ObjectDeleter, ObjectInfo, ObjectStore, ObjectTail};
use std::io::{Error as IoError, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of concurrent writes within this process.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Checks that `key` names a file inside the data directory that is not the state database
/// or one of our temporary files.
fn check_key(key: &str) -> Result<()> {
    let bad = |why: &str| -> Result<()> {
        Err(IoError::new(
            ErrorKind::InvalidInput,
            format!("object key {key:?}: {why}"),
        )
        .into())
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.contains('\\') || key.contains('\0') {
        return bad("backslash or NUL");
    }
    for seg in key.split('/') {
        if seg.is_empty() {
            return bad("empty path segment (leading, trailing or doubled '/')");
        }
        if seg.starts_with('.') {
            return bad("segment starting with '.' (reserved for temporary files)");
        }
    }
    if !key.contains('/') && key.starts_with(STATE_DB) {
        return bad("reserved for the state database");
    }
    Ok(())
}

fn put(dir: &Path, key: &str, bytes: &[u8]) -> Result<()> {
    put_with(dir, key, |tmp| std::fs::write(tmp, bytes))
}

/// [`put`] of a file's content, copied (never held in memory).
fn put_copy(dir: &Path, key: &str, src: &Path) -> Result<()> {
    put_with(dir, key, |tmp| std::fs::copy(src, tmp).map(|_| ()))
}

/// Writes an object through a temporary file renamed into place: readers never see half.
fn put_with(dir: &Path, key: &str, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    check_key(key)?;
    let path = dir.join(key);
    let parent = path.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let tmp = parent.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write(&tmp).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        // Best effort: the temporary file is hidden from listings anyway.
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    Ok(())
}

fn get(dir: &Path, key: &str) -> Result<Option<Vec<u8>>> {
    check_key(key)?;
    let path = dir.join(key);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        // A key that is a "directory" (a prefix of other keys) is not an object, as on S3.
        Err(_) if path.is_dir() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The last `len` bytes of the file at `key` and its size: a seek, not a read of the file.
fn tail(dir: &Path, key: &str, len: u64) -> Result<Option<ObjectTail>> {
    let Some((mut file, size)) = open_file(dir, key)? else {
        return Ok(None);
    };
    let bytes = read_at(&mut file, size - len.min(size), size)?;
    Ok(Some(ObjectTail { bytes, size }))
}

/// The bytes `range` of the file at `key` (cut at its end): a seek, not a read of the file.
fn range(dir: &Path, key: &str, range: std::ops::Range<u64>) -> Result<Option<Vec<u8>>> {
    let Some((mut file, size)) = open_file(dir, key)? else {
        return Ok(None);
    };
    Ok(Some(read_at(
        &mut file,
        range.start.min(size),
        range.end.min(size),
    )?))
}

/// The file at `key` and its size; `None` when there is none (or it is a directory).
fn open_file(dir: &Path, key: &str) -> Result<Option<(std::fs::File, u64)>> {
    check_key(key)?;
    let path = dir.join(key);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(_) if path.is_dir() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Ok(None);
    }
    Ok(Some((file, meta.len())))
}

/// The bytes from `start` to `end` of `file`.
fn read_at(file: &mut std::fs::File, start: u64, end: u64) -> Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(start))?;
    let len = end.saturating_sub(start);
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn list(dir: &Path, prefix: &str) -> Result<Vec<String>> {
    // Walk only the deepest directory the prefix names; the rest of the prefix filters names.
    let base = match prefix.rfind('/') {
        Some(i) => &prefix[..i],
        None => "",
    };
    if !base.is_empty() {
        check_key(base)?;
    }
    let mut keys = Vec::new();
    let start: PathBuf = if base.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(base)
    };
    let mut pending = vec![(start, base.to_string())];
    while let Some((path, key_prefix)) = pending.pop() {
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue; // not a key we could have written
            };
            if name.starts_with('.') || (key_prefix.is_empty() && name.starts_with(STATE_DB)) {
                continue;
            }
            let key = if key_prefix.is_empty() {
                name
            } else {
                format!("{key_prefix}/{name}")
            };
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                // Descend only where keys can still match the prefix.
                if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                    pending.push((entry.path(), key));
                }
            } else if file_type.is_file() && key.starts_with(prefix) {
                keys.push(key);
            }
        }
    }
    keys.sort_unstable();
    Ok(keys)
}

impl ObjectStore for LocalStore {
    async fn put_object(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<()> {
        let key = key.to_string();
        self.with_dir(move |dir| put(dir, &key, &bytes)).await
    }

    async fn put_file(&self, key: &str, path: &Path, _content_type: &str) -> Result<()> {
        let (key, src) = (key.to_string(), path.to_path_buf());
        self.with_dir(move |dir| put_copy(dir, &key, &src)).await
    }

    async fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.to_string();
        self.with_dir(move |dir| get(dir, &key)).await
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = prefix.to_string();
        self.with_dir(move |dir| list(dir, &prefix)).await
    }

    async fn get_range(&self, key: &str, r: std::ops::Range<u64>) -> Result<Option<Vec<u8>>> {
        let key = key.to_string();
        self.with_dir(move |dir| range(dir, &key, r)).await
    }

    async fn get_tail(&self, key: &str, len: u64) -> Result<Option<ObjectTail>> {
        let key = key.to_string();
        self.with_dir(move |dir| tail(dir, &key, len)).await
    }

    async fn list_objects_sized(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let prefix = prefix.to_string();
        self.with_dir(move |dir| {
            let mut out = Vec::new();
            for key in list(dir, &prefix)? {
                // A file deleted between the listing and here is no longer an object.
                match std::fs::metadata(dir.join(&key)) {
                    Ok(m) => out.push(ObjectInfo {
                        key,
                        size: Some(m.len()),
                    }),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(out)
        })
        .await
    }
}

fn delete(dir: &Path, keys: &[String]) -> Result<()> {
    for key in keys {
        check_key(key)?;
        match std::fs::remove_file(dir.join(key)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl ObjectDeleter for LocalStore {
    async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        let keys = keys.to_vec();
        self.with_dir(move |dir| delete(dir, &keys)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_keys_escaping_the_data_dir_or_hitting_state_then_they_are_refused() {
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/",
            "a/.hidden",
            "state.sqlite",
            "state.sqlite-wal",
            "a\\b",
        ] {
            assert!(check_key(key).is_err(), "{key:?} accepted");
        }
        for key in [
            "snapshots/tier=2/dt=2026-11-20/20261120T223000Z.parquet",
            "a",
            "x/state.sqlite",
        ] {
            assert!(check_key(key).is_ok(), "{key:?} refused");
        }
    }
}
