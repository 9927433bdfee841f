//! The real server with 1,000 simulated processes speaking the real protocol with a real
//! secret: joins, refusals, barrier rounds, KV increments, a checkpoint, a desync, a death
//! mid-barrier, and quit.

use dmtcp_coordinator::sim::{SimClient, SimError, command, worker_role};
use dmtcp_coordinator::{CompConfig, ExitReason, Server, listen};
use dmtcp_protocol::{
    CkptMode, Command, CommandStatus, CoordMsg, KvOp, KvRequest, KvResponse, RejectReason, Secret,
    WorkerMsg, WorkerState,
};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

const N: usize = 1000;

/// Runs `f` on every worker concurrently and gives the workers back in their order.
async fn each<F, Fut>(workers: Vec<SimClient>, f: F) -> Vec<SimClient>
where
    F: Fn(usize, SimClient) -> Fut,
    Fut: Future<Output = SimClient> + Send + 'static,
{
    let mut set = JoinSet::new();
    let n = workers.len();
    for (i, w) in workers.into_iter().enumerate() {
        let fut = f(i, w);
        set.spawn(async move { (i, fut.await) });
    }
    let mut out: Vec<Option<SimClient>> = (0..n).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, w) = r.expect("worker task");
        out[i] = Some(w);
    }
    out.into_iter()
        .map(|w| w.expect("every worker came back"))
        .collect()
}

async fn recv(w: &mut SimClient) -> CoordMsg {
    tokio::time::timeout(Duration::from_secs(60), w.recv())
        .await
        .expect("coordinator answers in time")
        .expect("frame")
}

async fn barrier_round(workers: Vec<SimClient>, name: &'static str) -> Vec<SimClient> {
    let n = workers.len() as u32;
    each(workers, move |_, mut w| async move {
        w.barrier(name).await.unwrap();
        assert_eq!(
            recv(&mut w).await,
            CoordMsg::BarrierReleased {
                name: name.into(),
                num_peers: n
            }
        );
        w
    })
    .await
}

/// Waits until `count` workers wait at barrier `name` (as `dmtcp_command --list` shows).
async fn wait_at_barrier(addr: SocketAddr, secret: &Secret, name: &str, count: usize) {
    for _ in 0..600 {
        let r = command(addr, secret, Command::List).await.unwrap();
        if r.workers
            .iter()
            .filter(|w| w.barrier.as_deref() == Some(name))
            .count()
            == count
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{count} workers never reached barrier {name}");
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dmtcp-coord-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

#[test]
fn thousand_simulated_workers() {
    let root = temp_dir("it");
    // SAFETY: set before the runtime starts any thread; this file holds a single test.
    unsafe { std::env::set_var("DMTCP_SECRET_DIR", root.join("secrets")) };
    raise_fd_limit();
    let ckpt = root.join("ckpt");
    std::fs::create_dir_all(&ckpt).unwrap();
    let listener = listen::bind_port("127.0.0.1", 0).unwrap();
    let cfg = CompConfig {
        ckpt_dir: Some(ckpt.display().to_string()),
        ..CompConfig::default()
    };
    let server = Server::new(listener, cfg).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    let secret = server.secret().clone();
    let coord_id = server.coord_id().to_string();
    assert!(
        root.join("secrets")
            .join(format!("{coord_id}.secret"))
            .exists()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let serving = tokio::spawn(server.serve(std::future::pending()));
        let workers = join_all(addr, &secret).await;
        refusals_leave_the_coordinator_serving(addr, &secret).await;
        let mut workers = workers;
        for round in [
            "DMT:ROUND1",
            "DMT:ROUND2",
            "DMT:ROUND3",
            "DMT:ROUND4",
            "DMT:ROUND5",
        ] {
            workers = barrier_round(workers, round).await;
        }
        let workers = kv_sum(workers, addr, &secret).await;
        let workers = checkpoint(workers, addr, &secret, &ckpt).await;
        let workers = desync(workers, addr, &secret).await;
        let workers = death_mid_barrier(workers, addr, &secret).await;
        // The workers stay connected (as killed processes would be until they exit); the
        // coordinator must not wait for them once its last frames are out (it would give up
        // waiting after 2 s).
        let workers = quit(workers, addr, &secret).await;
        let reason = tokio::time::timeout(Duration::from_millis(1900), serving)
            .await
            .expect("the coordinator exits at once after quit")
            .unwrap()
            .unwrap();
        assert_eq!(reason, ExitReason::Quit);
        drop(workers);
    });
    // Unregistered on exit: neither the secret nor the registry entry remains.
    assert!(
        !root
            .join("secrets")
            .join(format!("{coord_id}.secret"))
            .exists()
    );
    assert!(
        !root
            .join("secrets")
            .join(format!("{coord_id}.json"))
            .exists()
    );
    std::fs::remove_dir_all(&root).unwrap();
}

async fn join_all(addr: SocketAddr, secret: &Secret) -> Vec<SimClient> {
    let mut set = JoinSet::new();
    for n in 0..N as u32 {
        let secret = secret.clone();
        set.spawn(async move {
            (
                n,
                SimClient::connect(addr, &secret, worker_role(n))
                    .await
                    .unwrap(),
            )
        });
    }
    let mut workers = Vec::new();
    while let Some(r) = set.join_next().await {
        workers.push(r.unwrap());
    }
    workers.sort_by_key(|(n, _)| *n);
    let workers: Vec<SimClient> = workers.into_iter().map(|(_, w)| w).collect();
    let mut vpids: Vec<i32> = workers
        .iter()
        .map(|w| w.assignment.as_ref().unwrap().virtual_pid)
        .collect();
    vpids.sort();
    let expected: Vec<i32> = (0..N as i32).map(|k| 40000 + 1000 * k).collect();
    assert_eq!(vpids, expected, "every process gets its own virtual pid");
    let comp = workers[0].assignment.as_ref().unwrap().comp_id;
    assert!(
        workers
            .iter()
            .all(|w| w.assignment.as_ref().unwrap().comp_id == comp)
    );
    let status = command(addr, secret, Command::Status).await.unwrap();
    assert_eq!(
        (status.num_peers, status.running, status.comp_id),
        (N as u32, true, Some(comp))
    );
    workers
}

async fn refusals_leave_the_coordinator_serving(addr: SocketAddr, secret: &Secret) {
    let wrong = Secret::generate().unwrap();
    match SimClient::connect(addr, &wrong, worker_role(9999)).await {
        Err(SimError::Rejected(r)) => assert_eq!(r.reason, RejectReason::WrongSecret),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("a wrong secret was accepted"),
    }
    // Garbage instead of a hello: the coordinator closes that connection only.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n\xff\xff\xff\xff")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf),
    );
    read.await
        .expect("connection closed by the coordinator")
        .ok();
    let status = command(addr, secret, Command::Status).await.unwrap();
    assert_eq!(
        status.num_peers, N as u32,
        "refused clients never joined nor disturbed others"
    );
}

async fn kv_sum(workers: Vec<SimClient>, addr: SocketAddr, secret: &Secret) -> Vec<SimClient> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let workers = each(workers, move |i, mut w| {
        let tx = tx.clone();
        async move {
            let req = KvRequest {
                id: i as u64,
                db: "/test/sum".into(),
                key: b"total".to_vec(),
                op: KvOp::IncrBy(i as i64 + 1),
            };
            w.send(&WorkerMsg::Kv(req)).await.unwrap();
            match recv(&mut w).await {
                CoordMsg::Kv(KvResponse {
                    id,
                    result: Ok(Some(v)),
                }) => {
                    assert_eq!(id, i as u64);
                    tx.send(String::from_utf8(v).unwrap().parse::<i64>().unwrap())
                        .unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
            w
        }
    })
    .await;
    let mut seen = Vec::new();
    while let Ok(v) = rx.try_recv() {
        seen.push(v);
    }
    seen.sort();
    seen.dedup();
    // Each increment saw a distinct running total: they were applied one at a time.
    assert_eq!(seen.len(), N);
    let total = (N * (N + 1) / 2) as i64;
    assert_eq!(*seen.last().unwrap(), total);
    let _ = (addr, secret);
    workers
}

async fn checkpoint(
    workers: Vec<SimClient>,
    addr: SocketAddr,
    secret: &Secret,
    dir: &Path,
) -> Vec<SimClient> {
    let secret2 = secret.clone();
    let blocking = tokio::spawn(async move {
        command(addr, &secret2, Command::Checkpoint(CkptMode::Blocking)).await
    });
    let dir = dir.to_path_buf();
    let workers = each(workers, move |i, mut w| {
        let dir = dir.clone();
        async move {
            match recv(&mut w).await {
                CoordMsg::DoCheckpoint(o) => assert_eq!((o.generation, o.kill_after), (1, false)),
                other => panic!("expected DoCheckpoint, got {other:?}"),
            }
            w.send(&WorkerMsg::State(WorkerState::Suspended))
                .await
                .unwrap();
            w.barrier("DMT:SUSPEND").await.unwrap();
            assert!(matches!(
                recv(&mut w).await,
                CoordMsg::BarrierReleased { .. }
            ));
            let image = dir.join(format!("ckpt_sim{i}.dmtcp")).display().to_string();
            w.send(&WorkerMsg::CkptWritten {
                image,
                bytes: i as u64,
            })
            .await
            .unwrap();
            w.send(&WorkerMsg::State(WorkerState::Running))
                .await
                .unwrap();
            w
        }
    })
    .await;
    let reply = tokio::time::timeout(Duration::from_secs(60), blocking)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, CommandStatus::Success, "{:?}", reply.message);
    let summary = reply.last_checkpoint.unwrap();
    assert_eq!(summary.generation, 1);
    assert_eq!(summary.images.len(), N);
    assert_eq!(summary.bytes, (N * (N - 1) / 2) as u64);
    let script = PathBuf::from(summary.restart_script.unwrap());
    let text = std::fs::read_to_string(&script).unwrap();
    assert_eq!(
        text.matches(".dmtcp'").count(),
        N,
        "the script restarts every image"
    );
    let link =
        std::fs::read_link(script.parent().unwrap().join("dmtcp_restart_script.sh")).unwrap();
    assert_eq!(link, script.file_name().unwrap());
    workers
}

async fn desync(mut workers: Vec<SimClient>, addr: SocketAddr, secret: &Secret) -> Vec<SimClient> {
    let mut odd = workers.pop().unwrap();
    for w in workers.iter_mut() {
        w.barrier("A").await.unwrap();
    }
    wait_at_barrier(addr, secret, "A", N - 1).await;
    odd.barrier("B").await.unwrap();
    match recv(&mut odd).await {
        CoordMsg::Fatal { message } => assert!(
            message.contains("'A'") && message.contains("'B'"),
            "{message}"
        ),
        other => panic!("expected Fatal, got {other:?}"),
    }
    // The coordinator closed the desynchronized connection.
    assert!(matches!(odd.recv().await, Err(SimError::Frame(_))));
    // The others, all at A, are released without it.
    let n = (N - 1) as u32;
    each(workers, move |_, mut w| async move {
        assert_eq!(
            recv(&mut w).await,
            CoordMsg::BarrierReleased {
                name: "A".into(),
                num_peers: n
            }
        );
        w
    })
    .await
}

async fn death_mid_barrier(
    mut workers: Vec<SimClient>,
    addr: SocketAddr,
    secret: &Secret,
) -> Vec<SimClient> {
    let victim = workers.remove(N / 2);
    for w in workers.iter_mut() {
        w.barrier("C").await.unwrap();
    }
    wait_at_barrier(addr, secret, "C", N - 2).await;
    drop(victim); // Killed: its socket closes without a word.
    let n = (N - 2) as u32;
    let workers = each(workers, move |_, mut w| async move {
        assert_eq!(
            recv(&mut w).await,
            CoordMsg::BarrierReleased {
                name: "C".into(),
                num_peers: n
            }
        );
        w
    })
    .await;
    let status = command(addr, secret, Command::Status).await.unwrap();
    assert_eq!((status.num_peers, status.generation), (n, 1));
    workers
}

async fn quit(workers: Vec<SimClient>, addr: SocketAddr, secret: &Secret) -> Vec<SimClient> {
    let reply = command(addr, secret, Command::Quit).await.unwrap();
    assert_eq!(reply.status, CommandStatus::Success);
    each(workers, |_, mut w| async move {
        assert_eq!(recv(&mut w).await, CoordMsg::Kill);
        w
    })
    .await
}
