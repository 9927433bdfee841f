//! Unit tests of the state machine: each drives it with inputs and checks the actions.

use super::*;
use dmtcp_protocol::{KvBatchRequest, KvItem, KvOp, KvRequest};

fn now0() -> Now {
    Now {
        at: Instant::now(),
        wall_ns: 1_000,
    }
}

fn later(n: Now, secs: u64) -> Now {
    Now {
        at: n.at + Duration::from_secs(secs),
        wall_ns: n.wall_ns + secs * 1_000_000_000,
    }
}

fn worker(pid: i32) -> Joining {
    Joining::Worker(WorkerHello {
        hostname: "node1".into(),
        progname: format!("prog{pid}"),
        real_pid: pid,
        real_ppid: 1,
        parent: None,
        interval: None,
    })
}

/// A computation with `n` joined workers on connections 1..=n.
fn with_workers(cfg: CompConfig, n: u64) -> (Computation, Now) {
    let now = now0();
    let mut c = Computation::new(cfg, now);
    for i in 1..=n {
        c.join(i, worker(100 + i as i32), "127.0.0.1".into(), now)
            .unwrap();
    }
    (c, now)
}

fn barrier(name: &str) -> WorkerMsg {
    WorkerMsg::Barrier { name: name.into() }
}

fn released(actions: &[Action]) -> Option<(Vec<ConnId>, String, u32)> {
    actions.iter().find_map(|a| match a {
        Action::Broadcast(to, CoordMsg::BarrierReleased { name, num_peers }) => {
            Some((to.clone(), name.clone(), *num_peers))
        }
        _ => None,
    })
}

fn reply_of(actions: &[Action], id: CmdId) -> Option<CommandReply> {
    actions.iter().find_map(|a| match a {
        Action::Reply(i, r) if *i == id => Some((**r).clone()),
        _ => None,
    })
}

#[test]
fn identities_follow_dmtcp_numbering() {
    let now = now0();
    let mut c = Computation::new(CompConfig::default(), now);
    let a = c.join(1, worker(500), "10.0.0.5".into(), now).unwrap();
    let b = c
        .join(2, worker(501), "10.0.0.6".into(), later(now, 1))
        .unwrap();
    assert_eq!(a.virtual_pid, 40000);
    assert_eq!(b.virtual_pid, 41000);
    assert_eq!(a.upid.pid, 500);
    assert_eq!(a.upid.host_id, dmtcp_protocol::ids::host_id("node1"));
    // The computation is named after its first process.
    assert_eq!(a.comp_id, CompId(a.upid));
    assert_eq!(b.comp_id, CompId(a.upid));
    assert_eq!(b.observed_addr, "10.0.0.6");
    assert_eq!(a.generation, 0);
    assert!(a.pending_checkpoint.is_none());
    assert!(c.running());
}

#[test]
fn barrier_releases_when_all_arrive() {
    let (mut c, now) = with_workers(CompConfig::default(), 3);
    assert!(released(&c.message(1, barrier("DMT:SUSPEND"), now)).is_none());
    // A duplicate arrival does not count twice.
    assert!(released(&c.message(1, barrier("DMT:SUSPEND"), now)).is_none());
    assert!(released(&c.message(2, barrier("DMT:SUSPEND"), now)).is_none());
    let (to, name, n) = released(&c.message(3, barrier("DMT:SUSPEND"), now)).unwrap();
    assert_eq!((to, name.as_str(), n), (vec![1, 2, 3], "DMT:SUSPEND", 3));
    // The next barrier starts from zero.
    assert!(released(&c.message(1, barrier("DMT:NEXT"), now)).is_none());
}

#[test]
fn desync_disconnects_only_the_offender_and_releases_the_others() {
    let (mut c, now) = with_workers(CompConfig::default(), 3);
    c.message(1, barrier("A"), now);
    c.message(2, barrier("A"), now);
    let acts = c.message(3, barrier("B"), now);
    match &acts[0] {
        Action::Send(3, CoordMsg::Fatal { message }) => {
            assert!(
                message.contains("'B'") && message.contains("'A'"),
                "{message}"
            )
        }
        other => panic!("expected Fatal to 3, got {other:?}"),
    }
    assert!(acts.contains(&Action::Disconnect(3)));
    // With 3 gone, everyone left is at A: released to 1 and 2 only.
    let (to, name, n) = released(&acts).unwrap();
    assert_eq!((to, name.as_str(), n), (vec![1, 2], "A", 2));
    assert_eq!(c.num_peers(), 2);
}

#[test]
fn peer_at_next_barrier_before_release_is_a_desync() {
    let (mut c, now) = with_workers(CompConfig::default(), 2);
    c.message(1, barrier("A"), now);
    let acts = c.message(1, barrier("B"), now);
    assert!(acts.contains(&Action::Disconnect(1)));
    assert_eq!(c.num_peers(), 1);
}

#[test]
fn death_mid_barrier_releases_survivors() {
    let (mut c, now) = with_workers(CompConfig::default(), 3);
    c.message(1, barrier("A"), now);
    c.message(2, barrier("A"), now);
    let (to, _, n) = released(&c.disconnect(3, now)).unwrap();
    assert_eq!((to, n), (vec![1, 2], 2));
    // A peer that had arrived and died is uncounted, so the barrier waits for the others.
    let (mut c, now) = with_workers(CompConfig::default(), 3);
    c.message(1, barrier("A"), now);
    assert!(released(&c.disconnect(1, now)).is_none());
    c.message(2, barrier("A"), now);
    assert!(released(&c.message(3, barrier("A"), now)).is_some());
}

fn restart_hello(comp: CompId, pid: i32, vpid: i32, num_peers: u32) -> Joining {
    Joining::Restart(RestartHello {
        hostname: "node1".into(),
        progname: "prog".into(),
        real_pid: pid + 7,
        upid: UniquePid {
            host_id: 9,
            pid,
            time_ns: 5,
        },
        virtual_pid: vpid,
        comp_id: comp,
        num_peers,
        generation: 4,
        interval: None,
    })
}

#[test]
fn restart_quorum_accepts_matching_and_rejects_others() {
    let now = now0();
    let comp = CompId(UniquePid {
        host_id: 9,
        pid: 1,
        time_ns: 5,
    });
    let other = CompId(UniquePid {
        host_id: 9,
        pid: 2,
        time_ns: 5,
    });
    let mut c = Computation::new(CompConfig::default(), now);
    c.kv.apply("db", b"k", KvOp::Set(b"v".to_vec())).unwrap();
    let a = c
        .join(1, restart_hello(comp, 1, 41000, 2), "h".into(), now)
        .unwrap();
    // Restarted peers keep their identity; the store starts empty.
    assert_eq!(
        (a.upid.pid, a.virtual_pid, a.comp_id, a.generation),
        (1, 41000, comp, 4)
    );
    assert!(c.kv.is_empty());
    let r = |res: Result<Assignment, Rejected>| res.unwrap_err().reason;
    assert_eq!(
        r(c.join(2, restart_hello(other, 2, 40000, 2), "h".into(), now)),
        RejectReason::WrongComputation
    );
    assert_eq!(
        r(c.join(2, restart_hello(comp, 2, 40000, 3), "h".into(), now)),
        RejectReason::PeerMismatch
    );
    assert_eq!(
        r(c.join(2, restart_hello(comp, 1, 41000, 2), "h".into(), now)),
        RejectReason::PeerMismatch
    );
    assert_eq!(
        r(c.join(2, worker(77), "h".into(), now)),
        RejectReason::NotRunning
    );
    // A barrier waits for the missing peer even though every present peer arrived.
    assert!(released(&c.message(1, barrier("DMT:RESTART"), now)).is_none());
    assert!(!c.running());
    c.join(2, restart_hello(comp, 2, 40000, 2), "h".into(), now)
        .unwrap();
    assert_eq!(
        r(c.join(3, restart_hello(comp, 3, 42000, 2), "h".into(), now)),
        RejectReason::PeerMismatch
    );
    assert!(released(&c.message(2, barrier("DMT:RESTART"), now)).is_some());
    // Running once all report it; then restart hellos are refused and workers welcome.
    c.message(1, WorkerMsg::State(WorkerState::Running), now);
    assert!(!c.running());
    c.message(2, WorkerMsg::State(WorkerState::Running), now);
    assert!(c.running());
    assert_eq!(
        r(c.join(3, restart_hello(comp, 3, 42000, 2), "h".into(), now)),
        RejectReason::NotRestarting
    );
    // New processes get virtual pids after the restored ones.
    assert_eq!(
        c.join(3, worker(88), "h".into(), now).unwrap().virtual_pid,
        42000
    );
}

#[test]
fn restart_into_live_computation_is_refused() {
    let (mut c, now) = with_workers(CompConfig::default(), 1);
    let comp = CompId(UniquePid {
        host_id: 9,
        pid: 1,
        time_ns: 5,
    });
    let e = c
        .join(2, restart_hello(comp, 1, 40000, 1), "h".into(), now)
        .unwrap_err();
    assert_eq!(e.reason, RejectReason::NotRestarting);
}

#[test]
fn kv_requests_are_answered_to_the_sender() {
    let (mut c, now) = with_workers(CompConfig::default(), 2);
    let kv = |id, op| {
        WorkerMsg::Kv(KvRequest {
            id,
            db: "/plugin/x".into(),
            key: b"n".to_vec(),
            op,
        })
    };
    c.message(1, kv(10, KvOp::IncrBy(3)), now);
    let acts = c.message(2, kv(11, KvOp::IncrBy(4)), now);
    assert_eq!(
        acts,
        vec![Action::Send(
            2,
            CoordMsg::Kv(KvResponse {
                id: 11,
                result: Ok(Some(b"7".to_vec()))
            })
        )]
    );
}

#[test]
fn kv_batches_apply_in_order_and_share_the_store() {
    let (mut c, now) = with_workers(CompConfig::default(), 2);
    let item = |key: &[u8], op| KvItem {
        db: "/x".into(),
        key: key.to_vec(),
        op,
    };
    c.message(1, kv_single(b"n", KvOp::IncrBy(2)), now);
    let batch = WorkerMsg::KvBatch(KvBatchRequest {
        id: 12,
        items: vec![
            item(b"n", KvOp::IncrBy(1)),
            item(b"h:3", KvOp::Set(b"40000".to_vec())),
            item(b"h:3", KvOp::Get),
            item(b"m", KvOp::Min(5)),
            item(b"m", KvOp::Min(9)),
            item(b"h:3", KvOp::IncrBy(1)),
            item(b"absent", KvOp::Get),
        ],
    });
    let acts = c.message(2, batch, now);
    assert_eq!(
        acts,
        vec![Action::Send(
            2,
            CoordMsg::KvBatch(KvBatchResponse {
                id: 12,
                results: vec![
                    Ok(Some(b"3".to_vec())),
                    Ok(None),
                    Ok(Some(b"40000".to_vec())),
                    Ok(Some(b"5".to_vec())),
                    Ok(Some(b"5".to_vec())),
                    Ok(Some(b"40001".to_vec())),
                    Ok(None),
                ],
            })
        )]
    );
    // A single request sees what the batch wrote.
    let acts = c.message(1, kv_single(b"h:3", KvOp::Get), now);
    assert_eq!(
        acts,
        vec![Action::Send(
            1,
            CoordMsg::Kv(KvResponse {
                id: 1,
                result: Ok(Some(b"40001".to_vec()))
            })
        )]
    );
    // An empty batch gets an empty answer.
    let empty = WorkerMsg::KvBatch(KvBatchRequest {
        id: 13,
        items: vec![],
    });
    assert_eq!(
        c.message(1, empty, now),
        vec![Action::Send(
            1,
            CoordMsg::KvBatch(KvBatchResponse {
                id: 13,
                results: vec![]
            })
        )]
    );
}

fn kv_single(key: &[u8], op: KvOp) -> WorkerMsg {
    WorkerMsg::Kv(KvRequest {
        id: 1,
        db: "/x".into(),
        key: key.to_vec(),
        op,
    })
}

fn written(c: &mut Computation, conn: ConnId, now: Now) -> Vec<Action> {
    let msg = WorkerMsg::CkptWritten {
        image: format!("/ck/img{conn}.dmtcp"),
        bytes: 100 * conn,
    };
    c.message(conn, msg, now)
}

/// The coordinator address in the restart script after one checkpoint of two workers.
fn script_host(c: &mut Computation, now: Now) -> String {
    c.command(1, Command::Checkpoint(CkptMode::Async), now);
    written(c, 1, now);
    let acts = written(c, 2, now);
    match &acts[0] {
        Action::WriteRestartScript(s) => s.coord_host.clone(),
        a => panic!("{a:?}"),
    }
}

#[test]
fn script_names_the_address_that_other_hosts_reached() {
    let cfg = CompConfig {
        coord_host: "head".into(),
        ..CompConfig::default()
    };
    let (mut c, now) = with_workers(cfg.clone(), 2);
    // Local peers only: the published name stays.
    c.note_route("127.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap());
    assert_eq!(script_host(&mut c, now), "head");
    // A peer from another host reached us at 10.201.0.1: that is what other hosts can use.
    c.note_route(
        "10.201.0.12".parse().unwrap(),
        "10.201.0.1".parse().unwrap(),
    );
    c.note_route("10.9.0.5".parse().unwrap(), "10.9.0.1".parse().unwrap());
    assert_eq!(script_host(&mut c, later(now, 1)), "10.201.0.1");
}

#[test]
fn blocking_checkpoint_completes_when_every_image_is_written() {
    let cfg = CompConfig {
        coord_port: 7000,
        ..CompConfig::default()
    };
    let (mut c, now) = with_workers(cfg, 2);
    let acts = c.command(1, Command::Checkpoint(CkptMode::Blocking), now);
    assert_eq!(
        acts,
        vec![Action::Broadcast(
            vec![1, 2],
            CoordMsg::DoCheckpoint(CheckpointOrder {
                generation: 1,
                kill_after: false,
                ckpt_dir: None
            })
        )]
    );
    // A second request while one runs is refused at once.
    let busy = reply_of(&c.command(2, Command::Checkpoint(CkptMode::Async), now), 2).unwrap();
    assert_eq!(busy.status, CommandStatus::NotRunning);
    // A process forked during the checkpoint takes part in it.
    let a = c.join(3, worker(300), "h".into(), now).unwrap();
    assert_eq!(a.pending_checkpoint.map(|o| o.generation), Some(1));
    assert!(written(&mut c, 1, now).is_empty());
    assert!(written(&mut c, 2, now).is_empty());
    let acts = written(&mut c, 3, later(now, 2));
    let Action::WriteRestartScript(script) = &acts[0] else {
        panic!("{acts:?}")
    };
    assert_eq!(script.dir, PathBuf::from("/ck"));
    assert_eq!(script.images.len(), 3);
    assert_eq!(script.coord_port, 7000);
    let r = reply_of(&acts, 1).unwrap();
    assert_eq!(r.status, CommandStatus::Success);
    let s = r.last_checkpoint.unwrap();
    assert_eq!(s.generation, 1);
    assert_eq!(
        s.images,
        vec!["/ck/img1.dmtcp", "/ck/img2.dmtcp", "/ck/img3.dmtcp"]
    );
    assert_eq!(s.bytes, 600);
    assert_eq!(s.duration_ms, 2000);
    assert_eq!(
        s.restart_script.as_deref(),
        Some(script.path().to_str().unwrap())
    );
    assert_eq!(c.generation(), 1);
}

#[test]
fn kill_after_checkpoint_kills_once_complete() {
    let (mut c, now) = with_workers(CompConfig::default(), 1);
    c.command(1, Command::Checkpoint(CkptMode::KillAfter), now);
    let acts = written(&mut c, 1, now);
    assert_eq!(reply_of(&acts, 1).unwrap().status, CommandStatus::Success);
    assert_eq!(
        acts.last(),
        Some(&Action::Broadcast(vec![1], CoordMsg::Kill))
    );
}

#[test]
fn checkpoint_fails_on_error_or_death() {
    let (mut c, now) = with_workers(CompConfig::default(), 2);
    c.command(1, Command::Checkpoint(CkptMode::Blocking), now);
    let acts = c.message(
        2,
        WorkerMsg::CkptFailed {
            error: "disk full".into(),
        },
        now,
    );
    let r = reply_of(&acts, 1).unwrap();
    assert_eq!(r.status, CommandStatus::Failed);
    assert!(r.message.unwrap().contains("disk full"));
    assert!(r.last_checkpoint.is_none());

    let (mut c, now) = with_workers(CompConfig::default(), 2);
    c.command(1, Command::Checkpoint(CkptMode::KillAfter), now);
    c.message(1, barrier("SUSPENDED"), now);
    assert!(released(&c.message(2, barrier("SUSPENDED"), now)).is_some());
    written(&mut c, 1, now);
    let acts = c.disconnect(2, now);
    assert_eq!(reply_of(&acts, 1).unwrap().status, CommandStatus::Failed);
    // A failed kill-after checkpoint does not kill.
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::Broadcast(_, CoordMsg::Kill)))
    );
}

#[test]
fn checkpoint_needs_running_peers() {
    let mut c = Computation::new(CompConfig::default(), now0());
    let r = reply_of(
        &c.command(1, Command::Checkpoint(CkptMode::Async), now0()),
        1,
    )
    .unwrap();
    assert_eq!(r.status, CommandStatus::NoPeers);
    let (mut c, now) = with_workers(CompConfig::default(), 2);
    c.message(2, WorkerMsg::State(WorkerState::Suspended), now);
    let r = reply_of(&c.command(1, Command::Checkpoint(CkptMode::Async), now), 1).unwrap();
    assert_eq!(r.status, CommandStatus::NotRunning);
    assert!(!r.running);
}

#[test]
fn interval_timer_fires_and_rearms_after_completion() {
    let cfg = CompConfig {
        interval: Some(10),
        ..CompConfig::default()
    };
    let (mut c, now) = with_workers(cfg, 1);
    assert!(c.tick(later(now, 9)).is_empty());
    let acts = c.tick(later(now, 10));
    assert!(
        matches!(&acts[..], [Action::Broadcast(_, CoordMsg::DoCheckpoint(o))] if o.generation == 1)
    );
    // Nothing more while it is in flight.
    assert!(c.tick(later(now, 25)).is_empty());
    written(&mut c, 1, later(now, 30));
    assert!(c.tick(later(now, 39)).is_empty());
    assert!(!c.tick(later(now, 40)).is_empty());
}

#[test]
fn interval_comes_from_first_worker_unless_fixed_and_commands_change_it() {
    let now = now0();
    let mut c = Computation::new(CompConfig::default(), now);
    let mut h = worker(1);
    if let Joining::Worker(w) = &mut h {
        w.interval = Some(5);
    }
    assert_eq!(c.join(1, h.clone(), "h".into(), now).unwrap().interval, 5);
    assert!(!c.tick(later(now, 5)).is_empty());

    let mut c = Computation::new(
        CompConfig {
            interval: Some(60),
            ..CompConfig::default()
        },
        now,
    );
    assert_eq!(c.join(1, h, "h".into(), now).unwrap().interval, 60);
    let r = reply_of(&c.command(9, Command::SetInterval(0), now), 9).unwrap();
    assert_eq!(r.interval, 0);
    assert!(c.tick(later(now, 1000)).is_empty());
}

#[test]
fn exit_on_last_and_stale_and_timeout() {
    let cfg = CompConfig {
        exit_on_last: true,
        ..CompConfig::default()
    };
    let (mut c, now) = with_workers(cfg, 2);
    assert!(c.disconnect(1, now).is_empty());
    assert_eq!(
        c.disconnect(2, now),
        vec![Action::Exit(ExitReason::LastPeerLeft)]
    );

    let cfg = CompConfig {
        stale_timeout: Some(Duration::from_secs(100)),
        ..CompConfig::default()
    };
    let (mut c, now) = with_workers(cfg, 1);
    assert!(
        c.tick(later(now, 500)).is_empty(),
        "not stale while a peer is there"
    );
    c.disconnect(1, later(now, 500));
    assert!(c.tick(later(now, 599)).is_empty());
    assert_eq!(
        c.tick(later(now, 600)),
        vec![Action::Exit(ExitReason::StaleTimeout)]
    );

    let cfg = CompConfig {
        timeout: Some(Duration::from_secs(3)),
        ..CompConfig::default()
    };
    let (mut c, now) = with_workers(cfg, 1);
    assert_eq!(
        c.tick(later(now, 3)),
        vec![Action::Exit(ExitReason::Timeout)]
    );
    assert!(c.tick(later(now, 4)).is_empty(), "exit is reported once");
}

#[test]
fn list_status_kill_and_quit() {
    let (mut c, now) = with_workers(CompConfig::default(), 2);
    c.message(2, barrier("X"), now);
    c.message(
        2,
        WorkerMsg::Exec {
            progname: "newprog".into(),
        },
        now,
    );
    let r = reply_of(&c.command(1, Command::List, now), 1).unwrap();
    assert_eq!(r.workers.len(), 2);
    assert_eq!(
        (r.workers[1].number, r.workers[1].progname.as_str()),
        (2, "newprog")
    );
    assert_eq!(r.workers[1].barrier.as_deref(), Some("X"));
    assert_eq!(r.workers[0].virtual_pid, 40000);
    let r = reply_of(&c.command(2, Command::Status, now), 2).unwrap();
    assert!(r.workers.is_empty() && r.running && r.num_peers == 2);
    let acts = c.command(3, Command::Kill, now);
    assert_eq!(acts[0], Action::Broadcast(vec![1, 2], CoordMsg::Kill));
    let acts = c.command(4, Command::Quit, now);
    assert_eq!(acts.last(), Some(&Action::Exit(ExitReason::Quit)));
}

#[test]
fn leaving_removes_the_peer_and_a_new_computation_starts_fresh() {
    let (mut c, now) = with_workers(CompConfig::default(), 1);
    let first = c.comp_id();
    assert_eq!(
        c.message(1, WorkerMsg::Leaving, now),
        vec![Action::Disconnect(1)]
    );
    assert_eq!(c.num_peers(), 0);
    let a = c.join(2, worker(9), "h".into(), later(now, 1)).unwrap();
    assert_ne!(Some(a.comp_id), first);
    assert_eq!(a.virtual_pid, 40000);
}

#[test]
fn running_follows_every_state_change() {
    let (mut c, now) = with_workers(CompConfig::default(), 3);
    let state = |c: &mut Computation, conn, s| {
        c.message(conn, WorkerMsg::State(s), now);
    };
    state(&mut c, 1, WorkerState::Suspended);
    state(&mut c, 1, WorkerState::Checkpointed);
    assert!(!c.running());
    state(&mut c, 1, WorkerState::Running);
    state(&mut c, 1, WorkerState::Running);
    assert!(c.running(), "a repeated RUNNING does not count twice");
    state(&mut c, 2, WorkerState::PreSuspend);
    assert!(!c.running());
    // The one peer that was not running leaves: the rest all run.
    c.disconnect(2, now);
    assert!(c.running());
    let r = reply_of(&c.command(1, Command::Checkpoint(CkptMode::Async), now), 1).unwrap();
    assert_eq!(r.status, CommandStatus::Success);
}

#[test]
fn progress_is_summed_and_phases_keep_the_longest() {
    let (mut c, now) = with_workers(CompConfig::default(), 2);
    c.command(7, Command::Checkpoint(CkptMode::Blocking), now);
    let progress = |done, total| WorkerMsg::CkptProgress { done, total };
    c.message(1, progress(10, 100), now);
    c.message(2, progress(30, 300), now);
    c.message(1, progress(60, 100), now);
    let acts = c.command(8, Command::Status, now);
    let p = reply_of(&acts, 8)
        .unwrap()
        .progress
        .expect("a checkpoint is under way");
    assert_eq!(
        (p.generation, p.done, p.total, p.processes_done, p.processes),
        (1, 90, 400, 0, 2)
    );
    let phases = |s, w| CkptPhases {
        suspend_us: s,
        drain_us: 5,
        write_us: w,
        sync_us: 7,
        resume_us: 1,
    };
    c.message(1, WorkerMsg::CkptPhases(phases(100, 2_000)), now);
    c.message(2, WorkerMsg::CkptPhases(phases(300, 1_000)), now);
    written(&mut c, 1, now);
    let acts = written(&mut c, 2, later(now, 1));
    let r = reply_of(&acts, 7).expect("the blocking checkpoint is answered");
    let last = r.last_checkpoint.expect("summary");
    assert_eq!(last.phases, Some(phases(300, 2_000)));
    assert_eq!(r.progress, None, "nothing under way after the checkpoint");
    // Phases from a process outside a checkpoint are ignored.
    c.message(1, WorkerMsg::CkptPhases(phases(9_999, 9_999)), now);
    let acts = c.command(9, Command::Status, now);
    let r = reply_of(&acts, 9).unwrap();
    assert_eq!(r.last_checkpoint.unwrap().phases, Some(phases(300, 2_000)));
}

#[test]
fn a_process_that_exits_before_it_is_suspended_leaves_the_checkpoint() {
    let (mut c, now) = with_workers(CompConfig::default(), 3);
    c.command(9, Command::Checkpoint(CkptMode::Blocking), now);
    c.message(1, barrier("SUSPENDED"), now);
    // A short-lived child (system()'s shell) exits before reaching the first barrier.
    let acts = c.disconnect(3, now);
    assert!(reply_of(&acts, 9).is_none(), "the checkpoint goes on");
    let (to, _, n) = released(&c.message(2, barrier("SUSPENDED"), now)).unwrap();
    assert_eq!((to, n), (vec![1, 2], 2));
    written(&mut c, 1, now);
    let r = reply_of(&written(&mut c, 2, now), 9).unwrap();
    assert_eq!(r.status, CommandStatus::Success);
    assert_eq!(r.last_checkpoint.unwrap().images.len(), 2);

    // Once suspended, losing a process fails the checkpoint: its state is not in any image.
    let (mut c, now) = with_workers(CompConfig::default(), 2);
    c.command(9, Command::Checkpoint(CkptMode::Blocking), now);
    c.message(1, barrier("SUSPENDED"), now);
    let acts = c.disconnect(1, now);
    assert_eq!(reply_of(&acts, 9).unwrap().status, CommandStatus::Failed);
}

#[test]
fn a_checkpoint_starts_without_the_previous_cycles_runtime_keys() {
    let (mut c, now) = with_workers(CompConfig::default(), 2);
    c.kv.apply("dmtcp:sockets", b"1:end:x", KvOp::Set(b"7".to_vec()))
        .unwrap();
    c.kv.apply("dmtcp:ckpt", b"failed:1", KvOp::IncrBy(1))
        .unwrap();
    c.kv.apply("plugin:mine", b"k", KvOp::Set(b"v".to_vec()))
        .unwrap();
    c.command(1, Command::Checkpoint(CkptMode::Async), now);
    assert_eq!(c.kv.apply("dmtcp:sockets", b"1:end:x", KvOp::Get), Ok(None));
    assert_eq!(c.kv.apply("dmtcp:ckpt", b"failed:1", KvOp::Get), Ok(None));
    assert_eq!(
        c.kv.apply("plugin:mine", b"k", KvOp::Get),
        Ok(Some(b"v".to_vec()))
    );
    assert_eq!(c.kv.len(), 1);
}
