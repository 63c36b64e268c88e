//! A TCP proxy in front of a member's peer listener that can cut links: connections from
//! blocked source addresses are dropped, and cutting closes the ones already open. Members
//! each use their own 127.x address, so the source address names the member.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct State {
    blocked: HashSet<IpAddr>,
    block_all: bool,
    conns: Vec<(IpAddr, TcpStream, TcpStream)>,
}

pub struct Proxy {
    pub listen: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Forwards `listen` to `target` until dropped. Port 0 lets the kernel pick a free port;
    /// `Proxy::listen` says which.
    pub fn start(listen: SocketAddr, target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(listen).expect("bind proxy");
        let listen = listener.local_addr().expect("proxy address");
        listener.set_nonblocking(true).expect("nonblocking");
        let state: Arc<Mutex<State>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, from)) => {
                        let _ = client.set_nonblocking(false);
                        let ip = from.ip();
                        {
                            let s = st.lock().unwrap();
                            if s.block_all || s.blocked.contains(&ip) {
                                continue;
                            }
                        }
                        let Ok(server) =
                            TcpStream::connect_timeout(&target, Duration::from_secs(1))
                        else {
                            continue;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                            st.lock().unwrap().conns.push((ip, c2, s2));
                        }
                        pipe(client.try_clone().ok(), server.try_clone().ok());
                        pipe(server.try_clone().ok(), client.try_clone().ok());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy {
            listen,
            state,
            stop,
        }
    }

    /// Drops traffic from `ip` (or from everyone with `None`), closing open connections.
    pub fn block(&self, ip: Option<IpAddr>) {
        let mut s = self.state.lock().unwrap();
        match ip {
            Some(ip) => {
                s.blocked.insert(ip);
            }
            None => s.block_all = true,
        }
        let (all, blocked) = (s.block_all, s.blocked.clone());
        s.conns.retain(|(from, a, b)| {
            if all || blocked.contains(from) {
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
    }

    /// Lets everything through again.
    pub fn heal(&self) {
        let mut s = self.state.lock().unwrap();
        s.blocked.clear();
        s.block_all = false;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.block(None);
    }
}

fn pipe(from: Option<TcpStream>, to: Option<TcpStream>) {
    let (Some(mut from), Some(mut to)) = (from, to) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
