//! Barrier latency with many simulated processes.
//!
//! `cargo run --release --example barrier_bench -- [WORKERS] [ROUNDS]` (default 10000 and 20).
//! The coordinator runs as a separate process (this program re-executed with `--serve`), so
//! server and clients each have their own fd table; both raise RLIMIT_NOFILE to the hard limit.
//! A round is timed from the moment all workers are told to go until the last one has received
//! the barrier release.

use dmtcp_coordinator::sim::{SimClient, command, worker_role};
use dmtcp_coordinator::{CompConfig, Server, listen};
use dmtcp_protocol::{Command, CoordMsg, Secret, auth};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};

fn raise_fd_limit() -> u64 {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    hard
}

fn serve(port_file: &Path) {
    raise_fd_limit();
    let listener = listen::bind_port("127.0.0.1", 0).expect("bind");
    let server = Server::new(listener, CompConfig::default()).expect("server");
    listen::write_port_file(port_file, server.port()).expect("port file");
    server.run().expect("serve");
}

/// User + system CPU time of a process, from `/proc/<pid>/stat` (clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name start at `state` (field 3); utime, stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    Duration::from_millis(ticks * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn start_server(dir: &Path) -> (Child, u16, Secret) {
    let port_file = dir.join("port");
    let child = std::process::Command::new(std::env::current_exe().expect("own path"))
        .arg("--serve")
        .arg(&port_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the coordinator process");
    let deadline = Instant::now() + Duration::from_secs(20);
    let port = loop {
        if let Ok(t) = std::fs::read_to_string(&port_file)
            && let Ok(p) = t.trim().parse()
        {
            break p;
        }
        assert!(Instant::now() < deadline, "coordinator did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let secret_file = std::fs::read_dir(auth::secret_dir())
        .expect("secret dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "secret"))
        .expect("secret file");
    let id = secret_file
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    (child, port, auth::load_secret(&id).expect("secret"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return serve(Path::new(&args[1]));
    }
    let workers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let limit = raise_fd_limit();
    assert!(
        workers as u64 + 64 < limit,
        "{workers} workers need more than the fd limit {limit}"
    );
    let dir: PathBuf =
        std::env::temp_dir().join(format!("dmtcp-barrier-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // SAFETY: no other thread exists yet; the child inherits the variable.
    unsafe { std::env::set_var(auth::SECRET_DIR_ENV, dir.join("secrets")) };
    let (mut child, port, secret) = start_server(&dir);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(addr, secret, workers, rounds, child.id()));
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn bench(addr: SocketAddr, secret: Secret, n: usize, rounds: usize, server_pid: u32) {
    let secret = Arc::new(secret);
    let (go_tx, go_rx) = watch::channel(0usize);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel::<Duration>();
    // Bounded concurrent connects: a burst far over the listen backlog only adds SYN retries.
    let gate = Arc::new(Semaphore::new(512));
    let t0 = Instant::now();
    for i in 0..n {
        let (secret, gate, mut go_rx) = (secret.clone(), gate.clone(), go_rx.clone());
        let (done_tx, joined_tx) = (done_tx.clone(), joined_tx.clone());
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let start = Instant::now();
            let mut w = SimClient::connect(addr, &secret, worker_role(i as u32))
                .await
                .expect("join");
            joined_tx.send(start.elapsed()).unwrap();
            drop(permit);
            for round in 1..=rounds {
                while *go_rx.borrow_and_update() < round {
                    go_rx.changed().await.unwrap();
                }
                let name = format!("BENCH:{round}");
                w.barrier(&name).await.unwrap();
                match w.recv().await.unwrap() {
                    CoordMsg::BarrierReleased {
                        name: got,
                        num_peers,
                    } => {
                        assert_eq!((got, num_peers as usize), (name, n));
                    }
                    other => panic!("unexpected {other:?}"),
                }
                done_tx.send((round, Instant::now())).unwrap();
            }
            // Stay connected until the coordinator kills us.
            let _ = w.recv().await;
        });
    }
    let mut joins = Vec::with_capacity(n);
    for _ in 0..n {
        joins.push(joined_rx.recv().await.unwrap());
    }
    let join_total = t0.elapsed();
    let status = command(addr, &secret, Command::Status).await.unwrap();
    assert_eq!(status.num_peers as usize, n);
    joins.sort();
    let mut lat = Vec::with_capacity(rounds);
    let (server_cpu0, own_cpu0) = (cpu_time(server_pid), cpu_time(std::process::id()));
    for round in 1..=rounds {
        let start = Instant::now();
        go_tx.send(round).unwrap();
        let mut last = start;
        for _ in 0..n {
            let (r, at) = done_rx.recv().await.unwrap();
            assert_eq!(r, round);
            last = last.max(at);
        }
        lat.push(last - start);
    }
    let server_cpu = (cpu_time(server_pid) - server_cpu0) / rounds as u32;
    let own_cpu = (cpu_time(std::process::id()) - own_cpu0) / rounds as u32;
    lat.sort();
    println!("coordinator barrier benchmark: {n} simulated workers, {rounds} rounds (loopback)");
    println!(
        "join: all {n} in {} (per join p50 {}, p95 {}, 512 connecting at a time)",
        ms(join_total),
        ms(percentile(&joins, 0.5)),
        ms(percentile(&joins, 0.95))
    );
    println!(
        "barrier round (all arrive -> all released): median {}, p95 {}, min {}, max {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.95)),
        ms(lat[0]),
        ms(*lat.last().unwrap())
    );
    println!(
        "cpu per round: coordinator {}, simulated workers {} (user+sys; the rest of the wall time is waiting for the other process or other load)",
        ms(server_cpu),
        ms(own_cpu)
    );
    let _ = command(addr, &secret, Command::Quit).await;
}
