//! `weir run` end to end: real processes, a real cache and a real SQLite
//! history, each test in its own project folder and cache.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Project {
    dir: PathBuf,
    cache: PathBuf,
    env: Vec<(String, String)>,
}

impl Project {
    fn new(name: &str, pipeline: &str) -> Project {
        let base = std::env::temp_dir().join(format!("weir-run-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("project");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pipeline.weir"), pipeline).unwrap();
        Project {
            dir,
            cache: base.join("cache"),
            env: Vec::new(),
        }
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
        c.args(args)
            .current_dir(&self.dir)
            .env("XDG_CACHE_HOME", &self.cache)
            .env("NO_COLOR", "1")
            .env("CI", "true")
            .stdin(Stdio::null());
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }
    fn run(&self, extra: &[&str]) -> (Output, Vec<Value>) {
        let mut args = vec![
            "run",
            "--git-branch",
            "main",
            "--git-sha",
            "abc",
            "--log-format",
            "json",
        ];
        args.extend(extra);
        let out = self.cmd(&args).output().unwrap();
        let events = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (out, events)
    }
    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.dir.join(p)).unwrap_or_default()
    }
    fn write(&self, p: &str, text: &str) {
        let path = self.dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished for {step} in {events:#?}"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn interval(p: &Project, name: &str) -> (u128, u128) {
    let t = p.read(&format!("{name}.t"));
    let v: Vec<u128> = t.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (v[0], v[1])
}

const TWO_SLEEPS: &str = r#"pipeline ci {
  step "a" { run: "date +%s%N > a.t; sleep 1; date +%s%N >> a.t", cache: false }
  step "b" { run: "date +%s%N > b.t; sleep 1; date +%s%N >> b.t", cache: false }
}
"#;

#[test]
fn independent_steps_overlap_with_j2_and_not_with_j1() {
    let p = Project::new("overlap", TWO_SLEEPS);
    let (o, _) = p.run(&["-j", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (interval(&p, "a"), interval(&p, "b"));
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "with -j2 the sleeps should overlap: {a:?} {b:?}"
    );
    let (o, _) = p.run(&["-j", "1"]);
    assert!(o.status.success());
    let (a, b) = (interval(&p, "a"), interval(&p, "b"));
    assert!(
        a.1 <= b.0 || b.1 <= a.0,
        "with -j1 the sleeps must not overlap: {a:?} {b:?}"
    );
}

#[test]
fn dependencies_run_in_order_and_outputs_flow() {
    let p = Project::new(
        "order",
        r#"pipeline ci {
  let a = step "a" { run: "mkdir -p out && date +%s%N > a.t && echo built > out/a.txt && date +%s%N >> a.t", outputs: { f: file("out/a.txt") } }
  step "b" { run: "date +%s%N > b.t; cat ${a.f} > b.txt; date +%s%N >> b.t" }
}
"#,
    );
    let (o, _) = p.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(interval(&p, "a").1 <= interval(&p, "b").0);
    assert_eq!(p.read("b.txt"), "built\n");
}

/// The processes whose process group is `pgid`, read from /proc.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces): state ppid pgrp ...
        let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
        if rest
            .split_whitespace()
            .nth(2)
            .and_then(|g| g.parse::<i32>().ok())
            == Some(pgid)
            && pid > 1
        {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn fail_fast_kills_a_running_sibling_and_leaves_no_process() {
    let p = Project::new(
        "failfast",
        r#"pipeline ci {
  step "long" { run: "sleep 60 & echo $! > long.pid; wait" }
  step "bad" { run: "sleep 0.5; exit 3" }
}
"#,
    );
    let (o, ev) = p.run(&["-j", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(finished(&ev, "bad")["status"], "failed");
    assert_eq!(finished(&ev, "long")["status"], "cancelled");
    let pid: i32 = p.read("long.pid").trim().parse().unwrap();
    assert!(!alive(pid), "the sibling's child {pid} survived");
}

#[test]
fn keep_going_runs_independent_steps_and_blocks_dependents() {
    let p = Project::new(
        "keepgoing",
        r#"pipeline ci {
  let bad = step "bad" { run: "exit 1" }
  step "after bad" { run: "true", after: [bad] }
  step "other" { run: "sleep 0.3; touch other.done" }
}
"#,
    );
    let (o, ev) = p.run(&["--keep-going", "-j", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(finished(&ev, "after bad")["status"], "blocked");
    assert!(p.dir.join("other.done").exists());
}

#[test]
fn retries_back_off_and_record_every_attempt() {
    let p = Project::new(
        "retry",
        r#"pipeline ci {
  step "flaky" {
    run: "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; [ $n -ge 3 ]"
    retries: 2
    backoff: 10ms
    cache: false
  }
}
"#,
    );
    let (o, ev) = p.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = finished(&ev, "flaky");
    assert_eq!(f["status"], "succeeded");
    assert_eq!(f["attempt"], 3);
    let starts = ev
        .iter()
        .filter(|e| e["event"] == "step_started" && e["step"] == "flaky")
        .count();
    assert_eq!(starts, 3);
    let show = p.cmd(&["runs", "show", ""]).output().unwrap();
    assert!(String::from_utf8_lossy(&show.stdout).contains("attempts=3"));
}

#[test]
fn a_hung_step_is_killed_at_its_timeout() {
    let p = Project::new(
        "timeout",
        r#"pipeline ci {
  step "hang" { run: "sleep 60 & echo $! > hang.pid; wait", timeout: 1s }
}
"#,
    );
    let (o, ev) = p.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(finished(&ev, "hang")["status"], "timed_out");
    let pid: i32 = p.read("hang.pid").trim().parse().unwrap();
    assert!(!alive(pid));
}

const CHAIN: &str = r#"pipeline ci {
  let gen = step "gen" {
    run: "mkdir -p out && cat src/a.txt src/b.txt > out/all.txt && printf '\\001\\377bin' > out/bin.dat"
    inputs: [dir("src")]
    outputs: { all: file("out/all.txt"), bin: file("out/bin.dat") }
  }
  step "use" { run: "wc -c < ${gen.all} > count.txt", inputs: [gen.all] }
  step "unrelated" { run: "echo other > other.txt", inputs: [file("other/input.txt")] }
}
"#;

#[test]
fn unchanged_rerun_is_fully_cached_and_a_change_reruns_exactly_what_it_affects() {
    let p = Project::new("cache", CHAIN);
    p.write("src/a.txt", "alpha\n");
    p.write("src/b.txt", "beta\n");
    p.write("other/input.txt", "x\n");
    let (o, ev) = p.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        ev.iter()
            .filter(|e| e["event"] == "step_finished")
            .all(|e| e["cached"] == false)
    );
    let original = std::fs::read(p.dir.join("out/bin.dat")).unwrap();
    let (o, ev) = p.run(&[]);
    assert!(o.status.success());
    for s in ["gen", "use", "unrelated"] {
        assert_eq!(finished(&ev, s)["cached"], true, "{s} should be cached");
    }
    // Restored outputs are byte-identical.
    std::fs::remove_dir_all(p.dir.join("out")).unwrap();
    let (o, _) = p.run(&[]);
    assert!(o.status.success());
    assert_eq!(std::fs::read(p.dir.join("out/bin.dat")).unwrap(), original);
    // One byte changes: gen and use rerun, unrelated does not.
    p.write("src/b.txt", "bEta\n");
    let (o, ev) = p.run(&[]);
    assert!(o.status.success());
    assert_eq!(finished(&ev, "gen")["cached"], false);
    assert_eq!(finished(&ev, "use")["cached"], false);
    assert_eq!(finished(&ev, "unrelated")["cached"], true);
    assert_eq!(p.read("count.txt").trim(), "11");
}

#[test]
fn a_corrupt_cache_entry_is_detected_and_rebuilt() {
    let mut p = Project::new("corrupt", CHAIN);
    // Every blob a file, so this test can damage them on disk (small blobs
    // normally live in the index; its own unit test covers those).
    p.env.push(("WEIR_CACHE_INLINE_MAX".into(), "0".into()));
    p.write("src/a.txt", "alpha\n");
    p.write("src/b.txt", "beta\n");
    p.write("other/input.txt", "x\n");
    assert!(p.run(&[]).0.status.success());
    // Flip a byte in every stored blob and leave a half-written temp file.
    let mut n = 0;
    for prefix in std::fs::read_dir(p.cache.join("weir/cas")).unwrap() {
        for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let path = blob.unwrap().path();
            let mut bytes = std::fs::read(&path).unwrap();
            if bytes.is_empty() {
                bytes.push(b'x');
            } else {
                bytes[0] ^= 0xff;
            }
            std::fs::write(&path, bytes).unwrap();
            n += 1;
        }
    }
    assert!(n > 0);
    std::fs::write(p.cache.join("weir/tmp/123-4"), b"half").unwrap();
    std::fs::remove_dir_all(p.dir.join("out")).unwrap();
    let (o, ev) = p.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        finished(&ev, "gen")["cached"],
        false,
        "a corrupt entry must not be served"
    );
    assert_eq!(p.read("out/all.txt"), "alpha\nbeta\n");
    // And the rebuilt entry is good again.
    let (_, ev) = p.run(&[]);
    assert_eq!(finished(&ev, "gen")["cached"], true);
}

#[test]
fn two_concurrent_runs_share_the_cache_and_history() {
    let p = Project::new("concurrent", CHAIN);
    p.write("src/a.txt", "alpha\n");
    p.write("src/b.txt", "beta\n");
    p.write("other/input.txt", "x\n");
    let spawn = || {
        p.cmd(&["run", "--git-branch", "main", "--git-sha", "abc"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    let runs = p.cmd(&["runs"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&runs.stdout).lines().count(), 2);
}

#[test]
fn gates_pass_and_fail_with_their_message() {
    let src = r#"pipeline ci {
  let t = step "test" {
    run: "printf '<testsuite><testcase name=\"a\"/><testcase name=\"b\">%s</testcase></testsuite>' \"$FAIL\" > junit.xml"
    env: { FAIL: "FAILVALUE" }
    reports: [junit("junit.xml")]
    cache: false
  }
  gate "quality" { require t.tests.failed == 0 else "tests failed" }
  step "ship" { run: "touch shipped", after: [t] }
}
"#;
    let p = Project::new("gatepass", &src.replace("FAILVALUE", ""));
    let (o, ev) = p.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        ev.iter()
            .any(|e| e["event"] == "gate" && e["passed"] == true)
    );
    let p = Project::new("gatefail", &src.replace("FAILVALUE", "<failure/>"));
    let (o, ev) = p.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    let g = ev.iter().find(|e| e["event"] == "gate").unwrap();
    assert_eq!(g["passed"], false);
    assert!(g["message"].as_str().unwrap().contains("tests failed"));
    assert_eq!(g["values"]["test.tests.failed"], 1);
}

const APPROVAL: &str = r#"pipeline ci {
  approval "release" { min: 1, not_author: true }
  step "deploy" { run: "touch deployed" }
}
"#;

#[test]
fn approvals_by_flag_refusal_without_and_the_author_rule() {
    let p = Project::new("approval", APPROVAL);
    let (o, ev) = p.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    let a = ev.iter().find(|e| e["event"] == "approval").unwrap();
    assert_eq!(a["approved"], false);
    assert!(a["message"].as_str().unwrap().contains("--approve release"));
    assert!(!p.dir.join("deployed").exists());
    let (o, _) = p.run(&[
        "--approve",
        "release",
        "--approver",
        "alice@example.com",
        "--author",
        "bob@example.com",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(p.dir.join("deployed").exists());
    let (o, ev) = p.run(&[
        "--approve",
        "release",
        "--approver",
        "bob@example.com",
        "--author",
        "bob@example.com",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let a = ev.iter().find(|e| e["event"] == "approval").unwrap();
    assert!(a["message"].as_str().unwrap().contains("not_author"));
    let show = p.cmd(&["runs", "show", ""]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&show.stdout)
            .contains("approval release refused by bob@example.com")
    );
}

#[test]
fn rollback_runs_when_its_stage_fails() {
    let p = Project::new(
        "rollback",
        r#"pipeline ci {
  stage deploy {
    step "rollout" { run: "exit 1" }
  } on_failure {
    step "undo" { run: "touch undone" }
  }
}
"#,
    );
    let (o, ev) = p.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(p.dir.join("undone").exists());
    assert_eq!(finished(&ev, "undo")["status"], "rollback succeeded");
    let p = Project::new(
        "norollback",
        r#"pipeline ci {
  stage deploy {
    step "rollout" { run: "true" }
  } on_failure {
    step "undo" { run: "touch undone" }
  }
}
"#,
    );
    assert!(p.run(&[]).0.status.success());
    assert!(!p.dir.join("undone").exists());
}

#[test]
fn resume_after_kill_9_keeps_finished_steps_and_loses_no_record() {
    let p = Project::new(
        "resume",
        r#"pipeline ci {
  let first = step "first" { run: "echo x >> first.count", cache: false }
  step "second" { run: "if [ -f go ]; then echo done > second.out; else echo $$ > second.pid; sleep 60; fi", after: [first], cache: false }
}
"#,
    );
    let mut child = p
        .cmd(&["run", "--git-branch", "main", "--git-sha", "abc"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while p.read("second.pid").trim().is_empty() && waited < 200 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    assert!(p.dir.join("second.pid").exists(), "second never started");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The step process outlives a SIGKILLed weir; end it as the OS would on logout.
    let pid: i32 = p.read("second.pid").trim().parse().unwrap();
    assert!(pid > 1);
    for victim in group_members(pid) {
        let _ = Command::new("kill")
            .arg("-9")
            .arg(victim.to_string())
            .status();
    }
    p.write("go", "");
    let (o, ev) = p.run(&["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(p.read("first.count"), "x\n", "first must not run again");
    assert_eq!(p.read("second.out"), "done\n");
    assert!(
        ev.iter()
            .any(|e| e["event"] == "run_started" && e["resumed_from"].is_string())
    );
    let runs = String::from_utf8_lossy(&p.cmd(&["runs"]).output().unwrap().stdout).into_owned();
    assert!(runs.contains("interrupted"), "{runs}");
    assert!(runs.contains("succeeded"), "{runs}");
}

#[test]
fn secrets_never_leak_in_any_encoding() {
    let secret = "s3cr3t-T0ken/with+chars==";
    let p = Project::new(
        "secrets",
        r#"pipeline ci {
  step "leak" {
    run: """
      printf '%s\n' "$TOKEN"
      printf '%s' "$TOKEN" | base64
      printf '%s\n' "$TOKEN" | base64
      python3 -c 'import os,urllib.parse;print(urllib.parse.quote(os.environ["TOKEN"], safe=""))' 2>/dev/null || printf 's3cr3t-T0ken%%2Fwith%%2Bchars%%3D%%3D\n'
      printf '%s' "$TOKEN" | cut -c1-8; printf '%s\n' "$TOKEN" | cut -c9-
      printf 'split %s' "$(printf '%s' "$TOKEN" | cut -c1-5)"; sleep 0.1; printf '%s end\n' "$(printf '%s' "$TOKEN" | cut -c6-)"
      echo "{\"token\": \"$TOKEN\"}" > out.json
      exit 1
    """
    secrets: { TOKEN: secret("API_TOKEN") }
  }
}
"#,
    );
    let mut c = p.cmd(&["run", "--git-branch", "main", "--git-sha", "abc"]);
    c.env("API_TOKEN", secret);
    let out = c.output().unwrap();
    let mut c = p.cmd(&[
        "run",
        "--git-branch",
        "main",
        "--git-sha",
        "abc",
        "--log-format",
        "json",
    ]);
    c.env("API_TOKEN", secret);
    let out_json = c.output().unwrap();
    let b64 = |s: &[u8]| {
        let t = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut o = String::new();
        for ch in s.chunks(3) {
            let n = (u32::from(ch[0]) << 16)
                | (u32::from(*ch.get(1).unwrap_or(&0)) << 8)
                | u32::from(*ch.get(2).unwrap_or(&0));
            for k in 0..=ch.len() {
                o.push(t[((n >> (18 - 6 * k)) & 63) as usize] as char);
            }
        }
        o
    };
    let forms = vec![
        secret.to_owned(),
        b64(secret.as_bytes()),
        b64(format!("{secret}\n").as_bytes()),
        "s3cr3t-T0ken%2Fwith%2Bchars%3D%3D".to_owned(),
    ];
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        (
            "stdout".into(),
            [out.stdout.clone(), out_json.stdout.clone()].concat(),
        ),
        (
            "stderr".into(),
            [out.stderr.clone(), out_json.stderr.clone()].concat(),
        ),
    ];
    let mut stack = vec![p.dir.join(".weir"), p.cache.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    assert!(haystacks.len() > 3);
    for (name, bytes) in &haystacks {
        let text = String::from_utf8_lossy(bytes);
        for f in &forms {
            assert!(
                !text.contains(f.as_str()),
                "{name} contains the secret form {f:?}"
            );
        }
        assert!(
            !text.contains("split s3cr3t-T0ken"),
            "{name} leaked the split secret"
        );
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("***"));
}

#[test]
fn bad_input_to_run_is_reported_clearly() {
    let p = Project::new(
        "badrun",
        "pipeline ci {\n  step \"build\" { run: [\"no-such-tool-weir\", \"--x\"] }\n}\n",
    );
    let (o, ev) = p.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        finished(&ev, "build")["message"]
            .as_str()
            .unwrap()
            .contains("command not found: `no-such-tool-weir`")
    );
    let o = p.cmd(&["run", "--step", "biuld"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `build`"),
        "{}",
        stderr(&o)
    );
    let p = Project::new(
        "nosecret",
        "pipeline ci { step \"p\" { run: \"true\", secrets: { T: secret(\"WEIR_TEST_UNSET_SECRET\") } } }\n",
    );
    let o = p.cmd(&["run"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("secret `WEIR_TEST_UNSET_SECRET`"),
        "{}",
        stderr(&o)
    );
    // An unwritable cache folder: a clear error, nothing half-written.
    let p = Project::new("rocache", "pipeline ci { step \"a\" { run: \"true\" } }\n");
    let o = p
        .cmd(&["run"])
        .env("XDG_CACHE_HOME", "/proc/weir-no-such-dir")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cache"), "{}", stderr(&o));
}

#[test]
fn dry_run_says_what_would_run_and_what_is_cached() {
    let p = Project::new("dryrun", CHAIN);
    p.write("src/a.txt", "alpha\n");
    p.write("src/b.txt", "beta\n");
    p.write("other/input.txt", "x\n");
    let o = p.cmd(&["run", "--dry-run"]).output().unwrap();
    assert!(o.status.success());
    assert!(stderr(&o).contains("would run  gen"), "{}", stderr(&o));
    assert!(!p.dir.join("out").exists(), "a dry run runs nothing");
    assert!(p.run(&[]).0.status.success());
    p.write("other/input.txt", "y\n");
    let o = p.cmd(&["run", "--dry-run"]).output().unwrap();
    let e = stderr(&o);
    assert!(
        e.contains("cached     gen")
            && e.contains("cached     use")
            && e.contains("would run  unrelated"),
        "{e}"
    );
}

#[test]
fn the_hello_example_runs_green() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello/pipeline.weir"),
    )
    .unwrap();
    let p = Project::new("hello", &src);
    let (o, ev) = p.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        ev.iter()
            .any(|e| e["event"] == "run_finished" && e["status"] == "succeeded")
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

#[test]
fn every_example_runs_green_with_stand_ins_for_missing_tools() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let standins = root.join("tests/standins").canonicalize().unwrap();
    let path = format!(
        "{}:{}",
        standins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let dir = e.unwrap().path();
        if !dir.join("pipeline.weir").exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let p = Project::new(&format!("example-{name}"), "");
        copy_dir(&dir, &p.dir);
        let mut args = vec![
            "run",
            "--approve-all",
            "--approver",
            "alice@example.com",
            "--author",
            "bob@example.com",
            "--git-branch",
            "main",
            "--git-sha",
            "abc123",
            "--git-tag",
            "v1.0.0",
            "--event",
            "push",
            "--log-format",
            "json",
        ];
        if name == "promotion" {
            // All the way to production.
            args.extend(["--param", "env=prod"]);
        }
        let out = p
            .cmd(&args)
            .env("PATH", &path)
            .envs([
                ("GHCR_TOKEN", "t1"),
                ("ORDERS_DEPLOY_TOKEN", "t2"),
                ("PYPI_TOKEN", "t3"),
                ("REGISTRY_TOKEN", "t4"),
                ("DEPLOY_TOKEN_DEV", "t5"),
                ("DEPLOY_TOKEN_STAGING", "t6"),
                ("DEPLOY_TOKEN_PROD", "t7"),
            ])
            .output()
            .unwrap();
        let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert!(
            out.status.success(),
            "example {name} failed: {}\n{events:#?}",
            stderr(&out)
        );
        let done = events
            .iter()
            .filter(|e| e["event"] == "step_finished" && e["status"] == "succeeded")
            .count();
        assert!(done >= 3, "example {name} ran only {done} steps");
        ran += 1;
    }
    assert!(ran >= 5, "ran {ran} examples");
}

#[test]
fn ctrl_c_stops_steps_records_interrupted_and_resume_finishes() {
    let p = Project::new(
        "ctrlc",
        r#"pipeline ci {
  let first = step "first" { run: "echo x >> first.count", cache: false }
  step "second" { run: "if [ -f go ]; then echo done > second.out; else sleep 60 & echo $! > second.pid; wait; fi", after: [first], cache: false }
}
"#,
    );
    let child = p
        .cmd(&["run", "--git-branch", "main", "--git-sha", "abc"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while p.read("second.pid").trim().is_empty() && waited < 200 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    let pid: i32 = p.read("second.pid").trim().parse().expect("second started");
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert!(!alive(pid), "the step's process survived Ctrl-C");
    let runs = String::from_utf8_lossy(&p.cmd(&["runs"]).output().unwrap().stdout).into_owned();
    assert!(runs.contains("interrupted"), "{runs}");
    p.write("go", "");
    let (o, _) = p.run(&["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(p.read("first.count"), "x\n");
    assert_eq!(p.read("second.out"), "done\n");
}

#[test]
fn a_full_disk_while_storing_outputs_fails_the_run_cleanly_and_keeps_the_cache_consistent() {
    let p = Project::new(
        "fulldisk",
        "pipeline ci {\n  let small = step \"small\" { run: \"echo hi > small.txt\", outputs: { f: file(\"small.txt\") } }\n  step \"big\" { run: \"head -c 8000000 /dev/urandom > big.bin\", outputs: { f: file(\"big.bin\") }, after: [small] }\n}\n",
    );
    std::fs::create_dir_all(&p.cache).unwrap();
    // The cache on a 2 MiB tmpfs, in a private mount namespace (a user
    // namespace makes this work without root); then the same cache with
    // room to spare.
    let script = r#"
set -u
cache="$1"; weir="$2"
mount -t tmpfs -o size=2m tmpfs "$cache" || { echo "mount failed"; exit 3; }
run() { "$weir" run --git-branch main --git-sha abc --log-format json; }
run > first.json 2> first.err; echo "first=$?"
echo "tmp=$(ls -A "$cache/weir/tmp" | wc -l)"
"$weir" cache stats > stats.txt 2>&1; echo "stats=$?"
mount -o remount,size=64m "$cache"
run > second.json 2> second.err; echo "second=$?"
"#;
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .arg(&p.cache)
        .arg(env!("CARGO_BIN_EXE_weir"))
        .current_dir(&p.dir)
        .env("XDG_CACHE_HOME", &p.cache)
        .env("CI", "true")
        .stdin(Stdio::null())
        .output()
        .expect("`unshare` (util-linux) runs this test; tests/run.sh runs on Debian where it is installed");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        report.contains("first=1") && report.contains("tmp=0") && report.contains("stats=0"),
        "{report}\n{}\n{}",
        stderr(&out),
        p.read("first.err")
    );
    let events = |f: &str| -> Vec<Value> {
        p.read(f)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let first = events("first.json");
    assert_eq!(finished(&first, "small")["status"], "succeeded");
    let big = finished(&first, "big");
    assert_eq!(big["status"], "failed");
    let msg = big["message"].as_str().unwrap();
    assert!(
        msg.contains("cannot store output `f`") && msg.contains("No space left on device"),
        "{msg}"
    );
    // The cache stayed consistent: the small step's entry is served, the
    // big step is stored once there is room.
    assert!(
        report.contains("second=0"),
        "{report}\n{}",
        p.read("second.err")
    );
    let second = events("second.json");
    assert_eq!(finished(&second, "small")["cached"], true);
    assert_eq!(finished(&second, "big")["cached"], false);
    assert_eq!(finished(&second, "big")["status"], "succeeded");
    // And the run record says the first run failed.
    let o = p.cmd(&["runs"]).output().unwrap();
    let runs = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(runs.contains("failed"), "{runs}");
}
