//! A directory handle and every file-system call the tool makes inside it.
//!
//! Everything below a sessions root is reached relative to an open directory descriptor, with
//! `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`: once a company folder is open, swapping it (or any file in
//! it) for a symlink cannot redirect a read, a stat or a removal outside it (the class of bug that
//! gave systemd-tmpfiles and tmpreaper their CVEs).

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, RenameFlags};

/// What a directory entry is, from `d_type` (or a no-follow stat when the file system does not say).
/// The files the thresholds are about: regular, non-hidden files. The one definition, used by
/// counting (`trigger`, `monitor`, `status`) and by cleaning's before/after figures.
pub fn is_counted(name: &OsStr, t: EntryType) -> bool {
    t == EntryType::File && !name.as_bytes().starts_with(b".")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryType {
    File,
    Dir,
    Symlink,
    /// FIFOs, sockets, devices.
    Other,
}

impl EntryType {
    fn from_file_type(t: FileType) -> Option<EntryType> {
        Some(match t {
            FileType::RegularFile => EntryType::File,
            FileType::Directory => EntryType::Dir,
            FileType::Symlink => EntryType::Symlink,
            FileType::Unknown => return None,
            _ => EntryType::Other,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Dir => "directory",
            EntryType::Symlink => "symlink",
            EntryType::Other => "special file",
        }
    }
}

/// The facts of one `stat` that the rules and the re-check before removal need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub entry_type: EntryType,
    pub size: u64,
    pub mtime: SystemTime,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
}

impl Meta {
    /// Same file, same contents as far as stat can tell.
    pub fn same_file(&self, other: &Meta) -> bool {
        self.dev == other.dev
            && self.ino == other.ino
            && self.mtime == other.mtime
            && self.size == other.size
            && self.entry_type == other.entry_type
    }
}

fn meta_of(st: &rustix::fs::Stat) -> Meta {
    let entry_type =
        EntryType::from_file_type(FileType::from_raw_mode(st.st_mode)).unwrap_or(EntryType::Other);
    Meta {
        entry_type,
        size: st.st_size.max(0) as u64,
        mtime: system_time(st.st_mtime, st.st_mtime_nsec as i64),
        dev: st.st_dev,
        ino: st.st_ino,
        nlink: st.st_nlink,
    }
}

fn system_time(secs: i64, nanos: i64) -> SystemTime {
    let nanos = nanos.clamp(0, 999_999_999) as u32;
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos.into())
    }
}

/// One name read from a directory.
#[derive(Clone, Debug)]
pub struct RawEntry {
    pub name: OsString,
    pub entry_type: EntryType,
}

/// An open directory. Its path is kept only for messages.
#[derive(Debug)]
pub struct Folder {
    fd: OwnedFd,
    path: PathBuf,
}

impl Folder {
    /// Opens a directory given by the operator. The path itself may be a symlink (a deliberate
    /// choice of whoever configured it); nothing below it is ever followed.
    pub fn open(path: &Path) -> io::Result<Folder> {
        let fd = rustix::fs::openat(
            CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Folder {
            fd,
            path: path.to_owned(),
        })
    }

    /// Opens a sub-directory without following a symlink in its place.
    pub fn open_dir(&self, name: &OsStr) -> io::Result<Folder> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Folder {
            fd,
            path: self.path.join(name),
        })
    }

    /// Opens or creates a sub-directory (mode 0700), without following a symlink.
    pub fn ensure_dir(&self, name: &OsStr) -> io::Result<Folder> {
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        self.open_dir(name)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder's own stat.
    pub fn meta(&self) -> io::Result<Meta> {
        Ok(meta_of(&rustix::fs::fstat(&self.fd)?))
    }

    /// The id of the mount this folder is on (statx `STATX_MNT_ID`), where the kernel says.
    /// Unlike `st_dev`, it also tells a bind mount of the same file system apart.
    pub fn mount_id(&self) -> Option<u64> {
        let st = rustix::fs::statx(
            &self.fd,
            "",
            AtFlags::EMPTY_PATH,
            rustix::fs::StatxFlags::MNT_ID,
        )
        .ok()?;
        (st.stx_mask & rustix::fs::StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id)
    }

    /// Every entry but `.` and `..`, with its type from the directory itself (no stat unless the
    /// file system leaves `d_type` unknown).
    pub fn entries(&self) -> io::Result<Vec<RawEntry>> {
        let mut out = Vec::new();
        self.for_each_entry(|name, entry_type| {
            out.push(RawEntry {
                name: name.to_owned(),
                entry_type,
            });
        })?;
        Ok(out)
    }

    /// Calls `f` for every entry but `.` and `..`, without collecting them.
    pub fn for_each_entry(&self, mut f: impl FnMut(&OsStr, EntryType)) -> io::Result<()> {
        let mut dir = Dir::read_from(&self.fd)?;
        while let Some(entry) = dir.read() {
            let entry = entry?;
            let bytes = entry.file_name().to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let name = OsStr::from_bytes(bytes);
            let entry_type = match EntryType::from_file_type(entry.file_type()) {
                Some(t) => t,
                None => match self.stat(name) {
                    Ok(m) => m.entry_type,
                    // Gone since readdir: not an entry any more.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                },
            };
            f(name, entry_type);
        }
        Ok(())
    }

    /// Counts files the way an operator's `ls -1 | wc -l` sees them, minus directories and links:
    /// regular, non-hidden entries. No per-file stat.
    pub fn count_files(&self) -> io::Result<usize> {
        let mut n = 0;
        self.for_each_entry(|name, t| {
            if is_counted(name, t) {
                n += 1;
            }
        })?;
        Ok(n)
    }

    /// A no-follow stat of an entry.
    pub fn stat(&self, name: &OsStr) -> io::Result<Meta> {
        Ok(meta_of(&rustix::fs::statat(
            &self.fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?))
    }

    /// Reads a small regular file without following a symlink; larger than `max` is an error.
    pub fn read_file(&self, name: &OsStr, max: u64) -> io::Result<Vec<u8>> {
        let file = self.open_file(name)?;
        let st = rustix::fs::fstat(&file)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        if st.st_size as u64 > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} bytes, more than the {max} allowed", st.st_size),
            ));
        }
        let mut file = file;
        let mut buf = Vec::with_capacity(st.st_size.max(0) as usize);
        file.by_ref().take(max + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "file grew past the limit",
            ));
        }
        Ok(buf)
    }

    /// Opens `name` with `flags` plus no-follow and close-on-exec: the one `openat` for files.
    fn open_at(&self, name: &OsStr, flags: OFlags, mode: u32) -> io::Result<std::fs::File> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(std::fs::File::from(rustix::fs::openat(
            &self.fd,
            name,
            flags,
            Mode::from_raw_mode(mode),
        )?))
    }

    /// Creates (or truncates) a regular file without following a symlink, with this mode (the umask still applies).
    pub fn create_file_mode(&self, name: &OsStr, mode: u32) -> io::Result<std::fs::File> {
        self.open_at(name, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC, mode)
    }

    /// Opens (creating if needed, never truncating) a file for reading and writing, without
    /// following a symlink. Used for lock files, which must not be emptied before they are locked.
    pub fn open_rw(&self, name: &OsStr) -> io::Result<std::fs::File> {
        self.open_at(name, OFlags::RDWR | OFlags::CREATE, 0o644)
    }

    /// Opens (creating if needed) a file for appending, without following a symlink.
    pub fn open_append(&self, name: &OsStr) -> io::Result<std::fs::File> {
        self.open_at(
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND,
            0o600,
        )
    }

    /// Opens a file for reading without following a symlink (non-blocking, so a FIFO planted
    /// under a file's name cannot hang the run).
    pub fn open_file(&self, name: &OsStr) -> io::Result<std::fs::File> {
        self.open_at(name, OFlags::RDONLY | OFlags::NONBLOCK, 0)
    }

    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    pub fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }

    /// Moves `name` to `to/to_name`; fails rather than replace an existing file there.
    pub fn move_to(&self, name: &OsStr, to: &Folder, to_name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat_with(
            &self.fd,
            name,
            &to.fd,
            to_name,
            RenameFlags::NOREPLACE,
        )?)
    }

    /// Renames within this folder, replacing the target (the last step of an atomic write).
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
    }

    /// Sets a file's access and modification times, without following a symlink.
    #[cfg(test)]
    pub fn set_mtime(&self, name: &OsStr, mtime: SystemTime) -> io::Result<()> {
        let ts = timespec(mtime);
        let times = rustix::fs::Timestamps {
            last_access: ts,
            last_modification: ts,
        };
        Ok(rustix::fs::utimensat(
            &self.fd,
            name,
            &times,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Owner, group and permission bits of an entry (no-follow stat).
    pub fn owner(&self, name: &OsStr) -> io::Result<Owner> {
        let st = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(Owner::of(&st))
    }

    /// Whether this process (its effective ids, as the kernel decides for `unlinkat`) may
    /// create and remove entries in the sub-directory `name` (`.` for this folder itself).
    pub fn entries_writable(&self, name: &OsStr) -> io::Result<bool> {
        match rustix::fs::accessat(
            &self.fd,
            name,
            rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
            AtFlags::EACCESS,
        ) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::ACCESS)
            | Err(rustix::io::Errno::PERM)
            | Err(rustix::io::Errno::ROFS) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Owner, group and permission bits of this folder itself.
    pub fn own_owner(&self) -> io::Result<Owner> {
        Ok(Owner::of(&rustix::fs::fstat(&self.fd)?))
    }

    /// Gives this folder itself an owner, group and mode.
    pub fn set_own_owner(&self, o: Owner) -> io::Result<()> {
        o.apply(&self.fd)
    }

    /// Creates a new regular file that must not exist yet (`O_EXCL`: never follows or opens a
    /// symlink, FIFO or anything else planted under the name), mode 0600.
    pub fn create_new(&self, name: &OsStr) -> io::Result<std::fs::File> {
        self.open_at(name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL, 0o600)
    }

    /// Swaps two names in this folder atomically (`RENAME_EXCHANGE`): at every moment both
    /// names exist, so a reader never finds either missing.
    pub fn exchange(&self, a: &OsStr, b: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat_with(
            &self.fd,
            a,
            &self.fd,
            b,
            RenameFlags::EXCHANGE,
        )?)
    }

    /// Creates a sub-directory (mode 0700) that must not exist yet, and opens it.
    pub fn create_dir_new(&self, name: &OsStr) -> io::Result<Folder> {
        rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700))?;
        self.open_dir(name)
    }

    /// Flushes every file written on this folder's file system (`syncfs`): one call after many
    /// copies instead of an fsync each.
    pub fn sync_fs(&self) -> io::Result<()> {
        Ok(rustix::fs::syncfs(&self.fd)?)
    }

    /// Flushes the directory itself, so a rename inside it survives a crash.
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }
}

/// Who owns a file and its permission bits, as `backup` records them and `restore` puts back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits only (`0o7777`).
    pub mode: u32,
}

impl Owner {
    fn of(st: &rustix::fs::Stat) -> Owner {
        Owner {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
        }
    }

    /// Sets owner, group and mode on an open file or folder (ownership first: `chown` clears
    /// set-id bits, the `chmod` after it puts them back).
    pub fn apply(&self, fd: impl AsFd) -> io::Result<()> {
        let fd = fd.as_fd();
        rustix::fs::fchown(
            fd,
            Some(rustix::fs::Uid::from_raw(self.uid)),
            Some(rustix::fs::Gid::from_raw(self.gid)),
        )?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(self.mode))?;
        Ok(())
    }
}

/// Sets an open file's access and modification times.
pub fn set_file_mtime(file: &std::fs::File, mtime: SystemTime) -> io::Result<()> {
    let ts = timespec(mtime);
    let times = rustix::fs::Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    Ok(rustix::fs::futimens(file, &times)?)
}

fn timespec(t: SystemTime) -> rustix::fs::Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => rustix::fs::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos() as _,
        },
        Err(e) => {
            let d = e.duration();
            let mut secs = -(d.as_secs() as i64);
            let mut nanos = d.subsec_nanos() as i64;
            if nanos > 0 {
                secs -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            rustix::fs::Timespec {
                tv_sec: secs,
                tv_nsec: nanos as _,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn entries_types_and_count() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.json"), "{}").unwrap();
        std::fs::write(tmp.path().join(".hidden"), "").unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        symlink("/etc/passwd", tmp.path().join("link.json")).unwrap();
        let f = Folder::open(tmp.path()).unwrap();
        let mut e: Vec<_> = f
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| (e.name.into_string().unwrap(), e.entry_type))
            .collect();
        e.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            e,
            vec![
                (".hidden".into(), EntryType::File),
                ("a.json".into(), EntryType::File),
                ("link.json".into(), EntryType::Symlink),
                ("sub".into(), EntryType::Dir),
            ]
        );
        assert_eq!(f.count_files().unwrap(), 1);
        assert_eq!(crate::core::tally::folder(&f, 100).unwrap().files, 1);
    }

    #[test]
    fn open_dir_refuses_symlinks_and_reads_refuse_links() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
        symlink("/etc/hostname", tmp.path().join("creds.json")).unwrap();
        let f = Folder::open(tmp.path()).unwrap();
        assert!(f.open_dir(OsStr::new("real")).is_ok());
        assert!(f.open_dir(OsStr::new("link")).is_err());
        assert!(f.read_file(OsStr::new("creds.json"), 1024).is_err());
        assert_eq!(
            f.stat(OsStr::new("creds.json")).unwrap().entry_type,
            EntryType::Symlink
        );
    }

    #[test]
    fn read_file_limit() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("big"), vec![b'x'; 100]).unwrap();
        let f = Folder::open(tmp.path()).unwrap();
        assert!(f.read_file(OsStr::new("big"), 99).is_err());
        assert_eq!(f.read_file(OsStr::new("big"), 100).unwrap().len(), 100);
    }

    #[test]
    fn create_new_never_opens_what_is_planted_there() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        symlink(&outside, tmp.path().join(".x.tmp")).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            tmp.path().join(".y.tmp"),
            Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let f = Folder::open(tmp.path()).unwrap();
        for name in [".x.tmp", ".y.tmp"] {
            let e = f.create_new(OsStr::new(name)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{name}");
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        // A new name works, and the exchange swaps two names atomically.
        std::fs::write(tmp.path().join("a"), "old").unwrap();
        std::io::Write::write_all(&mut f.create_new(OsStr::new("b")).unwrap(), b"new").unwrap();
        f.exchange(OsStr::new("b"), OsStr::new("a")).unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("a")).unwrap(),
            "new"
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("b")).unwrap(),
            "old"
        );
    }

    #[test]
    fn mtime_round_trip_and_move() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), "x").unwrap();
        std::fs::create_dir(tmp.path().join("t")).unwrap();
        let f = Folder::open(tmp.path()).unwrap();
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        f.set_mtime(OsStr::new("a"), t).unwrap();
        assert_eq!(f.stat(OsStr::new("a")).unwrap().mtime, t);
        let trash = f.open_dir(OsStr::new("t")).unwrap();
        f.move_to(OsStr::new("a"), &trash, OsStr::new("a")).unwrap();
        assert_eq!(trash.stat(OsStr::new("a")).unwrap().mtime, t);
        std::fs::write(tmp.path().join("a"), "y").unwrap();
        assert!(
            f.move_to(OsStr::new("a"), &trash, OsStr::new("a")).is_err(),
            "never replaces"
        );
    }
}
