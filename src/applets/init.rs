//! Interactive `lxd init`: the questions LXD asks (clustering, joining with a token or a trust
//! password, storage, network, images), turned into a preseed document that the library
//! validates and applies.

use std::io::{BufRead, IsTerminal, Write};

use rxd::client::Connection;
use rxd::client::preseed;
use rxd::tls::{self, CertKind, ServerPin};

/// Reads answers line by line from standard input (a terminal or not).
struct Prompter {
    input: std::io::StdinLock<'static>,
}

impl Prompter {
    fn new() -> Prompter {
        Prompter { input: std::io::stdin().lock() }
    }

    fn line(&mut self, question: &str) -> anyhow::Result<String> {
        print!("{question}");
        std::io::stdout().flush()?;
        let mut s = String::new();
        if self.input.read_line(&mut s)? == 0 {
            anyhow::bail!("Unexpected end of input while asking: {}", question.trim());
        }
        Ok(s.trim().to_string())
    }

    fn string(&mut self, question: &str, default: &str) -> anyhow::Result<String> {
        loop {
            let q = if default.is_empty() { format!("{question}: ") } else { format!("{question} [default={default}]: ") };
            let a = self.line(&q)?;
            let a = if a.is_empty() { default.to_string() } else { a };
            if !a.is_empty() {
                return Ok(a);
            }
            println!("Invalid input, try again.\n");
        }
    }

    fn optional(&mut self, question: &str) -> anyhow::Result<String> {
        self.line(&format!("{question}: "))
    }

    fn yes_no(&mut self, question: &str, default: bool) -> anyhow::Result<bool> {
        let d = if default { "yes" } else { "no" };
        loop {
            match self.line(&format!("{question} (yes/no) [default={d}]: "))?.as_str() {
                "" => return Ok(default),
                "yes" | "y" => return Ok(true),
                "no" | "n" => return Ok(false),
                _ => println!("Invalid input, try again.\n"),
            }
        }
    }

    /// yes, no, or a value typed in place of yes (a token, a fingerprint).
    fn yes_no_value(&mut self, question: &str, what: &str) -> anyhow::Result<Option<String>> {
        let a = self.line(&format!("{question} (yes/no/[{what}]) [default=no]: "))?;
        Ok(match a.as_str() {
            "" | "no" | "n" => None,
            _ => Some(a),
        })
    }

    fn password(&mut self, question: &str) -> anyhow::Result<String> {
        let tty = std::io::stdin().is_terminal();
        let saved = if tty { set_echo(false) } else { None };
        let answer = self.line(&format!("{question}: "));
        if let Some(t) = saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &t);
            println!();
        }
        answer
    }
}

fn set_echo(on: bool) -> Option<nix::sys::termios::Termios> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let saved = tcgetattr(std::io::stdin()).ok()?;
    let mut t = saved.clone();
    t.local_flags.set(LocalFlags::ECHO, on);
    tcsetattr(std::io::stdin(), SetArg::TCSANOW, &t).ok()?;
    Some(saved)
}

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

/// The first non-loopback address of this host, else the loopback one.
fn primary_ip() -> String {
    nix::ifaddrs::getifaddrs()
        .ok()
        .and_then(|mut addrs| {
            addrs.find_map(|a| {
                let ip = a.address?.as_sockaddr_in()?.ip();
                (!ip.is_loopback()).then(|| ip.to_string())
            })
        })
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// Fetches the certificate a server presents (without trusting it yet).
async fn fetch_certificate(address: &str) -> anyhow::Result<String> {
    let probe = Connection::https(address, ServerPin::AcceptAny, None)?;
    let (_, der) = tokio::time::timeout(std::time::Duration::from_secs(10), probe.open())
        .await
        .map_err(|_| anyhow::anyhow!("Timed out connecting to {address}"))??;
    let der = der.ok_or_else(|| anyhow::anyhow!("{address} presented no certificate"))?;
    Ok(tls::der_to_pem(&der))
}

fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Asks the questions, applies the answers, and prints the preseed if asked.
pub async fn interactive(conn: &Connection, lxd_dir: &std::path::Path) -> anyhow::Result<()> {
    let mut p = Prompter::new();
    let clustering = p.yes_no("Would you like to use LXD clustering?", false)?;
    let text = if clustering { cluster_questions(&mut p, lxd_dir).await? } else { standalone_questions(&mut p)? };
    preseed::apply(conn, &text).await?;
    if p.yes_no("Would you like a YAML \"lxd init\" preseed to be printed?", false)? {
        print!("{text}");
    }
    Ok(())
}

fn address_question(p: &mut Prompter) -> anyhow::Result<String> {
    loop {
        let a = p.string("What IP address or DNS name should be used to reach this node?", &primary_ip())?;
        if rxd::config::is_wildcard(&a) {
            println!("Invalid input: the address cannot be a wildcard, try again.\n");
            continue;
        }
        return rxd::config::parse_address(&a, 8443).map_err(|e| anyhow::anyhow!(e));
    }
}

async fn cluster_questions(p: &mut Prompter, lxd_dir: &std::path::Path) -> anyhow::Result<String> {
    let address = address_question(p)?;
    if p.yes_no("Are you joining an existing cluster?", false)? {
        return join_questions(p, lxd_dir, &address).await;
    }
    let name = p.string("What name should be used to identify this node in the cluster?", &hostname())?;
    let mut config = format!("config:\n  core.https_address: {}\n", yaml_quote(&address));
    if p.yes_no("Setup password authentication on the cluster?", false)? {
        let pw = loop {
            let a = p.password("Trust password for new clients")?;
            let b = p.password("Again")?;
            if a == b {
                break a;
            }
            println!("Passwords don't match, try again.\n");
        };
        config.push_str(&format!("  core.trust_password: {}\n", yaml_quote(&pw)));
    }
    let (storage, profiles) = storage_questions(p, "Do you want to configure a new local storage pool?")?;
    if p.yes_no("Do you want to configure a new remote storage pool?", false)? {
        println!("No remote storage backend is available on this server (supported: dir).");
    }
    network_questions(p)?;
    images_question(p, &mut config)?;
    Ok(format!("{config}{storage}{profiles}cluster:\n  server_name: {}\n  enabled: true\n", yaml_quote(&name)))
}

async fn join_questions(p: &mut Prompter, lxd_dir: &std::path::Path, address: &str) -> anyhow::Result<String> {
    let member = tls::load_or_generate(lxd_dir, "server", CertKind::Server)?;
    let (name, cluster_address, certificate, password) = match p.yes_no_value("Do you have a join token?", "token")? {
        Some(answer) => {
            let text = if answer == "yes" || answer == "y" { p.optional("Please provide join token")? } else { answer };
            let c = rxd::api::InitCluster { cluster_token: text.clone(), enabled: true, ..Default::default() };
            let c = preseed::resolve_token(c).await?;
            (c.server_name, c.cluster_address, c.cluster_certificate, text)
        }
        None => {
            let name = p.string("What name should be used to identify this node in the cluster?", &hostname())?;
            let target = p.string("IP address or FQDN of an existing cluster member", "")?;
            let target = rxd::config::parse_address(&target, 8443)?;
            let certificate = fetch_certificate(&target).await?;
            let fingerprint = tls::fingerprint_pem(&certificate)?;
            println!("Cluster fingerprint: {fingerprint}");
            println!("You can validate this fingerprint by running \"lxc info\" locally on an existing cluster member.");
            match p.yes_no_value("Is this the correct fingerprint?", "fingerprint")? {
                Some(a) if a == "yes" || a == "y" || a == fingerprint => {}
                Some(_) => anyhow::bail!("Fingerprint mismatch"),
                None => anyhow::bail!("User aborted configuration"),
            }
            let password = p.password("Cluster trust password")?;
            (name, target, certificate, password)
        }
    };
    if !p.yes_no("All existing data is lost when joining a cluster, continue?", false)? {
        anyhow::bail!("User aborted configuration");
    }
    let target = preseed::setup_join_trust(&cluster_address, &certificate, &name, &password, &member).await?;
    let mut member_config = String::new();
    for key in &target.member_config {
        let value = p.optional(&format!("Choose {}", key.description))?;
        member_config.push_str(&format!(
            "  - entity: {}\n    name: {}\n    key: {}\n    value: {}\n",
            yaml_quote(&key.entity),
            yaml_quote(&key.name),
            yaml_quote(&key.key),
            yaml_quote(&value)
        ));
    }
    let mut text = format!(
        "cluster:\n  enabled: true\n  server_name: {}\n  server_address: {}\n  cluster_address: {}\n  cluster_certificate: {}\n  cluster_password: \"\"\n",
        yaml_quote(&name),
        yaml_quote(address),
        yaml_quote(&target.address),
        yaml_quote(&target.certificate)
    );
    if !member_config.is_empty() {
        text.push_str("  member_config:\n");
        text.push_str(&member_config);
    }
    Ok(text)
}

/// The storage questions; returns the `storage_pools:` and `profiles:` sections.
fn storage_questions(p: &mut Prompter, question: &str) -> anyhow::Result<(String, String)> {
    if !p.yes_no(question, true)? {
        return Ok((String::new(), String::new()));
    }
    let name = p.string("Name of the new storage pool", "default")?;
    loop {
        let driver = p.string("Name of the storage backend to use (dir)", "dir")?;
        if driver == "dir" {
            break;
        }
        println!("Invalid input: \"{driver}\" is not supported (supported: dir), try again.\n");
    }
    Ok((
        format!("storage_pools:\n- name: {}\n  driver: dir\n", yaml_quote(&name)),
        format!(
            "profiles:\n- name: default\n  devices:\n    root:\n      path: /\n      pool: {}\n      type: disk\n",
            yaml_quote(&name)
        ),
    ))
}

fn network_questions(p: &mut Prompter) -> anyhow::Result<()> {
    if p.yes_no("Would you like to configure LXD to use an existing bridge or host interface?", false)? {
        println!("Managed networks are not supported by this rxd release yet; no network was configured.");
    }
    Ok(())
}

fn images_question(p: &mut Prompter, config: &mut String) -> anyhow::Result<()> {
    if !p.yes_no("Would you like stale cached images to be updated automatically?", true)? {
        config.push_str("  images.auto_update_interval: \"0\"\n");
    }
    Ok(())
}

fn standalone_questions(p: &mut Prompter) -> anyhow::Result<String> {
    let mut config = String::from("config:\n");
    let (storage, profiles) = storage_questions(p, "Do you want to configure a new storage pool?")?;
    network_questions(p)?;
    if p.yes_no("Would you like the LXD server to be available over the network?", false)? {
        let address = p.string("Address to bind LXD to (not including port)", "all")?;
        let port = p.string("Port to bind LXD to", "8443")?;
        let host = if address == "all" { String::new() } else { address };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        config.push_str(&format!("  core.https_address: {}\n", yaml_quote(&format!("{host}:{port}"))));
        let pw = p.password("Trust password for new clients")?;
        if !pw.is_empty() {
            config.push_str(&format!("  core.trust_password: {}\n", yaml_quote(&pw)));
        }
    }
    images_question(p, &mut config)?;
    if config == "config:\n" {
        config = "config: {}\n".into();
    }
    Ok(format!("{config}{storage}{profiles}"))
}
