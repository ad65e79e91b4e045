//! Properties of the public parsers in `gracestop::cli`, the pidfile parser and
//! the redaction in `gracestop::deregister`, over generated input: no input
//! panics, the forgiving formats round-trip, and a generated secret never
//! survives redaction, neither in a log line nor in a usage error. Pure functions: nothing is spawned.

use std::time::Duration;

use clap::Parser;
use gracestop::cli::{
    parse_duration, parse_header, parse_method, parse_pid, parse_remap, parse_signal, parse_url, redact_usage_error,
    Cli, MAX_DURATION,
};
use gracestop::config::check_pid;
use gracestop::deregister::{redact, redact_header_text, redact_url_text};
use nix::sys::signal::Signal;
use proptest::prelude::*;
use reqwest::Url;

/// Text of any characters: unicode, control characters, NUL, newlines.
fn any_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..48).prop_map(String::from_iter)
}

/// Text shaped like what the parsers expect, so that generation reaches past
/// their first check: numbers (huge, signed, fractional, exponents), units,
/// signal names, `a=b`, headers, URLs, with stray unicode.
fn near_miss() -> impl Strategy<Value = String> {
    prop_oneof![
        any_text(),
        "[-+ ]?[0-9]{0,30}(\\.[0-9]{0,12})?([eE][-+]?[0-9]{1,4})?",
        "[0-9]{1,25} ?(ns|us|ms|s|m|min|h|d|w|M|y|days|years|µs|x)( [0-9]{1,25}[a-z]{1,3}){0,3}",
        "(SIG|sig)?[A-Za-z]{0,12}[0-9]{0,3}",
        "-?[0-9]{0,4}=-?[0-9]{0,4}",
        "[!-~]{0,12}:[ \\t]*[\\PC\\x00-\\x1f\\x7f]{0,24}",
        "(https?|ftp|file|[a-z]{1,5})?(:|://)?([^@/]{0,12}@)?[^/?#]{0,16}(/[^?#]{0,12})?(\\?[^#]{0,20})?(#.{0,8})?",
    ]
}

/// A secret as a token generator would make it: 8 to 32 alphanumerics.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{8,32}"
}

/// Query parameter names that `redact` must treat as secret: each common name
/// in full, in any case.
fn secret_name() -> impl Strategy<Value = String> {
    const NAMES: [&str; 26] = [
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "pass",
        "pwd",
        "key",
        "apikey",
        "api_key",
        "api-key",
        "auth",
        "authorization",
        "sig",
        "signature",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "credential",
        "session",
        "sessionid",
        "jwt",
        "code",
    ];
    (prop::sample::select(NAMES.as_slice()), prop::collection::vec(any::<bool>(), 32)).prop_map(|(name, upper)| {
        name.chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect()
    })
}

/// `text` in random case.
fn random_case(text: &str, upper: &[bool]) -> String {
    text.chars()
        .zip(upper.iter().cycle())
        .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
        .collect()
}

proptest! {
    #[test]
    fn no_parser_panics_on_any_input(text in near_miss()) {
        let _ = parse_duration(&text);
        let _ = parse_signal(&text);
        let _ = parse_pid(&text);
        let _ = parse_header(&text);
        let _ = parse_url(&text);
        let _ = parse_remap(&text);
        let _ = parse_method(&text);
        let _ = redact_url_text(&text);
        let _ = redact_header_text(&text);
        if let Ok(url) = Url::parse(&text) {
            let _ = redact(&url);
        }
    }

    #[test]
    fn check_pid_refuses_exactly_what_design_4_refuses(number in prop_oneof![any::<i64>(), -3i64..=3]) {
        let result = check_pid(number);
        let allowed = number >= 2 && number <= i64::from(i32::MAX) && number != i64::from(std::process::id());
        prop_assert_eq!(result.is_ok(), allowed, "{} -> {:?}", number, result);
        if let Ok(pid) = result {
            prop_assert_eq!(i64::from(pid), number);
        }
    }

    #[test]
    fn whole_and_fractional_seconds_parse_back(millis in 0..=MAX_DURATION.as_millis() as u64) {
        let duration = Duration::from_millis(millis);
        let secs = duration.as_secs();
        prop_assert_eq!(parse_duration(&secs.to_string()), Ok(Duration::from_secs(secs)));
        let fractional = parse_duration(&format!("{secs}.{:03}", duration.subsec_millis()));
        let parsed = fractional.map_err(TestCaseError::fail)?;
        prop_assert!(parsed.abs_diff(duration) < Duration::from_millis(1), "{:?} vs {:?}", parsed, duration);
    }

    #[test]
    fn humantime_formatted_durations_parse_back(millis in 0..=MAX_DURATION.as_millis() as u64) {
        let duration = Duration::from_millis(millis);
        let text = humantime::format_duration(duration).to_string();
        let parsed = parse_duration(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert!(parsed.abs_diff(duration) < Duration::from_millis(1), "{}: {:?} vs {:?}", text, parsed, duration);
    }

    #[test]
    fn every_signal_parses_by_number_and_by_name_in_any_case(
        number in 1i32..=31,
        with_sig in any::<bool>(),
        upper in prop::collection::vec(any::<bool>(), 1..12),
        padded in any::<bool>(),
    ) {
        let signal = Signal::try_from(number).expect("1..=31 are Linux signals");
        prop_assert_eq!(parse_signal(&number.to_string()), Ok(signal));
        let name = signal.as_str();
        let name = if with_sig { name } else { name.trim_start_matches("SIG") };
        let mut text = random_case(name, &upper);
        if padded {
            text = format!(" {text} ");
        }
        prop_assert_eq!(parse_signal(&text), Ok(signal), "{:?}", text);
    }

    #[test]
    fn every_other_pid_parses_to_itself(pid in 2..=i32::MAX) {
        prop_assume!(pid as u32 != std::process::id());
        prop_assert_eq!(parse_pid(&pid.to_string()), Ok(pid));
    }

    #[test]
    fn remaps_parse_to_their_pair(from in any::<u8>(), to in any::<u8>()) {
        prop_assert_eq!(parse_remap(&format!("{from}={to}")), Ok((from, to)));
    }

    #[test]
    fn method_tokens_parse_upper_cased(token in "[A-Za-z][A-Za-z_-]{0,15}") {
        let method = parse_method(&token).map_err(|e| TestCaseError::fail(format!("{token}: {e}")))?;
        prop_assert_eq!(method.as_str(), token.to_ascii_uppercase());
    }

    #[test]
    fn valid_headers_parse_to_their_name_and_trimmed_value(
        name in "[A-Za-z][A-Za-z0-9-]{0,15}",
        value in "[!-~]([ -~]{0,30}[!-~])?",
    ) {
        let header = parse_header(&format!("{name}:  {value} ")).map_err(TestCaseError::fail)?;
        prop_assert_eq!(header.name.as_str(), name.to_ascii_lowercase());
        prop_assert_eq!(header.value.to_str().unwrap(), value.as_str());
    }

    #[test]
    fn a_secret_in_any_secret_place_of_a_url_never_survives_redaction(
        secret in secret(),
        name in secret_name(),
        place in 0..5usize,
    ) {
        let url = match place {
            0 => format!("http://deploy:{secret}@127.0.0.1:8080/v1/down?dc=eu"),
            1 => format!("https://{secret}@127.0.0.1/v1/down"),
            2 => format!("http://127.0.0.1:8080/v1/down?dc=eu&{name}={secret}&page=2"),
            3 => format!("http://127.0.0.1:8080/v1/down;x=1?{name}={secret}"),
            _ => format!("http://127.0.0.1:8080/v1/down#{secret}"),
        };
        // The secret must not occur elsewhere by chance (as in a name).
        prop_assume!(url.matches(&secret[..]).count() == 1);
        let shown = redact(&Url::parse(&url).unwrap());
        prop_assert!(!shown.contains(&secret[..]), "{} -> {}", url, shown);
        prop_assert!(shown.contains("127.0.0.1") && shown.contains("/v1/down"), "{}", shown);
        // The same, unparsable (port 99999): redacted by text.
        let unparsable = url.replacen("127.0.0.1:8080", "127.0.0.1:99999", 1).replacen("127.0.0.1/", "127.0.0.1:99999/", 1);
        prop_assert!(Url::parse(&unparsable).is_err());
        let shown = redact_url_text(&unparsable);
        prop_assert!(!shown.contains(&secret[..]), "{} -> {}", unparsable, shown);
        prop_assert!(shown.contains("127.0.0.1:99999"), "{}", shown);
    }

    #[test]
    fn a_header_value_never_survives_header_redaction(name in "[A-Za-z][A-Za-z0-9-]{0,15}", secret in secret()) {
        prop_assume!(!name.contains(&secret[..]));
        let shown = redact_header_text(&format!("{name}: Bearer {secret}"));
        prop_assert_eq!(shown, format!("{name}: ***"));
    }
}

proptest! {
    // Each case builds clap's whole command: fewer of them.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_secret_never_appears_in_a_rendered_usage_error(
        secret in "[A-Za-z0-9]{9,32}",
        header in "[A-Za-z][A-Za-z0-9-]{0,15}",
        name in secret_name(),
        // Characters that make a header value invalid and survive trimming.
        bad in prop::sample::select(&['\u{0}', '\u{1}', '\u{1b}', '\u{7f}'][..]),
        case in 0..6usize,
    ) {
        let value = match case {
            0 => format!("--deregister-header={header}: Bearer {secret}{bad}"),
            1 => format!("--deregister-header={header}: {bad}{secret}"),
            2 => format!("--deregister-url=http://deploy:{secret}@127.0.0.1:99999/down"),
            3 => format!("--deregister-url=http://{secret}@127.0.0.1:99999/down"),
            4 => format!("--deregister-url=http://127.0.0.1:99999/down?{name}={secret}"),
            // An unquoted header leaves its value as a stray argument.
            _ => secret.clone(),
        };
        prop_assume!(!header.contains(&secret[..]) && !name.contains(&secret[..]));
        let Err(error) = Cli::try_parse_from(["gracestop", "drain", value.as_str()]) else {
            return Err(TestCaseError::fail(format!("{value:?} was accepted")));
        };
        let error = redact_usage_error(error);
        prop_assert_eq!(error.exit_code(), 2);
        let shown = error.to_string();
        prop_assert!(!shown.contains(&secret[..]), "{:?} -> {}", value, shown);
    }

    #[test]
    fn redacting_any_usage_error_never_panics(args in prop::collection::vec(near_miss(), 0..5)) {
        let argv = ["gracestop".to_string()].into_iter().chain(args);
        if let Err(error) = Cli::try_parse_from(argv) {
            let _ = redact_usage_error(error).to_string();
        }
    }
}

proptest! {
    /// Pidfile contents: nothing panics on any bytes, and a PID written the ways
    /// daemons write it ("N", "N\n", padded) reads back as itself.
    #[test]
    fn pidfile_contents_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = gracestop::pidfile::parse(&bytes);
    }

    #[test]
    fn written_pids_read_back(pid in 2..=i32::MAX, before in "[ \t\n]{0,3}", after in "[ \t\r\n]{0,3}") {
        prop_assume!(pid as u32 != std::process::id());
        let text = format!("{before}{pid}{after}");
        prop_assert_eq!(gracestop::pidfile::parse(text.as_bytes()), Ok(pid));
    }

    /// Anything around the digits but white space is refused, never misread.
    #[test]
    fn decorated_pids_are_refused(pid in 2..=i32::MAX, junk in "[^0-9\\s]{1,3}", front in any::<bool>()) {
        let text = if front { format!("{junk}{pid}") } else { format!("{pid}{junk}") };
        prop_assert!(gracestop::pidfile::parse(text.as_bytes()).is_err(), "{:?}", text);
    }
}
