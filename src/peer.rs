//! Which program is on the other end of a loopback connection.
//!
//! An agent's name is a claim it makes about itself; the executable that holds
//! the socket is evidence. For a connection from 127.0.0.1 or ::1, the peer's
//! socket is found in the kernel's table (Linux: `/proc/net/tcp{,6}`, the line
//! whose local end is the client's address and whose remote end is ours), then
//! the process holding that socket (`/proc/<pid>/fd/*` → `socket:[inode]`),
//! its executable, command line and parent chain. Looked up once per
//! connection ([`Peer`], lazily, off the async workers) so the requests of a
//! keep-alive connection pay nothing more.
//!
//! macOS (`proc_pidinfo`) and Windows (`GetExtendedTcpTable`) are not done:
//! there the program is unknown and everything else works as before.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

/// How many ancestors to record (parent, grandparent, …), stopping at init.
const ANCESTORS: usize = 4;
/// The command line is for a person to read; it is cut here.
const CMDLINE_MAX: usize = 2048;

/// The program on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Program {
    pub pid: u32,
    /// The executable's path (`None` when the kernel would not say, e.g.
    /// another user's process).
    pub exe: Option<String>,
    /// Its arguments, joined with spaces, cut at 2 KiB (untrusted text).
    pub cmdline: String,
    /// Who started it: parent first, as far as four levels up.
    pub started_by: Vec<Ancestor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Ancestor {
    pub pid: u32,
    /// The executable's path, or the process name when the path is unreadable.
    pub name: String,
}

impl Program {
    /// Whether two sightings are the same program (the same executable file).
    pub fn same_program(&self, other: &Program) -> bool {
        self.exe.is_some() && self.exe == other.exe
    }
}

/// One HTTP connection's peer: its address, and the program behind it,
/// looked up at most once (the first request that asks).
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    local: Option<SocketAddr>,
    program: Arc<OnceCell<Option<Program>>>,
    /// Keys [`Peer::first_time`] has seen on this connection.
    seen: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Peer {
    pub fn new(addr: SocketAddr, local: Option<SocketAddr>) -> Peer {
        Peer {
            addr,
            local,
            program: Arc::default(),
            seen: Arc::default(),
        }
    }

    /// True the first time this connection asks about `key` (e.g. a grant id),
    /// so something is reported once per connection, not per request.
    pub fn first_time(&self, key: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.len() < 1024 && seen.insert(key.to_string())
    }

    /// The program on the other end (looked up on the first call, then kept).
    pub async fn program(&self) -> Option<Program> {
        let (addr, local) = (self.addr, self.local?);
        self.program
            .get_or_init(|| async move {
                tokio::task::spawn_blocking(move || lookup(local, addr))
                    .await
                    .ok()
                    .flatten()
            })
            .await
            .clone()
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer::new(*stream.remote_addr(), stream.io().local_addr().ok())
    }
}

/// The program holding the client end (`client`) of a loopback connection to
/// `server`, if this OS tells.
pub fn lookup(server: SocketAddr, client: SocketAddr) -> Option<Program> {
    if !client.ip().is_loopback() && !is_mapped_loopback(&client) {
        return None;
    }
    imp::lookup(server, client)
}

fn is_mapped_loopback(addr: &SocketAddr) -> bool {
    match addr {
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        SocketAddr::V4(_) => false,
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    use super::{Ancestor, Program, ANCESTORS, CMDLINE_MAX};

    pub fn lookup(server: SocketAddr, client: SocketAddr) -> Option<Program> {
        let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|table| std::fs::read_to_string(table).ok())
            .find_map(|text| socket_inode(&text, client, server))?;
        let pid = holder(inode)?;
        Some(program(pid))
    }

    /// The inode of the socket whose local end is `local` and remote end `remote`.
    pub(super) fn socket_inode(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u64> {
        table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (l, r, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
            let same =
                |hex: &str, want: SocketAddr| parse_addr(hex).is_some_and(|a| same_end(a, want));
            (same(l, local) && same(r, remote))
                .then(|| inode.parse().ok())
                .flatten()
                .filter(|i| *i != 0)
        })
    }

    /// Two socket ends are the same, counting `::ffff:a.b.c.d` as `a.b.c.d`.
    fn same_end(a: SocketAddr, b: SocketAddr) -> bool {
        let plain = |ip: IpAddr| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        a.port() == b.port() && plain(a.ip()) == plain(b.ip())
    }

    /// `0100007F:1F90` (IPv4) or 32 hex digits + port (IPv6), as the kernel
    /// prints them: each 32-bit word in the machine's own byte order.
    pub(super) fn parse_addr(hex: &str) -> Option<SocketAddr> {
        let (ip, port) = hex.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let word = |i: usize| -> Option<[u8; 4]> {
            Some(
                u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                    .ok()?
                    .to_ne_bytes(),
            )
        };
        let ip = match ip.len() {
            8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
            32 => {
                let mut bytes = [0u8; 16];
                for i in 0..4 {
                    bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
                }
                IpAddr::V6(Ipv6Addr::from(bytes))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }

    /// The process that holds the socket with this inode.
    fn holder(inode: u64) -> Option<u32> {
        let wanted = format!("socket:[{inode}]");
        let procs = std::fs::read_dir("/proc").ok()?;
        procs.flatten().find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
                })
                .then_some(pid)
        })
    }

    fn program(pid: u32) -> Program {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut cmdline = String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ");
        if cmdline.len() > CMDLINE_MAX {
            let mut cut = CMDLINE_MAX;
            while !cmdline.is_char_boundary(cut) {
                cut -= 1;
            }
            cmdline.truncate(cut);
            cmdline.push('…');
        }
        let mut started_by = Vec::new();
        let mut at = pid;
        while started_by.len() < ANCESTORS {
            match parent(at) {
                Some(ppid) if ppid > 1 => {
                    started_by.push(Ancestor {
                        pid: ppid,
                        name: exe(ppid).or_else(|| comm(ppid)).unwrap_or_default(),
                    });
                    at = ppid;
                }
                _ => break,
            }
        }
        Program {
            pid,
            exe: exe(pid),
            cmdline,
            started_by,
        }
    }

    fn exe(pid: u32) -> Option<String> {
        let path = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        Some(path.to_string_lossy().into_owned())
    }

    fn comm(pid: u32) -> Option<String> {
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some(name.trim_end().to_string())
    }

    /// The parent pid, from `/proc/<pid>/stat` (after the name, which may hold spaces and parentheses).
    fn parent(pid: u32) -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(1)?.parse().ok()
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::Program;
    use std::net::SocketAddr;

    pub fn lookup(_server: SocketAddr, _client: SocketAddr) -> Option<Program> {
        None
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn kernel_addresses_parse() {
        let v4 = imp::parse_addr("0100007F:1F90").unwrap();
        assert_eq!(v4, "127.0.0.1:8080".parse().unwrap());
        let v6 = imp::parse_addr("00000000000000000000000001000000:0050").unwrap();
        assert_eq!(v6, "[::1]:80".parse().unwrap());
        let mapped = imp::parse_addr("0000000000000000FFFF00000100007F:0050").unwrap();
        assert_eq!(mapped, "[::ffff:127.0.0.1]:80".parse().unwrap());
        assert_eq!(imp::parse_addr("zz:1"), None);
        assert_eq!(imp::parse_addr("0100007F"), None);
    }

    #[test]
    fn finds_this_process_on_the_other_end() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let (_accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let program = lookup(server, peer).expect("the peer is found");
        assert_eq!(program.pid, std::process::id());
        let me = std::env::current_exe().unwrap();
        assert_eq!(program.exe.as_deref(), Some(me.to_string_lossy().as_ref()));
        assert!(!program.started_by.is_empty(), "{program:?}");
        // Not a loopback peer: not looked up.
        assert_eq!(lookup(server, "10.0.0.1:5555".parse().unwrap()), None);
    }

    #[test]
    fn a_connection_that_is_gone_has_no_program() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        assert_eq!(lookup(server, "127.0.0.1:1".parse().unwrap()), None);
    }
}
