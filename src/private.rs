//! The data directory and what is in it are trusted only if they are this
//! OS user's own and nobody else can change them: another user who could
//! write there could plant a database with a pre-minted token, a secrets
//! file, or a socket that fakes the daemon. Every check refuses with one
//! message that says what is wrong and how to fix it; nothing is followed,
//! chmod'ed or used before it passed.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// The files Gatehouse keeps in its data directory.
pub const DATA_FILES: &[&str] = &[
    "gatehouse.db",
    "gatehouse.db-wal",
    "gatehouse.db-shm",
    "gatehouse.db-calls-a",
    "gatehouse.db-calls-b",
    "secrets.json",
    "secret-names.json",
    "audit-key",
    "server.json",
];

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotPrivate(pub String);

fn me() -> u32 {
    unsafe { libc::geteuid() }
}

fn io_error(path: &Path, e: io::Error) -> NotPrivate {
    NotPrivate(format!("cannot check {}: {e}", path.display()))
}

/// Creates the data directory (0700) or checks an existing one: it (and,
/// if it is a symlink, what it points to) must be this user's, and writable by
/// nobody else. One that others may only read is made private.
pub fn ensure_dir(dir: &Path) -> Result<(), NotPrivate> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                NotPrivate(format!(
                    "cannot create the data directory {}: {e}",
                    dir.display()
                ))
            })?;
    }
    let link = fs::symlink_metadata(dir).map_err(|e| io_error(dir, e))?;
    if link.file_type().is_symlink() && link.uid() != me() {
        return Err(NotPrivate(format!(
            "the data directory {} is a symlink owned by another user (uid {}); use a directory of your own with --data-dir",
            dir.display(),
            link.uid()
        )));
    }
    let meta = fs::metadata(dir).map_err(|e| io_error(dir, e))?;
    if !meta.is_dir() {
        return Err(NotPrivate(format!("{} is not a directory", dir.display())));
    }
    if meta.uid() != me() {
        return Err(NotPrivate(format!(
            "the data directory {} belongs to another user (uid {}); use a directory of your own with --data-dir",
            dir.display(),
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(NotPrivate(format!(
            "the data directory {} is writable by other users (mode {mode:o}), so what is in it cannot be trusted; check its files, then `chmod 700 {}`",
            dir.display(),
            dir.display()
        )));
    }
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| NotPrivate(format!("cannot make {} private: {e}", dir.display())))?;
    }
    Ok(())
}

/// Checks a file Gatehouse would use, if it exists: a regular file (not a
/// symlink someone placed), this user's, writable by nobody else; then 0600.
pub fn check_file(path: &Path) -> Result<(), NotPrivate> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(NotPrivate(format!(
            "{} is a symlink: Gatehouse does not follow links in its data directory; remove it",
            path.display()
        )));
    }
    if meta.uid() != me() {
        return Err(NotPrivate(format!(
            "{} belongs to another user (uid {}): it was not written by you; remove it",
            path.display(),
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(NotPrivate(format!(
            "{} is writable by other users (mode {mode:o}); check it, then `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    if mode & 0o077 != 0 && meta.is_file() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| NotPrivate(format!("cannot make {} private: {e}", path.display())))?;
    }
    Ok(())
}

/// Creates (or empties) a file only this user can read, for what Gatehouse
/// writes outside its data directory (an audit export). A symlink at `path`
/// is refused, not followed: in a shared directory someone else may have put
/// it there to point the write at one of this user's files.
pub fn create_file(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                io::Error::other("it is a symlink; Gatehouse does not write through links")
            }
            _ => e,
        })?;
    // An existing file keeps its mode through open(); make it private too.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// The data directory and every file of [`DATA_FILES`] in it.
pub fn check_data_dir(dir: &Path) -> Result<(), NotPrivate> {
    ensure_dir(dir)?;
    for name in DATA_FILES {
        check_file(&dir.join(name))?;
    }
    Ok(())
}

/// A socket Gatehouse would talk to or replace: not a symlink, this user's.
pub fn check_socket(path: &Path) -> Result<(), NotPrivate> {
    let meta = fs::symlink_metadata(path).map_err(|e| io_error(path, e))?;
    if meta.file_type().is_symlink() || meta.uid() != me() {
        return Err(NotPrivate(format!(
            "{} is not a socket of yours (a link, or owned by uid {}): refusing to talk to it",
            path.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// The user id of the process on the other end of a Unix socket.
pub fn peer_uid(fd: std::os::fd::RawFd) -> io::Result<u32> {
    #[cfg(target_os = "linux")]
    {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                &mut cred as *mut libc::ucred as *mut libc::c_void,
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(cred.uid)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (mut uid, mut gid) = (0, 0);
        if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(uid)
    }
}

/// Whether the process on the other end of a Unix socket runs as this user.
pub fn peer_is_me(fd: std::os::fd::RawFd) -> bool {
    peer_uid(fd).is_ok_and(|uid| uid == me())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_file_is_private_and_never_written_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("export.jsonl");
        fs::write(&out, "old").unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).unwrap();
        create_file(&out).unwrap();
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_to_string(&out).unwrap(), "");

        let victim = tmp.path().join("victim");
        fs::write(&victim, "keep me").unwrap();
        let link = tmp.path().join("link.jsonl");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let refused = create_file(&link).unwrap_err();
        assert!(refused.to_string().contains("symlink"), "{refused}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me");
    }

    #[test]
    fn a_new_dir_is_private_and_a_readable_one_is_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        ensure_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn a_dir_others_can_write_is_refused_not_fixed() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = ensure_dir(tmp.path()).unwrap_err();
        assert!(e.0.contains("writable by other users"), "{e}");
        assert_eq!(
            fs::metadata(tmp.path()).unwrap().permissions().mode() & 0o777,
            0o777
        );
    }

    #[test]
    fn planted_links_and_shared_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("gatehouse.db");
        std::os::unix::fs::symlink("/etc/passwd", &db).unwrap();
        assert!(check_file(&db).unwrap_err().0.contains("symlink"));
        fs::remove_file(&db).unwrap();
        fs::write(&db, b"").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(check_file(&db)
            .unwrap_err()
            .0
            .contains("writable by other users"));
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        check_file(&db).unwrap();
        assert_eq!(
            fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
        check_file(&tmp.path().join("missing")).unwrap();
    }
}
