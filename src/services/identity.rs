//! The certificate this member's listeners present: its own `server.crt` while standalone,
//! the cluster certificate once clustered, with the TLS configuration built from it.

use std::sync::{Arc, RwLock};

use crate::paths::Paths;
use crate::tls::{self, CertKind, KeyPairPem, TlsError};

struct Presented {
    pair: KeyPairPem,
    fingerprint: String,
    config: Arc<rustls::ServerConfig>,
}

pub struct Identity {
    /// This member's own certificate (`server.crt`), which it presents as a client to others.
    server: KeyPairPem,
    presented: RwLock<Arc<Presented>>,
}

fn presented(pair: KeyPairPem) -> Result<Presented, TlsError> {
    let fingerprint = tls::fingerprint_pem(&pair.cert)?;
    let config = tls::server_config(&pair)?;
    Ok(Presented { pair, fingerprint, config })
}

impl Identity {
    /// Loads (or makes) `server.crt`, and presents `cluster.crt` when this member has one.
    pub fn load(paths: &Paths) -> Result<Identity, TlsError> {
        let server = tls::load_or_generate(&paths.dir, "server", CertKind::Server)?;
        let pair = if paths.cluster_cert().exists() {
            tls::load_or_generate(&paths.dir, "cluster", CertKind::Server)?
        } else {
            server.clone()
        };
        Ok(Identity { server, presented: RwLock::new(Arc::new(presented(pair)?)) })
    }

    fn current(&self) -> Arc<Presented> {
        match self.presented.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn server_cert(&self) -> &KeyPairPem {
        &self.server
    }

    /// The TLS configuration listeners accept new connections with.
    pub fn tls_config(&self) -> Arc<rustls::ServerConfig> {
        self.current().config.clone()
    }

    /// The certificate the HTTPS listeners present.
    pub fn presented_cert(&self) -> KeyPairPem {
        self.current().pair.clone()
    }

    pub fn fingerprint(&self) -> String {
        self.current().fingerprint.clone()
    }

    /// Presents `pair` from now on (the cluster certificate after bootstrap or join).
    pub fn present(&self, pair: KeyPairPem) -> Result<(), TlsError> {
        let next = Arc::new(presented(pair)?);
        if let Ok(mut p) = self.presented.write() {
            *p = next;
        }
        Ok(())
    }

    /// Back to this member's own certificate (it left its cluster).
    pub fn present_server_cert(&self) -> Result<(), TlsError> {
        self.present(self.server.clone())
    }
}
