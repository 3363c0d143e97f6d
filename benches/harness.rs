//! Side-by-side benchmark: rxd against LXD 5.0.2 (Debian package `lxd`) on the same machine,
//! the same topology and the same clients. Prints each figure and the ratio LXD / rxd (for
//! times and memory, > 1 means rxd is better; for throughput the ratio is rxd / LXD).
//!
//! Run: `cargo bench --bench harness -- [--lxd /usr/bin/lxd] [--runs N] [--seconds S]
//! [--failovers N] [--only single|cluster|members|instances] [--sizes 3,20] [--idle S]
//! [--list-sizes 30,300]`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Opts {
    lxd: PathBuf,
    runs: usize,
    seconds: f64,
    failovers: usize,
    single: bool,
    cluster: bool,
    members: bool,
    /// Cluster sizes for the membership figures.
    sizes: Vec<usize>,
    /// Idle window for the CPU figure, seconds.
    idle: f64,
    instances: bool,
    /// Instance counts for the `lxc list` figures.
    list_sizes: Vec<usize>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        lxd: PathBuf::from("/usr/bin/lxd"),
        runs: 10,
        seconds: 3.0,
        failovers: 5,
        single: true,
        cluster: true,
        members: true,
        sizes: vec![3, 20],
        idle: 20.0,
        instances: true,
        list_sizes: vec![30, 300],
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--lxd" => o.lxd = PathBuf::from(args.get(i + 1).cloned().unwrap_or_default()),
            "--runs" => o.runs = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(o.runs),
            "--seconds" => o.seconds = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(o.seconds),
            "--failovers" => o.failovers = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(o.failovers),
            "--only" => {
                let what = args.get(i + 1).cloned().unwrap_or_default();
                o.single = what == "single";
                o.cluster = what == "cluster";
                o.members = what == "members";
                o.instances = what == "instances";
            }
            "--list-sizes" => {
                o.list_sizes = args.get(i + 1).map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect()).unwrap_or_default()
            }
            "--sizes" => {
                o.sizes = args.get(i + 1).map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect()).unwrap_or_default()
            }
            "--idle" => o.idle = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(o.idle),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// One system under test: how to start its daemon and which tools talk to it.
struct System {
    name: &'static str,
    daemon: PathBuf,
}

struct Running {
    child: Option<Child>,
    dir: tempfile::TempDir,
    daemon: PathBuf,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }
}

/// Asks a daemon to shut down, then makes sure (by PID) that it is gone.
fn stop_daemon(daemon: &Path, dir: &Path, child: Option<Child>) {
    let _ = Command::new(daemon)
        .args(["shutdown", "--timeout", "20"])
        .env("LXD_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Some(mut c) = child {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        stop_daemon(&self.daemon, self.dir.path(), self.child.take());
    }
}

fn start(sys: &System) -> (Running, Duration) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("rxd-bench-").tempdir().expect("tempdir");
    let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711));
    let t0 = Instant::now();
    let child = Command::new(&sys.daemon)
        .args(["--group", "root"])
        .env("LXD_DIR", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn daemon");
    let running = Running { child: Some(child), dir, daemon: sys.daemon.clone() };
    let ok = Command::new(&sys.daemon)
        .args(["waitready", "--timeout", "60"])
        .env("LXD_DIR", running.dir.path())
        .status()
        .expect("waitready")
        .success();
    assert!(ok, "{} did not become ready", sys.name);
    (running, t0.elapsed())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// A request a load client sends: (method, path, body) for client `c`, iteration `i`.
type MakeRequest = fn(usize, u64) -> (&'static str, &'static str, Option<Vec<u8>>);

/// `clients` concurrent clients sending requests over the unix socket for `seconds`, one new
/// connection per request as LXD's client does; returns requests/s (2xx only), p50 and p99.
fn load(socket: &Path, clients: usize, seconds: f64, make: MakeRequest) -> (f64, f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for c in 0..clients {
            let conn = rxd::client::Connection::unix(socket.to_path_buf());
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (method, path, body) = make(c, i);
                    let t = Instant::now();
                    if let Ok((200..=299, _, _)) = conn.raw(method, path, body, &[]).await {
                        lat.push(t.elapsed().as_secs_f64());
                    }
                    i += 1;
                }
                lat
            }));
        }
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap_or_default());
        }
        all.sort_by(|a, b| a.total_cmp(b));
        let p = |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0.0);
        (all.len() as f64 / seconds, p(0.5), p(0.99))
    })
}

fn get_server(_: usize, _: u64) -> (&'static str, &'static str, Option<Vec<u8>>) {
    ("GET", "/1.0", None)
}

fn patch_profile(c: usize, i: u64) -> (&'static str, &'static str, Option<Vec<u8>>) {
    ("PATCH", "/1.0/profiles/default", Some(format!("{{\"config\":{{\"user.bench{c}\":\"{i}\"}}}}").into_bytes()))
}

/// Gives the default profile exactly `keys` config keys, so that `lxc profile set` is timed on
/// the same profile everywhere: a server that lost concurrent PATCHes in the load before (LXD
/// does not, rxd before its ETag guard did) would otherwise rewrite a smaller profile.
fn reset_profile_config(socket: &Path, keys: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let conn = rxd::client::Connection::unix(socket.to_path_buf());
    rt.block_on(async {
        let current: serde_json::Value = conn.get_json("/1.0/profiles/default").await.expect("the default profile");
        let config: serde_json::Map<String, serde_json::Value> =
            (0..keys).map(|i| (format!("user.bench{i}"), serde_json::Value::String("x".into()))).collect();
        let put = serde_json::json!({"config": config, "description": current["description"], "devices": current["devices"]});
        let reply = conn.raw("PUT", "/1.0/profiles/default", Some(put.to_string().into_bytes()), &[]).await;
        assert!(matches!(reply, Ok((200, _, _))), "resetting the default profile failed: {reply:?}");
    });
}

/// Runs a client command once; its wall time if it succeeded.
fn timed_run(program: &Path, args: &[&str], lxd_dir: &Path, conf: &Path) -> Option<f64> {
    let t = Instant::now();
    let ok = Command::new(program)
        .args(args)
        .env("LXD_DIR", lxd_dir)
        .env("LXD_CONF", conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| t.elapsed().as_secs_f64())
}

/// Median wall time of `runs` successful runs of a client command.
fn time_command(program: &Path, args: &[&str], lxd_dir: &Path, conf: &Path, runs: usize) -> f64 {
    let mut v: Vec<f64> = (0..runs).filter_map(|_| timed_run(program, args, lxd_dir, conf)).collect();
    median(&mut v)
}

#[derive(Default)]
struct Figures {
    start_ready: f64,
    idle_rss_mib: f64,
    rps1: f64,
    p50_1: f64,
    rps16: f64,
    p50_16: f64,
    info_ours: f64,
    info_stock: f64,
}

fn measure(sys: &System, opts: &Opts, our_lxc: &Path) -> Figures {
    let mut f = Figures::default();
    let mut starts = Vec::new();
    for _ in 0..opts.runs {
        let (running, took) = start(sys);
        starts.push(took.as_secs_f64());
        drop(running);
    }
    f.start_ready = median(&mut starts);
    let (running, _) = start(sys);
    std::thread::sleep(Duration::from_secs(3));
    f.idle_rss_mib = rss_kib(running.pid()) as f64 / 1024.0;
    let socket = running.dir.path().join("unix.socket");
    (f.rps1, f.p50_1, _) = load(&socket, 1, opts.seconds, get_server);
    (f.rps16, f.p50_16, _) = load(&socket, 16, opts.seconds, get_server);
    let conf = tempfile::tempdir().expect("conf");
    f.info_ours = time_command(our_lxc, &["info"], running.dir.path(), conf.path(), 20);
    let stock = Path::new("/usr/bin/lxc");
    if stock.exists() {
        f.info_stock = time_command(stock, &["info"], running.dir.path(), conf.path(), 20);
    }
    f
}

/// A 3-member cluster of one system, formed by preseed on 127.0.0.<base+i>.
struct ClusterRun {
    members: Vec<Member>,
    daemon: PathBuf,
}

struct Member {
    child: Option<Child>,
    dir: tempfile::TempDir,
    address: String,
}

impl Member {
    fn socket(&self) -> PathBuf {
        self.dir.path().join("unix.socket")
    }
}

fn spawn_daemon(daemon: &Path, dir: &Path) -> Child {
    Command::new(daemon)
        .args(["--group", "root"])
        .env("LXD_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn daemon")
}

fn waitready(daemon: &Path, dir: &Path) {
    let ok = Command::new(daemon)
        .args(["waitready", "--timeout", "60"])
        .env("LXD_DIR", dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "daemon in {} not ready", dir.display());
}

fn preseed(daemon: &Path, dir: &Path, text: &str) -> Duration {
    use std::io::Write;
    let t = Instant::now();
    let mut child = Command::new(daemon)
        .args(["init", "--preseed"])
        .env("LXD_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("init");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    assert!(child.wait().expect("wait").success(), "preseed failed in {}", dir.display());
    t.elapsed()
}

impl ClusterRun {
    /// Forms the cluster; returns it with the bootstrap and join times.
    fn form(daemon: &Path, base: u8) -> (ClusterRun, Vec<Duration>) {
        ClusterRun::form_n(daemon, base, 3)
    }

    fn form_n(daemon: &Path, base: u8, n: u8) -> (ClusterRun, Vec<Duration>) {
        use std::os::unix::fs::PermissionsExt;
        // Members go into the run as soon as they start, so a failure stops them all.
        let mut run = ClusterRun { members: Vec::new(), daemon: daemon.to_path_buf() };
        let mut times = Vec::new();
        for i in 1..=n {
            let dir = tempfile::Builder::new().prefix("rxd-bench-cluster-").tempdir().expect("tempdir");
            let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711));
            let child = spawn_daemon(daemon, dir.path());
            let address = format!("127.0.0.{}:8443", base + i);
            run.members.push(Member { child: Some(child), dir, address: address.clone() });
            let dir = run.members[run.members.len() - 1].dir.path().to_path_buf();
            waitready(daemon, &dir);
            let text = if i == 1 {
                format!(
                    "config:\n  core.https_address: {address}\n  core.trust_password: sekret\n  images.auto_update_interval: 0\nstorage_pools:\n- name: default\n  driver: dir\nprofiles:\n- name: default\n  devices:\n    root: {{path: /, pool: default, type: disk}}\ncluster:\n  server_name: node1\n  enabled: true\n"
                )
            } else {
                let first: &Member = &run.members[0];
                let cert = std::fs::read_to_string(first.dir.path().join("cluster.crt")).expect("cluster.crt");
                let cert = cert.trim_end().replace('\n', "\\n");
                format!(
                    "cluster:\n  enabled: true\n  server_name: node{i}\n  server_address: {address}\n  cluster_address: {}\n  cluster_certificate: \"{cert}\"\n  cluster_password: sekret\n  member_config:\n  - entity: storage-pool\n    name: default\n    key: source\n    value: \"\"\n",
                    first.address
                )
            };
            times.push(preseed(daemon, &dir, &text));
        }
        (run, times)
    }

    fn leader(&self, via: usize) -> Option<usize> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        let conn = rxd::client::Connection::unix(self.members[via].socket());
        let members: serde_json::Value = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), conn.get_json("/1.0/cluster/members?recursion=1")).await
            })
            .ok()?
            .ok()?;
        let name = members
            .as_array()?
            .iter()
            .find(|m| m["roles"].as_array().is_some_and(|r| r.iter().any(|x| x == "database-leader")))?["server_name"]
            .as_str()?
            .to_string();
        name.trim_start_matches("node").parse::<usize>().ok().map(|n| n - 1)
    }
}

impl Drop for ClusterRun {
    fn drop(&mut self) {
        for m in &mut self.members {
            stop_daemon(&self.daemon, m.dir.path(), m.child.take());
        }
    }
}

#[derive(Default)]
struct ClusterFigures {
    bootstrap: f64,
    join2: f64,
    join3: f64,
    api_p50: f64,
    api_p99: f64,
    cli_p50: f64,
    w1: f64,
    w8: f64,
    w64: f64,
    failover: f64,
    rss: f64,
    cluster_list: f64,
}

fn measure_cluster(daemon: &Path, base: u8, opts: &Opts) -> ClusterFigures {
    let mut f = ClusterFigures::default();
    let (mut c, times) = ClusterRun::form(daemon, base);
    f.bootstrap = times[0].as_secs_f64();
    f.join2 = times[1].as_secs_f64();
    f.join3 = times[2].as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    f.rss = c.members.iter().filter_map(|m| m.child.as_ref()).map(|ch| rss_kib(ch.id()) as f64 / 1024.0).sum::<f64>() / 3.0;
    let leader = c.leader(0).unwrap_or(0);
    let socket = c.members[leader].socket();
    let (w1, p50, p99) = load(&socket, 1, opts.seconds, patch_profile);
    f.w1 = w1;
    f.api_p50 = p50;
    f.api_p99 = p99;
    f.w8 = load(&socket, 8, opts.seconds, patch_profile).0;
    f.w64 = load(&socket, 64, opts.seconds, patch_profile).0;
    reset_profile_config(&socket, 64);
    let conf = tempfile::tempdir().expect("conf");
    let stock = Path::new("/usr/bin/lxc");
    if stock.exists() {
        let dir = c.members[leader].dir.path();
        let mut v: Vec<f64> = (0..30)
            .filter_map(|i| timed_run(stock, &["profile", "set", "default", "user.k", &format!("v{i}")], dir, conf.path()))
            .collect();
        f.cli_p50 = median(&mut v);
        f.cluster_list = time_command(stock, &["cluster", "list"], c.members[leader].dir.path(), conf.path(), 20);
    }
    // Leader SIGKILL to the next successful write through a survivor, several times.
    let mut fails = Vec::new();
    for _ in 0..opts.failovers {
        let Some(leader) = c.leader(0).or_else(|| c.leader(1)) else { break };
        let survivor = (0..3).find(|i| *i != leader).unwrap_or(0);
        let pid = c.members[leader].child.as_ref().map(Child::id).unwrap_or(0);
        let t = Instant::now();
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        if let Some(mut ch) = c.members[leader].child.take() {
            let _ = ch.wait();
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let conn = rxd::client::Connection::unix(c.members[survivor].socket());
        let mut done = false;
        while t.elapsed() < Duration::from_secs(60) {
            let body = br#"{"config":{"user.failover":"x"}}"#.to_vec();
            if let Ok(Ok((200, _, _))) = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), conn.raw("PATCH", "/1.0/profiles/default", Some(body), &[])).await
            }) {
                done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if done {
            fails.push(t.elapsed().as_secs_f64());
        }
        // Bring the killed member back and let it settle.
        let dir = c.members[leader].dir.path().to_path_buf();
        c.members[leader].child = Some(spawn_daemon(daemon, &dir));
        waitready(daemon, &dir);
        std::thread::sleep(Duration::from_secs(3));
    }
    f.failover = median(&mut fails);
    f
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

#[derive(Default)]
struct MembershipFigures {
    join_mean: f64,
    join_max: f64,
    idle_cpu_pct: f64,
    rss: f64,
    list_p50: f64,
    list_after_kill: f64,
    offline_after_kill: f64,
}

/// Forms `n` members, then: joins, idle CPU and RSS per member, `lxc cluster list`, and after a
/// leader SIGKILL the time until a survivor's `lxc cluster list` answers and until it shows the
/// dead member OFFLINE (threshold 11 s on both systems).
fn measure_membership(daemon: &Path, base: u8, n: u8, opts: &Opts) -> MembershipFigures {
    let mut f = MembershipFigures::default();
    let (mut c, times) = ClusterRun::form_n(daemon, base, n);
    let joins: Vec<f64> = times.iter().skip(1).map(Duration::as_secs_f64).collect();
    f.join_mean = joins.iter().sum::<f64>() / joins.len().max(1) as f64;
    f.join_max = joins.iter().copied().fold(0.0, f64::max);
    let conf = tempfile::tempdir().expect("conf");
    let stock = Path::new("/usr/bin/lxc");
    let _ = Command::new(stock)
        .args(["config", "set", "cluster.offline_threshold", "11"])
        .env("LXD_DIR", c.members[0].dir.path())
        .env("LXD_CONF", conf.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    std::thread::sleep(Duration::from_secs(5));
    let pids: Vec<u32> = c.members.iter().filter_map(|m| m.child.as_ref().map(Child::id)).collect();
    let before: Vec<f64> = pids.iter().map(|p| cpu_seconds(*p)).collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(opts.idle));
    let elapsed = t.elapsed().as_secs_f64();
    let used: f64 = pids.iter().zip(before).map(|(p, b)| cpu_seconds(*p) - b).sum();
    f.idle_cpu_pct = 100.0 * used / elapsed / pids.len() as f64;
    f.rss = pids.iter().map(|p| rss_kib(*p) as f64 / 1024.0).sum::<f64>() / pids.len() as f64;
    let leader = c.leader(0).unwrap_or(0);
    let survivor = (0..c.members.len()).find(|i| *i != leader).unwrap_or(1);
    let survivor_dir = c.members[survivor].dir.path().to_path_buf();
    f.list_p50 = time_command(stock, &["cluster", "list"], &survivor_dir, conf.path(), 10);
    let pid = c.members[leader].child.as_ref().map(Child::id).unwrap_or(0);
    let dead = format!("node{},", leader + 1);
    let t = Instant::now();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    if let Some(mut ch) = c.members[leader].child.take() {
        let _ = ch.wait();
    }
    while t.elapsed() < Duration::from_secs(120) {
        let out = Command::new(stock)
            .args(["cluster", "list", "--format", "csv"])
            .env("LXD_DIR", &survivor_dir)
            .env("LXD_CONF", conf.path())
            .output();
        if let Ok(out) = out
            && out.status.success()
        {
            if f.list_after_kill == 0.0 {
                f.list_after_kill = t.elapsed().as_secs_f64();
            }
            let text = String::from_utf8_lossy(&out.stdout);
            if text.lines().any(|l| l.starts_with(&dead) && l.contains("OFFLINE")) {
                f.offline_after_kill = t.elapsed().as_secs_f64();
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f
}

/// LXD's built-in image refresh must stay on loopback.
#[derive(Default)]
struct InstanceFigures {
    import: f64,
    launch: f64,
    init: f64,
    start: f64,
    stop_clean: f64,
    stop_forced: f64,
    exec_local: f64,
    exec_forwarded: f64,
    delete: f64,
    /// (instances, `lxc list` median) per size.
    lists: Vec<(usize, f64)>,
    rss_after: f64,
}

/// Median of one timed command per name (`args` gets the name through `{}`).
fn per_instance(stock: &Path, dir: &Path, conf: &Path, names: &[String], args: &[&str]) -> f64 {
    let mut v: Vec<f64> = names
        .iter()
        .filter_map(|n| {
            let a: Vec<String> = args.iter().map(|x| x.replace("{}", n)).collect();
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            timed_run(stock, &refs, dir, conf)
        })
        .collect();
    median(&mut v)
}

/// Container life cycle on a 3-member cluster with the stock client, every command sent to
/// node1 and the instances on node2 (as the anchor figures were taken).
fn measure_instances(daemon: &Path, base: u8, opts: &Opts, image: &Path) -> InstanceFigures {
    let mut f = InstanceFigures::default();
    let (c, _) = ClusterRun::form(daemon, base);
    let stock = Path::new("/usr/bin/lxc");
    let conf = tempfile::tempdir().expect("conf");
    let n1 = c.members[0].dir.path();
    let n2 = c.members[1].dir.path();
    let image = image.to_str().expect("image path");
    f.import = timed_run(stock, &["image", "import", image, "--alias", "testimage"], n1, conf.path()).unwrap_or(0.0);
    let runs = opts.runs.max(3);
    let names: Vec<String> = (0..runs).map(|i| format!("lc{i}")).collect();
    f.launch = per_instance(stock, n1, conf.path(), &names, &["launch", "testimage", "{}", "--target", "node2"]);
    let mut v: Vec<f64> =
        (0..30).filter_map(|i| timed_run(stock, &["exec", &names[i % names.len()], "--", "true"], n2, conf.path())).collect();
    f.exec_local = median(&mut v);
    let mut v: Vec<f64> =
        (0..30).filter_map(|i| timed_run(stock, &["exec", &names[i % names.len()], "--", "true"], n1, conf.path())).collect();
    f.exec_forwarded = median(&mut v);
    f.stop_clean = per_instance(stock, n1, conf.path(), &names[..3], &["stop", "{}"]);
    f.start = per_instance(stock, n1, conf.path(), &names, &["start", "{}"]);
    f.stop_forced = per_instance(stock, n1, conf.path(), &names, &["stop", "--force", "{}"]);
    f.delete = per_instance(stock, n1, conf.path(), &names, &["delete", "{}"]);
    let inits: Vec<String> = (0..runs).map(|i| format!("li{i}")).collect();
    f.init = per_instance(stock, n1, conf.path(), &inits, &["init", "testimage", "{}", "--target", "node3"]);
    let mut made = inits.len();
    for &size in &opts.list_sizes {
        while made < size {
            let member = format!("node{}", made % 3 + 1);
            let _ = timed_run(stock, &["init", "testimage", &format!("ls{made}"), "--target", &member], n1, conf.path());
            made += 1;
        }
        f.lists.push((size, time_command(stock, &["list"], n1, conf.path(), 10)));
    }
    f.rss_after = c.members.iter().filter_map(|m| m.child.as_ref()).map(|ch| rss_kib(ch.id()) as f64 / 1024.0).sum::<f64>() / 3.0;
    f
}

fn ensure_hosts_mapping() {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if !hosts.contains("images.linuxcontainers.org") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open("/etc/hosts") {
            let _ = writeln!(f, "127.0.0.1 images.linuxcontainers.org");
        }
    }
}

fn row(label: &str, unit: &str, rxd: f64, lxd: Option<f64>, lower_is_better: bool) {
    let ratio = match lxd {
        Some(l) if rxd > 0.0 && l > 0.0 => {
            let r = if lower_is_better { l / rxd } else { rxd / l };
            format!("{r:.1}x")
        }
        _ => "-".into(),
    };
    let lxd = lxd.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
    println!("| {label:<44} | {unit:<6} | {rxd:>10.4} | {lxd:>10} | {ratio:>8} |");
}

fn header() {
    println!();
    println!("| {:<44} | {:<6} | {:>10} | {:>10} | {:>8} |", "figure", "unit", "rxd", "LXD 5.0.2", "ratio");
    println!("|{}|{}|{}|{}|{}|", "-".repeat(46), "-".repeat(8), "-".repeat(12), "-".repeat(12), "-".repeat(10));
}

fn main() {
    let opts = parse_opts();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rxd"));
    let links = tempfile::tempdir().expect("links");
    for name in ["lxd", "lxc"] {
        std::os::unix::fs::symlink(&bin, links.path().join(name)).expect("symlink");
    }
    let our_lxc = links.path().join("lxc");
    let rxd_daemon = links.path().join("lxd");
    let have_lxd = opts.lxd.exists();
    if have_lxd {
        ensure_hosts_mapping();
    } else {
        println!("{} not found: install the Debian package lxd for the comparison", opts.lxd.display());
    }
    if opts.single {
        let rxd_sys = System { name: "rxd", daemon: rxd_daemon.clone() };
        println!("one member: measuring rxd ({} start runs, {} s load windows)...", opts.runs, opts.seconds);
        let r = measure(&rxd_sys, &opts, &our_lxc);
        let l = have_lxd.then(|| {
            println!("one member: measuring LXD at {}...", opts.lxd.display());
            measure(&System { name: "lxd", daemon: opts.lxd.clone() }, &opts, &our_lxc)
        });
        header();
        row("daemon start to ready (median)", "s", r.start_ready, l.as_ref().map(|l| l.start_ready), true);
        row("idle RSS, one daemon", "MiB", r.idle_rss_mib, l.as_ref().map(|l| l.idle_rss_mib), true);
        row("GET /1.0 unix socket, 1 client", "req/s", r.rps1, l.as_ref().map(|l| l.rps1), false);
        row("GET /1.0 unix socket, 1 client, p50", "s", r.p50_1, l.as_ref().map(|l| l.p50_1), true);
        row("GET /1.0 unix socket, 16 clients", "req/s", r.rps16, l.as_ref().map(|l| l.rps16), false);
        row("GET /1.0 unix socket, 16 clients, p50", "s", r.p50_16, l.as_ref().map(|l| l.p50_16), true);
        row("`lxc info` wall time, our lxc (median)", "s", r.info_ours, l.as_ref().map(|l| l.info_ours), true);
        row("`lxc info` wall time, stock lxc (median)", "s", r.info_stock, l.as_ref().map(|l| l.info_stock), true);
    }
    if opts.cluster {
        println!("3 members: measuring rxd...");
        let r = measure_cluster(&rxd_daemon, 20, &opts);
        let l = have_lxd.then(|| {
            println!("3 members: measuring LXD...");
            measure_cluster(&opts.lxd, 10, &opts)
        });
        header();
        let lv = |f: fn(&ClusterFigures) -> f64| l.as_ref().map(f);
        row("bootstrap (lxd init --preseed)", "s", r.bootstrap, lv(|l| l.bootstrap), true);
        row("join, 2nd member", "s", r.join2, lv(|l| l.join2), true);
        row("join, 3rd member", "s", r.join3, lv(|l| l.join3), true);
        row("replicated write via API, 1 client, p50", "s", r.api_p50, lv(|l| l.api_p50), true);
        row("replicated write via API, 1 client, p99", "s", r.api_p99, lv(|l| l.api_p99), true);
        row("`lxc profile set` (stock lxc), p50", "s", r.cli_p50, lv(|l| l.cli_p50), true);
        row("writes/s, 1 API client", "w/s", r.w1, lv(|l| l.w1), false);
        row("writes/s, 8 API clients", "w/s", r.w8, lv(|l| l.w8), false);
        row("writes/s, 64 API clients", "w/s", r.w64, lv(|l| l.w64), false);
        row("leader SIGKILL to next write (median)", "s", r.failover, lv(|l| l.failover), true);
        row("idle RSS per member", "MiB", r.rss, lv(|l| l.rss), true);
        row("`lxc cluster list` (stock lxc), median", "s", r.cluster_list, lv(|l| l.cluster_list), true);
    }
    if opts.instances {
        let image = links.path().join("busybox.tar.gz");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-busybox-image.sh");
        let built = Command::new("bash").arg(script).arg(&image).stdout(Stdio::null()).status().is_ok_and(|s| s.success());
        assert!(built, "building the busybox image failed (apt-get install busybox-static)");
        println!("instances on 3 members: measuring rxd...");
        let r = measure_instances(&rxd_daemon, 40, &opts, &image);
        let l = have_lxd.then(|| {
            println!("instances on 3 members: measuring LXD...");
            measure_instances(&opts.lxd, 50, &opts, &image)
        });
        header();
        let lv = |f: fn(&InstanceFigures) -> f64| l.as_ref().map(f);
        row("`lxc image import` (1 MB busybox)", "s", r.import, lv(|l| l.import), true);
        row("`lxc launch --target node2` via node1", "s", r.launch, lv(|l| l.launch), true);
        row("`lxc init --target node3` via node1", "s", r.init, lv(|l| l.init), true);
        row("`lxc start` (stopped, on node2) via node1", "s", r.start, lv(|l| l.start), true);
        row("`lxc stop` clean via node1", "s", r.stop_clean, lv(|l| l.stop_clean), true);
        row("`lxc stop --force` via node1", "s", r.stop_forced, lv(|l| l.stop_forced), true);
        row("`lxc exec -- true` on the same member", "s", r.exec_local, lv(|l| l.exec_local), true);
        row("`lxc exec -- true` forwarded node1→node2", "s", r.exec_forwarded, lv(|l| l.exec_forwarded), true);
        row("`lxc delete` via node1", "s", r.delete, lv(|l| l.delete), true);
        for (i, (size, t)) in r.lists.iter().enumerate() {
            let lt = l.as_ref().and_then(|l| l.lists.get(i)).map(|x| x.1);
            row(&format!("`lxc list`, {size} instances on 3 members"), "s", *t, lt, true);
        }
        row("RSS per member after the workload", "MiB", r.rss_after, lv(|l| l.rss_after), true);
    }
    if opts.members {
        for &n in &opts.sizes {
            let n = n.clamp(2, 60) as u8;
            println!("{n} members: measuring rxd (idle window {} s)...", opts.idle);
            let r = measure_membership(&rxd_daemon, 100, n, &opts);
            let l = have_lxd.then(|| {
                println!("{n} members: measuring LXD...");
                measure_membership(&opts.lxd, 170, n, &opts)
            });
            header();
            let lv = |f: fn(&MembershipFigures) -> f64| l.as_ref().map(f);
            row(&format!("{n} members: join, mean"), "s", r.join_mean, lv(|l| l.join_mean), true);
            row(&format!("{n} members: join, slowest"), "s", r.join_max, lv(|l| l.join_max), true);
            row(&format!("{n} members: idle CPU per member"), "%core", r.idle_cpu_pct, lv(|l| l.idle_cpu_pct), true);
            row(&format!("{n} members: idle RSS per member"), "MiB", r.rss, lv(|l| l.rss), true);
            row(&format!("{n} members: `lxc cluster list` (stock), median"), "s", r.list_p50, lv(|l| l.list_p50), true);
            row(
                &format!("{n} members: leader SIGKILL to list answering"),
                "s",
                r.list_after_kill,
                lv(|l| l.list_after_kill),
                true,
            );
            row(
                &format!("{n} members: leader SIGKILL to shown OFFLINE"),
                "s",
                r.offline_after_kill,
                lv(|l| l.offline_after_kill),
                true,
            );
        }
    }
}
