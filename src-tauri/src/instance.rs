//! One app per data directory: a second launch asks the first to show its
//! window and exits.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use tauri::AppHandle;

const INSTANCE_SOCKET: &str = "desktop.sock";

/// The instance socket, or `None` when another instance answered (and was
/// asked to show itself).
pub fn acquire(data_dir: &Path) -> anyhow::Result<Option<UnixListener>> {
    gatehouse::daemon::prepare_data_dir(data_dir)?;
    let path = data_dir.join(INSTANCE_SOCKET);
    if std::fs::symlink_metadata(&path).is_ok() {
        gatehouse::private::check_socket(&path)?;
    }
    if let Ok(mut stream) = UnixStream::connect(&path) {
        use std::os::fd::AsRawFd;
        anyhow::ensure!(
            gatehouse::private::peer_is_me(stream.as_raw_fd()),
            "the process answering on {} does not run as you",
            path.display()
        );
        stream.write_all(b"show\n")?;
        return Ok(None);
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(listener))
}

/// Answers later launches: each "show" brings up the main window.
pub fn serve(listener: UnixListener, app: AppHandle) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.trim() == "show" {
                crate::windows::show_main(&app);
            }
        }
    });
}

/// Removes the socket when the app quits.
pub fn release(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(INSTANCE_SOCKET));
}
