//! The HTTPS listener: bound, moved or closed at run time when `core.https_address` changes.
//! Binding happens synchronously so a bad address is refused before any configuration changes.

use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::oneshot;

use super::{PeerInfo, Transport, serve_connection};
use crate::daemon::config;
use crate::daemon::{Daemon, ListenerControl};
use crate::tls;

struct Running {
    address: String,
    stop: oneshot::Sender<()>,
}

pub struct HttpsListeners {
    daemon: Weak<Daemon>,
    runtime: tokio::runtime::Handle,
    current: Mutex<Option<Running>>,
}

impl HttpsListeners {
    pub fn new(daemon: &Arc<Daemon>) -> Arc<HttpsListeners> {
        Arc::new(HttpsListeners {
            daemon: Arc::downgrade(daemon),
            runtime: tokio::runtime::Handle::current(),
            current: Mutex::new(None),
        })
    }

    fn bind(address: &str) -> Result<std::net::TcpListener, String> {
        let canonical = config::parse_address(address, 8443)?;
        let bind_to = match canonical.strip_prefix(':') {
            Some(port) => format!("[::]:{port}"),
            None => canonical.clone(),
        };
        let addrs: Vec<_> = bind_to.to_socket_addrs().map_err(|e| format!("{bind_to}: {e}"))?.collect();
        let mut last = String::from("no address");
        for a in addrs {
            match std::net::TcpListener::bind(a) {
                Ok(l) => {
                    l.set_nonblocking(true).map_err(|e| e.to_string())?;
                    return Ok(l);
                }
                Err(e) => last = format!("listen tcp {a}: {e}"),
            }
        }
        Err(last)
    }

    /// Binds, retrying for up to a second while a listener being stopped releases the port.
    fn bind_retry(address: &str) -> Result<std::net::TcpListener, String> {
        let mut attempt = 0;
        loop {
            match Self::bind(address) {
                Ok(l) => return Ok(l),
                Err(e) if attempt >= 100 => return Err(e),
                Err(_) => attempt += 1,
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn run(&self, listener: std::net::TcpListener, address: String) -> Result<Running, String> {
        let daemon = self.daemon.upgrade().ok_or("daemon is gone")?;
        let _enter = self.runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        tracing::info!(address = %address, "HTTPS listener started");
        self.runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = daemon.shutdown_requested() => break,
                    accepted = listener.accept() => {
                        let Ok((tcp, remote)) = accepted else { continue };
                        // Raft and forwarding traffic is many small request/response pairs.
                        let _ = tcp.set_nodelay(true);
                        // The daemon's current identity: the cluster certificate once clustered.
                        let acceptor = tokio_rustls::TlsAcceptor::from(daemon.tls_server_config());
                        let daemon = daemon.clone();
                        tokio::spawn(async move {
                            let Ok(Ok(stream)) = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await else {
                                return;
                            };
                            let cert_der = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
                            let fingerprint = cert_der.as_deref().map(tls::fingerprint_der);
                            let peer = PeerInfo { transport: Transport::Tls, remote: remote.to_string(), uid: None, cert_der, fingerprint };
                            serve_connection(daemon, stream, peer);
                        });
                    }
                }
            }
        });
        Ok(Running { address, stop })
    }
}

impl ListenerControl for HttpsListeners {
    fn set_https_address(&self, address: Option<&str>) -> Result<(), String> {
        let mut current = self.current.lock().map_err(|_| "listener state poisoned".to_string())?;
        let wanted = address.filter(|a| !a.is_empty()).map(str::to_string);
        if current.as_ref().map(|r| &r.address) == wanted.as_ref() {
            return Ok(());
        }
        match wanted {
            None => {
                if let Some(old) = current.take() {
                    let _ = old.stop.send(());
                }
                Ok(())
            }
            Some(addr) => {
                // Release the old socket first when the new one would need the same port.
                let same_port = current.as_ref().is_some_and(|r| {
                    config::parse_address(&r.address, 8443).ok().and_then(|a| a.rsplit_once(':').map(|(_, p)| p.to_string()))
                        == config::parse_address(&addr, 8443).ok().and_then(|a| a.rsplit_once(':').map(|(_, p)| p.to_string()))
                });
                let listener = match Self::bind(&addr) {
                    Ok(l) => l,
                    Err(_) if same_port => {
                        if let Some(old) = current.take() {
                            let _ = old.stop.send(());
                        }
                        Self::bind_retry(&addr)?
                    }
                    Err(e) => return Err(e),
                };
                let running = self.run(listener, addr)?;
                if let Some(old) = current.replace(running) {
                    let _ = old.stop.send(());
                }
                Ok(())
            }
        }
    }
}
