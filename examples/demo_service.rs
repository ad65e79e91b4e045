//! The service and the load balancer of `examples/demo.sh`, in one std-only
//! program (plus `nix` for signals, already a dependency of gracestop).
//!
//! `demo_service serve --port P --ready FILE [--name NAME]` is a small HTTP
//! service that shuts down the way a well-behaved one does:
//!   - `GET /work` takes 30 ms and answers 200;
//!   - `GET /health` answers 200 `UP`, or 503 `DOWN` once deregistered;
//!   - `POST /deregister` takes the instance out (its health answers 503 from
//!     then on), as Spring Boot's service-registry endpoint does;
//!   - on SIGTERM (or SIGINT) it stops accepting, finishes the requests in
//!     flight, and exits 0.
//!
//! It writes its port to FILE once it listens (the readiness handshake), and
//! exits 98 when the port is taken, so that the caller can pick another.
//!
//! `demo_service lb --backend NAME=HOST:PORT... --rate R --requests N ...` is a
//! load balancer in miniature, without retries: it sends N requests at R per
//! second, round-robin over the backends its health checks (every `--inter`,
//! `--fall` failures to mark a backend down, `--rise` successes to bring it
//! back, as HAProxy's `check inter fall rise`) say are up, counts what
//! succeeded and what failed, and prints one summary line.
//!
//! `demo_service port` prints a port of 127.0.0.1 that was free a moment ago.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

/// How long `GET /work` works.
const WORK: Duration = Duration::from_millis(30);
/// How long a stopping service waits for its requests in flight at most.
const FINISH_LIMIT: Duration = Duration::from_secs(5);
/// The largest request head (and body) the service reads.
const MAX_REQUEST: usize = 16 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&Options::parse(&args[1..])),
        Some("lb") => balance(&Options::parse(&args[1..])),
        Some("port") => free_port(),
        _ => Err(usage("expected a command: serve, lb or port")),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("demo_service: {message}");
            ExitCode::from(2)
        }
    }
}

fn usage(why: &str) -> String {
    format!(
        "{why}\nusage: demo_service serve --port PORT --ready FILE [--name NAME]\n       \
         demo_service lb --backend NAME=HOST:PORT... [--rate N] [--requests N] [--inter MS] [--fall N] \
         [--rise N] [--mark N:FILE] [--label TEXT] [--summary FILE]\n       demo_service port"
    )
}

/// `--flag value` pairs; a flag may repeat.
struct Options(BTreeMap<String, Vec<String>>);

impl Options {
    fn parse(args: &[String]) -> Options {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pair in args.chunks(2) {
            let value = pair.get(1).cloned().unwrap_or_default();
            map.entry(pair[0].trim_start_matches('-').to_string()).or_default().push(value);
        }
        Options(map)
    }

    fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.all(name).last().map(String::as_str)
    }

    fn required(&self, name: &str) -> Result<&str, String> {
        self.text(name).ok_or_else(|| usage(&format!("--{name} is required")))
    }

    fn number(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.text(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| usage(&format!("--{name} wants a whole number, not {text:?}"))),
        }
    }
}

fn free_port() -> Result<ExitCode, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("{port}");
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `path` through a temporary file and a rename, so that a
/// reader never sees it half-written.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let partial = PathBuf::from(format!("{}.partial", path.display()));
    std::fs::write(&partial, text).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    std::fs::rename(&partial, path).map_err(|e| format!("cannot rename to {}: {e}", path.display()))
}

// ---------------------------------------------------------------- the service

/// What the service's threads share.
struct Service {
    name: String,
    deregistered: AtomicBool,
    stopping: AtomicBool,
    /// Connections being answered, with a condition to wait for none.
    in_flight: Mutex<usize>,
    idle: Condvar,
    served: AtomicUsize,
}

fn serve(options: &Options) -> Result<ExitCode, String> {
    let port: u16 = options.required("port")?.parse().map_err(|_| usage("--port wants a port number"))?;
    let ready = PathBuf::from(options.required("ready")?);
    let name = options.text("name").unwrap_or("service").to_string();

    // SIGTERM and SIGINT are blocked before any thread starts, so every thread
    // inherits the mask and only the signal thread below receives them.
    let mut stop_signals = SigSet::empty();
    stop_signals.add(Signal::SIGTERM);
    stop_signals.add(Signal::SIGINT);
    stop_signals.thread_block().map_err(|e| format!("cannot block SIGTERM: {e}"))?;

    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            eprintln!("{name}: port {port} is taken");
            return Ok(ExitCode::from(98));
        }
        Err(e) => return Err(format!("cannot bind 127.0.0.1:{port}: {e}")),
    };
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let service = Arc::new(Service {
        name,
        deregistered: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        in_flight: Mutex::new(0),
        idle: Condvar::new(),
        served: AtomicUsize::new(0),
    });

    {
        let service = Arc::clone(&service);
        thread::spawn(move || {
            let signal = stop_signals.wait().map(|s| s.as_str()).unwrap_or("a stop signal");
            service.stopping.store(true, Ordering::SeqCst);
            println!("{}: {signal}: stops accepting, finishes the requests in flight", service.name);
            // Wakes the accept loop, which then sees `stopping` and closes the listener.
            let _ = TcpStream::connect(address);
        });
    }

    println!("{}: listening on {address} (pid {})", service.name, std::process::id());
    write_atomically(&ready, &format!("{}\n", address.port()))?;

    for connection in listener.incoming() {
        if service.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = connection else {
            // Out of descriptors, or the like: back off rather than spin.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        *service.in_flight.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let service = Arc::clone(&service);
        thread::spawn(move || {
            answer(&service, stream);
            let mut in_flight = service.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            *in_flight -= 1;
            service.idle.notify_all();
        });
    }
    // Closing the listener refuses new connections (and resets those still in
    // its backlog): the service accepts nothing from here on.
    drop(listener);

    let in_flight = service.in_flight.lock().unwrap_or_else(|e| e.into_inner());
    let pending = *in_flight;
    let (in_flight, timeout) =
        service.idle.wait_timeout_while(in_flight, FINISH_LIMIT, |n| *n > 0).unwrap_or_else(|e| e.into_inner());
    let served = service.served.load(Ordering::SeqCst);
    if timeout.timed_out() {
        println!("{}: gave up on {} request(s) after {FINISH_LIMIT:?}; served {served}", service.name, *in_flight);
        return Ok(ExitCode::from(1));
    }
    println!("{}: finished {pending} request(s) in flight; served {served}; exits 0", service.name);
    Ok(ExitCode::SUCCESS)
}

/// Answers one request on `stream`, then closes it.
fn answer(service: &Service, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let Some((method, path)) = read_request(&mut stream) else { return };
    let (status, body) = match (method.as_str(), path.as_str()) {
        ("GET", "/work") => {
            thread::sleep(WORK); // the work itself
            service.served.fetch_add(1, Ordering::SeqCst);
            ("200 OK", "done\n")
        }
        ("GET", "/health") if service.deregistered.load(Ordering::SeqCst) => ("503 Service Unavailable", "DOWN\n"),
        ("GET", "/health") => ("200 OK", "UP\n"),
        ("POST", "/deregister") => {
            service.deregistered.store(true, Ordering::SeqCst);
            println!("{}: POST /deregister: health answers 503 from now on", service.name);
            ("200 OK", "deregistered\n")
        }
        _ => ("404 Not Found", "not found\n"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

/// Reads a request head and its body (bounded); returns its method and path.
fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 2048];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if data.len() > MAX_REQUEST {
            return None;
        }
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    // The body is read so that closing the connection does not reset it.
    let mut body_read = data.len() - head_end;
    while body_read < length {
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        body_read += n;
    }
    let mut words = head.split_whitespace();
    Some((words.next()?.to_string(), words.next()?.to_string()))
}

// ---------------------------------------------------------- the load balancer

/// One backend as the load balancer sees it.
struct Backend {
    name: String,
    address: SocketAddr,
    up: AtomicBool,
    ok: AtomicUsize,
    failed: AtomicUsize,
}

struct Balancer {
    start: Instant,
    backends: Vec<Backend>,
    /// Set when the last request is answered; the health checkers stop.
    done: Mutex<bool>,
    finished: Condvar,
}

impl Balancer {
    /// Waits `limit` or until the requests are done; true when they are.
    fn done_within(&self, limit: Duration) -> bool {
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let (done, _) = self.finished.wait_timeout_while(done, limit, |d| !*d).unwrap_or_else(|e| e.into_inner());
        *done
    }

    fn log(&self, what: std::fmt::Arguments<'_>) {
        println!("lb: +{:.3}s {what}", self.start.elapsed().as_secs_f64());
    }
}

fn balance(options: &Options) -> Result<ExitCode, String> {
    let rate = options.number("rate", 50)?.clamp(1, 1000);
    let requests = options.number("requests", 150)?.clamp(1, 10_000);
    let inter = Duration::from_millis(options.number("inter", 500)?.clamp(10, 10_000));
    let fall = options.number("fall", 2)?.max(1);
    let rise = options.number("rise", 2)?.max(1);
    let label = options.text("label").unwrap_or("lb").to_string();
    let mark = match options.text("mark") {
        None => None,
        Some(text) => {
            let (count, file) = text.split_once(':').ok_or_else(|| usage("--mark wants N:FILE"))?;
            Some((count.parse::<u64>().map_err(|_| usage("--mark wants N:FILE"))?, PathBuf::from(file)))
        }
    };
    let mut backends = Vec::new();
    for spec in options.all("backend") {
        let (name, address) = spec.split_once('=').ok_or_else(|| usage("--backend wants NAME=HOST:PORT"))?;
        let address: SocketAddr = address.parse().map_err(|_| usage(&format!("bad backend address {address:?}")))?;
        backends.push(Backend {
            name: name.to_string(),
            address,
            up: AtomicBool::new(true),
            ok: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        });
    }
    if backends.is_empty() {
        return Err(usage("at least one --backend is needed"));
    }
    let balancer =
        Arc::new(Balancer { start: Instant::now(), backends, done: Mutex::new(false), finished: Condvar::new() });
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    balancer.log(format_args!(
        "{requests} requests at {rate}/s over {}; health checks every {} ms, fall {fall}, rise {rise}",
        balancer.backends.iter().map(|b| format!("{} ({})", b.name, b.address)).collect::<Vec<_>>().join(", "),
        inter.as_millis()
    ));

    // One health checker per backend. Each runs until the requests are done,
    // and at most as many checks as fit in the run, with room to spare.
    let max_checks = (period * requests as u32).as_millis() / inter.as_millis() + 20;
    let checkers: Vec<_> = (0..balancer.backends.len())
        .map(|index| {
            let balancer = Arc::clone(&balancer);
            thread::spawn(move || check_health(&balancer, index, inter, fall, rise, max_checks))
        })
        .collect();

    let no_backend = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        for i in 0..requests {
            let due = balancer.start + period * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait); // pacing to the constant rate
            }
            let up: Vec<&Backend> = balancer.backends.iter().filter(|b| b.up.load(Ordering::SeqCst)).collect();
            if up.is_empty() {
                no_backend.fetch_add(1, Ordering::SeqCst); // the LB answers 503 itself
            } else {
                let backend = up[next.fetch_add(1, Ordering::SeqCst) % up.len()];
                scope.spawn(move || {
                    let counter = if request(backend.address, "GET", "/work") == Some(200) {
                        &backend.ok
                    } else {
                        &backend.failed
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            }
            if let Some((count, file)) = &mark {
                if i + 1 == *count {
                    let _ = write_atomically(file, &format!("{count}\n"));
                }
            }
        }
    });
    *balancer.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
    balancer.finished.notify_all();
    for checker in checkers {
        let _ = checker.join();
    }

    let mut failed = no_backend.load(Ordering::SeqCst);
    let mut details = Vec::new();
    for backend in &balancer.backends {
        let (ok, bad) = (backend.ok.load(Ordering::SeqCst), backend.failed.load(Ordering::SeqCst));
        failed += bad;
        details.push(format!("{}: {ok} ok, {bad} failed", backend.name));
    }
    details.push(format!("no backend up: {}", no_backend.load(Ordering::SeqCst)));
    let summary = format!("{label}: {failed} of {requests} requests failed ({})", details.join("; "));
    println!("{summary}");
    if let Some(file) = options.text("summary") {
        write_atomically(Path::new(file), &format!("{summary}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn check_health(balancer: &Balancer, index: usize, inter: Duration, fall: u64, rise: u64, max_checks: u128) {
    let backend = &balancer.backends[index];
    let (mut failures, mut successes) = (0, 0);
    for _ in 0..max_checks {
        let status = request(backend.address, "GET", "/health");
        let up = backend.up.load(Ordering::SeqCst);
        if status == Some(200) {
            (failures, successes) = (0, successes + 1);
            if !up && successes >= rise {
                backend.up.store(true, Ordering::SeqCst);
                balancer.log(format_args!("{} UP after {successes} good health checks", backend.name));
            }
        } else {
            (failures, successes) = (failures + 1, 0);
            if up && failures >= fall {
                backend.up.store(false, Ordering::SeqCst);
                let what = status.map_or("no answer".to_string(), |s| format!("HTTP {s}"));
                balancer.log(format_args!("{} DOWN after {failures} failed health checks ({what})", backend.name));
            }
        }
        if balancer.done_within(inter) {
            break; // else the health check interval (HAProxy's `inter`) has passed
        }
    }
}

/// One HTTP/1.1 request with a fresh connection; the response's status code,
/// or None when the connection or the response failed. Bounded by timeouts.
fn request(address: SocketAddr, method: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.take(MAX_REQUEST as u64).read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next()?;
    if !text.contains("\r\n\r\n") {
        return None; // cut short
    }
    status_line.split_whitespace().nth(1)?.parse().ok()
}
