//! A restart over the network: 100 restarting processes gather, strangers are refused, the
//! first barrier waits for the whole quorum, and `--exit-on-last` ends the coordinator.

use dmtcp_coordinator::sim::{SimClient, SimError, command, worker_role};
use dmtcp_coordinator::{CompConfig, ExitReason, Server, listen};
use dmtcp_protocol::{
    CompId, CoordMsg, RejectReason, RestartHello, Role, Secret, UniquePid, WorkerMsg, WorkerState,
};
use std::net::SocketAddr;
use std::time::Duration;

const N: u32 = 100;

fn restart_role(comp: CompId, i: u32, num_peers: u32) -> Role {
    Role::Restart(RestartHello {
        hostname: "simhost".into(),
        progname: format!("restored{i}"),
        real_pid: 5000 + i as i32,
        upid: UniquePid {
            host_id: 77,
            pid: 300 + i as i32,
            time_ns: 99,
        },
        virtual_pid: 40000 + 1000 * i as i32,
        comp_id: comp,
        num_peers,
        generation: 7,
        interval: Some(0),
    })
}

async fn refused(addr: SocketAddr, secret: &Secret, role: Role) -> RejectReason {
    match SimClient::connect(addr, secret, role).await {
        Err(SimError::Rejected(r)) => r.reason,
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn restart_gathers_its_quorum() {
    let root = std::env::temp_dir().join(format!("dmtcp-coord-rq-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // SAFETY: set before the runtime starts any thread; this file holds a single test.
    unsafe { std::env::set_var("DMTCP_SECRET_DIR", root.join("secrets")) };
    let listener = listen::bind_port("127.0.0.1", 0).unwrap();
    let cfg = CompConfig {
        exit_on_last: true,
        ..CompConfig::default()
    };
    let server = Server::new(listener, cfg).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    let secret = server.secret().clone();
    let comp = CompId(UniquePid {
        host_id: 77,
        pid: 300,
        time_ns: 99,
    });
    let other = CompId(UniquePid {
        host_id: 78,
        pid: 1,
        time_ns: 1,
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let serving = tokio::spawn(server.serve(std::future::pending()));
        // The first half joins and waits at the restart barrier.
        let mut peers = Vec::new();
        for i in 0..N / 2 {
            let mut p = SimClient::connect(addr, &secret, restart_role(comp, i, N))
                .await
                .unwrap();
            let a = p.assignment.clone().unwrap();
            assert_eq!(
                (a.upid.pid, a.virtual_pid, a.generation),
                (300 + i as i32, 40000 + 1000 * i as i32, 7)
            );
            p.barrier("DMT:RESTART").await.unwrap();
            peers.push(p);
        }
        assert_eq!(
            refused(addr, &secret, restart_role(other, 999, N)).await,
            RejectReason::WrongComputation
        );
        assert_eq!(
            refused(addr, &secret, restart_role(comp, 999, N + 1)).await,
            RejectReason::PeerMismatch
        );
        assert_eq!(
            refused(addr, &secret, worker_role(1)).await,
            RejectReason::NotRunning
        );
        let status = command(addr, &secret, dmtcp_protocol::Command::Status)
            .await
            .unwrap();
        assert_eq!(
            (status.num_peers, status.running, status.comp_id),
            (N / 2, false, Some(comp))
        );
        // Nobody is released while half the quorum is missing.
        let early = tokio::time::timeout(Duration::from_millis(300), peers[0].recv()).await;
        assert!(early.is_err(), "released before the quorum: {early:?}");
        for i in N / 2..N {
            let mut p = SimClient::connect(addr, &secret, restart_role(comp, i, N))
                .await
                .unwrap();
            p.barrier("DMT:RESTART").await.unwrap();
            peers.push(p);
        }
        assert_eq!(
            refused(addr, &secret, restart_role(comp, N, N)).await,
            RejectReason::PeerMismatch
        );
        for p in peers.iter_mut() {
            let msg = tokio::time::timeout(Duration::from_secs(20), p.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                msg,
                CoordMsg::BarrierReleased {
                    name: "DMT:RESTART".into(),
                    num_peers: N
                }
            );
            p.send(&WorkerMsg::State(WorkerState::Running))
                .await
                .unwrap();
        }
        // Once all run, the computation is live: a new process (a fork) gets the next vpid.
        let mut live = false;
        for _ in 0..100 {
            let s = command(addr, &secret, dmtcp_protocol::Command::Status)
                .await
                .unwrap();
            if s.running {
                live = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(live, "the restarted computation never became RUNNING");
        let fork = SimClient::connect(addr, &secret, worker_role(5))
            .await
            .unwrap();
        assert_eq!(
            fork.assignment.as_ref().unwrap().virtual_pid,
            40000 + 1000 * N as i32
        );
        assert_eq!(
            refused(addr, &secret, restart_role(comp, 0, N)).await,
            RejectReason::NotRestarting
        );
        // Everyone leaves: --exit-on-last stops the coordinator.
        drop(fork);
        for p in peers {
            p.close().await;
        }
        let reason = tokio::time::timeout(Duration::from_secs(10), serving)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(reason, ExitReason::LastPeerLeft);
    });
    std::fs::remove_dir_all(&root).unwrap();
}
