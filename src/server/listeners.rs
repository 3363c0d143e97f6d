//! The HTTPS listeners: bound, moved or closed at run time when `core.https_address` (or the
//! separate cluster address) changes. Binding happens synchronously so a bad address is
//! refused before any configuration changes.

use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::oneshot;

use super::request::{PeerInfo, Transport};
use super::serve_connection;
use crate::config::{self, address::DEFAULT_PORT};
use crate::services::Member;
use crate::services::server_config::{ListenError, ListenerControl};
use crate::tls;

struct Running {
    address: String,
    stop: oneshot::Sender<()>,
}

pub struct HttpsListeners {
    member: Weak<Member>,
    runtime: tokio::runtime::Handle,
    current: Mutex<Option<Running>>,
}

fn port_of(address: &str) -> Option<String> {
    config::parse_address(address, DEFAULT_PORT).ok().and_then(|a| a.rsplit_once(':').map(|(_, p)| p.to_string()))
}

impl HttpsListeners {
    pub fn new(member: &Arc<Member>) -> Arc<HttpsListeners> {
        Arc::new(HttpsListeners {
            member: Arc::downgrade(member),
            runtime: tokio::runtime::Handle::current(),
            current: Mutex::new(None),
        })
    }

    fn bind(address: &str) -> Result<std::net::TcpListener, ListenError> {
        let canonical = config::parse_address(address, DEFAULT_PORT).map_err(|e| ListenError(e.0))?;
        let bind_to = match canonical.strip_prefix(':') {
            Some(port) => format!("[::]:{port}"),
            None => canonical.clone(),
        };
        let addrs: Vec<_> = bind_to.to_socket_addrs().map_err(|e| ListenError(format!("{bind_to}: {e}")))?.collect();
        let mut last = ListenError("no address".into());
        for a in addrs {
            match std::net::TcpListener::bind(a) {
                Ok(l) => {
                    l.set_nonblocking(true).map_err(|e| ListenError(format!("listen tcp {a}: {e}")))?;
                    return Ok(l);
                }
                Err(e) => last = ListenError(format!("listen tcp {a}: {e}")),
            }
        }
        Err(last)
    }

    /// Binds, retrying for up to a second while a listener being stopped releases the port.
    fn bind_retry(address: &str) -> Result<std::net::TcpListener, ListenError> {
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

    fn run(&self, listener: std::net::TcpListener, address: String) -> Result<Running, ListenError> {
        let member = self.member.upgrade().ok_or_else(|| ListenError("the daemon is stopping".into()))?;
        let _enter = self.runtime.enter();
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|e| ListenError(format!("listen tcp {address}: {e}")))?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        tracing::info!(address = %address, "HTTPS listener started");
        self.runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = member.shutdown.requested() => break,
                    accepted = listener.accept() => {
                        let Ok((tcp, remote)) = accepted else { continue };
                        // Raft and forwarding traffic is many small request/response pairs.
                        if let Err(e) = tcp.set_nodelay(true) {
                            tracing::debug!(error = %e, "TCP_NODELAY not set");
                        }
                        // The member's current identity: the cluster certificate once clustered.
                        let acceptor = tokio_rustls::TlsAcceptor::from(member.identity.tls_config());
                        let member = member.clone();
                        tokio::spawn(async move {
                            let Ok(Ok(stream)) = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await else {
                                return;
                            };
                            let cert_der = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
                            let fingerprint = cert_der.as_deref().map(tls::fingerprint_der);
                            let peer = PeerInfo { transport: Transport::Tls, remote: remote.to_string(), uid: None, cert_der, fingerprint };
                            serve_connection(member, stream, peer);
                        });
                    }
                }
            }
        });
        Ok(Running { address, stop })
    }
}

fn stop(running: Running) {
    // The accept loop may have ended already (the daemon is stopping).
    let _ = running.stop.send(());
}

impl ListenerControl for HttpsListeners {
    fn set_address(&self, address: Option<&str>) -> Result<(), ListenError> {
        let mut current = self.current.lock().map_err(|_| ListenError("listener state poisoned".into()))?;
        let wanted = address.filter(|a| !a.is_empty()).map(str::to_string);
        if current.as_ref().map(|r| &r.address) == wanted.as_ref() {
            return Ok(());
        }
        match wanted {
            None => {
                if let Some(old) = current.take() {
                    stop(old);
                }
                Ok(())
            }
            Some(addr) => {
                // Release the old socket first when the new one would need the same port.
                let same_port = current.as_ref().is_some_and(|r| port_of(&r.address) == port_of(&addr));
                let listener = match Self::bind(&addr) {
                    Ok(l) => l,
                    Err(_) if same_port => {
                        if let Some(old) = current.take() {
                            stop(old);
                        }
                        Self::bind_retry(&addr)?
                    }
                    Err(e) => return Err(e),
                };
                let running = self.run(listener, addr)?;
                if let Some(old) = current.replace(running) {
                    stop(old);
                }
                Ok(())
            }
        }
    }
}
