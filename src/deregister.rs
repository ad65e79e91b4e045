//! HTTP deregistration: tell service registries and load balancers to stop
//! routing here, before the stop signal.
//!
//! One client per route (direct for loopback URLs, the environment's proxy for
//! the others), built only when a URL is given. Every attempt is bounded twice:
//! by reqwest's own timeout and by an outer `tokio::time::timeout`, because DNS
//! resolution runs on a blocking thread that reqwest cannot cancel. Retries come
//! after connection errors, timeouts and 5xx answers only, with a short backoff.
//! Redirects are never followed.
//!
//! Redaction lives here too: header values, URL user names and passwords,
//! fragments and the values of secret-looking query parameters never reach the
//! log, nor a usage error (see [`redact`], [`redact_url_text`], [`redact_header_text`]).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::future::join_all;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Client, Method, StatusCode, Url};

use crate::config::DeregisterConfig;
use crate::event::{span, Attempt, Event};
use crate::exit::{coded, Exit};
use crate::log;
use crate::platform::file::read_regular;
use crate::sequence::{Step, StepRun};

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
    pub fn new(args: &DeregisterConfig) -> Result<Option<Deregistration>> {
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
                // A file without any PEM block parses as an empty bundle: with no
                // root at all, every https call would fail later, as a warning.
                if certs.is_empty() {
                    return Err(coded(
                        Exit::Usage,
                        format!("--deregister-cacert {} holds no PEM certificate", path.display()),
                    ));
                }
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
            let took = start.elapsed();
            let no_answer = || format!("no answer within {}", span(self.timeout));
            let (retry, status, problem) = match outcome {
                Ok(Ok(response)) if response.status().is_success() => {
                    log::emit(Event::Deregistered {
                        method: self.method.to_string(),
                        url: shown.clone(),
                        status: response.status().as_u16(),
                        took,
                        attempt,
                        attempts,
                    });
                    return true;
                }
                Ok(Ok(response)) => {
                    let (retry, problem) = describe_status(url, response.status(), response.headers());
                    (retry, Some(response.status().as_u16()), problem)
                }
                Ok(Err(e)) if e.is_timeout() => (true, None, no_answer()),
                Ok(Err(e)) => (true, None, error_chain(e)),
                Err(_) => (true, None, no_answer()),
            };
            let report = Attempt {
                method: self.method.to_string(),
                url: shown.clone(),
                status,
                problem,
                took,
                attempt,
                attempts,
            };
            if retry && attempt < attempts {
                let pause = backoff(attempt);
                log::emit(Event::DeregisterRetry { attempt: report, pause });
                tokio::time::sleep(pause).await;
            } else {
                log::emit(Event::DeregisterFailed { attempt: report });
                return false;
            }
        }
        false
    }
}

impl Step for Deregistration {
    fn name(&self) -> &'static str {
        "deregister"
    }

    /// Every attempt timing out, plus the backoffs between them.
    fn worst_case(&self) -> Duration {
        let attempts = self.retries + 1;
        (self.timeout + OUTER_SLACK) * attempts + (1..attempts).map(backoff).sum::<Duration>()
    }

    fn planned(&self) -> Option<Event> {
        Some(Event::DeregisterPlanned {
            method: self.method.to_string(),
            urls: self.urls.iter().map(redact).collect(),
            worst: self.worst_case(),
        })
    }

    /// Calls every URL at once, each with its retries.
    fn run(&self) -> StepRun<'_> {
        Box::pin(async move {
            let results = join_all(self.urls.iter().map(|url| self.call(url))).await;
            let failed = results.iter().filter(|ok| !**ok).count();
            if failed == 0 {
                return Ok(());
            }
            if self.strict {
                return Err(anyhow::Error::new(StrictFailure { failed, of: self.urls.len() }));
            }
            log::emit(Event::DeregisterIncomplete { failed, of: self.urls.len() });
            Ok(())
        })
    }
}

/// A non-2xx answer to a request to `url`: whether to retry, and how to say it.
///
/// A redirect's target is resolved against `url` (a relative `Location` such as
/// `/login?token=…` is common) and redacted like any URL; one that cannot be
/// resolved is not shown at all, since its secrets could not be found in it.
fn describe_status(url: &Url, status: StatusCode, headers: &HeaderMap) -> (bool, String) {
    if status.is_redirection() {
        let location = match headers.get(reqwest::header::LOCATION) {
            None => "nowhere (no Location)".to_string(),
            Some(value) => match value.to_str().ok().and_then(|text| url.join(text.trim()).ok()) {
                Some(target) => redact(&target),
                None => "an unparsable Location".to_string(),
            },
        };
        return (false, format!("{} redirect to {location} (redirects are not followed)", status.as_u16()));
    }
    (status.is_server_error(), format!("{}", status.as_u16()))
}

/// A reqwest error as its innermost cause: "cannot connect: Connection refused (os error 111)".
///
/// reqwest's own message names the URL ("error sending request for url (…)"),
/// query and all; its causes (hyper, rustls, io errors) do not. The URL is
/// dropped too, for the case of an error without a cause, which is then its
/// own innermost.
fn error_chain(error: reqwest::Error) -> String {
    let connect = error.is_connect();
    let error = error.without_url();
    let mut innermost: &dyn std::error::Error = &error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    format!("{}: {innermost}", if connect { "cannot connect" } else { "request failed" })
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

/// What stands in for a secret.
const HIDDEN: &str = "***";

/// Parts of query parameter names that mark the value as a secret, matched
/// case-insensitively anywhere in the (percent-decoded) name: `access_token`,
/// `X-Amz-Signature`, `apiKey`, `sessionid`, `code` (OAuth) all match.
/// Over-matching only hides a harmless value.
const SECRET_NAMES: [&str; 16] = [
    "token", "secret", "pass", "pwd", "key", "auth", "sig", "cred", "session", "sid", "jwt", "code", "bearer",
    "private", "ticket", "otp",
];

/// Whether a query parameter (or header) named `name` carries a secret.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_lowercase();
    SECRET_NAMES.iter().any(|s| name.contains(s))
}

/// A URL fit for the log: the user name, the password, the fragment and the
/// values of secret-looking query parameters ([`is_secret_name`]) become `***`.
/// Tokens are often passed as the user name (`https://TOKEN@host/`) or in the
/// fragment. Scheme, host, port, path and other parameters stay, so the line
/// still says where the request went.
pub fn redact(url: &Url) -> String {
    let mut url = url.clone();
    if !url.username().is_empty() {
        let _ = url.set_username(HIDDEN);
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(HIDDEN));
    }
    if let Some(query) = url.query() {
        let query = redact_query(query);
        url.set_query(Some(&query));
    }
    if url.fragment().is_some_and(|f| !f.is_empty()) {
        url.set_fragment(Some(HIDDEN));
    }
    url.to_string()
}

/// A raw query string with the value of every secret-looking parameter hidden.
/// Both `&` and `;` separate parameters here (servers differ), and a bare
/// parameter with a secret-looking name is hidden whole: it may be the token.
fn redact_query(query: &str) -> String {
    let mut shown = String::with_capacity(query.len());
    let mut start = 0;
    for piece in query.split(['&', ';']) {
        if start > 0 {
            // The separator that ended the previous piece, as it was.
            shown.push_str(&query[start - 1..start]);
        }
        start += piece.len() + 1;
        let (name, value) = piece.split_once('=').map_or((piece, None), |(n, v)| (n, Some(v)));
        let decoded = url::form_urlencoded::parse(name.as_bytes()).next().map(|(n, _)| n.into_owned());
        let secret = is_secret_name(name) || decoded.as_deref().is_some_and(is_secret_name);
        match value {
            Some(value) if secret && !value.is_empty() => {
                shown.push_str(name);
                shown.push('=');
                shown.push_str(HIDDEN);
            }
            None if secret => shown.push_str(HIDDEN),
            _ => shown.push_str(piece),
        }
    }
    shown
}

/// A URL given as text, fit for an error message even when it does not parse
/// (an unparsable `--deregister-url` with a password in it: clap would quote it).
///
/// Text that parses to a URL with a host is shown as [`redact`] shows it. Otherwise, by text: all
/// before the last `@` after the scheme is a user name and password (a `/`,
/// `?` or `#` in a password does not end it early), all after the first `#` a
/// fragment, and the query is redacted as in [`redact`]. When in doubt it hides
/// more, never less.
pub fn redact_url_text(text: &str) -> String {
    let text = text.trim();
    // Without a host, `admin:pw@host/x` parses as scheme "admin" and a path.
    if let Some(url) = Url::parse(text).ok().filter(Url::has_host) {
        return redact(&url);
    }
    let (prefix, mut rest) = text.split_at(scheme_length(text));
    let mut shown = prefix.to_string();
    if let Some(at) = rest.rfind('@') {
        shown.push_str(if rest[..at].contains(':') { "***:***@" } else { "***@" });
        rest = &rest[at + 1..];
    }
    let (rest, fragment) = rest.split_once('#').map_or((rest, None), |(r, f)| (r, Some(f)));
    let (rest, query) = rest.split_once('?').map_or((rest, None), |(r, q)| (r, Some(q)));
    shown.push_str(rest);
    if let Some(query) = query {
        shown.push('?');
        shown.push_str(&redact_query(query));
    }
    if let Some(fragment) = fragment {
        shown.push('#');
        if !fragment.is_empty() {
            shown.push_str(HIDDEN);
        }
    }
    shown
}

/// The length of `scheme:` and the slashes after it at the start of `text`, or 0.
/// A scheme counts only when a slash follows: in `admin:pw@host`, "admin" is a
/// user name.
fn scheme_length(text: &str) -> usize {
    let Some((scheme, rest)) = text.split_once(':') else { return 0 };
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let slashes = rest.len() - rest.trim_start_matches(['/', '\\']).len();
    if is_scheme && slashes > 0 {
        scheme.len() + 1 + slashes
    } else {
        0
    }
}

/// A header given as text (`Name: value`), fit for an error message: the name,
/// when it is a valid header name, and `***` for the value. Text without a colon
/// or with an invalid name is hidden whole: it may be the value itself.
pub fn redact_header_text(text: &str) -> String {
    match text.split_once(':') {
        Some((name, _)) if reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).is_ok() => {
            format!("{}: {HIDDEN}", name.trim())
        }
        _ => HIDDEN.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_user_names_passwords_fragments_and_tokens() {
        let url =
            Url::parse("http://user:hunter2@127.0.0.1:8500/v1/agent/service/deregister/app?token=abc&dc=eu").unwrap();
        let shown = redact(&url);
        assert!(!shown.contains("hunter2") && !shown.contains("abc"), "{shown}");
        // The user name is hidden too: tokens are often passed as one.
        assert_eq!(shown, "http://***:***@127.0.0.1:8500/v1/agent/service/deregister/app?token=***&dc=eu");
        assert_eq!(redact(&Url::parse("http://127.0.0.1/down").unwrap()), "http://127.0.0.1/down");
        let table = [
            ("https://ghp_T0KEN@host/x", "https://***@host/x"),
            ("https://host/x#access_token=T0KEN", "https://host/x#***"),
            (
                "https://host/x?X-Amz-Signature=T0KEN&X-Amz-Credential=T0KEN&v=1",
                "https://host/x?X-Amz-Signature=***&X-Amz-Credential=***&v=1",
            ),
            ("https://host/x?APIKEY=T0KEN;sid=T0KEN", "https://host/x?APIKEY=***;sid=***"),
            ("https://host/x?%74oken=T0KEN&empty_token=", "https://host/x?%74oken=***&empty_token="),
            ("https://host/x?Session&page=2", "https://host/x?***&page=2"),
            ("https://host/x?", "https://host/x?"),
        ];
        for (text, want) in table {
            assert_eq!(redact(&Url::parse(text).unwrap()), want, "{text}");
        }
    }

    #[test]
    fn unparsable_urls_are_redacted_by_text() {
        let table = [
            ("http://admin:pa55@127.0.0.1:99999/down", "http://***:***@127.0.0.1:99999/down"),
            ("http://T0KEN@127.0.0.1:99999/down", "http://***@127.0.0.1:99999/down"),
            ("http://user:pa/s?s#w@127.0.0.1:99999/down", "http://***:***@127.0.0.1:99999/down"),
            ("admin:pa55@127.0.0.1:99999/down", "***:***@127.0.0.1:99999/down"),
            ("http://127.0.0.1:99999/x?dc=eu&token=T0KEN#frag", "http://127.0.0.1:99999/x?dc=eu&token=***#***"),
            ("127.0.0.1:8080/down", "127.0.0.1:8080/down"),
            ("not a url", "not a url"),
            // Parsable but refused by gracestop (not http): redacted as a URL.
            ("ftp://user:pw@host/x", "ftp://***:***@host/x"),
        ];
        for (text, want) in table {
            assert_eq!(redact_url_text(text), want, "{text}");
        }
    }

    #[test]
    fn header_text_keeps_only_a_valid_name() {
        assert_eq!(redact_header_text("Authorization: Bearer s3cr3t"), "Authorization: ***");
        assert_eq!(redact_header_text(" X-Token :v"), "X-Token: ***");
        assert_eq!(redact_header_text("Bearer s3cr3t"), "***");
        assert_eq!(redact_header_text("Bearer s3cr3t: x"), "***");
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
        let url = Url::parse("http://127.0.0.1:8080/down").unwrap();
        let redirect = |location: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(reqwest::header::LOCATION, location.parse().unwrap());
            describe_status(&url, StatusCode::FOUND, &headers)
        };
        let (retry, text) = redirect("http://127.0.0.1/elsewhere");
        assert!(!retry && text.contains("redirect to http://127.0.0.1/elsewhere"), "{text}");
        let (_, text) = redirect("/login?token=s3cr3t&next=home");
        assert!(text.contains("redirect to http://127.0.0.1:8080/login?token=***&next=home"), "{text}");
        let (_, text) = redirect("https://T0KEN@idp.example/x");
        assert!(text.contains("redirect to https://***@idp.example/x"), "{text}");
        let (_, text) = redirect("http://user:s3cr3t@[::1");
        assert!(text.contains("redirect to an unparsable Location") && !text.contains("s3cr3t"), "{text}");
        assert!(describe_status(&url, StatusCode::FOUND, &HeaderMap::new()).1.contains("no Location"));
        assert!(describe_status(&url, StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new()).0);
        assert!(!describe_status(&url, StatusCode::NOT_FOUND, &HeaderMap::new()).0);
    }

    #[test]
    fn worst_case_counts_every_attempt_and_backoff() {
        let args = DeregisterConfig {
            urls: vec![Url::parse("http://127.0.0.1:1/down").unwrap()],
            method: Method::POST,
            headers: vec![],
            body: None,
            timeout: Duration::from_secs(5),
            retries: 2,
            strict: false,
            cacert: None,
        };
        let d = Deregistration::new(&args).unwrap().unwrap();
        assert_eq!(d.worst_case(), (Duration::from_secs(5) + OUTER_SLACK) * 3 + Duration::from_millis(300));
    }
}
