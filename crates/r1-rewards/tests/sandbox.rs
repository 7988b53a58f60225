//! The code sandbox under attack. Every run must return within its wall-clock limit plus a
//! small slack, leave no process behind and nothing in the host's `/tmp` or `/dev/shm`, and
//! the host must keep running: fork bombs, loops, sleeps, detached (`setsid`) and double-forked
//! children, children holding stdout open, gigabytes of output, huge allocations, file
//! descriptor exhaustion, signals aimed at the parent, reads of other processes' environments,
//! network connections, writes outside the sandbox and oversized files. The code reward scores
//! tests and stdin/stdout cases.

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use r1_rewards::code::{CodeReward, Limits, Outcome, Sandbox, Scoring, extract_code};
use r1_rewards::{Reward, RewardInput, RewardSet};
use serde_json::json;

const WALL: Duration = Duration::from_secs(4);
/// What a loaded 2-core CI machine may add to a run's wall-clock limit.
const SLACK: Duration = Duration::from_secs(3);

fn limits() -> Limits {
    Limits {
        cpu_seconds: 2,
        wall: WALL,
        memory_bytes: 512 << 20,
        max_processes: 32,
        max_file_bytes: 1 << 20,
        max_output_bytes: 64 << 10,
    }
}

fn sandbox() -> Sandbox {
    Sandbox::new("python3", limits()).expect("python3 is available")
}

fn host_still_runs() {
    let out = std::process::Command::new("python3")
        .args(["-c", "print(6 * 7)"])
        .output()
        .expect("host spawn");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
}

/// A marker no other process on the machine has in its command line.
fn marker() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "r1-sandbox-marker-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Python that replaces the current process by a 10-minute sleeper carrying `marker` in its
/// command line, so that the host can look for it afterwards.
fn linger(marker: &str) -> String {
    format!(
        "os.execv(sys.executable, [sys.executable, '-c', 'import time\\ntime.sleep(600)', '{marker}'])"
    )
}

/// Host processes whose command line contains `marker`.
fn survivors(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(marker)
        {
            found.push(pid);
        }
    }
    found
}

/// Runs `code`, checks the time bound, that nothing carrying `marker` survives (where the
/// machine gives each run a PID namespace) and that the host still runs.
fn run_attack(s: &Sandbox, code: &str, marker: &str) -> Outcome {
    let t = Instant::now();
    let out = s.run(code, "").expect("run");
    let took = t.elapsed();
    assert!(took < WALL + SLACK, "took {took:?}: {out:?}");
    if s.isolation().pid_namespace {
        let left = survivors(marker);
        assert!(left.is_empty(), "processes of the run survived: {left:?}");
    } else {
        eprintln!("no PID namespace on this machine (the sandbox warns): survival not checked");
        for pid in survivors(marker) {
            // SAFETY: killing a leftover test process by pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
    host_still_runs();
    out
}

#[test]
fn this_machine_has_the_namespaces() {
    // CI runs as root on Linux: the full protection must be in force there, so that the
    // survival checks below are not skipped silently.
    let s = sandbox();
    let iso = s.isolation();
    eprintln!("isolation: {iso:?}; missing: {:?}", iso.missing());
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(iso.missing().is_empty(), "{iso:?}");
    }
}

#[test]
fn setsid_and_sleep_does_not_outlive_the_run() {
    let s = sandbox();
    let m = marker();
    let code = format!(
        "import os, sys\nif os.fork() == 0:\n    os.setsid()\n    {}\nprint('parent done')\n",
        linger(&m)
    );
    let out = run_attack(&s, &code, &m);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), "parent done");
}

#[test]
fn double_fork_does_not_outlive_the_run() {
    let s = sandbox();
    let m = marker();
    let code = format!(
        "import os, sys\nif os.fork() == 0:\n    if os.fork() == 0:\n        os.setsid()\n        {}\n    os._exit(0)\nos.wait()\nprint('ok')\n",
        linger(&m)
    );
    let out = run_attack(&s, &code, &m);
    assert!(out.success(), "{out:?}");
}

#[test]
fn a_child_holding_stdout_open_does_not_stall_the_run() {
    let s = sandbox();
    let m = marker();
    // The child keeps stdout and stderr (inherited) and sleeps; the parent exits at once.
    let code = format!(
        "import os, sys\nif os.fork() == 0:\n    {}\nprint('answer', flush=True)\n",
        linger(&m)
    );
    let t = Instant::now();
    let out = run_attack(&s, &code, &m);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), "answer");
    if s.isolation().pid_namespace {
        assert!(
            t.elapsed() < WALL,
            "waited for the child: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn gigabytes_on_stdout_are_cut_off() {
    let s = sandbox();
    let m = marker();
    let code =
        "import sys\nb = b'x' * (1 << 20)\nfor _ in range(4096):\n    sys.stdout.buffer.write(b)\n";
    let out = run_attack(&s, code, &m);
    assert!(out.output_limited && !out.success(), "{:?}", out.code);
    assert!(out.stdout.len() <= limits().max_output_bytes);
    let code = "import sys\nb = 'y' * (1 << 20)\nfor _ in range(4096):\n    sys.stderr.write(b)\n";
    let out = run_attack(&s, code, &m);
    assert!(out.output_limited && !out.success());
    assert!(out.stderr.len() <= limits().max_output_bytes);
}

#[test]
fn tmp_and_shm_are_private_to_the_run() {
    let s = sandbox();
    if !s.isolation().private_tmp {
        eprintln!("no private /tmp on this machine (the sandbox warns): check does not apply");
        return;
    }
    let name = marker();
    let paths: Vec<String> = ["/tmp", "/dev/shm", "/var/tmp"]
        .iter()
        .filter(|d| std::path::Path::new(d).is_dir())
        .map(|d| format!("{d}/{name}"))
        .collect();
    let code = format!(
        "import os\nfor p in {paths:?}:\n    open(p, 'w').write('x')\n    assert open(p).read() == 'x'\nprint(sorted(os.listdir('/tmp')))\n"
    );
    let out = run_attack(&s, &code, &name);
    assert!(out.success(), "{out:?}");
    // The run sees an empty /tmp of its own (its script and the marker only).
    assert!(!out.stdout.contains("r1-sandbox/"), "{}", out.stdout);
    for p in &paths {
        assert!(
            !std::path::Path::new(p).exists(),
            "{p} is visible on the host"
        );
    }
    // And the next run starts empty again.
    let code = format!("import os\nprint(any(os.path.exists(p) for p in {paths:?}))\n");
    let out = s.run(&code, "").expect("run");
    assert_eq!(out.stdout.trim(), "False", "{out:?}");
}

#[test]
fn other_processes_environments_are_out_of_reach() {
    let s = sandbox();
    let secret = marker();
    let mut host = std::process::Command::new("sleep")
        .arg("30")
        .env("R1_SANDBOX_SECRET", &secret)
        .spawn()
        .expect("spawn a host process");
    let code = format!(
        "import os\nleak = False\nfor p in [str({host_pid}), str({me})] + os.listdir('/proc'):\n    try:\n        if '{secret}' in open('/proc/%s/environ' % p, errors='replace').read():\n            leak = True\n    except Exception:\n        pass\nprint('LEAK' if leak else 'sealed')\nprint(len([d for d in os.listdir('/proc') if d.isdigit()]))\n",
        host_pid = host.id(),
        me = std::process::id(),
    );
    let out = run_attack(&s, &code, &secret);
    let _ = host.kill();
    let _ = host.wait();
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.starts_with("sealed"), "{}", out.stdout);
    if s.isolation().private_proc {
        // Only the run's own processes are listed.
        let n: usize = out
            .stdout
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or(99);
        assert!(n <= 2, "{} processes visible", n);
    }
}

#[test]
fn exhausting_file_descriptors_stays_inside() {
    let s = sandbox();
    let m = marker();
    let code = "fs = []\ntry:\n    while True:\n        fs.append(open('/dev/null'))\nexcept OSError:\n    pass\nprint(len(fs))\n";
    let out = run_attack(&s, code, &m);
    assert!(out.success(), "{out:?}");
    let n: usize = out.stdout.trim().parse().expect("a count");
    assert!(n < 64, "{n} files opened");
}

#[test]
fn signalling_the_parent_reaches_nothing_outside() {
    let s = sandbox();
    let m = marker();
    let code = format!(
        "import os, signal\nfor pid in [os.getppid(), {host}, -1, 1]:\n    try:\n        os.kill(pid, signal.SIGKILL)\n    except Exception:\n        pass\nos.killpg(0, signal.SIGKILL)\n",
        host = std::process::id()
    );
    // Python is the namespace's init, which ignores signals from inside its namespace, and
    // nothing outside is visible: the run may even finish normally. What matters is that the
    // host is untouched (this test process is still here) and the sandbox keeps working.
    run_attack(&s, &code, &m);
    let out = s.run("print('alive')", "").expect("run");
    assert_eq!(out.stdout.trim(), "alive");
}

#[test]
fn a_fork_bomb_does_not_starve_a_parallel_run() {
    let s = sandbox();
    let m = marker();
    let bomb = std::thread::scope(|scope| {
        let bomb = scope.spawn(|| {
            run_attack(
                &s,
                "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                &m,
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        let calm = s.run("print(sum(range(10)))", "").expect("run");
        assert!(calm.success(), "{calm:?}");
        assert_eq!(calm.stdout.trim(), "45");
        bomb.join().expect("bomb thread")
    });
    assert!(!bomb.success());
}

#[test]
fn many_runs_in_parallel_all_succeed() {
    let s = sandbox();
    let outs: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let s = &s;
                scope.spawn(move || s.run(&format!("print({i} * 2)"), "").expect("run"))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    for (i, out) in outs.iter().enumerate() {
        assert!(out.success(), "{out:?}");
        assert_eq!(out.stdout.trim(), (i * 2).to_string());
    }
}

#[test]
fn ordinary_code_runs_and_reads_stdin() {
    let s = sandbox();
    let out = s
        .run(
            "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))",
            "1 2 3",
        )
        .expect("run");
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), "6");
    let out = s.run("raise SystemExit(3)", "").expect("run");
    assert_eq!(out.code, Some(3));
}

#[test]
fn fork_bomb_is_contained() {
    let s = sandbox();
    let m = marker();
    let code = format!(
        "import os, sys\nwhile True:\n    try:\n        if os.fork() == 0:\n            {}\n    except OSError:\n        pass\n",
        linger(&m)
    );
    let out = run_attack(&s, &code, &m);
    assert!(!out.success());
}

#[test]
fn infinite_loop_is_stopped() {
    let s = sandbox();
    let m = marker();
    let out = run_attack(&s, "while True:\n    pass\n", &m);
    assert!(!out.success());
    // The CPU limit ends it by a signal, before the wall clock.
    assert!(out.signal.is_some() && !out.timed_out, "{out:?}");
    // Sleeping uses no CPU: the wall clock stops it.
    let out = run_attack(&s, "import time\ntime.sleep(60)\n", &m);
    assert!(out.timed_out && !out.success());
}

#[test]
fn huge_allocation_fails() {
    let out = sandbox()
        .run("x = bytearray(8 * 1024**3)\nprint('allocated')\n", "")
        .expect("run");
    assert!(!out.success());
    assert!(!out.stdout.contains("allocated"));
    assert!(out.stderr.contains("MemoryError"), "{}", out.stderr);
    host_still_runs();
}

#[test]
fn network_is_unreachable() {
    let s = sandbox();
    if !s.isolation().network {
        eprintln!(
            "network namespaces are not available on this machine: the sandbox says so and this check does not apply"
        );
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let code = format!(
        "import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))\nprint('connected')\n"
    );
    let out = s.run(&code, "").expect("run");
    assert!(
        !out.success() && !out.stdout.contains("connected"),
        "{out:?}"
    );
    let mut buf = [0u8; 1];
    match listener.accept() {
        Ok((mut conn, _)) => panic!("the sandbox reached the host: {:?}", conn.read(&mut buf)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
    }
}

#[test]
fn writes_outside_the_sandbox_fail() {
    let s = sandbox();
    let outside = std::env::temp_dir().join(format!("r1-outside-{}", std::process::id()));
    std::fs::create_dir_all(&outside).expect("mkdir");
    let target = outside.join("pwned.txt");
    let code = format!("open({:?}, 'w').write('x')\n", target.display().to_string());
    let out = s.run(&code, "").expect("run");
    if s.isolation().unprivileged_user {
        assert!(!out.success(), "{out:?}");
        assert!(!target.exists(), "the sandbox wrote outside its directory");
    } else {
        eprintln!(
            "not root: sandboxed code runs as this user (the sandbox says so); write isolation does not apply"
        );
    }
    // Inside its own directory it may write, within the file-size limit.
    let out = s
        .run(
            "open('ok.txt', 'w').write('fine')\nprint(open('ok.txt').read())",
            "",
        )
        .expect("run");
    assert!(out.success() && out.stdout.trim() == "fine", "{out:?}");
    let out = s
        .run("open('big.bin', 'wb').write(b'0' * (8 << 20))", "")
        .expect("run");
    assert!(!out.success(), "file-size limit");
    let _ = std::fs::remove_dir_all(&outside);
    host_still_runs();
}

#[test]
fn code_reward_scores_tests_and_cases() {
    let reward = CodeReward::new(sandbox(), Scoring::Fraction);
    let add = "Here:\n```python\ndef add(a, b):\n    return a + b\n```\n";
    let wrong = "```python\ndef add(a, b):\n    return abs(a) + b\n```";
    let tests = json!({"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 5"]});
    let mk = |c: &str, m: &serde_json::Value| RewardInput {
        completion: c.into(),
        metadata: m.as_object().cloned().unwrap_or_default(),
        ..RewardInput::default()
    };
    let io = json!({"test_cases": [{"input": "2 3\n", "output": "5\n"}, {"input": "1 1", "output": "2"}]});
    let echo = "```python\na, b = map(int, input().split())\nprint(a + b)\n```";
    let scores = reward
        .score(&[
            mk(add, &tests),
            mk(wrong, &tests),
            mk("no code", &tests),
            mk(add, &json!({})),
            mk(echo, &io),
        ])
        .expect("score");
    assert_eq!(scores[0], Some(2.0 / 3.0));
    assert_eq!(scores[1], Some(1.0 / 3.0)); // only add(1, 2) == 3 holds for abs(a) + b
    assert_eq!(scores[2], Some(0.0));
    assert_eq!(scores[3], None);
    assert_eq!(scores[4], Some(1.0));
    assert_eq!(
        extract_code("```\nplain\n```\n```py\nlast\n```").as_deref(),
        Some("last\n")
    );
}

#[test]
fn code_reward_from_toml() {
    let set = RewardSet::from_toml_str(
        "[[reward]]\nname = \"tests\"\nkind = \"code\"\nscoring = \"all\"\ntimeout_s = 5\n",
        std::path::Path::new("r.toml"),
    )
    .expect("config");
    let input = RewardInput {
        completion: "```python\nprint('hi')\n```".into(),
        metadata: json!({"test_cases": [{"input": "", "output": "hi"}]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..RewardInput::default()
    };
    assert_eq!(
        set.score(&[input]).expect("score").values[0],
        vec![Some(1.0)]
    );
    let e = RewardSet::from_toml_str(
        "[[reward]]\nname = \"t\"\nkind = \"code\"\nscoring = \"most\"\n",
        std::path::Path::new("r.toml"),
    )
    .expect_err("bad scoring")
    .to_string();
    assert!(e.contains("scoring"), "{e}");
}
