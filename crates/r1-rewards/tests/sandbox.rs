//! The code sandbox under attack: a fork bomb, an infinite loop, a huge allocation, a network
//! connection and a write outside the sandbox must all fail while the host keeps running; and
//! the code reward scores tests and stdin/stdout cases.

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use r1_rewards::code::{CodeReward, Limits, Sandbox, Scoring, extract_code};
use r1_rewards::{Reward, RewardInput, RewardSet};
use serde_json::json;

fn sandbox() -> Sandbox {
    let limits = Limits {
        cpu_seconds: 2,
        wall: Duration::from_secs(4),
        memory_bytes: 512 << 20,
        max_processes: 32,
        max_file_bytes: 1 << 20,
    };
    Sandbox::new("python3", limits).expect("python3 is available")
}

fn host_still_runs() {
    let out = std::process::Command::new("python3")
        .args(["-c", "print(6 * 7)"])
        .output()
        .expect("host spawn");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
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
    let t = Instant::now();
    let out = s.run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", "").expect("run");
    assert!(!out.success());
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t.elapsed()
    );
    host_still_runs();
}

#[test]
fn infinite_loop_is_stopped() {
    let s = sandbox();
    let t = Instant::now();
    let out = s.run("while True:\n    pass\n", "").expect("run");
    assert!(!out.success());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    // Sleeping uses no CPU: the wall clock stops it.
    let t = Instant::now();
    let out = s.run("import time\ntime.sleep(60)\n", "").expect("run");
    assert!(out.timed_out && !out.success());
    assert!(t.elapsed() < Duration::from_secs(10));
    host_still_runs();
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
