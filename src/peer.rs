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
    /// Programs this connection has looked up by key ([`Peer::memo`]).
    known: Arc<std::sync::Mutex<std::collections::HashMap<String, Option<Program>>>>,
}

impl Peer {
    pub fn new(addr: SocketAddr, local: Option<SocketAddr>) -> Peer {
        Peer {
            addr,
            local,
            program: Arc::default(),
            known: Arc::default(),
        }
    }

    /// A program this connection looks up by `key` (e.g. the one a grant was
    /// given to): computed on the first ask, then kept for the connection's
    /// life. Also says whether this was the first ask.
    pub fn memo<E>(
        &self,
        key: &str,
        compute: impl FnOnce() -> Result<Option<Program>, E>,
    ) -> Result<(Option<Program>, bool), E> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = known.get(key) {
            return Ok((found.clone(), false));
        }
        let found = compute()?;
        if known.len() < 1024 {
            known.insert(key.to_string(), found.clone());
        }
        Ok((found, true))
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

/// Gatehouse's HTTP listener, whose connections are its [`Peer`]s: each
/// with Nagle's algorithm off. A streamed answer (its head, then each event:
/// progress, then the result) is written in parts, and with it on, a small
/// part waits until the agent acknowledges the one before, which it may
/// delay by up to 40 ms.
pub struct Listener(pub tokio::net::TcpListener);

impl axum::serve::Listener for Listener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
        (stream, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Listener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Listener>) -> Peer {
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
        // The kernel's socket-diagnostics query finds the one socket directly;
        // /proc/net/tcp is read (all of it, milliseconds) only if that fails.
        let (inode, uid) = diag::find(client, server).or_else(|| {
            ["/proc/net/tcp", "/proc/net/tcp6"]
                .iter()
                .filter_map(|table| std::fs::read_to_string(table).ok())
                .find_map(|text| socket_inode(&text, client, server))
        })?;
        let pids = holders(inode, uid);
        let mut found = program(*pids.first()?);
        // Held by processes of different executables (a socket handed to a
        // child of another program): which program speaks is not known.
        if pids[1..].iter().any(|p| exe(*p) != found.exe) {
            found.exe = None;
        }
        Some(found)
    }

    /// NETLINK_SOCK_DIAG (what `ss` uses): one request naming the socket's
    /// four-tuple, one answer with its inode and owner.
    pub(super) mod diag {
        use std::net::{IpAddr, SocketAddr};

        const SOCK_DIAG_BY_FAMILY: u16 = 20;
        const NLMSG_ERROR: u16 = 2;
        const NLMSG_HEADER: usize = 16;
        const REQUEST: usize = 56; // struct inet_diag_req_v2
        const MESSAGE: usize = 72; // struct inet_diag_msg

        /// The inode and uid of the TCP socket from `local` to `remote`.
        pub fn find(local: SocketAddr, remote: SocketAddr) -> Option<(u64, u32)> {
            let v4 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(ip) => ip.to_ipv4_mapped(),
            };
            // An IPv4 socket first; else an IPv6 one (with mapped addresses, if IPv4).
            let mut tries = Vec::new();
            if let (Some(l), Some(r)) = (v4(local), v4(remote)) {
                tries.push((libc::AF_INET as u8, words(&l.octets()), words(&r.octets())));
                let (l6, r6) = (l.to_ipv6_mapped().octets(), r.to_ipv6_mapped().octets());
                tries.push((libc::AF_INET6 as u8, words(&l6), words(&r6)));
            } else if let (IpAddr::V6(l), IpAddr::V6(r)) = (local.ip(), remote.ip()) {
                tries.push((libc::AF_INET6 as u8, words(&l.octets()), words(&r.octets())));
            }
            tries.into_iter().find_map(|(family, src, dst)| {
                query(family, local.port(), remote.port(), &src, &dst)
            })
        }

        /// Address bytes as the kernel's four 32-bit words (network order kept).
        fn words(bytes: &[u8]) -> [u8; 16] {
            let mut out = [0u8; 16];
            out[..bytes.len()].copy_from_slice(bytes);
            out
        }

        fn query(
            family: u8,
            sport: u16,
            dport: u16,
            src: &[u8; 16],
            dst: &[u8; 16],
        ) -> Option<(u64, u32)> {
            let mut msg = Vec::with_capacity(NLMSG_HEADER + REQUEST);
            msg.extend(((NLMSG_HEADER + REQUEST) as u32).to_ne_bytes());
            msg.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
            msg.extend((libc::NLM_F_REQUEST as u16).to_ne_bytes());
            msg.extend(1u32.to_ne_bytes()); // sequence
            msg.extend(0u32.to_ne_bytes()); // port id: the kernel
            msg.extend([family, libc::IPPROTO_TCP as u8, 0, 0]);
            msg.extend(u32::MAX.to_ne_bytes()); // every state
            msg.extend(sport.to_be_bytes());
            msg.extend(dport.to_be_bytes());
            msg.extend(src);
            msg.extend(dst);
            msg.extend(0u32.to_ne_bytes()); // interface
            msg.extend(u32::MAX.to_ne_bytes()); // no cookie
            msg.extend(u32::MAX.to_ne_bytes());
            answer(&exchange(&msg)?, sport, dport, src, dst)
        }

        /// The inode and uid in the kernel's answer, if it is the socket asked
        /// for. When that socket is gone, the kernel may answer with a
        /// listening socket on the same local address (another program's,
        /// even another user's): its state and its four-tuple tell it apart.
        fn answer(
            reply: &[u8],
            sport: u16,
            dport: u16,
            src: &[u8; 16],
            dst: &[u8; 16],
        ) -> Option<(u64, u32)> {
            const TCP_LISTEN: u8 = 10;
            let header = reply.get(..NLMSG_HEADER)?;
            let kind = u16::from_ne_bytes([header[4], header[5]]);
            if kind == NLMSG_ERROR || kind != SOCK_DIAG_BY_FAMILY {
                return None;
            }
            let body = reply.get(NLMSG_HEADER..NLMSG_HEADER + MESSAGE)?;
            let state = body[1];
            let same = body[4..6] == sport.to_be_bytes()
                && body[6..8] == dport.to_be_bytes()
                && body[8..24] == src[..]
                && body[24..40] == dst[..];
            if state == TCP_LISTEN || !same {
                return None;
            }
            let u32_at =
                |i: usize| u32::from_ne_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
            let (uid, inode) = (u32_at(64), u32_at(68));
            (inode != 0).then_some((inode as u64, uid))
        }

        /// Sends one netlink message and reads one answer.
        fn exchange(msg: &[u8]) -> Option<Vec<u8>> {
            // SAFETY: plain socket calls on a descriptor this function owns and
            // closes; the buffers outlive the calls that use them.
            unsafe {
                let fd = libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                    libc::NETLINK_SOCK_DIAG,
                );
                if fd < 0 {
                    return None;
                }
                let timeout = libc::timeval {
                    tv_sec: 1,
                    tv_usec: 0,
                };
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&timeout as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                );
                let sent = libc::send(fd, msg.as_ptr().cast(), msg.len(), 0);
                let mut buf = vec![0u8; 8192];
                let got = if sent == msg.len() as isize {
                    libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0)
                } else {
                    -1
                };
                libc::close(fd);
                if got <= 0 {
                    return None;
                }
                buf.truncate(got as usize);
                Some(buf)
            }
        }
    }

    /// The inode and owner uid of the socket whose local end is `local` and remote end `remote`.
    pub(super) fn socket_inode(
        table: &str,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<(u64, u32)> {
        table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (l, r) = (fields.get(1)?, fields.get(2)?);
            let same =
                |hex: &str, want: SocketAddr| parse_addr(hex).is_some_and(|a| same_end(a, want));
            if !(same(l, local) && same(r, remote)) {
                return None;
            }
            let inode: u64 = fields.get(9)?.parse().ok().filter(|i| *i != 0)?;
            Some((inode, fields.get(7)?.parse().ok()?))
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

    /// The processes that hold the socket with this inode (only the socket
    /// owner's are searched). A socket can be passed to a child, so every
    /// holder counts.
    fn holders(inode: u64, uid: u32) -> Vec<u32> {
        use std::os::unix::fs::MetadataExt;
        let wanted = format!("socket:[{inode}]");
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut pids: Vec<u32> = procs
            .flatten()
            .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|pid| {
                let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                    return false;
                };
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
                })
            })
            .collect();
        pids.sort_unstable();
        pids
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

    /// The option is the server's own, on each connection it accepts.
    #[tokio::test]
    async fn each_connection_is_accepted_without_nagles_delay() {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut listener = Listener(tcp);
        let addr = axum::serve::Listener::local_addr(&listener).unwrap();
        let client = tokio::net::TcpStream::connect(addr);
        let ((stream, from), client) =
            tokio::join!(axum::serve::Listener::accept(&mut listener), client);
        assert_eq!(from, client.unwrap().local_addr().unwrap());
        assert!(stream.nodelay().unwrap());
    }

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

    /// Asked for a connection that does not exist from a port something
    /// listens on, the kernel answers with the listener: that is not the peer.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_listener_on_the_peers_port_is_not_taken_for_the_peer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap();
        let gone: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(imp::diag::find(port, gone), None);
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
    fn the_diagnostics_query_and_the_table_agree() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let local = client.local_addr().unwrap();
        let from_diag = imp::diag::find(local, server).expect("sock_diag answers");
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        assert_eq!(Some(from_diag), imp::socket_inode(&table, local, server));
        assert_eq!(imp::diag::find(local, "127.0.0.1:1".parse().unwrap()), None);
    }

    #[test]
    fn a_connection_that_is_gone_has_no_program() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        assert_eq!(lookup(server, "127.0.0.1:1".parse().unwrap()), None);
    }
}
