//! Long runs against a real node: hundreds of frames of every view, the node's
//! memory watched all along. A monitor that harms its node does it slowly (a
//! heap that grows a little each frame), so only many frames show it.

use crate::util::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Frames per view, at 0.1 s.
const FRAMES: usize = 200;

/// How far above its baseline the node's memory may go while watched.
const MAX_GROWTH_BYTES: i64 = 64 << 20;

/// What must be the same on the node after etop's sessions as before them.
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    processes: i64,
    atoms: i64,
    /// scheduler_wall_time (`undefined` while off) and the sum of the
    /// microstate accounting counters.
    flags: String,
}

fn footprint(node: &Node) -> Footprint {
    Footprint {
        processes: node.eval_i64("erlang:system_info(process_count)"),
        atoms: node.eval_i64("erlang:system_info(atom_count)"),
        // The accounting counters only move while the flag is on.
        flags: node.eval(
            "{erlang:statistics(scheduler_wall_time), \
              case erlang:statistics(microstate_accounting) of \
                undefined -> undefined; \
                Ts -> lists:sum([lists:sum(maps:values(C)) || #{counters := C} <- Ts]) \
              end}",
        ),
    }
}

/// The views, each with its own node name so that a second round of sessions
/// presents the same names to the node as the first.
fn views() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("soak_reds", vec!["-s", "reductions"]),
        ("soak_msgq", vec!["-s", "msgq"]),
        ("soak_mem", vec!["-s", "memory"]),
        ("soak_ports", vec!["ports"]),
        ("soak_ets", vec!["ets"]),
    ]
}

fn session(node: &Node, name: &str, view: &[&str], frames: usize) -> crate::util::Running {
    let mut args: Vec<String> = view.iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            "-b",
            "-i",
            "0.1",
            "-n",
            &frames.to_string(),
            "--format",
            "json",
            "--name",
            name,
            &node.full,
        ]
        .map(String::from),
    );
    etop(args).cookie_env(&node.cookie).spawn()
}

fn json_frames(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): '{l}'\n{out}")))
        .collect()
}

/// Polls `f` until it holds or `timeout` passes; the agents exit when their
/// connection closes, a moment after etop does.
fn settle(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_view_runs_hundreds_of_frames_and_leaves_the_node_as_it_was() {
    let node = Node::start(NodeOpts {
        idle: 300,
        flood_per_sec: 200,
        ets_rows_per_sec: 20,
        udp_per_sec: 20,
        seconds: 600,
        ..NodeOpts::default()
    });
    // A first round creates what every session shares on the node for good:
    // the atoms of the agent's source and of our node names (and the VM's own
    // allocator names, made by the first erlang:memory/0 on a node). It must
    // be a fixed set, which the second round checks.
    let _ = footprint(&node);
    let before_first = footprint(&node);
    let first: Vec<Output> = views()
        .iter()
        .map(|(name, view)| session(&node, name, view, 2))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|r| r.wait(crate::util::ETOP_TIMEOUT))
        .collect();
    for out in &first {
        assert_eq!(out.code, Some(0), "{out}");
    }
    assert!(
        settle(Duration::from_secs(10), || footprint(&node).processes
            == before_first.processes),
        "agents left behind after the first round: {:?} -> {:?}",
        before_first,
        footprint(&node)
    );
    let baseline = footprint(&node);
    let first_atoms = baseline.atoms - before_first.atoms;
    let base_mem = node.eval_i64("erlang:memory(total)");

    let mut running: Vec<crate::util::Running> = views()
        .iter()
        .map(|(name, view)| session(&node, name, view, FRAMES))
        .collect();
    let started = Instant::now();
    let mut peak = base_mem;
    let mut samples = 0;
    while started.elapsed() < Duration::from_secs(240) && running.iter_mut().any(|r| r.is_running())
    {
        peak = peak.max(node.eval_i64("erlang:memory(total)"));
        samples += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let outs: Vec<Output> = running
        .into_iter()
        .map(|r| r.wait(Duration::from_secs(300)))
        .collect();
    for ((name, _), out) in views().iter().zip(&outs) {
        assert_eq!(out.code, Some(0), "{name}: {out}");
        let frames = json_frames(out);
        assert_eq!(frames.len(), FRAMES, "{name}: {out}");
        let heap = |f: &Value| {
            f.get("header")
                .unwrap_or(f)
                .get("agent_heap_bytes")
                .or_else(|| f.get("agent_heap_bytes"))
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("{name}: no agent_heap_bytes in {f}"))
        };
        // The heap a frame needs does not creep up frame after frame.
        let early = heap(&frames[10]);
        let late = heap(&frames[FRAMES - 1]);
        assert!(
            late <= early * 2 + (1 << 20),
            "{name}: the agent's heap grew from {early} to {late} bytes over {FRAMES} frames"
        );
    }
    assert!(samples > 10, "memory sampled only {samples} times");
    assert!(
        peak - base_mem <= MAX_GROWTH_BYTES,
        "the node's memory grew by {} MB while watched (baseline {} MB, peak {} MB)",
        (peak - base_mem) >> 20,
        base_mem >> 20,
        peak >> 20
    );
    assert!(
        settle(Duration::from_secs(10), || footprint(&node) == baseline),
        "the node is not as it was: before {baseline:?}, after {:?} \
         (the first sessions ever created {first_atoms} atoms)",
        footprint(&node)
    );
    node.disconnect();
}

/// A frame that needs more heap than the ceiling is stopped by the VM: etop
/// says so in one line and exits 6, and the node goes on as before.
#[test]
fn a_frame_over_the_heap_ceiling_is_stopped_and_the_node_is_untouched() {
    let node = Node::start(NodeOpts {
        idle: 20_000,
        ..NodeOpts::default()
    });
    let _ = footprint(&node);
    let before = footprint(&node);
    let out = etop(["--once", "-i", "0.2", "--agent-max-heap", "1", &node.full])
        .cookie_env(&node.cookie)
        .run();
    assert_eq!(out.code, Some(6), "{out}");
    let line = crate::util::single_error_line(&out);
    assert!(
        line.contains("needs more than 1 MB of heap") && line.contains("--agent-max-heap"),
        "{out}"
    );
    assert!(
        settle(Duration::from_secs(10), || footprint(&node).processes
            == before.processes),
        "processes left behind: {before:?} -> {:?}",
        footprint(&node)
    );
    // The default ceiling, scaled with the node, lets the same frame through.
    let out = etop(["--once", "-i", "0.2", "--format", "json", &node.full])
        .cookie_env(&node.cookie)
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let frame = &json_frames(&out)[0];
    let heap = frame["header"]["agent_heap_bytes"].as_u64().unwrap_or(0);
    let limit = frame["header"]["agent_heap_limit_bytes"]
        .as_u64()
        .unwrap_or(0);
    assert!(heap > 0 && heap < limit, "{frame}");
    node.disconnect();
}

/// Another tool looking at the node can tell etop's agent for what it is.
#[test]
fn a_second_etop_sees_the_first_ones_agent_by_name() {
    let node = Node::start(NodeOpts::default());
    let mut first = etop(["-b", "-i", "0.2", "-n", "100", &node.full])
        .cookie_env(&node.cookie)
        .spawn();
    first.wait_for_line(crate::util::ETOP_TIMEOUT, |l| l.contains("Pid"));
    let out = etop([
        "--once", "-i", "0.2", "-s", "memory", "-l", "1000", "--format", "csv", &node.full,
    ])
    .cookie_env(&node.cookie)
    .run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.lines().any(|l| l.contains("etop:agent/0")),
        "no row names etop's agent:\n{out}"
    );
    first.stop();
    node.disconnect();
}

#[test]
fn target_state_is_restored() {
    let node = Node::start(NodeOpts::default());
    const SWT: &str = "erlang:statistics(scheduler_wall_time)";
    // The harness's own connection stays open throughout, so its processes
    // are counted before and after alike.
    let before = node.eval_i64("length(erlang:processes())");
    assert_eq!(node.eval(SWT), "'undefined'", "the flag is on before etop");

    // A polite exit: etop stops its agent.
    etop(["--once", "-i", QUICK, &node.full])
        .cookie_env(&node.cookie)
        .run()
        .success();
    assert_restored(&node, before, "after etop --once");

    // While etop runs, its agent holds the flag: this is what the checks
    // above would catch if it were left behind.
    let mut run = etop(["-i", "1", "--batch", &node.full])
        .cookie_env(&node.cookie)
        .spawn();
    run.wait_for_line(Duration::from_secs(20), |l| l.starts_with("Pid "));
    assert_ne!(
        node.eval(SWT),
        "'undefined'",
        "scheduler_wall_time is off while etop runs"
    );
    let during = node.eval_i64("length(erlang:processes())");
    assert!(
        during > before,
        "no agent process while etop runs ({during} <= {before})"
    );

    // A hard exit: SIGKILL gives etop no chance to clean up; the agent's link
    // to the connection must.
    let out = run.stop();
    assert_eq!(out.code, None, "etop was not killed by the signal\n{out}");
    assert_restored(&node, before, "after etop was killed");

    // SIGTERM (a service manager, `timeout`) is a normal way to end a batch
    // run: exit 0, agent gone.
    let mut run = etop(["-i", "1", "--batch", &node.full])
        .cookie_env(&node.cookie)
        .spawn();
    run.wait_for_line(Duration::from_secs(20), |l| l.starts_with("Pid "));
    assert_ne!(node.eval(SWT), "'undefined'", "etop's agent did not start");
    let asked = Instant::now();
    run.signal(libc::SIGTERM);
    let out = run.wait(crate::util::ETOP_TIMEOUT);
    assert_eq!(out.code, Some(0), "SIGTERM is a clean stop\n{out}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "etop took {:.1} s to stop after SIGTERM\n{out}",
        asked.elapsed().as_secs_f64()
    );
    assert_restored(&node, before, "after etop got SIGTERM");
}

#[test]
fn ports_ets_and_msacc_leave_the_node_as_it_was() {
    let node = Node::start(NodeOpts {
        udp_per_sec: 200,
        ets_rows_per_sec: 200,
        ..quiet()
    });
    wait_until(
        Duration::from_secs(10),
        "the demo's UDP and ETS run",
        || {
            node.eval("{erlang:whereis(metrics_exporter), ets:info(demo_cache, size)}")
                .matches("undefined")
                .count()
                == 0
        },
    );
    // The harness's connection stays open, so its processes count alike
    // before and after.
    let before = node.eval_i64("length(erlang:processes())");

    // While a view runs, its agent is there: what the checks below would see
    // if it were left behind.
    let mut run = etop(["ports", "-i", QUICK, "--batch", &node.full])
        .cookie_env(&node.cookie)
        .spawn();
    run.wait_for_line(Duration::from_secs(20), |l| l.starts_with("Port "));
    let during = node.eval_i64("length(erlang:processes())");
    assert!(
        during > before,
        "no agent while etop runs ({during} <= {before})"
    );
    run.signal(libc::SIGTERM);
    let out = run.wait(crate::util::ETOP_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    assert_restored(&node, before, "after etop ports got SIGTERM");

    for args in [
        vec!["ports", "--once", "-i", QUICK],
        vec!["ets", "--once", "-i", QUICK],
        // The guard process goes too.
        vec!["msacc", "--duration", QUICK],
    ] {
        let out = etop(args.iter().chain(&[node.full.as_str()]))
            .cookie_env(&node.cookie)
            .run()
            .success();
        assert_restored(&node, before, &out.cmdline);
    }
}
