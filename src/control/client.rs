//! The CLI's side of the control channel.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::{Answer, Request, SOCKET_FILE};
use crate::api::{Error, ErrorCode};

pub struct ControlClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl ControlClient {
    /// Connects to the daemon of this data directory, after checking that the
    /// directory and the socket are this user's and that the process on the
    /// other end runs as this user too (a fake daemon could fake answers).
    pub fn connect(data_dir: &Path) -> Result<ControlClient, Error> {
        let path = data_dir.join(SOCKET_FILE);
        if data_dir.is_dir() {
            crate::private::ensure_dir(data_dir).map_err(refused)?;
        }
        if std::fs::symlink_metadata(&path).is_ok() {
            crate::private::check_socket(&path).map_err(refused)?;
        }
        let stream = UnixStream::connect(&path).map_err(|e| {
            let same_dir = if data_dir == crate::config::default_data_dir() {
                ""
            } else {
                " --data-dir <same dir>"
            };
            Error::new(
                ErrorCode::NotFound,
                format!(
                    "Gatehouse is not running for the data directory {} ({}: {e}). Start it with `gatehouse serve`{same_dir}.",
                    data_dir.display(),
                    path.display(),
                ),
            )
        })?;
        use std::os::fd::AsRawFd;
        if !crate::private::peer_is_me(stream.as_raw_fd()) {
            return Err(refused(crate::private::NotPrivate(format!(
                "the process answering on {} does not run as you: refusing to trust its answers",
                path.display()
            ))));
        }
        let writer = stream.try_clone().map_err(io_error)?;
        Ok(ControlClient {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends one request and reads its answer.
    pub fn call(&mut self, request: &Request) -> Result<serde_json::Value, Error> {
        self.send(request)?;
        self.next_answer()
            .ok_or_else(|| Error::internal("Gatehouse closed the connection"))?
    }

    pub fn send(&mut self, request: &Request) -> Result<(), Error> {
        let mut line =
            serde_json::to_string(request).map_err(|e| Error::internal(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes()).map_err(io_error)
    }

    /// The next answer on the connection (for a followed log), `None` at its end.
    pub fn next_answer(&mut self) -> Option<Result<serde_json::Value, Error>> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Err(e) => Some(Err(io_error(e))),
            Ok(_) => Some(match serde_json::from_str::<Answer>(&line) {
                Ok(Answer::Ok(v)) => Ok(v),
                Ok(Answer::Error(e)) => Err(e),
                Err(e) => Err(Error::internal(format!(
                    "unreadable answer from Gatehouse: {e}"
                ))),
            }),
        }
    }
}

fn refused(e: crate::private::NotPrivate) -> Error {
    Error::new(ErrorCode::Conflict, e.0)
}

fn io_error(e: std::io::Error) -> Error {
    Error::internal(format!("control channel: {e}"))
}
