//! The operator's input files (the env file, the kong template): read by path, links
//! followed, but only when they are regular files, and never beyond a size bound.
//!
//! Reading an input is not touching the keys directory: that is `store`'s alone. This
//! module sits below `config` and `envfile`, which read inputs, and below `store`, which
//! shares its bounded read and its names for the kinds of directory entries.

use rustix::fs::{Mode, OFlags};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The type of a directory entry, in words for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Symlink,
    Fifo,
    Socket,
    Device,
}

impl Kind {
    pub(crate) fn of(file_type: std::fs::FileType) -> Kind {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_file() {
            Kind::File
        } else if file_type.is_dir() {
            Kind::Directory
        } else if file_type.is_symlink() {
            Kind::Symlink
        } else if file_type.is_fifo() {
            Kind::Fifo
        } else if file_type.is_socket() {
            Kind::Socket
        } else {
            Kind::Device
        }
    }

    pub(crate) fn of_raw(mode: u32) -> Kind {
        use rustix::fs::FileType;
        match FileType::from_raw_mode(mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Directory,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            _ => Kind::Device,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::File => "a regular file",
            Kind::Directory => "a directory",
            Kind::Symlink => "a symlink",
            Kind::Fifo => "a FIFO (named pipe)",
            Kind::Socket => "a socket",
            Kind::Device => "a device",
        }
    }
}

/// Why an input file (the kong template, the env file) cannot be used.
#[derive(Debug)]
pub enum InputProblem {
    Open(std::io::Error),
    NotAFile(Kind),
    TooLarge { limit: u64 },
    Read(std::io::Error),
}

impl std::fmt::Display for InputProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputProblem::Open(e) => write!(f, "cannot be read ({e})"),
            InputProblem::NotAFile(kind) => write!(
                f,
                "is {}, not a regular file (supakeys reads only regular files, so that a run can never block)",
                kind.describe()
            ),
            InputProblem::TooLarge { limit } => {
                write!(f, "is larger than {} KiB", limit / 1024)
            }
            InputProblem::Read(e) => write!(f, "cannot be read ({e})"),
        }
    }
}

/// Reads an input file given by the operator (symlinks are followed: ConfigMaps and
/// secrets are mounted as links). Refuses anything but a regular file before reading a
/// byte, and anything longer than `limit`: a FIFO without a writer would block forever.
pub fn read_input(path: &Path, limit: u64) -> std::result::Result<Vec<u8>, InputProblem> {
    // Look before opening: opening some devices has effects of its own (a watchdog starts,
    // a tape rewinds). The descriptor is checked again below: the path may change between.
    let meta = std::fs::metadata(path).map_err(InputProblem::Open)?;
    if !meta.is_file() {
        return Err(InputProblem::NotAFile(Kind::of(meta.file_type())));
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| InputProblem::Open(e.into()))?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(InputProblem::Open)?;
    if !meta.is_file() {
        return Err(InputProblem::NotAFile(Kind::of(meta.file_type())));
    }
    read_bounded(file, limit)
        .map_err(InputProblem::Read)?
        .ok_or(InputProblem::TooLarge { limit })
}

/// Reads at most `limit` bytes; `None` when there are more.
pub(crate) fn read_bounded(file: File, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}
