//! Side-by-side benchmark: rxd against LXD 5.0.2 (Debian package `lxd`) on the same machine,
//! the same topology and the same clients. Prints each figure and the ratio LXD / rxd (for
//! times and memory, > 1 means rxd is better; for throughput the ratio is rxd / LXD).
//!
//! Run: `cargo bench --bench harness -- [--lxd /usr/bin/lxd] [--runs N] [--seconds S]`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Opts {
    lxd: PathBuf,
    runs: usize,
    seconds: f64,
}

fn parse_opts() -> Opts {
    let mut o = Opts { lxd: PathBuf::from("/usr/bin/lxd"), runs: 10, seconds: 3.0 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--lxd" => o.lxd = PathBuf::from(args.get(i + 1).cloned().unwrap_or_default()),
            "--runs" => o.runs = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(o.runs),
            "--seconds" => o.seconds = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(o.seconds),
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

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new(&self.daemon)
            .args(["shutdown", "--timeout", "20"])
            .env("LXD_DIR", self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut c) = self.child.take() {
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

/// GET /1.0 over the unix socket, one new connection per request as LXD's client does.
fn load(socket: &Path, clients: usize, seconds: f64) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let conn = rxd::client::Connection::unix(socket.to_path_buf());
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if conn.raw("GET", "/1.0", None, &[]).await.is_ok() {
                        lat.push(t.elapsed().as_secs_f64());
                    }
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
        let rps = all.len() as f64 / seconds;
        (rps, median(&mut all))
    })
}

fn time_command(program: &Path, args: &[&str], lxd_dir: &Path, conf: &Path, runs: usize) -> f64 {
    let mut v = Vec::new();
    for _ in 0..runs {
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
        if ok {
            v.push(t.elapsed().as_secs_f64());
        }
    }
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
    (f.rps1, f.p50_1) = load(&socket, 1, opts.seconds);
    (f.rps16, f.p50_16) = load(&socket, 16, opts.seconds);
    let conf = tempfile::tempdir().expect("conf");
    f.info_ours = time_command(our_lxc, &["info"], running.dir.path(), conf.path(), 20);
    let stock = Path::new("/usr/bin/lxc");
    if stock.exists() {
        f.info_stock = time_command(stock, &["info"], running.dir.path(), conf.path(), 20);
    }
    f
}

/// LXD's built-in image refresh must stay on loopback.
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

fn main() {
    let opts = parse_opts();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rxd"));
    let links = tempfile::tempdir().expect("links");
    for name in ["lxd", "lxc"] {
        std::os::unix::fs::symlink(&bin, links.path().join(name)).expect("symlink");
    }
    let our_lxc = links.path().join("lxc");
    let rxd_sys = System { name: "rxd", daemon: links.path().join("lxd") };
    println!("measuring rxd ({} start runs, {} s load windows)...", opts.runs, opts.seconds);
    let r = measure(&rxd_sys, &opts, &our_lxc);
    let l = if opts.lxd.exists() {
        ensure_hosts_mapping();
        println!("measuring LXD at {}...", opts.lxd.display());
        Some(measure(&System { name: "lxd", daemon: opts.lxd.clone() }, &opts, &our_lxc))
    } else {
        println!("{} not found: install the Debian package lxd for the comparison", opts.lxd.display());
        None
    };
    println!();
    println!("| {:<44} | {:<6} | {:>10} | {:>10} | {:>8} |", "figure", "unit", "rxd", "LXD 5.0.2", "ratio");
    println!("|{}|{}|{}|{}|{}|", "-".repeat(46), "-".repeat(8), "-".repeat(12), "-".repeat(12), "-".repeat(10));
    row("daemon start to ready (median)", "s", r.start_ready, l.as_ref().map(|l| l.start_ready), true);
    row("idle RSS, one daemon", "MiB", r.idle_rss_mib, l.as_ref().map(|l| l.idle_rss_mib), true);
    row("GET /1.0 unix socket, 1 client", "req/s", r.rps1, l.as_ref().map(|l| l.rps1), false);
    row("GET /1.0 unix socket, 1 client, p50", "s", r.p50_1, l.as_ref().map(|l| l.p50_1), true);
    row("GET /1.0 unix socket, 16 clients", "req/s", r.rps16, l.as_ref().map(|l| l.rps16), false);
    row("GET /1.0 unix socket, 16 clients, p50", "s", r.p50_16, l.as_ref().map(|l| l.p50_16), true);
    row("`lxc info` wall time, our lxc (median)", "s", r.info_ours, l.as_ref().map(|l| l.info_ours), true);
    row("`lxc info` wall time, stock lxc (median)", "s", r.info_stock, l.as_ref().map(|l| l.info_stock), true);
}
