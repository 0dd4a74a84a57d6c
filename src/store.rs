//! The only module that touches the keys directory: lock, read, atomic write, permissions.
//!
//! Writes go to temporary files in the same directory, are fsynced, renamed over the
//! target, and the directory is fsynced: a reader (or a crash) sees the old file or the new
//! one, never a partial one. A file whose bytes and mode are already right is not touched.

use crate::error::{Error, Result};
use crate::render::PlannedFile;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Temporary files start with this prefix; leftovers of a crash are removed under the lock.
const TEMP_PREFIX: &str = ".supakeys-tmp-";

/// An open keys directory.
pub struct Dir {
    path: PathBuf,
    handle: File,
}

/// The directory lock; released when dropped (or when the process dies).
pub struct Lock<'a> {
    dir: &'a Dir,
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        let _ = self.dir.handle.unlock();
    }
}

/// What [`Dir::apply`] did to each file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub written: Vec<&'static str>,
    pub mode_fixed: Vec<&'static str>,
    pub unchanged: Vec<&'static str>,
}

impl Dir {
    pub fn open(path: &Path) -> Result<Dir> {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Error::DirMissing { path: path.into() }),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::DirMissing { path: path.into() });
            }
            Err(e) => return Err(Error::io("inspect", path, e)),
        }
        let handle = File::open(path).map_err(|e| Error::io("open", path, e))?;
        Ok(Dir {
            path: path.into(),
            handle,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the exclusive lock (an advisory lock on the directory itself, so no lock file
    /// is left behind), polling until `timeout`.
    pub fn lock(&self, timeout: Duration) -> Result<Lock<'_>> {
        let start = Instant::now();
        let mut waited = false;
        loop {
            match self.handle.try_lock() {
                Ok(()) => return Ok(Lock { dir: self }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= timeout {
                        return Err(Error::LockTimeout {
                            path: self.path.clone(),
                            seconds: timeout.as_secs(),
                        });
                    }
                    if !waited {
                        tracing::info!(dir = %self.path.display(), "another supakeys holds the lock; waiting");
                        waited = true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io("lock", &self.path, e));
                }
            }
        }
    }

    /// Reads a managed file; `None` when it does not exist. Symlinks are refused.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path.join(name);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("inspect", &path, e)),
            Ok(m) if !m.file_type().is_file() => return Err(Error::NotARegularFile { path }),
            Ok(_) => {}
        }
        fs::read(&path)
            .map(Some)
            .map_err(|e| Error::io("read", &path, e))
    }

    /// The permission bits of a managed file, if it exists.
    pub fn mode(&self, name: &str) -> Result<Option<u32>> {
        let path = self.path.join(name);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("inspect", &path, e)),
            Ok(m) => Ok(Some(m.permissions().mode() & 0o7777)),
        }
    }

    /// Removes temporary files left by a run that died mid-write. Call under the lock.
    pub fn remove_stale_temp_files(&self, _lock: &Lock<'_>) -> Result<()> {
        let entries = fs::read_dir(&self.path).map_err(|e| Error::io("list", &self.path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &self.path, e))?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
                tracing::debug!(file = %path.display(), "removed a temporary file left by an interrupted run");
            }
        }
        Ok(())
    }

    /// Makes every planned file exist with its bytes and mode. Call under the lock.
    ///
    /// Three phases, so that a failure changes nothing: every target is inspected (a
    /// symlink or directory is refused), every new file is staged as a synced temporary
    /// file (a full disk fails here, and the temporary files are removed), and only then
    /// are they renamed into place, in plan order: `state.json` first.
    pub fn apply(&self, _lock: &Lock<'_>, plan: &[PlannedFile]) -> Result<Applied> {
        let mut applied = Applied::default();
        let mut to_write = Vec::new();
        let mut to_chmod = Vec::new();
        for file in plan {
            if self.read(file.name)?.as_deref() != Some(&file.bytes[..]) {
                to_write.push(file);
            } else if self.mode(file.name)? != Some(file.mode) {
                to_chmod.push(file);
            } else {
                applied.unchanged.push(file.name);
            }
        }
        let mut staged: Vec<(PathBuf, &PlannedFile)> = Vec::new();
        for file in &to_write {
            match self.stage(file) {
                Ok(temp) => staged.push((temp, file)),
                Err(e) => {
                    for (temp, _) in &staged {
                        let _ = fs::remove_file(temp);
                    }
                    return Err(e);
                }
            }
        }
        for (i, (temp, file)) in staged.iter().enumerate() {
            let target = self.path.join(file.name);
            if let Err(e) = fs::rename(temp, &target) {
                for (rest, _) in &staged[i..] {
                    let _ = fs::remove_file(rest);
                }
                return Err(Error::io("replace", &target, e));
            }
            applied.written.push(file.name);
        }
        for file in to_chmod {
            let path = self.path.join(file.name);
            fs::set_permissions(&path, fs::Permissions::from_mode(file.mode))
                .map_err(|e| Error::io("set the mode of", &path, e))?;
            applied.mode_fixed.push(file.name);
        }
        if !applied.written.is_empty() || !applied.mode_fixed.is_empty() {
            self.handle
                .sync_all()
                .map_err(|e| Error::io("sync", &self.path, e))?;
        }
        Ok(applied)
    }

    /// Writes `file` to a new temporary file in the directory, synced, with its final mode.
    fn stage(&self, file: &PlannedFile) -> Result<PathBuf> {
        let mut suffix = [0u8; 6];
        crate::fill_random(&mut suffix)?;
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let temp = self
            .path
            .join(format!("{TEMP_PREFIX}{}-{suffix}", file.name));
        let result = (|| {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(file.mode)
                .open(&temp)
                .map_err(|e| Error::io("create", &temp, e))?;
            // The umask may have narrowed the mode given to open(2); set it exactly.
            out.set_permissions(fs::Permissions::from_mode(file.mode))
                .map_err(|e| Error::io("set the mode of", &temp, e))?;
            out.write_all(&file.bytes)
                .map_err(|e| Error::io("write", &temp, e))?;
            out.sync_all().map_err(|e| Error::io("sync", &temp, e))
        })();
        match result {
            Ok(()) => Ok(temp),
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(e)
            }
        }
    }
}
