//! The stores: the one contract the shell has with the place where the state lives
//! ([`Store`]: load the state and what a first run adopts, apply a plan so that a concurrent
//! change makes it fail rather than overwrite), and its first implementation, the keys
//! directory ([`DirStore`] over [`Dir`]); the second is [`crate::kubernetes::KubeStore`].
//!
//! [`Dir`] is the only code that touches the keys directory: lock, read, atomic write, ownership.
//!
//! Every operation on a managed file goes through the directory's descriptor: files are
//! opened relative to it with `O_NOFOLLOW | O_NONBLOCK`, inspected with `fstat` and read
//! through the descriptor, and new files are created with `O_EXCL`, given their mode and
//! owner with `fchmod`/`fchown` on their own descriptor, and renamed with `renameat`. A uid
//! that can write to the directory may swap a file for a symlink (or a FIFO) at any moment:
//! supakeys then refuses it, and never reads, changes or writes a file outside the directory.
//!
//! Writes go to temporary files in the same directory, are fsynced, renamed over the
//! target, and the directory is fsynced: a reader (or a crash) sees the old file or the new
//! one, never a partial one. An existing file is never modified in place: one whose bytes,
//! mode or owner are wrong is replaced by a staged copy, so every `fchmod`/`fchown` happens
//! before the first rename and a failure leaves the directory as it was.

use crate::config::LegacyHs256;
use crate::error::{Error, Result};
use crate::input::{Kind, read_bounded};
use crate::render::PlannedFile;
use crate::state::{self, State};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Temporary files start with this prefix; leftovers of a crash are removed under the lock.
const TEMP_PREFIX: &str = ".supakeys-tmp-";
/// No managed file supakeys writes comes near this size; a bigger one is not read.
pub const MAX_MANAGED_BYTES: u64 = 16 << 20;

/// An open keys directory.
pub struct Dir {
    path: PathBuf,
    handle: File,
    owner: Owner,
}

/// A uid and gid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// What `lstat` says about a directory entry (for reports only: nothing acts on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub owner: Owner,
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
    /// New files and files whose bytes changed.
    pub written: Vec<&'static str>,
    /// Files with the right bytes replaced to fix their mode.
    pub mode_fixed: Vec<&'static str>,
    /// Files with the right bytes and mode replaced to give them the directory's owner.
    pub owner_fixed: Vec<&'static str>,
    pub unchanged: Vec<&'static str>,
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

impl Dir {
    /// Opens the directory (the path itself may be a symlink: it is the operator's choice).
    pub fn open(path: &Path) -> Result<Dir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOENT | Errno::NOTDIR => Error::DirMissing { path: path.into() },
            e => Error::io("open", path, e.into()),
        })?;
        let handle = File::from(fd);
        let meta = handle
            .metadata()
            .map_err(|e| Error::io("inspect", path, e))?;
        Ok(Dir {
            path: path.into(),
            owner: Owner {
                uid: meta.uid(),
                gid: meta.gid(),
            },
            handle,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The owner of the directory itself.
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// The owner every managed file must have, when supakeys enforces one: the directory's
    /// owner when that is not root (the services run as that uid, GoTrue as 1000 in the
    /// image, and must read the 0600 files) and this process can give files to it (root
    /// with `fchown`, or that uid itself). In a root-owned directory the owners are the
    /// operator's arrangement: a rewritten file keeps its owner, a new one is this uid's.
    pub fn file_owner(&self) -> Option<Owner> {
        let uid = effective_uid();
        (self.owner.uid != 0 && (uid == 0 || uid == self.owner.uid)).then_some(self.owner)
    }

    /// Whether this run writes files that the directory's (non-root) owner may not read.
    pub fn foreign_run(&self) -> bool {
        self.owner.uid != 0 && self.file_owner().is_none()
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

    /// Opens a managed file for reading without following a symlink or blocking on a FIFO;
    /// `None` when it does not exist. Anything but a regular file is refused.
    fn open_file(&self, name: &str) -> Result<Option<(File, std::fs::Metadata)>> {
        let path = self.path.join(name);
        let fd = match rustix::fs::openat(
            self.handle.as_fd(),
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            // O_NOFOLLOW on a symlink; a socket cannot be opened at all.
            Err(Errno::LOOP) => {
                return Err(Error::NotARegularFile {
                    path,
                    what: Kind::Symlink.describe(),
                });
            }
            Err(Errno::NXIO) => {
                return Err(Error::NotARegularFile {
                    path,
                    what: Kind::Socket.describe(),
                });
            }
            Err(Errno::ACCESS) => {
                let uid = effective_uid();
                return Err(match self.entry(name)? {
                    Some(entry) if entry.owner.uid != uid => Error::NotReadable {
                        path,
                        owner: entry.owner.uid,
                        uid,
                    },
                    _ => Error::io("open", path, Errno::ACCESS.into()),
                });
            }
            Err(e) => return Err(Error::io("open", path, e.into())),
        };
        let file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| Error::io("inspect", &path, e))?;
        if !meta.is_file() {
            return Err(Error::NotARegularFile {
                path,
                what: Kind::of(meta.file_type()).describe(),
            });
        }
        Ok(Some((file, meta)))
    }

    /// Reads a managed file through its descriptor; `None` when it does not exist.
    /// Symlinks and other non-files are refused, and so is a file longer than `limit`.
    pub fn read(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some((file, meta)) = self.open_file(name)? else {
            return Ok(None);
        };
        let path = self.path.join(name);
        if meta.len() > limit {
            return Err(Error::TooLarge { path, limit });
        }
        match read_bounded(file, limit) {
            Ok(Some(bytes)) => Ok(Some(bytes)),
            Ok(None) => Err(Error::TooLarge { path, limit }),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// Reads and validates `state.json` of this directory; `None` when there is none yet.
    pub fn read_state(&self) -> Result<Option<State>> {
        let path = self.path.join(state::FILE);
        match self.read(state::FILE, state::MAX_BYTES) {
            Err(Error::TooLarge { path, limit }) => Err(Error::state(
                path,
                format!(
                    "it is larger than {} KiB, far more than any state supakeys writes",
                    limit >> 10
                ),
            )),
            other => other?
                .map(|bytes| State::parse(&bytes, &path, &|| self.hs256_in_files()))
                .transpose(),
        }
    }

    /// What an older `state.json` of this directory does not record (see
    /// [`state::Hs256InFiles`]): the HS256 mode its `jwt_jwks.json` shows.
    fn hs256_in_files(&self) -> Option<LegacyHs256> {
        self.read("jwt_jwks.json", MAX_MANAGED_BYTES)
            .ok()
            .flatten()
            .and_then(|bytes| state::hs256_mode_of_jwt_jwks(&bytes))
    }

    /// Reads a managed file whose bytes go to the output (`print-env`): like [`Dir::read`],
    /// and it must have a single link. supakeys writes every file with one; a second link
    /// may be a hard link someone made to a file outside the directory, which a root run
    /// would otherwise print.
    pub fn read_to_show(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        match self.open_file(name)? {
            Some((_, meta)) if meta.nlink() != 1 => Err(Error::NotARegularFile {
                path: self.path.join(name),
                what: "a file with more than one hard link",
            }),
            _ => self.read(name, limit),
        }
    }

    /// What a directory entry is, without following it; `None` when it does not exist.
    pub fn entry(&self, name: &str) -> Result<Option<Entry>> {
        match rustix::fs::statat(self.handle.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Entry {
                kind: Kind::of_raw(st.st_mode),
                mode: st.st_mode & 0o7777,
                owner: Owner {
                    uid: st.st_uid,
                    gid: st.st_gid,
                },
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io("inspect", self.path.join(name), e.into())),
        }
    }

    /// Removes temporary files left by a run that died mid-write. Call under the lock.
    pub fn remove_stale_temp_files(&self, _lock: &Lock<'_>) -> Result<()> {
        let list_err = |e: Errno| Error::io("list", &self.path, e.into());
        let entries = rustix::fs::Dir::read_from(self.handle.as_fd()).map_err(list_err)?;
        for entry in entries {
            let entry = entry.map_err(list_err)?;
            let name = entry.file_name().to_bytes();
            if name.starts_with(TEMP_PREFIX.as_bytes()) {
                let name = String::from_utf8_lossy(name).into_owned();
                // unlinkat removes the entry itself, whatever it points to.
                rustix::fs::unlinkat(self.handle.as_fd(), name.as_str(), AtFlags::empty())
                    .map_err(|e| Error::io("remove", self.path.join(&name), e.into()))?;
                tracing::debug!(file = %name, "removed a temporary file left by an interrupted run");
            }
        }
        Ok(())
    }

    /// Makes every planned file exist with its bytes, mode and owner. Call under the lock.
    ///
    /// Three phases, so that a failure changes nothing: every target is inspected through
    /// its descriptor (a symlink, directory, FIFO or other non-file is refused), every file
    /// that is missing or wrong in bytes, mode or owner is staged as a synced temporary
    /// file with its final mode and owner (a full disk or a refused `fchown` fails here,
    /// and the temporary files are removed), and only then are they renamed into place, in
    /// plan order: `state.json` first.
    pub fn apply(&self, _lock: &Lock<'_>, plan: &[PlannedFile]) -> Result<Applied> {
        let mut applied = Applied::default();
        let owner = self.file_owner();
        let mut to_write: Vec<(&PlannedFile, Fix)> = Vec::new();
        for file in plan {
            let fix = match self.open_file(file.name)? {
                None => Fix::Content(None),
                Some((existing, meta)) => {
                    let path = self.path.join(file.name);
                    let same_bytes = meta.len() == file.bytes.len() as u64
                        && read_bounded(existing, meta.len())
                            .map_err(|e| Error::io("read", &path, e))?
                            .is_some_and(|bytes| bytes[..] == file.bytes[..]);
                    let owner_right = owner.is_none_or(|o| {
                        meta.uid() == o.uid && (effective_uid() != 0 || meta.gid() == o.gid)
                    });
                    let current = Owner {
                        uid: meta.uid(),
                        gid: meta.gid(),
                    };
                    if !same_bytes {
                        Fix::Content(Some(current))
                    } else if meta.permissions().mode() & 0o7777 != file.mode {
                        Fix::Mode(current)
                    } else if !owner_right {
                        Fix::Owner
                    } else {
                        applied.unchanged.push(file.name);
                        continue;
                    }
                }
            };
            to_write.push((file, fix));
        }
        let mut staged: Vec<(String, &PlannedFile, Fix)> = Vec::new();
        for (file, fix) in to_write {
            // A root run gives the file the enforced owner, else keeps the owner of the
            // file it replaces; a new file in a root-owned directory stays root's.
            let give = match (owner, fix) {
                (Some(o), _) => Some(o),
                (None, Fix::Content(current)) => current,
                (None, Fix::Mode(current)) => Some(current),
                (None, Fix::Owner) => None,
            };
            match self.stage(file, give) {
                Ok(temp) => staged.push((temp, file, fix)),
                Err(e) => {
                    for (temp, ..) in &staged {
                        let _ = rustix::fs::unlinkat(
                            self.handle.as_fd(),
                            temp.as_str(),
                            AtFlags::empty(),
                        );
                    }
                    return Err(e);
                }
            }
        }
        for (i, (temp, file, fix)) in staged.iter().enumerate() {
            if let Err(e) = rustix::fs::renameat(
                self.handle.as_fd(),
                temp.as_str(),
                self.handle.as_fd(),
                file.name,
            ) {
                for (rest, ..) in &staged[i..] {
                    let _ =
                        rustix::fs::unlinkat(self.handle.as_fd(), rest.as_str(), AtFlags::empty());
                }
                return Err(Error::io("replace", self.path.join(file.name), e.into()));
            }
            match fix {
                Fix::Content(_) => applied.written.push(file.name),
                Fix::Mode(_) => applied.mode_fixed.push(file.name),
                Fix::Owner => applied.owner_fixed.push(file.name),
            }
        }
        if !staged.is_empty() {
            self.handle
                .sync_all()
                .map_err(|e| Error::io("sync", &self.path, e))?;
        }
        Ok(applied)
    }

    /// Writes `file` to a new temporary file in the directory, synced, with its final mode
    /// and, in a root run, `owner`; returns its name.
    fn stage(&self, file: &PlannedFile, owner: Option<Owner>) -> Result<String> {
        let mut suffix = [0u8; 6];
        crate::fill_random(&mut suffix)?;
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("{TEMP_PREFIX}{}-{suffix}", file.name);
        let path = self.path.join(&name);
        let fd = rustix::fs::openat(
            self.handle.as_fd(),
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(file.mode as _),
        )
        .map_err(|e| Error::io("create", &path, e.into()))?;
        let mut out = File::from(fd);
        let result = (|| {
            // The umask may have narrowed the mode given to open(2); set it exactly.
            out.set_permissions(std::fs::Permissions::from_mode(file.mode))
                .map_err(|e| Error::io("set the mode of", &path, e))?;
            if effective_uid() == 0
                && let Some(owner) = owner
            {
                std::os::unix::fs::fchown(&out, Some(owner.uid), Some(owner.gid))
                    .map_err(|e| Error::io("set the owner of", &path, e))?;
            }
            out.write_all(&file.bytes)
                .map_err(|e| Error::io("write", &path, e))?;
            out.sync_all().map_err(|e| Error::io("sync", &path, e))
        })();
        match result {
            Ok(()) => Ok(name),
            Err(e) => {
                let _ = rustix::fs::unlinkat(self.handle.as_fd(), name.as_str(), AtFlags::empty());
                Err(e)
            }
        }
    }
}

/// Why a planned file is staged, with the owner of the file it replaces.
#[derive(Clone, Copy)]
enum Fix {
    Content(Option<Owner>),
    Mode(Owner),
    Owner,
}

/// What a run reads before it plans.
pub struct Loaded {
    /// The previous state; `None` before the first run.
    pub state: Option<crate::state::State>,
    /// Values found where the state lives that a first run adopts (Kubernetes: the keys of
    /// an existing apikey Secret); always empty once a state exists.
    pub adoptable: Vec<crate::config::Adoptable>,
    /// A `kong.yml` written by an earlier run is there.
    pub has_kong_file: bool,
    /// An earlier attempt of this run already wrote its state, and `state` may be it: the
    /// key transition is done and must not be made again (the Kubernetes store, when a
    /// write after the state's met a concurrent change).
    pub committed: bool,
}

/// The shell's contract with the place where the state lives: the keys directory, or the
/// Secrets of a Kubernetes namespace. The core (config, reconcile, render, lifecycle) never
/// sees which.
pub trait Store {
    /// Where the state lives, for messages: `/keys`, or `Secrets supakeys-* in namespace x`.
    fn location(&self) -> String;

    /// Where one managed file lives, for messages.
    fn path_of(&self, name: &str) -> PathBuf;

    /// One read-modify-write: loads, lets `plan` decide every file from what it loaded, and
    /// writes what differs, `state.json` first. A concurrent change makes a write fail rather
    /// than overwrite: the directory excludes it with its lock and runs `plan` once; the
    /// Kubernetes store meets it as `409` and runs `plan` again on what it reads then
    /// (bounded). Every error of `plan` is returned before anything is written.
    fn update(
        &mut self,
        plan: &mut dyn FnMut(Loaded) -> Result<Vec<PlannedFile>>,
    ) -> Result<Applied>;

    /// The state as stored now; `None` before the first run.
    fn state(&self) -> Result<Option<crate::state::State>>;

    /// A managed file as stored now; `None` when it is missing.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// Like [`Store::read`], for bytes that go to standard output.
    fn read_to_show(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.read(name)
    }

    /// What `check` finds wrong besides the files' bytes (missing files, modes and owners;
    /// the chart's Secret), one sentence each.
    fn inspect(&self) -> Result<Vec<String>>;

    /// What to tell the operator after a key transition wrote `applied`: which services
    /// reload how, then how to run doctor.
    fn after_change(&self, applied: &Applied) -> String;

    /// A hint written for the compose deployment (`docker compose restart storage`), as
    /// an operator of this store's deployment does it.
    fn translate(&self, hint: &str) -> String {
        hint.to_owned()
    }
}

/// The keys directory as a [`Store`].
pub struct DirStore {
    dir: Dir,
    lock_timeout: Duration,
}

impl DirStore {
    pub fn open(path: &Path, lock_timeout: Duration) -> Result<DirStore> {
        Ok(DirStore {
            dir: Dir::open(path)?,
            lock_timeout,
        })
    }

    /// A run that cannot give its files to the directory's owner says so: services running
    /// as that owner (GoTrue as uid 1000 in the image) cannot read the 0600 files it writes.
    fn warn_about_owner(&self) {
        if self.dir.foreign_run() {
            let owner = self.dir.owner().uid;
            tracing::warn!(
                dir = %self.dir.path().display(),
                "the directory belongs to uid {owner} but this run is uid {}: the files it writes belong to uid {}, and a service running as uid {owner} cannot read auth.env or supabase.env (0600). Run supakeys as uid {owner}, or as root (it then gives the files to uid {owner})",
                effective_uid(),
                effective_uid(),
            );
        }
    }
}

impl Store for DirStore {
    fn location(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn update(
        &mut self,
        plan: &mut dyn FnMut(Loaded) -> Result<Vec<PlannedFile>>,
    ) -> Result<Applied> {
        self.warn_about_owner();
        let lock = self.dir.lock(self.lock_timeout)?;
        self.dir.remove_stale_temp_files(&lock)?;
        let loaded = Loaded {
            has_kong_file: self.dir.entry(crate::render::KONG_FILE)?.is_some(),
            state: self.dir.read_state()?,
            adoptable: Vec::new(),
            committed: false,
        };
        let files = plan(loaded)?;
        self.dir.apply(&lock, &files)
    }

    fn state(&self) -> Result<Option<crate::state::State>> {
        self.dir.read_state()
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.dir.read(name, MAX_MANAGED_BYTES)
    }

    fn read_to_show(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.dir.read_to_show(name, MAX_MANAGED_BYTES)
    }

    fn inspect(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let owner = self.dir.owner();
        for (name, mode) in crate::render::FILES {
            match self.dir.entry(name)? {
                // kong.yml exists only where a kong template is configured.
                None if name == crate::render::KONG_FILE => {}
                None => problems.push(format!("{name} is missing")),
                Some(e) if e.kind != Kind::File => {
                    problems.push(format!("{name} is {}", e.kind.describe()));
                }
                Some(e) => {
                    if e.mode != mode {
                        problems.push(format!(
                            "{name} has mode {:04o}, expected {mode:04o}",
                            e.mode
                        ));
                    }
                    // The services run as the directory's owner (uid 1000 in the image): a
                    // file of another uid may be unreadable to them (auth.env is 0600). A
                    // root-owned directory says nothing about the services' uid.
                    if owner.uid != 0 && e.owner.uid != owner.uid {
                        problems.push(format!(
                            "{name} belongs to uid {}, the directory to uid {}; run `supakeys init` as uid {} or as root to give it to the directory's owner",
                            e.owner.uid, owner.uid, owner.uid
                        ));
                    }
                }
            }
        }
        Ok(problems)
    }

    fn after_change(&self, applied: &Applied) -> String {
        let mut lines = Vec::new();
        for (file, service, how) in crate::render::READERS {
            let line = format!("  {service:<10} {how}");
            if applied.written.contains(&file) && !lines.contains(&line) {
                lines.push(line);
            }
        }
        if lines.is_empty() {
            "No file changed: nothing to restart.\n".to_owned()
        } else {
            format!(
                "Files changed. To apply them:\n{}\nthen run `supakeys doctor` (docker compose run --rm supakeys doctor) to check that every service uses them.\n",
                lines.join("\n")
            )
        }
    }
}
