//! Deregistration, drain and deadline against a real HTTP server on 127.0.0.1
//! (tests/fixtures/registry.py), and `gracestop drain`.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::support::{gracestop, run, stop, Mode, Running, Sandbox};

const LONG: Duration = Duration::from_secs(20);

fn index_of(events: &[String], event: &str) -> usize {
    events.iter().position(|e| e == event).unwrap_or_else(|| panic!("no {event:?} in {events:?}"))
}

#[test]
fn registry_hears_the_deregistration_before_the_target_gets_sigterm() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&[]);
    let mut target = sandbox.target(&[]);
    let run = stop(Mode::Pidfd, &["--pid", &target.pid.to_string(), "--deregister-url", &registry.url("/down")]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    target.wait(LONG);
    let events = sandbox.events();
    assert!(index_of(&events, "registry POST /down") < index_of(&events, "target SIGTERM"), "{events:?}");
}

#[test]
fn sigterm_comes_no_earlier_than_the_drain_after_the_request() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&[]);
    let mut target = sandbox.target(&[]);
    let pid = target.pid.to_string();
    let run = stop(Mode::Pidfd, &["--pid", &pid, "--deregister-url", &registry.url("/down"), "--drain", "1.5"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    target.wait(LONG);
    let request = sandbox.time_of("registry POST /down").expect("request");
    let term = sandbox.time_of("target SIGTERM").expect("SIGTERM");
    assert!(term >= request + 1_500_000_000, "SIGTERM {} ms after the request", (term - request) / 1_000_000);
}

#[test]
fn several_urls_are_called_concurrently() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--delay", "1.5"]);
    let (a, b, c) = (registry.url("/a"), registry.url("/b"), registry.url("/c"));
    let mut command = gracestop(Mode::Pidfd);
    command.args(["drain", "--deregister-url", &a, "--deregister-url", &b, "--deregister-url", &c]);
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    for path in ["/a", "/b", "/c"] {
        assert!(sandbox.has_event(&format!("registry POST {path}")), "{:?}", sandbox.events());
    }
    assert!(run.elapsed < Duration::from_millis(3500), "3 x 1.5 s took {:?}: not concurrent", run.elapsed);
}

#[test]
fn registry_that_never_answers_delays_the_signal_by_at_most_timeout_times_attempts() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--mode", "hang"]);
    let mut target = sandbox.target(&[]);
    let pid = target.pid.to_string();
    let url = registry.url("/down");
    let args = ["--pid", &pid, "--deregister-url", &url, "--deregister-timeout", "0.5", "--deregister-retries", "2"];
    let run = stop(Mode::Pidfd, &args);
    assert_eq!(run.code(), 0, "a dead registry must not keep the app running: {}", run.stderr);
    target.wait(LONG);
    assert_eq!(sandbox.events().iter().filter(|e| *e == "registry POST /down").count(), 3, "{:?}", sandbox.events());
    // 3 attempts x 0.5 s + 0.3 s of backoff = 1.8 s; allow 1.5 s of slack for a busy machine.
    assert!(run.elapsed >= Duration::from_millis(1500), "{:?}", run.elapsed);
    assert!(run.elapsed < Duration::from_millis(3300), "{:?}", run.elapsed);
    assert!(run.stderr.contains("no answer within"), "{}", run.stderr);
}

#[test]
fn strict_deregistration_failure_exits_1_and_leaves_the_target_alone() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--mode", "fail"]);
    let target = sandbox.target(&[]);
    let pid = target.pid.to_string();
    let url = registry.url("/down");
    let run = stop(
        Mode::Pidfd,
        &["--pid", &pid, "--deregister-url", &url, "--deregister-strict", "--deregister-retries", "1"],
    );
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(target.is_running());
    assert!(!sandbox.has_event("target SIGTERM"));
    assert_eq!(sandbox.events().iter().filter(|e| *e == "registry POST /down").count(), 2, "5xx is retried");
}

#[test]
fn header_secret_never_appears_in_the_log() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--record-header", "Authorization"]);
    let url = registry.url("/down");
    let mut command = gracestop(Mode::Pidfd);
    command.args([
        "-v",
        "drain",
        "--deregister-url",
        &url,
        "--deregister-header",
        "Authorization: Bearer s3cr3t-t0ken",
    ]);
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(sandbox.has_event("registry header Authorization: Bearer s3cr3t-t0ken"), "{:?}", sandbox.events());
    assert!(!run.stderr.contains("s3cr3t"), "{}", run.stderr);
}

#[test]
fn secrets_in_the_url_are_redacted_too() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&[]);
    let url = format!("http://admin:pa55word@127.0.0.1:{}/v1/agent/service/deregister/app?token=t0k3n", registry.port);
    let mut command = gracestop(Mode::Pidfd);
    command.args(["drain", "--deregister-url", &url]);
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(sandbox.has_event("registry POST /v1/agent/service/deregister/app?token=t0k3n"), "{:?}", sandbox.events());
    assert!(!run.stderr.contains("pa55word") && !run.stderr.contains("t0k3n"), "{}", run.stderr);
}

#[test]
fn header_from_the_environment_is_sent() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--record-header", "X-Consul-Token"]);
    let mut command = gracestop(Mode::Pidfd);
    command
        .args(["drain"])
        .env("GRACESTOP_DEREGISTER_URL", registry.url("/down"))
        .env("GRACESTOP_DEREGISTER_HEADER", "X-Consul-Token: from-the-environment");
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(sandbox.has_event("registry header X-Consul-Token: from-the-environment"), "{:?}", sandbox.events());
}

#[test]
fn second_sigterm_during_a_long_drain_signals_the_target_at_once() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&[]);
    let mut target = sandbox.target(&[]);
    let mut command = gracestop(Mode::Pidfd);
    command.args([
        "stop",
        "--pid",
        &target.pid.to_string(),
        "--deregister-url",
        &registry.url("/down"),
        "--drain",
        "60",
    ]);
    let running = Running::start(command);
    // gracestop handles SIGTERM from its start; the request proves it is draining now.
    sandbox.wait_for_event("registry POST /down", LONG);
    running.signal(Signal::SIGTERM);
    let run = running.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(30), "sat through the drain: {:?}", run.elapsed);
    assert!(run.stderr.contains("skipping to the signal"), "{}", run.stderr);
    assert_eq!(target.wait(LONG).code(), Some(0));
}

#[test]
fn drain_command_exits_0_after_the_drain() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--record-header", "Content-Type"]);
    let mut command = gracestop(Mode::Pidfd);
    let url = registry.url("/actuator/serviceregistry");
    command.args(["drain", "--deregister-url", &url, "--deregister-body", r#"{"status":"DOWN"}"#, "--drain", "1"]);
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.elapsed >= Duration::from_secs(1), "{:?}", run.elapsed);
    let events = sandbox.events();
    assert!(events.contains(&r#"registry body {"status":"DOWN"}"#.to_string()), "{events:?}");
    assert!(events.contains(&"registry header Content-Type: application/json".to_string()), "{events:?}");
}

#[test]
fn drain_command_exits_1_on_strict_failure() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--mode", "fail"]);
    let mut command = gracestop(Mode::Pidfd);
    command.args(["drain", "--deregister-url", &registry.url("/down"), "--deregister-strict", "--drain", "30"]);
    let run = run(command);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(20), "no drain after a strict failure: {:?}", run.elapsed);
}

#[test]
fn deadline_shorter_than_the_plan_shortens_the_drain_and_says_so() {
    let sandbox = Sandbox::new();
    let mut target = sandbox.target(&["--on-term", "ignore"]);
    let pid = target.pid.to_string();
    let run = stop(Mode::Pidfd, &["--pid", &pid, "--drain", "30", "--wait", "1", "--force", "--deadline", "3"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("drain shortened from 30s to 1s"), "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(3), "killed after the deadline: {:?}", run.elapsed);
    target.wait(LONG);
}

#[test]
fn deadline_drain_takes_back_what_a_quick_deregistration_leaves() {
    // The preStop shape: the deregistration is budgeted at its worst case (5 s
    // per attempt, 2 retries: over 15 s), so fitting --drain 3 into --deadline 4
    // cuts the drain to nothing on paper. The registry answers at once, so the
    // drain takes its 3 s back, and the command still ends inside the deadline.
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&[]);
    let mut command = gracestop(Mode::Pidfd);
    command.args(["drain", "--deregister-url", &registry.url("/down"), "--drain", "3", "--deadline", "4"]);
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("drain shortened from 3s to 0s (more"), "{}", run.stderr);
    assert!(run.stderr.contains("waiting 3s for load balancers"), "{}", run.stderr);
    assert!(run.elapsed >= Duration::from_secs(3), "the drain was cut: {:?}\n{}", run.elapsed, run.stderr);
    assert!(run.elapsed < Duration::from_secs(4), "past the deadline: {:?}", run.elapsed);
}

#[test]
fn bad_deregistration_input_exits_2_before_anything_is_called_or_signalled() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&[]);
    let target = sandbox.target(&[]);
    let pid = target.pid.to_string();
    let url = registry.url("/down");
    let missing = sandbox.path("no-such-body.json");
    let missing = format!("@{}", missing.display());
    let cases: [&[&str]; 6] = [
        &["--deregister-url", "ftp://127.0.0.1/down"],
        &["--deregister-url", "127.0.0.1:8080/down"],
        &["--deregister-url", &url, "--deregister-method", "P@ST"],
        &["--deregister-url", &url, "--deregister-header", "no colon here"],
        &["--deregister-url", &url, "--deregister-timeout", "soon"],
        &["--deregister-url", &url, "--deregister-body", &missing],
    ];
    for case in cases {
        let mut args = vec!["--pid", pid.as_str()];
        args.extend_from_slice(case);
        let run = stop(Mode::Pidfd, &args);
        assert_eq!(run.code(), 2, "{case:?}: {}", run.stderr);
    }
    assert!(sandbox.events().is_empty(), "called or signalled: {:?}", sandbox.events());
    assert!(target.is_running());
}

#[test]
fn redirect_is_a_failure_named_with_its_location_and_not_followed() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--mode", "redirect"]);
    let mut command = gracestop(Mode::Pidfd);
    command.args(["drain", "--deregister-url", &registry.url("/down")]);
    let run = run(command);
    assert_eq!(run.code(), 0, "a warning only: {}", run.stderr);
    assert!(run.stderr.contains(&format!("302 redirect to {}", registry.url("/down"))), "{}", run.stderr);
    assert_eq!(sandbox.events(), ["registry POST /down"], "neither followed nor retried");
}

#[test]
fn server_error_is_retried_until_it_succeeds() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&["--mode", "flaky"]);
    let mut command = gracestop(Mode::Pidfd);
    command.args(["drain", "--deregister-url", &registry.url("/down"), "--deregister-strict"]);
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(sandbox.events(), ["registry POST /down", "registry POST /down"]);
}

#[test]
fn huge_and_slow_answers_are_bounded() {
    let sandbox = Sandbox::new();
    let huge = sandbox.registry(&["--mode", "huge", "--name", "huge"]);
    let slow = sandbox.registry(&["--mode", "slow-headers", "--name", "slow"]);
    let mut command = gracestop(Mode::Pidfd);
    command.args(["drain", "--deregister-url", &huge.url("/down"), "--deregister-url", &slow.url("/down")]);
    command.args(["--deregister-timeout", "1", "--deregister-retries", "0"]);
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("-> 200"), "the huge answer's status is enough: {}", run.stderr);
    assert!(run.stderr.contains("no answer within"), "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
}

#[test]
fn connection_refused_is_a_warning_and_the_stop_goes_on() {
    let sandbox = Sandbox::new();
    let mut target = sandbox.target(&[]);
    let pid = target.pid.to_string();
    // Nothing listens on port 1 of the loopback address.
    let run =
        stop(Mode::Pidfd, &["--pid", &pid, "--deregister-url", "http://127.0.0.1:1/down", "--deregister-retries", "1"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
    assert_eq!(target.wait(LONG).code(), Some(0));
}

#[test]
fn loopback_urls_bypass_a_proxy_from_the_environment() {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&[]);
    let mut command = gracestop(Mode::Pidfd);
    command.args(["drain", "--deregister-url", &registry.url("/down"), "--deregister-strict"]);
    command
        .env("HTTP_PROXY", "http://127.0.0.1:1")
        .env("http_proxy", "http://127.0.0.1:1")
        .env("ALL_PROXY", "http://127.0.0.1:1");
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(sandbox.has_event("registry POST /down"));
}

#[test]
fn stop_options_read_the_environment() {
    let sandbox = Sandbox::new();
    let mut target = sandbox.target(&["--on-term", "ignore"]);
    let mut command = gracestop(Mode::Pidfd);
    command
        .arg("stop")
        .env("GRACESTOP_PID", target.pid.to_string())
        .env("GRACESTOP_WAIT", "0.2")
        .env("GRACESTOP_FORCE", "1");
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&target.wait(LONG)), Some(libc::SIGKILL));
}

/// Runs `stop --pid TARGET ARGS...` (ENV set) against a fresh target and
/// registry, expecting a usage error before anything is called or signalled,
/// within a few seconds. Returns gracestop's stderr.
///
/// `args` may name the registry's URL as `{registry}`. gracestop runs with a
/// 1 GiB address-space limit, so that a regression that reads an endless file
/// fails this test instead of exhausting the machine's memory.
fn refused_before_anything(args: &[&str], env: &[(&str, &str)]) -> String {
    let sandbox = Sandbox::new();
    let registry = sandbox.registry(&[]);
    let target = sandbox.target(&[]);
    let url = registry.url("/down");
    let mut command = gracestop(Mode::Pidfd);
    command.args(["stop", "--pid", &target.pid.to_string()]);
    command.args(args.iter().map(|a| a.replace("{registry}", &url)));
    command.envs(env.iter().copied());
    // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            let limit = libc::rlimit { rlim_cur: 1 << 30, rlim_max: 1 << 30 };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let run = Running::start(command).finish_within(Duration::from_secs(10));
    assert_eq!(run.code(), 2, "{args:?} {env:?}: {}", run.stderr);
    assert!(sandbox.events().is_empty(), "called or signalled: {:?}", sandbox.events());
    assert!(target.is_running());
    run.stderr
}

#[test]
fn secret_in_an_invalid_header_value_never_reaches_the_usage_error() {
    // A control character makes the value invalid; clap would quote it whole.
    let header = "Authorization: Bearer s3cr3t\u{1}t0ken";
    let stderr = refused_before_anything(&["--deregister-url", "{registry}", "--deregister-header", header], &[]);
    assert!(!stderr.contains("s3cr3t") && !stderr.contains("t0ken"), "{stderr}");
    assert!(stderr.contains("--deregister-header") && stderr.contains("Authorization: ***"), "{stderr}");
}

#[test]
fn secret_in_an_invalid_header_value_from_the_environment_never_reaches_the_usage_error() {
    let env = [("GRACESTOP_DEREGISTER_HEADER", "X-Consul-Token: s3cr3t\u{7f}t0ken")];
    let stderr = refused_before_anything(&["--deregister-url", "{registry}"], &env);
    assert!(!stderr.contains("s3cr3t") && !stderr.contains("t0ken"), "{stderr}");
    assert!(stderr.contains("X-Consul-Token: ***"), "{stderr}");
}

#[test]
fn secrets_in_an_unparsable_url_never_reach_the_usage_error() {
    // Port 99999 makes each URL unparsable; clap would quote it whole.
    for url in [
        "http://admin:pa55word@127.0.0.1:99999/down",
        "http://s3cr3tUs3r@127.0.0.1:99999/down",
        "http://127.0.0.1:99999/down?dc=eu&access_token=s3cr3tT0ken#s3cr3tFragment",
    ] {
        let stderr = refused_before_anything(&["--deregister-url", url], &[]);
        for secret in ["pa55word", "s3cr3t"] {
            assert!(!stderr.contains(secret), "{url}: {stderr}");
        }
        assert!(stderr.contains("127.0.0.1:99999/down") && stderr.contains("invalid port number"), "{stderr}");
    }
}

#[test]
fn secrets_in_an_unparsable_url_from_the_environment_never_reach_the_usage_error() {
    let env = [("GRACESTOP_DEREGISTER_URL", "http://127.0.0.1/ok http://admin:pa55word@127.0.0.1:99999/down")];
    let stderr = refused_before_anything(&[], &env);
    assert!(!stderr.contains("pa55word"), "{stderr}");
    assert!(stderr.contains("http://***:***@127.0.0.1:99999/down"), "{stderr}");
}

#[test]
fn relative_redirect_is_shown_resolved_and_redacted() {
    let sandbox = Sandbox::new();
    let relative = sandbox.registry(&["--mode", "redirect", "--location", "/login?token=s3cr3tT0ken&next=home"]);
    let garbage =
        sandbox.registry(&["--mode", "redirect", "--location", "http://admin:s3cr3tPw@[::1", "--name", "bad"]);
    let mut command = gracestop(Mode::Pidfd);
    command.args(["drain", "--deregister-url", &relative.url("/down"), "--deregister-url", &garbage.url("/down")]);
    let run = run(command);
    assert_eq!(run.code(), 0, "a warning only: {}", run.stderr);
    assert!(!run.stderr.contains("s3cr3t"), "{}", run.stderr);
    let shown = format!("302 redirect to {}", relative.url("/login?token=***&next=home"));
    assert!(run.stderr.contains(&shown), "{}", run.stderr);
    assert!(run.stderr.contains("302 redirect to an unparsable Location"), "{}", run.stderr);
}

#[test]
fn token_as_url_user_name_appears_on_no_line() {
    let sandbox = Sandbox::new();
    let ok = sandbox.registry(&[]);
    let failing = sandbox.registry(&["--mode", "fail", "--name", "failing"]);
    let redirect = sandbox.registry(&[
        "--mode",
        "redirect",
        "--location",
        "http://Us3rT0ken@127.0.0.1:1/elsewhere#fr4gmentSecret",
        "--name",
        "redirect",
    ]);
    let at = |port: u16| format!("http://Us3rT0ken@127.0.0.1:{port}/down#fr4gmentSecret");
    let mut command = gracestop(Mode::Pidfd);
    command.args(["-v", "drain", "--deregister-retries", "1"]);
    for url in [at(ok.port), at(failing.port), at(redirect.port), at(1)] {
        command.args(["--deregister-url", &url]);
    }
    let run = run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(sandbox.has_event("registry POST /down"), "{:?}", sandbox.events());
    assert!(!run.stderr.contains("Us3rT0ken") && !run.stderr.contains("fr4gment"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("http://***@127.0.0.1:{}/down#***", ok.port)), "{}", run.stderr);
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
}

#[test]
fn fifo_as_body_is_refused_at_once_instead_of_blocking() {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path("body.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
    assert!(made.success());
    let body = format!("@{}", fifo.display());
    let stderr = refused_before_anything(&["--deregister-url", "{registry}", "--deregister-body", &body], &[]);
    assert!(stderr.contains(&format!("{}: is a FIFO, not a regular file", fifo.display())), "{stderr}");
}

#[test]
fn devices_as_body_or_cacert_are_refused_at_once() {
    let stderr = refused_before_anything(&["--deregister-url", "{registry}", "--deregister-body", "@/dev/zero"], &[]);
    assert!(stderr.contains("/dev/zero: is a character device, not a regular file"), "{stderr}");
    let stderr = refused_before_anything(&["--deregister-url", "{registry}", "--deregister-cacert", "/dev/zero"], &[]);
    assert!(stderr.contains("/dev/zero: is a character device, not a regular file"), "{stderr}");
}

#[test]
fn oversized_body_or_cacert_is_refused_naming_the_limit() {
    let sandbox = Sandbox::new();
    let big = sandbox.path("big");
    std::fs::File::create(&big).and_then(|f| f.set_len(2 << 20)).expect("sparse 2 MiB file");
    let body = format!("@{}", big.display());
    let big = big.display().to_string();
    for args in [["--deregister-body", body.as_str()], ["--deregister-cacert", big.as_str()]] {
        let stderr = refused_before_anything(&["--deregister-url", "{registry}", args[0], args[1]], &[]);
        assert!(stderr.contains(&format!("{big}: is larger than 1 MiB")), "{stderr}");
    }
    // A /proc file reports size 0: only the bounded read can catch it.
    const PROC: &str = "/proc/kallsyms";
    let mut head = Vec::new();
    let readable = std::fs::File::open(PROC)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, (1 << 20) + 1), &mut head));
    if readable.is_ok() && head.len() > 1 << 20 {
        let stderr =
            refused_before_anything(&["--deregister-url", "{registry}", "--deregister-body", "@/proc/kallsyms"], &[]);
        assert!(stderr.contains("/proc/kallsyms: is larger than 1 MiB"), "{stderr}");
    } else {
        eprintln!("SKIPPED the /proc part: {PROC} is not readable or not larger than 1 MiB here");
    }
}

#[test]
fn directory_as_body_or_cacert_is_refused() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("");
    let dir = dir.display().to_string();
    let dir = dir.trim_end_matches('/');
    let body = format!("@{dir}");
    for args in [["--deregister-body", body.as_str()], ["--deregister-cacert", dir]] {
        let stderr = refused_before_anything(&["--deregister-url", "{registry}", args[0], args[1]], &[]);
        assert!(stderr.contains(&format!("{dir}: is a directory, not a regular file")), "{stderr}");
    }
}

#[test]
fn cacert_without_any_pem_certificate_is_refused() {
    let sandbox = Sandbox::new();
    let junk = sandbox.path("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let junk = junk.display().to_string();
    let stderr = refused_before_anything(&["--deregister-url", "{registry}", "--deregister-cacert", &junk], &[]);
    assert!(stderr.contains("holds no PEM certificate"), "{stderr}");
}
