//! Test harness: runs the real `rxd` binary as daemons (each with its own LXD_DIR and loopback
//! address) and as clients (ours and the stock LXD `lxc`). Every wait is bounded and every
//! process is killed by PID when its guard drops.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const STOCK_LXC: &str = "/usr/bin/lxc";

/// A directory with `lxd` and `lxc` symlinks to the binary under test.
pub fn bin_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bin");
    std::fs::create_dir_all(&dir).expect("create bin dir");
    for name in ["lxd", "lxc"] {
        let link = dir.join(name);
        let target = Path::new(env!("CARGO_BIN_EXE_rxd"));
        if std::fs::read_link(&link).ok().as_deref() != Some(target) {
            // Tests in parallel (threads or nextest processes) may race to create it: write a
            // private link and rename it into place atomically.
            let tmp = dir.join(format!(".{name}.{}.{:?}", std::process::id(), std::thread::current().id()));
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(target, &tmp).expect("symlink");
            std::fs::rename(&tmp, &link).expect("rename symlink");
        }
    }
    dir
}

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A loopback address no other test of this process uses: 127.<a>.<b>.<c>.
pub fn unique_ip() -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    format!("127.{}.{}.{}", 10 + (pid % 200), (pid / 200) % 250, n)
}

/// Runs a command to completion within `timeout`, killing it (by PID) if it overruns.
pub fn run_timeout(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    use std::io::Write;
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(data) = stdin {
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(data).expect("write stdin");
    }
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "command timed out after {timeout:?}: {cmd:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A child process killed on drop.
pub struct Guard(pub Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One daemon with its own directory.
pub struct Member {
    pub dir: tempfile::TempDir,
    pub conf: tempfile::TempDir,
    pub ip: String,
    pub daemon: Guard,
    /// Extra environment for the daemon process.
    pub env: Vec<(String, String)>,
}

impl Member {
    /// Starts a daemon and waits until it is ready.
    pub fn start() -> Member {
        Member::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Member {
        let dir = tempfile::Builder::new().prefix("rxd-test-").tempdir().expect("tempdir");
        let conf = tempfile::Builder::new().prefix("rxd-conf-").tempdir().expect("tempdir");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut m = Member { dir, conf, ip: unique_ip(), daemon: Guard(None), env };
        m.spawn();
        m
    }

    pub fn lxd_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn address(&self) -> String {
        format!("{}:8443", self.ip)
    }

    pub fn spawn(&mut self) {
        self.spawn_no_wait();
        let out = self.lxd(&["waitready", "--timeout", "20"]);
        assert!(out.status.success(), "daemon not ready: {}\nlog:\n{}", stderr(&out), self.log());
    }

    /// Starts the daemon without waiting for it (for daemons expected to refuse to start).
    pub fn spawn_no_wait(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).expect("log");
        let child = Command::new(bin_dir().join("lxd"))
            .arg("--debug")
            .env("LXD_DIR", self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        self.daemon = Guard(Some(child));
    }

    pub fn pid(&self) -> u32 {
        self.daemon.0.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Waits (bounded) for the daemon process to exit; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        let child = self.daemon.0.as_mut()?;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.daemon.0 = None;
                return Some(st);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("LXD_DIR", self.dir.path()).env("LXD_CONF", self.conf.path()).env("HOME", self.conf.path());
    }

    pub fn lxd(&self, args: &[&str]) -> Output {
        self.lxd_stdin(args, None)
    }

    pub fn lxd_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(bin_dir().join("lxd"));
        cmd.args(args);
        self.env(&mut cmd);
        run_timeout(cmd, stdin.map(str::as_bytes), Duration::from_secs(30))
    }

    /// Our `lxc`, pointed at this member's socket and its own client config.
    pub fn lxc(&self, args: &[&str]) -> Output {
        self.client(&bin_dir().join("lxc"), args, None)
    }

    /// The stock LXD 5.0 `lxc`.
    pub fn stock(&self, args: &[&str]) -> Output {
        self.client(Path::new(STOCK_LXC), args, None)
    }

    pub fn client(&self, program: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        assert!(program.exists(), "{} is missing (install the lxd-client package)", program.display());
        let mut cmd = Command::new(program);
        cmd.args(args);
        self.env(&mut cmd);
        run_timeout(cmd, stdin.map(str::as_bytes), Duration::from_secs(30))
    }

    pub fn conn(&self) -> rxd::client::Connection {
        rxd::client::Connection::unix(self.dir.path().join("unix.socket"))
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "command failed ({:?})\nstdout: {}\nstderr: {}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

/// Asserts failure and returns stderr.
#[track_caller]
pub fn fails(o: Output) -> String {
    assert!(!o.status.success(), "command unexpectedly succeeded\nstdout: {}", stdout(&o));
    stderr(&o)
}

/// Both clients, for tests that run the same flow through each.
pub fn clients() -> Vec<PathBuf> {
    vec![bin_dir().join("lxc"), PathBuf::from(STOCK_LXC)]
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Members formed into a cluster by preseed: node1 bootstraps, the others join with the trust
/// password.
pub struct TestCluster {
    pub members: Vec<Member>,
    pub env: Vec<(String, String)>,
}

impl TestCluster {
    pub fn form(n: usize) -> TestCluster {
        TestCluster::form_with(n, &[])
    }

    /// Forms a cluster whose daemons all run with `env`.
    pub fn form_with(n: usize, env: &[(&str, &str)]) -> TestCluster {
        let first = Member::start_with(env);
        let preseed = format!(
            "config:\n  core.https_address: {}\n  core.trust_password: sekret\n\
             storage_pools:\n- name: default\n  driver: dir\n\
             profiles:\n- name: default\n  devices:\n    root: {{path: /, pool: default, type: disk}}\n\
             cluster:\n  server_name: node1\n  enabled: true\n",
            first.address()
        );
        ok(first.lxd_stdin(&["init", "--preseed"], Some(&preseed)));
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut c = TestCluster { members: vec![first], env };
        for i in 2..=n {
            c.join(&format!("node{i}"));
        }
        c
    }

    /// Starts a new member and joins it; returns its index.
    pub fn join(&mut self, name: &str) -> usize {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let m = Member::start_with(&env);
        let out = m.lxd_stdin(&["init", "--preseed"], Some(&self.join_preseed(name, &m.address(), "sekret")));
        assert!(out.status.success(), "join {name}: {}\n{}", stderr(&out), m.log());
        self.members.push(m);
        self.members.len() - 1
    }

    pub fn join_preseed(&self, name: &str, address: &str, password: &str) -> String {
        let cert = std::fs::read_to_string(self.members[0].lxd_dir().join("cluster.crt")).expect("cluster.crt");
        let cert = cert.trim_end().replace('\n', "\\n");
        format!(
            "cluster:\n  enabled: true\n  server_name: {name}\n  server_address: {address}\n  cluster_address: {}\n  cluster_certificate: \"{cert}\"\n  cluster_password: {password}\n  member_config:\n  - entity: storage-pool\n    name: default\n    key: source\n    value: \"\"\n",
            self.members[0].address()
        )
    }

    /// Index of the member currently holding the `database-leader` role (asked of `via`).
    pub fn leader(&self, via: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = self.members[via].lxc(&["cluster", "list", "--format", "csv"]);
            if out.status.success() {
                let text = stdout(&out);
                if let Some(line) = text.lines().find(|l| l.contains("database-leader")) {
                    let name = line.split(',').next().unwrap_or_default();
                    let idx: usize = name.trim_start_matches("node").parse().unwrap_or(1);
                    return idx - 1;
                }
            }
            assert!(Instant::now() < deadline, "no leader visible from member {via}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Polls `check` until it returns Some or `timeout` passes (then panics with `what`).
#[track_caller]
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One member's row of `lxc cluster list --format csv`: (roles, state, message).
pub fn member_row(list_csv: &str, name: &str) -> Option<(String, String, String)> {
    let prefix = format!("{name},");
    let line = list_csv.lines().find(|l| l.starts_with(&prefix))?;
    let f = csv_fields(line);
    Some((f.get(2)?.clone(), f.get(6)?.clone(), f.get(7..)?.join(",")))
}

/// Splits one CSV line (Go's quoting: fields with commas or quotes are quoted).
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().expect("field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().expect("field").push(c),
        }
    }
    out
}

impl TestCluster {
    /// `lxc cluster list --format csv` as member `via` answers it.
    pub fn list(&self, via: usize) -> String {
        ok(self.members[via].lxc(&["cluster", "list", "--format", "csv"]))
    }

    /// Roles of member `name` as `via` sees them (empty when not listed).
    pub fn roles(&self, via: usize, name: &str) -> String {
        member_row(&self.list(via), name).map(|r| r.0).unwrap_or_default()
    }

    /// Index of the member called `name`.
    pub fn index(&self, name: &str) -> usize {
        name.trim_start_matches("node").parse::<usize>().expect("nodeN") - 1
    }
}

/// A preseed that joins with a token (name and cluster address come from the token).
pub fn token_preseed(address: &str, token: &str) -> String {
    format!("cluster:\n  enabled: true\n  server_address: {address}\n  cluster_token: {token}\n")
}

/// The token printed by `lxc cluster add` (the line after "Member <name> join token:").
pub fn token_of(add_output: &str) -> String {
    add_output.lines().nth(1).expect("token line").trim().to_string()
}

/// A process on a pseudo-terminal, driven like `expect`.
pub struct Pty {
    child: Guard,
    master: std::fs::File,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
    consumed: usize,
}

impl Pty {
    pub fn spawn(mut cmd: Command) -> Pty {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let io = || Stdio::from(pty.slave.try_clone().expect("dup pty"));
        cmd.stdin(io()).stdout(io()).stderr(io());
        let child = cmd.spawn().expect("spawn on pty");
        drop(pty.slave);
        let master = std::fs::File::from(pty.master);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut reader = master.try_clone().expect("clone pty");
        let sink = seen.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("pty buffer").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pty { child: Guard(Some(child)), master, seen, consumed: 0 }
    }

    /// Waits (bounded) until `text` appears after what earlier calls matched.
    #[track_caller]
    pub fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let seen = self.seen.lock().expect("pty buffer");
                if let Some(at) = seen[self.consumed..].find(text) {
                    self.consumed += at + text.len();
                    return;
                }
                assert!(Instant::now() < deadline, "pty: waited for {text:?}; output so far:\n{}", &*seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn send(&mut self, line: &str) {
        use std::io::Write;
        self.master.write_all(format!("{line}\n").as_bytes()).expect("write pty");
    }

    /// Answers `question` with `answer`.
    #[track_caller]
    pub fn answer(&mut self, question: &str, answer: &str) {
        self.expect(question);
        self.send(answer);
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.seen.lock().expect("pty buffer").clone()
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        let child = self.child.0.as_mut().expect("child");
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                self.child.0 = None;
                return st;
            }
            assert!(Instant::now() < deadline, "pty process did not exit; output:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Member {
    /// `lxd init` on a pseudo-terminal, for the interactive questions.
    pub fn init_on_pty(&self) -> Pty {
        let mut cmd = Command::new(bin_dir().join("lxd"));
        cmd.arg("init");
        self.env(&mut cmd);
        Pty::spawn(cmd)
    }
}

/// The busybox test image (a unified tarball built once by scripts/build-busybox-image.sh and
/// shared by every test process).
pub fn test_image() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("busybox.tar.gz");
    if path.exists() {
        return path;
    }
    let tmp = path.with_extension(format!("{}.partial.tar.gz", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-busybox-image.sh");
    let out = Command::new("bash").arg(&script).arg(&tmp).output().expect("run build-busybox-image.sh");
    assert!(out.status.success(), "building the test image: {}", String::from_utf8_lossy(&out.stderr));
    // Another process may have finished first: keep whichever landed (same content either way).
    if !path.exists() {
        std::fs::rename(&tmp, &path).expect("place test image");
    } else {
        let _ = std::fs::remove_file(&tmp);
    }
    path
}

/// The host pid of a container's init, if it runs.
pub fn init_pid(m: &Member, name: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(m.lxd_dir().join("run").join(name).join("init.pid")).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

impl Drop for Member {
    /// Containers outlive their daemon by design; a test's containers end with the test.
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("run")) else { return };
        for e in entries.flatten() {
            if let Some(pid) = std::fs::read_to_string(e.path().join("init.pid")).ok().and_then(|p| p.trim().parse::<i32>().ok())
            {
                // SAFETY: kill(2) on a pid this test's daemon started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}
