//! `man/` and `completions/` are generated from the clap definitions
//! (`gracestop::cli::Cli`) and the exit-code table (`gracestop::exit`), and
//! committed. These tests render them again and fail when a committed file is
//! stale; `GRACESTOP_BLESS=1` rewrites them instead. They also check that the
//! files work: groff renders every page without a warning, bash completes a
//! subcommand, zsh and fish parse theirs. A missing tool skips its check with a
//! note, and fails it under `GRACESTOP_CI`.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use clap::{ArgAction, CommandFactory};
use clap_complete::{Generator, Shell};
use clap_mangen::Man;
use gracestop::cli::Cli;
use gracestop::exit::{self, Exit};
use roff::{bold, roman, Inline, Roff};

/// The other pages worth reading, besides gracestop's own.
const SEE_ALSO: [(&str, &str); 5] =
    [("kill", "1"), ("timeout", "1"), ("start-stop-daemon", "8"), ("systemd.kill", "5"), ("tini", "1")];

/// The shells that get a completion file, named by [`Generator::file_name`].
const SHELLS: [Shell; 5] = [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell];

/// The width an example command line is folded to (with ` \` continuations).
const EXAMPLE_WIDTH: usize = 64;

/// One generated file: its path below the repository's root, and its text.
#[derive(Debug)]
struct Generated {
    path: String,
    text: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every generated file, man pages first, rendered from `cli`.
fn generate(cli: clap::Command) -> Vec<Generated> {
    let mut files = man_pages(cli.clone());
    files.extend(completions(cli));
    files
}

// ---------------------------------------------------------------------------
// Man pages

/// `gracestop(1)` and one page per subcommand, `gracestop-stop(1)` and so on.
fn man_pages(cli: clap::Command) -> Vec<Generated> {
    // The `help` subcommand has no page of its own: leave it out of the list.
    let mut top = cli.disable_help_subcommand(true);
    top.build();
    let subs: Vec<clap::Command> = top.get_subcommands().filter(|s| !s.is_hide_set()).cloned().collect();
    let names: Vec<String> = std::iter::once(&top).chain(&subs).map(page_name).collect();
    let mut pages = vec![Generated { path: format!("man/{}.1", names[0]), text: page(&top, &subs, &names) }];
    for sub in &subs {
        let name = page_name(sub);
        pages.push(Generated { path: format!("man/{name}.1"), text: page(sub, &[], &names) });
    }
    pages
}

/// `gracestop` or `gracestop-stop`: what clap calls the display name once built.
fn page_name(cmd: &clap::Command) -> String {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name()).to_string()
}

/// The exit table's name for a subcommand; the top page has every command.
fn exit_command(cmd: &clap::Command) -> exit::Command {
    match cmd.get_name() {
        "run" => exit::Command::Run,
        "stop" => exit::Command::Stop,
        "drain" => exit::Command::Drain,
        other => panic!("subcommand {other} has no exit::Command: add it to the exit table and here"),
    }
}

fn command_name(command: exit::Command) -> &'static str {
    match command {
        exit::Command::Run => "run",
        exit::Command::Stop => "stop",
        exit::Command::Drain => "drain",
    }
}

/// One page: clap_mangen's sections (its EXTRA section, the `--help` exit
/// codes, gives way to EXIT STATUS), then EXIT STATUS, ENVIRONMENT, EXAMPLES and
/// SEE ALSO. `subs` is empty for a subcommand's page.
fn page(cmd: &clap::Command, subs: &[clap::Command], names: &[String]) -> String {
    let top = !subs.is_empty();
    let name = page_name(cmd);
    // The examples move from the description to EXAMPLES.
    let (description, mut examples) = split_examples(cmd);
    if top {
        examples = subs.iter().flat_map(|sub| split_examples(sub).1).collect();
    }
    let shown = cmd.clone().long_about(description);
    let man = Man::new(shown);

    // The title line by hand: the roff crate drops an empty argument, which
    // shifts the others (the source would land in the date's place). No date:
    // the page changes only with the definitions.
    let title =
        format!(".TH {} 1 \"\" \"gracestop {}\" \"User Commands\"\n", name.to_uppercase(), env!("CARGO_PKG_VERSION"));
    let mut out = title.into_bytes();
    // clap_mangen's sections, without its EXTRA (the `--help` exit codes, which
    // EXIT STATUS replaces) and VERSION (the title line has it).
    man.render_name_section(&mut out).expect("render to memory");
    man.render_synopsis_section(&mut out).expect("render to memory");
    man.render_description_section(&mut out).expect("render to memory");
    man.render_options_section(&mut out).expect("render to memory");
    if top {
        man.render_subcommands_section(&mut out).expect("render to memory");
    }

    let mut roff = Roff::new();
    exit_status(&mut roff, cmd, top);
    environment(&mut roff, std::iter::once(cmd).chain(subs));
    render_examples(&mut roff, &examples);
    see_also(&mut roff, &name, names);
    roff.to_writer(&mut out).expect("render to memory");
    once_preamble(&String::from_utf8(out).expect("roff is UTF-8"))
}

/// The text with only the first copy of the preamble that each roff rendering
/// starts with (the `Aq` string), as one rendering in one piece would have it.
fn once_preamble(text: &str) -> String {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    match text.find(PREAMBLE) {
        Some(first) => {
            let end = first + PREAMBLE.len();
            format!("{}{}", &text[..end], text[end..].replace(PREAMBLE, ""))
        }
        None => text.to_string(),
    }
}

/// The long about without its `Example:` paragraphs, and those examples
/// (the command line after `Example: `, one line each).
fn split_examples(cmd: &clap::Command) -> (String, Vec<String>) {
    let about = cmd.get_long_about().or_else(|| cmd.get_about()).map(ToString::to_string).unwrap_or_default();
    let mut kept = Vec::new();
    let mut examples = Vec::new();
    for paragraph in about.split("\n\n") {
        match paragraph.trim().strip_prefix("Example:") {
            Some(example) => examples.push(example.split_whitespace().collect::<Vec<_>>().join(" ")),
            None => kept.push(paragraph),
        }
    }
    (kept.join("\n\n"), examples)
}

fn exit_status(roff: &mut Roff, cmd: &clap::Command, top: bool) {
    roff.control("SH", ["EXIT STATUS"]);
    let rows: Vec<(Exit, String)> = if top {
        Exit::ALL
            .into_iter()
            .map(|exit| {
                let commands: Vec<&str> = exit.commands().iter().map(|&c| command_name(c)).collect();
                (exit, format!("{}: {}", commands.join(", "), exit.meaning()))
            })
            .collect()
    } else {
        exit::rows(exit_command(cmd)).map(|exit| (exit, exit.meaning().to_string())).collect()
    };
    for (exit, meaning) in rows {
        roff.control("TP", []);
        roff.text([bold(exit.shown_code())]);
        roff.text([roman(meaning)]);
    }
}

/// How an option reads: `--wait DURATION`, `--dump[=SIG]`, `--force`.
fn option_usage(arg: &clap::Arg) -> String {
    let mut usage = match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => arg.get_id().to_string(),
    };
    let values = arg.get_num_args().expect("built");
    if let (true, Some(names)) = (values.takes_values() && !arg.is_positional(), arg.get_value_names()) {
        let names = names.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
        match (values.min_values(), arg.is_require_equals_set()) {
            (0, _) => usage.push_str(&format!("[={names}]")),
            (_, true) => usage.push_str(&format!("={names}")),
            _ => usage.push_str(&format!(" {names}")),
        }
    }
    usage
}

/// How the environment variable's text is read, where that differs from a
/// command-line value.
fn env_value_note(arg: &clap::Arg) -> Option<String> {
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return Some("A flag: true, yes, on or 1 sets it; false, no, off or 0 does not.".into());
    }
    let separator = match arg.get_value_delimiter()? {
        ' ' => "spaces".to_string(),
        '\n' => "newlines".to_string(),
        ',' => "commas".to_string(),
        other => format!("{other:?}"),
    };
    Some(format!("Several values are separated by {separator}."))
}

/// Every option of `cmds` that reads an environment variable, in the order of
/// first appearance. One variable read by several commands (a global option)
/// is listed once per distinct option and help, with the commands that read it.
fn environment<'a>(roff: &mut Roff, cmds: impl Iterator<Item = &'a clap::Command>) {
    struct Entry {
        env: String,
        usage: String,
        help: String,
        note: Option<String>,
        commands: Vec<String>,
    }
    let cmds: Vec<&clap::Command> = cmds.collect();
    let several = cmds.len() > 1;
    let mut entries: Vec<Entry> = Vec::new();
    for cmd in &cmds {
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set() && !a.is_hide_env_set()) {
            let Some(env) = arg.get_env().map(OsStr::to_string_lossy) else { continue };
            let usage = option_usage(arg);
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let command = cmd.get_name().to_string();
            match entries.iter_mut().find(|e| e.env == env && e.usage == usage && e.help == help) {
                Some(entry) => entry.commands.push(command),
                None => entries.push(Entry {
                    env: env.into_owned(),
                    usage,
                    help,
                    note: env_value_note(arg),
                    commands: vec![command],
                }),
            }
        }
    }
    if entries.is_empty() {
        return;
    }
    // Variables of the same name sit together.
    let order: Vec<String> = entries.iter().map(|e| e.env.clone()).fold(Vec::new(), |mut order, env| {
        if !order.contains(&env) {
            order.push(env);
        }
        order
    });
    entries.sort_by_key(|e| order.iter().position(|env| *env == e.env));

    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman("Each option below can also be given by its environment variable; the command line wins.")]);
    for entry in entries {
        roff.control("TP", []);
        roff.text([bold(entry.env)]);
        let mut line: Vec<Inline> = vec![roman("As "), bold(entry.usage)];
        if several {
            line.push(roman(format!(" ({})", entry.commands.join(", "))));
        }
        line.push(roman(format!(": {}.", entry.help.trim_end_matches('.'))));
        if let Some(note) = entry.note {
            line.push(roman(format!(" {note}")));
        }
        roff.text(line);
    }
}

/// Splits a shell command line into words, keeping quoted text (which may hold
/// spaces) within its word.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, ' ') => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Folds a command line into lines of at most [`EXAMPLE_WIDTH`], each but the
/// last ending with ` \\`. Breaks fall before an option, never between an
/// option and its value, and not within the command after `--`; a longer piece
/// gets a line of its own.
fn fold_example(example: &str) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut after_dashes = false;
    for word in shell_words(example) {
        match pieces.last_mut() {
            Some(piece) if after_dashes || !word.starts_with('-') => {
                piece.push(' ');
                piece.push_str(&word);
            }
            _ => pieces.push(word.clone()),
        }
        after_dashes |= word == "--";
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for piece in pieces {
        if !line.trim().is_empty() && line.len() + 1 + piece.len() + 2 > EXAMPLE_WIDTH {
            lines.push(std::mem::take(&mut line) + " \\");
            line.push_str("    ");
        }
        if !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    lines.push(line);
    lines
}

fn render_examples(roff: &mut Roff, examples: &[String]) {
    if examples.is_empty() {
        return;
    }
    roff.control("SH", ["EXAMPLES"]);
    for example in examples {
        roff.control("PP", []);
        roff.control("nf", []);
        roff.control("RS", ["4"]);
        for line in fold_example(example) {
            roff.text([roman(line)]);
        }
        roff.control("RE", []);
        roff.control("fi", []);
    }
}

fn see_also(roff: &mut Roff, this: &str, names: &[String]) {
    roff.control("SH", ["SEE ALSO"]);
    let ours = names.iter().filter(|n| *n != this).map(|n| (n.as_str(), "1"));
    let all: Vec<(&str, &str)> = ours.chain(SEE_ALSO).collect();
    let mut line = Vec::new();
    for (i, (page, section)) in all.iter().enumerate() {
        line.push(bold(*page));
        let tail = if i + 1 < all.len() { ", " } else { "" };
        line.push(roman(format!("({section}){tail}")));
    }
    roff.text(line);
}

// ---------------------------------------------------------------------------
// Completions

/// Shell completions, one file per shell, from clap_complete; fish's gets the
/// completion of `run -- COMMAND ARGS...` that clap_complete does not write for
/// a positional argument.
fn completions(cli: clap::Command) -> Vec<Generated> {
    SHELLS
        .into_iter()
        .map(|shell| {
            let mut cmd = cli.clone();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "gracestop", &mut buf);
            let mut text = String::from_utf8(buf).expect("completions are UTF-8");
            if shell == Shell::Fish {
                text.push_str(FISH_RUN_COMMAND);
            }
            Generated { path: format!("completions/{}", shell.file_name("gracestop")), text }
        })
        .collect()
}

/// After `gracestop run ... --`, fish completes the rest as a command line of
/// its own (clap_complete's fish output covers options only).
const FISH_RUN_COMMAND: &str = r#"
# run: after `--`, complete COMMAND and its arguments as a command line of its own.
function __gracestop_run_command
    set -l tokens (commandline -opc)
    set -l at (contains -i -- -- $tokens)
    or return
    set -l rest
    if test $at -lt (count $tokens)
        set rest $tokens[(math $at + 1)..-1]
    end
    complete -C (string join ' ' -- (string escape -- $rest) (commandline -ct))
end
complete -c gracestop -n "__fish_seen_subcommand_from run; and contains -- -- (commandline -opc)" -f -a "(__gracestop_run_command)"
"#;

// ---------------------------------------------------------------------------
// Freshness

/// The paths (below `dir`) whose committed text differs from `files`, or that
/// are missing, plus files in `man/` and `completions/` that nothing generates.
fn stale(files: &[Generated], dir: &Path) -> Vec<String> {
    let mut stale: Vec<String> = files
        .iter()
        .filter(|f| fs::read_to_string(dir.join(&f.path)).ok().as_deref() != Some(f.text.as_str()))
        .map(|f| f.path.clone())
        .collect();
    for folder in ["man", "completions"] {
        let Ok(entries) = fs::read_dir(dir.join(folder)) else { continue };
        for entry in entries {
            let path = format!("{folder}/{}", entry.expect("read_dir").file_name().to_string_lossy());
            if !files.iter().any(|f| f.path == path) {
                stale.push(format!("{path} (not generated: remove it)"));
            }
        }
    }
    stale
}

fn write_all(files: &[Generated], dir: &Path) {
    for file in files {
        let path = dir.join(&file.path);
        fs::create_dir_all(path.parent().expect("has a folder")).expect("create folder");
        fs::write(&path, &file.text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

fn blessing() -> bool {
    std::env::var_os("GRACESTOP_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn committed_man_pages_and_completions_are_fresh() {
    let files = generate(Cli::command());
    if blessing() {
        write_all(&files, &root());
        for extra in stale(&files, &root()) {
            eprintln!("note: {extra}");
        }
        return;
    }
    let stale = stale(&files, &root());
    assert!(
        stale.is_empty(),
        "stale generated files (the clap definitions or the exit table changed): {}\n\
         rerun with GRACESTOP_BLESS=1 cargo test --locked generated, and commit man/ and completions/",
        stale.join(", ")
    );
}

#[test]
fn freshness_check_reports_a_changed_help_as_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = generate(Cli::command());
    write_all(&files, dir.path());
    assert_eq!(stale(&files, dir.path()), Vec::<String>::new(), "a fresh rendering is not stale");

    // mut_subcommand moves the subcommand it changes to the end; moving drain
    // after it too restores the order, so that only the help text differs.
    let changed = Cli::command()
        .mut_subcommand("stop", |stop| stop.mut_arg("wait", |wait| wait.help("A help text nobody committed.")))
        .mut_subcommand("drain", |drain| drain);
    let reported = stale(&generate(changed), dir.path());
    for path in ["man/gracestop-stop.1", "completions/_gracestop", "completions/gracestop.fish"] {
        assert!(reported.iter().any(|s| s == path), "{path} not reported stale: {reported:?}");
    }
    assert!(!reported.iter().any(|s| s == "man/gracestop-run.1"), "only stop changed: {reported:?}");

    fs::remove_file(dir.path().join("completions/gracestop.bash")).expect("remove");
    fs::write(dir.path().join("man/gracestop-old.1"), ".TH OLD 1\n").expect("write");
    let reported = stale(&files, dir.path());
    assert_eq!(reported, ["completions/gracestop.bash", "man/gracestop-old.1 (not generated: remove it)"]);
}

// ---------------------------------------------------------------------------
// Content

fn page_text<'a>(files: &'a [Generated], path: &str) -> &'a str {
    &files.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("{path} is generated")).text
}

#[test]
fn every_page_has_its_sections_exit_codes_variables_and_examples() {
    let files = generate(Cli::command());
    let mut top = Cli::command();
    top.build();
    for path in ["man/gracestop.1", "man/gracestop-run.1", "man/gracestop-stop.1", "man/gracestop-drain.1"] {
        let text = page_text(&files, path);
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH OPTIONS",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH EXAMPLES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(text.contains(section), "{path} lacks {section}:\n{text}");
        }
        assert!(!text.contains(".SH EXTRA") && !text.contains("Example:"), "{path}: {text}");
        assert_eq!(text.matches(".ds Aq").count(), 2, "{path}: one preamble (.ie/.el)");
        assert!(text.contains(".TH GRACESTOP") && text.contains(env!("CARGO_PKG_VERSION")), "{path}");
    }
    for sub in top.get_subcommands().filter(|s| s.get_name() != "help") {
        let text = page_text(&files, &format!("man/gracestop-{}.1", sub.get_name()));
        let top_text = page_text(&files, "man/gracestop.1");
        for exit in exit::rows(exit_command(sub)) {
            let row = format!(".TP\n\\fB{}\\fR\n", exit.shown_code());
            assert!(text.contains(&row) && top_text.contains(&row), "{} lacks exit {exit:?}", sub.get_name());
        }
        for env in sub.get_arguments().filter_map(|a| a.get_env()) {
            let entry = format!(".TP\n\\fB{}\\fR\n", env.to_string_lossy());
            assert!(text.contains(&entry) && top_text.contains(&entry), "{} lacks {env:?}", sub.get_name());
        }
        let (_, examples) = split_examples(sub);
        assert!(!examples.is_empty(), "{} has no Example: paragraph", sub.get_name());
        for example in examples {
            let first = fold_example(&example).remove(0);
            let first = first.trim_end_matches(" \\").replace('-', "\\-");
            assert!(text.contains(&first) && top_text.contains(&first), "{} lacks {first}", sub.get_name());
        }
    }
    assert!(page_text(&files, "man/gracestop-stop.1").contains("\\fBgracestop\\-run\\fR(1)"));
}

#[test]
fn long_examples_fold_at_words_and_keep_quotes_whole() {
    let folded = fold_example(
        "gracestop run --deregister-body '{\"status\": \"DOWN\"}' --deregister-url http://127.0.0.1:8080/x --drain 30s -- java -jar app.jar",
    );
    assert!(folded.iter().all(|l| l.len() <= EXAMPLE_WIDTH), "{folded:#?}");
    assert!(folded.iter().any(|l| l.contains("'{\"status\": \"DOWN\"}'")), "{folded:#?}");
    assert!(folded[..folded.len() - 1].iter().all(|l| l.ends_with(" \\")), "{folded:#?}");
    assert_eq!(fold_example("gracestop drain"), ["gracestop drain"]);
}

#[test]
fn zsh_completes_commands_after_run() {
    let files = generate(Cli::command());
    assert!(page_text(&files, "completions/_gracestop").contains("_cmdambivalent"));
    assert!(page_text(&files, "completions/gracestop.fish").contains("__gracestop_run_command"));
}

// ---------------------------------------------------------------------------
// The files at work, in the real tools

/// Whether `tool` is on PATH. When it is not, the check is skipped with a note,
/// or fails under `GRACESTOP_CI`.
fn have(tool: &str, check: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()) {
        return true;
    }
    assert!(std::env::var_os("GRACESTOP_CI").is_none(), "{tool} is not installed, and GRACESTOP_CI is set ({check})");
    eprintln!("note: {tool} is not installed: skipping {check}");
    false
}

fn output(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

/// The generated files, written to a fresh folder (not the committed ones, which
/// a blessing test may be rewriting meanwhile; they are equal when fresh).
fn rendered() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_all(&generate(Cli::command()), dir.path());
    dir
}

/// grotty's text without its bold and underline (`X\bX`, `_\bX`).
fn without_overstrike(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn groff_renders_every_page_without_warnings() {
    if !have("groff", "man page rendering") {
        return;
    }
    let dir = rendered();
    let mut pages = 0;
    for entry in fs::read_dir(dir.path().join("man")).expect("man/") {
        let path = entry.expect("read_dir").path();
        let out = output(Command::new("groff").args(["-ww", "-man", "-Tutf8"]).arg(&path));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.is_empty(), "groff on {}: {}\n{stderr}", path.display(), out.status);
        let text = without_overstrike(&String::from_utf8_lossy(&out.stdout));
        assert!(text.contains("EXIT STATUS") && text.contains("ENVIRONMENT"), "{}:\n{text}", path.display());
        pages += 1;
    }
    assert_eq!(pages, 4);
}

/// What the bash completion of `completions/gracestop.bash` offers for `line`
/// (the cursor at its end), one candidate a line.
fn bash_complete(completion: &Path, line: &str) -> Vec<String> {
    let script = r#"
        source "$1" || exit 90
        # complete -p prints `complete -F FUNCTION ... gracestop`.
        spec=$(complete -p gracestop) || exit 91
        set -- $spec
        while [ $# -gt 0 ] && [ "$1" != -F ]; do shift; done
        function=$2
        read -r -a COMP_WORDS <<< "$COMP_LINE"
        case "$COMP_LINE" in *' ') COMP_WORDS+=("") ;; esac
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_POINT=${#COMP_LINE}
        "$function" gracestop "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = output(
        Command::new("bash")
            .args(["--norc", "--noprofile", "-c", script, "bash"])
            .arg(completion)
            .env("COMP_LINE", line),
    );
    assert!(out.status.success(), "bash: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn bash_completes_subcommands_and_options() {
    if !have("bash", "the bash completion") {
        return;
    }
    let dir = rendered();
    let completion = dir.path().join("completions/gracestop.bash");
    assert_eq!(bash_complete(&completion, "gracestop st"), ["stop"]);
    assert_eq!(bash_complete(&completion, "gracestop stop --pidf"), ["--pidfile"]);
    let drain = bash_complete(&completion, "gracestop drain --");
    assert!(drain.iter().any(|c| c == "--deregister-url") && !drain.iter().any(|c| c == "--force"), "{drain:?}");
}

#[test]
fn zsh_and_fish_parse_their_completions() {
    let dir = rendered();
    for (shell, file) in [("zsh", "_gracestop"), ("fish", "gracestop.fish")] {
        if !have(shell, "its completion's syntax") {
            continue;
        }
        let out = output(Command::new(shell).arg("-n").arg(dir.path().join("completions").join(file)));
        assert!(out.status.success(), "{shell} -n {file}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn fish_completes_subcommands_and_the_command_after_run() {
    if !have("fish", "the fish completion") {
        return;
    }
    let dir = rendered();
    let completion = dir.path().join("completions/gracestop.fish");
    let complete = |line: &str| -> Vec<String> {
        let out = output(
            Command::new("fish")
                .args(["--no-config", "-c", "source $argv[1]; and complete -C $argv[2]"])
                .arg(&completion)
                .arg(line),
        );
        assert!(out.status.success(), "fish: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        // Each candidate is `word<TAB>description`.
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().map(|l| l.split('\t').next().unwrap_or_default().to_string()).collect()
    };
    assert_eq!(complete("gracestop st"), ["stop"]);
    let after_run = complete("gracestop run --drain 5s -- ech");
    assert!(after_run.iter().any(|c| c == "echo"), "{after_run:?}");
    let options_of_run = complete("gracestop run --stop");
    assert!(options_of_run.iter().any(|c| c == "--stop-on"), "{options_of_run:?}");
}
