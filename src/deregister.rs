//! HTTP deregistration: tell service registries and load balancers to stop
//! routing here, before the stop signal.
//!
//! One client per route (direct for loopback URLs, the environment's proxy for
//! the others), built only when a URL is given. Every attempt is bounded twice:
//! by reqwest's own timeout and by an outer `tokio::time::timeout`, because DNS
//! resolution runs on a blocking thread that reqwest cannot cancel. Retries come
//! after connection errors, timeouts and 5xx answers only, with a short backoff.
//! Redirects are never followed. Header values, URL passwords and token-like
//! query parameters never reach the log.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::future::join_all;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Client, Method, StatusCode, Url};

use crate::cli::PreStopArgs;
use crate::exit::{coded, Exit};
use crate::log;
use crate::platform::file::read_regular;
use crate::sequence::PreStop;

/// Backoff before retry `n` (1-based): 100 ms, 200 ms, 400 ms, … at most 1 s.
fn backoff(retry: u32) -> Duration {
    Duration::from_millis(100u64 << retry.saturating_sub(1).min(4)).min(Duration::from_secs(1))
}

/// Slack on top of reqwest's own timeout for the outer, cancelling one.
const OUTER_SLACK: Duration = Duration::from_millis(250);

/// The largest `--deregister-body @FILE`. A deregistration body is a few bytes
/// of JSON; the bound keeps a wrong path (a log, a file in `/proc`, one that
/// grows) from filling memory before anything is signalled.
const MAX_BODY: u64 = 1 << 20;

/// The largest `--deregister-cacert FILE`. Debian's whole CA bundle (about 140
/// roots) is about 220 KB, so 1 MiB holds four of it: room for any private CA
/// chain, no room for a mistake to fill memory.
const MAX_CACERT: u64 = 1 << 20;

/// `--deregister-strict` and a deregistration failed: nothing was signalled.
/// `stop` and `drain` end with exit 1; `run` keeps supervising.
#[derive(Debug)]
pub struct StrictFailure {
    pub failed: usize,
    pub of: usize,
}

impl std::fmt::Display for StrictFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "deregistration failed for {} of {} URL(s); --deregister-strict: not signalling",
            self.failed, self.of
        )
    }
}

impl std::error::Error for StrictFailure {}

/// The deregistration phase, ready to run: validated, with its clients built.
pub struct Deregistration {
    urls: Vec<Url>,
    method: Method,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Duration,
    retries: u32,
    strict: bool,
    direct: Option<Client>,
    proxied: Option<Client>,
}

impl Deregistration {
    /// Validates the deregistration options and builds the clients. `Ok(None)`
    /// when there is no URL. Errors here are usage errors (exit 2): nothing has
    /// been called or signalled yet.
    pub fn new(args: &PreStopArgs) -> Result<Option<Deregistration>> {
        if args.urls.is_empty() {
            return Ok(None);
        }
        let usage = |e: anyhow::Error| coded(Exit::Usage, format!("{e:#}"));
        let body = match args.body.as_deref() {
            Some(text) => Some(match text.strip_prefix('@') {
                Some(path) => read_regular(Path::new(path), MAX_BODY)
                    .with_context(|| format!("cannot read --deregister-body file {path}"))
                    .map_err(usage)?,
                None => text.as_bytes().to_vec(),
            }),
            None => None,
        };
        let mut headers = HeaderMap::new();
        for header in &args.headers {
            headers.append(header.name.clone(), header.value.clone());
        }
        // Spring's actuator answers 415 to a JSON body sent without its type.
        if body.as_deref().is_some_and(looks_like_json) && !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let roots = match &args.cacert {
            Some(path) => {
                let pem = read_regular(path, MAX_CACERT)
                    .with_context(|| format!("cannot read --deregister-cacert {}", path.display()))
                    .map_err(usage)?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .with_context(|| format!("--deregister-cacert {} holds no valid PEM certificate", path.display()))
                    .map_err(usage)?;
                Some(certs)
            }
            None => None,
        };
        let https = args.urls.iter().any(|u| u.scheme() == "https");
        let build = |direct: bool| build_client(args.timeout, direct, https, roots.clone());
        let direct = args.urls.iter().any(is_loopback).then(|| build(true)).transpose()?;
        let proxied = args.urls.iter().any(|u| !is_loopback(u)).then(|| build(false)).transpose()?;
        Ok(Some(Deregistration {
            urls: args.urls.clone(),
            method: args.method.clone(),
            headers,
            body,
            timeout: args.timeout,
            retries: args.retries,
            strict: args.strict,
            direct,
            proxied,
        }))
    }

    /// The longest deregistration can take: every attempt timing out, plus backoffs.
    pub fn worst_case(&self) -> Duration {
        let attempts = self.retries + 1;
        (self.timeout + OUTER_SLACK) * attempts + (1..attempts).map(backoff).sum::<Duration>()
    }

    /// A one-line description for the plan.
    pub fn describe(&self) -> String {
        let urls: Vec<String> = self.urls.iter().map(redact).collect();
        format!("{} {}", self.method, urls.join(" "))
    }

    /// Calls one URL with retries; true on a 2xx answer.
    async fn call(&self, url: &Url) -> bool {
        let shown = redact(url);
        let client = if is_loopback(url) { &self.direct } else { &self.proxied };
        let Some(client) = client else { return false };
        let attempts = self.retries + 1;
        for attempt in 1..=attempts {
            let mut request = client.request(self.method.clone(), url.clone()).headers(self.headers.clone());
            if let Some(body) = &self.body {
                request = request.body(body.clone());
            }
            let start = Instant::now();
            let outcome = tokio::time::timeout(self.timeout + OUTER_SLACK, request.send()).await;
            let took = log::span(start.elapsed());
            let (retry, problem) = match outcome {
                Ok(Ok(response)) if response.status().is_success() => {
                    log::info(
                        "deregister",
                        format_args!("{} {shown} -> {} ({took})", self.method, response.status().as_u16()),
                    );
                    return true;
                }
                Ok(Ok(response)) => describe_status(response.status(), response.headers()),
                Ok(Err(e)) if e.is_timeout() => (true, format!("no answer within {}", log::span(self.timeout))),
                Ok(Err(e)) => (true, error_chain(&e)),
                Err(_) => (true, format!("no answer within {}", log::span(self.timeout))),
            };
            if retry && attempt < attempts {
                let pause = backoff(attempt);
                log::warn(
                    "deregister",
                    format_args!(
                        "{} {shown} -> {problem} ({took}, attempt {attempt} of {attempts}); retrying in {}",
                        self.method,
                        log::span(pause)
                    ),
                );
                tokio::time::sleep(pause).await;
            } else {
                log::warn(
                    "deregister",
                    format_args!("{} {shown} failed: {problem} ({took}, attempt {attempt} of {attempts})", self.method),
                );
                return false;
            }
        }
        false
    }
}

impl PreStop for Deregistration {
    async fn run(&self) -> Result<()> {
        let results = join_all(self.urls.iter().map(|url| self.call(url))).await;
        let failed = results.iter().filter(|ok| !**ok).count();
        if failed == 0 {
            return Ok(());
        }
        if self.strict {
            return Err(anyhow::Error::new(StrictFailure { failed, of: self.urls.len() }));
        }
        log::warn("deregister", format_args!("{failed} of {} deregistration(s) failed; going on", self.urls.len()));
        Ok(())
    }
}

/// A non-2xx answer: whether to retry, and how to say it.
fn describe_status(status: StatusCode, headers: &HeaderMap) -> (bool, String) {
    if status.is_redirection() {
        let location = headers.get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("?");
        let location = Url::parse(location).map_or_else(|_| location.to_string(), |u| redact(&u));
        return (false, format!("{} redirect to {location} (redirects are not followed)", status.as_u16()));
    }
    (status.is_server_error(), format!("{}", status.as_u16()))
}

/// A reqwest error as its innermost cause: "cannot connect: Connection refused (os error 111)".
fn error_chain(error: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    format!("{}: {innermost}", if error.is_connect() { "cannot connect" } else { "request failed" })
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(body.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{' | b'['))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn build_client(
    timeout: Duration,
    direct: bool,
    https: bool,
    roots: Option<Vec<reqwest::Certificate>>,
) -> Result<Client> {
    // rustls without a built-in provider: use ring's (aws-lc's C build is slower and larger).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(0)
        .user_agent(concat!("gracestop/", env!("CARGO_PKG_VERSION")));
    if direct {
        // An HTTP_PROXY meant for the outside world must not catch a loopback call.
        builder = builder.no_proxy();
    }
    builder = match roots {
        Some(certs) => builder.tls_certs_only(certs),
        // http only: no CA store needed, and images without one still work.
        None if !https => builder.tls_certs_only(Vec::new()),
        None => builder,
    };
    builder.build().context("cannot set up the HTTP client").map_err(|e| coded(Exit::Usage, format!("{e:#}")))
}

/// A URL fit for the log: no password, no value of a token-like query parameter.
pub fn redact(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = ["token", "secret", "password", "passwd", "key", "auth", "signature"]
                    .iter()
                    .any(|s| k.to_ascii_lowercase().contains(s));
                (k.into_owned(), if secret { "***".to_string() } else { v.into_owned() })
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords_and_tokens() {
        let url =
            Url::parse("http://user:hunter2@127.0.0.1:8500/v1/agent/service/deregister/app?token=abc&dc=eu").unwrap();
        let shown = redact(&url);
        assert!(!shown.contains("hunter2") && !shown.contains("abc"), "{shown}");
        assert!(shown.contains("user:***@") && shown.contains("dc=eu"), "{shown}");
        assert_eq!(redact(&Url::parse("http://127.0.0.1/down").unwrap()), "http://127.0.0.1/down");
    }

    #[test]
    fn json_bodies_are_recognised() {
        assert!(looks_like_json(br#" {"status":"DOWN"}"#));
        assert!(looks_like_json(b"[1]"));
        assert!(!looks_like_json(b"status=DOWN"));
        assert!(!looks_like_json(b""));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(9), Duration::from_secs(1));
    }

    #[test]
    fn loopback_detection() {
        for url in ["http://127.0.0.1/x", "http://127.9.9.9/x", "http://[::1]:80/x", "http://localhost:8080/x"] {
            assert!(is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
        assert!(!is_loopback(&Url::parse("http://10.0.0.1/x").unwrap()));
    }

    #[test]
    fn redirects_are_failures_without_retry_and_5xx_are_retried() {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::LOCATION, "http://127.0.0.1/elsewhere".parse().unwrap());
        let (retry, text) = describe_status(StatusCode::FOUND, &headers);
        assert!(!retry && text.contains("/elsewhere"), "{text}");
        assert!(describe_status(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new()).0);
        assert!(!describe_status(StatusCode::NOT_FOUND, &HeaderMap::new()).0);
    }

    #[test]
    fn worst_case_counts_every_attempt_and_backoff() {
        let args = PreStopArgs {
            urls: vec![Url::parse("http://127.0.0.1:1/down").unwrap()],
            method: Method::POST,
            headers: vec![],
            body: None,
            timeout: Duration::from_secs(5),
            retries: 2,
            strict: false,
            cacert: None,
            drain: Duration::ZERO,
            deadline: None,
        };
        let d = Deregistration::new(&args).unwrap().unwrap();
        assert_eq!(d.worst_case(), (Duration::from_secs(5) + OUTER_SLACK) * 3 + Duration::from_millis(300));
    }
}
