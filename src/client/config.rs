//! The client configuration directory (`$LXD_CONF`, else `~/.config/lxc`): `config.yml` in
//! LXD's format, the client certificate (generated on first use) and pinned server
//! certificates in `servercerts/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ClientError, Connection, Result};
use crate::tls::{self, CertKind, KeyPairPem, ServerPin};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RemoteConfig {
    pub addr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default)]
    pub public: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientConfig {
    #[serde(rename = "default-remote", default = "default_remote")]
    pub default_remote: String,
    #[serde(default)]
    pub remotes: BTreeMap<String, RemoteConfig>,
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    #[serde(skip)]
    pub dir: PathBuf,
}

fn default_remote() -> String {
    "local".into()
}

/// Remotes every configuration has and which cannot be removed.
pub const STATIC_REMOTES: &[&str] = &["local", "images"];

fn builtin_remotes() -> BTreeMap<String, RemoteConfig> {
    let mut m = BTreeMap::new();
    m.insert(
        "images".into(),
        RemoteConfig {
            addr: "https://images.linuxcontainers.org".into(),
            protocol: Some("simplestreams".into()),
            public: true,
            ..Default::default()
        },
    );
    m.insert("local".into(), RemoteConfig { addr: "unix://".into(), public: false, ..Default::default() });
    m
}

/// The config directory: `$LXD_CONF`, else `$HOME/.config/lxc`.
pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LXD_CONF") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".config").join("lxc")
}

/// The local daemon's socket: `$LXD_SOCKET`, `$LXD_DIR/unix.socket`, else `/var/lib/rxd/unix.socket`.
pub fn local_socket() -> PathBuf {
    if let Some(s) = std::env::var_os("LXD_SOCKET") {
        return PathBuf::from(s);
    }
    let dir = std::env::var_os("LXD_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/rxd"));
    dir.join("unix.socket")
}

impl ClientConfig {
    pub fn load() -> Result<ClientConfig> {
        Self::load_from(&config_dir())
    }

    pub fn load_from(dir: &Path) -> Result<ClientConfig> {
        let path = dir.join("config.yml");
        let mut cfg = match std::fs::read_to_string(&path) {
            Ok(text) => serde_yaml::from_str::<ClientConfig>(&text)
                .map_err(|e| ClientError::Config(format!("Failed to parse {}: {e}", path.display())))?,
            Err(_) => ClientConfig {
                default_remote: default_remote(),
                remotes: BTreeMap::new(),
                aliases: BTreeMap::new(),
                dir: PathBuf::new(),
            },
        };
        for (k, v) in builtin_remotes() {
            cfg.remotes.entry(k).or_insert(v);
        }
        cfg.dir = dir.to_path_buf();
        Ok(cfg)
    }

    pub fn save(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| ClientError::Config(format!("{}: {e}", self.dir.display())))?;
        let text = serde_yaml::to_string(self).map_err(|e| ClientError::Config(e.to_string()))?;
        let path = self.dir.join("config.yml");
        std::fs::write(&path, text).map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))
    }

    /// The client certificate, generated on first use (as LXD's client announces).
    pub fn identity(&self) -> Result<KeyPairPem> {
        let crt = self.dir.join("client.crt");
        if !crt.exists() {
            eprintln!("Generating a client certificate. This may take a minute...");
            std::fs::create_dir_all(&self.dir).map_err(|e| ClientError::Config(format!("{}: {e}", self.dir.display())))?;
        }
        tls::load_or_generate(&self.dir, "client", CertKind::Client).map_err(|e| ClientError::Config(e.to_string()))
    }

    pub fn server_cert_path(&self, remote: &str) -> PathBuf {
        self.dir.join("servercerts").join(format!("{remote}.crt"))
    }

    pub fn save_server_cert(&self, remote: &str, pem: &str) -> Result<()> {
        let path = self.server_cert_path(remote);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ClientError::Config(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&path, pem).map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))
    }

    /// Splits `remote:rest` into the remote name (default if absent) and the rest.
    pub fn parse_remote<'a>(&self, arg: &'a str) -> (String, &'a str) {
        if let Some((r, rest)) = arg.split_once(':')
            && self.remotes.contains_key(r)
        {
            return (r.to_string(), rest);
        }
        (self.default_remote.clone(), arg)
    }

    /// A connection to a configured remote.
    pub fn connect(&self, remote: &str) -> Result<Connection> {
        let r = self.remotes.get(remote).ok_or_else(|| ClientError::Config(format!("The remote \"{remote}\" doesn't exist")))?;
        if r.addr.starts_with("unix:") {
            let path = r.addr.trim_start_matches("unix:").trim_start_matches("//");
            let socket = if path.is_empty() { local_socket() } else { PathBuf::from(path) };
            let mut c = Connection::unix(socket);
            if let Some(p) = r.project.as_deref().filter(|p| !p.is_empty() && *p != "default") {
                c = c.with_query("project", p);
            }
            return Ok(c);
        }
        if r.protocol.as_deref() == Some("simplestreams") {
            return Err(ClientError::Config(format!("The remote \"{remote}\" is an image server, not an LXD server")));
        }
        let host_port = r.addr.trim_start_matches("https://").trim_end_matches('/');
        let pem = std::fs::read_to_string(self.server_cert_path(remote))
            .map_err(|e| ClientError::Config(format!("No certificate stored for remote \"{remote}\": {e}")))?;
        let fp = tls::fingerprint_pem(&pem).map_err(|e| ClientError::Config(e.to_string()))?;
        let identity = self.identity()?;
        let mut c = Connection::https(host_port, ServerPin::Fingerprint(fp), Some(&identity))?;
        if let Some(p) = r.project.as_deref().filter(|p| !p.is_empty() && *p != "default") {
            c = c.with_query("project", p);
        }
        Ok(c)
    }
}
