# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_gracestop_global_optspecs
    string join \n q/quiet v/verbose log-format= log-file= h/help V/version
end

function __fish_gracestop_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_gracestop_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_gracestop_using_subcommand
    set -l cmd (__fish_gracestop_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c gracestop -n "__fish_gracestop_needs_command" -l log-format -d 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)' -r -f -a "human\t'One line per event: `gracestop: +0.012s signal SIGTERM -> 4242 (java)`'
json\t'One JSON object per line, for deploy tooling'"
complete -c gracestop -n "__fish_gracestop_needs_command" -l log-file -d 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop\'s events into `kubectl logs`' -r -F
complete -c gracestop -n "__fish_gracestop_needs_command" -s q -l quiet -d 'Print errors only'
complete -c gracestop -n "__fish_gracestop_needs_command" -s v -l verbose -d 'Print more detail (pidfd use, identities, timings)'
complete -c gracestop -n "__fish_gracestop_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c gracestop -n "__fish_gracestop_needs_command" -s V -l version -d 'Print version'
complete -c gracestop -n "__fish_gracestop_needs_command" -f -a "run" -d 'Launch COMMAND and supervise it; SIGTERM or SIGINT runs the stop sequence'
complete -c gracestop -n "__fish_gracestop_needs_command" -f -a "stop" -d 'Stop processes that already run, by PID or pidfile'
complete -c gracestop -n "__fish_gracestop_needs_command" -f -a "drain" -d 'Only deregister and drain, then exit: a shell-free Kubernetes preStop'
complete -c gracestop -n "__fish_gracestop_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l stop-on -d 'Signals that start the stop sequence (comma-separated)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l remap-exit -d 'Map the child\'s exit code FROM to TO (repeatable), e.g. 143=0 for a JVM that exits 143 after a graceful SIGTERM' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l pidfile -d 'Write gracestop\'s own PID here (atomically), and remove it at exit' -r -F
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l terminal -d 'Who owns the terminal when gracestop is started in its foreground' -r -f -a "auto\t'`keep` when a deregistration or drain is configured, `child` otherwise'
child\t'The child\'s process group gets the terminal (as under tini)'
keep\t'gracestop keeps it: Ctrl-C runs the stop sequence'"
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l deregister-url -d 'URL to call before the stop signal (repeatable; all are called at once)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l deregister-method -d 'HTTP method of the deregistration requests' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l deregister-header -d 'Header \'Name: value\' to send (repeatable). Values never appear in the log' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l deregister-body -d 'Request body: the text itself, or @FILE to read it from a file' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l deregister-timeout -d 'Time limit of one deregistration attempt (connect, send, response headers)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l deregister-retries -d 'Retries after a connection error, a timeout or a 5xx answer (short backoff)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l deregister-cacert -d 'PEM file of the CA certificates that https deregistration URLs are checked against, instead of the system\'s' -r -F
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l drain -d 'Sleep after deregistering, before the signal: the load balancer\'s refresh window. Ends early when every target exits, or on a SIGTERM/SIGINT to gracestop' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l deadline -d 'The outer budget (Kubernetes terminationGracePeriodSeconds, docker stop -t)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l signal -d 'Stop signal: TERM, SIGTERM, term or 15 all work' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l wait -d 'How long to wait for the target to exit after the stop signal' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l dump -d 'Before killing, send a dump signal (default QUIT: a JVM prints its thread dump)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l dump-wait -d 'How long to wait after the dump signal' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l log-format -d 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)' -r -f -a "human\t'One line per event: `gracestop: +0.012s signal SIGTERM -> 4242 (java)`'
json\t'One JSON object per line, for deploy tooling'"
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l log-file -d 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop\'s events into `kubectl logs`' -r -F
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l single-child -d 'Send the stop signal to the child alone, not to its whole process group'
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l deregister-strict -d 'Abort before any signal, with exit 1, when a deregistration fails'
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -l force -d 'Send SIGKILL when the target still runs after --wait (and --dump)'
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -s q -l quiet -d 'Print errors only'
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -s v -l verbose -d 'Print more detail (pidfd use, identities, timings)'
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c gracestop -n "__fish_gracestop_using_subcommand run" -s V -l version -d 'Print version'
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l pid -d 'Process to stop (repeatable). Must be 2 or more and not gracestop itself' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l pidfile -d 'File holding the PID of the process to stop (repeatable)' -r -F
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l deregister-url -d 'URL to call before the stop signal (repeatable; all are called at once)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l deregister-method -d 'HTTP method of the deregistration requests' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l deregister-header -d 'Header \'Name: value\' to send (repeatable). Values never appear in the log' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l deregister-body -d 'Request body: the text itself, or @FILE to read it from a file' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l deregister-timeout -d 'Time limit of one deregistration attempt (connect, send, response headers)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l deregister-retries -d 'Retries after a connection error, a timeout or a 5xx answer (short backoff)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l deregister-cacert -d 'PEM file of the CA certificates that https deregistration URLs are checked against, instead of the system\'s' -r -F
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l drain -d 'Sleep after deregistering, before the signal: the load balancer\'s refresh window. Ends early when every target exits, or on a SIGTERM/SIGINT to gracestop' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l deadline -d 'The outer budget (Kubernetes terminationGracePeriodSeconds, docker stop -t)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l signal -d 'Stop signal: TERM, SIGTERM, term or 15 all work' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l wait -d 'How long to wait for the target to exit after the stop signal' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l dump -d 'Before killing, send a dump signal (default QUIT: a JVM prints its thread dump)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l dump-wait -d 'How long to wait after the dump signal' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l log-format -d 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)' -r -f -a "human\t'One line per event: `gracestop: +0.012s signal SIGTERM -> 4242 (java)`'
json\t'One JSON object per line, for deploy tooling'"
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l log-file -d 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop\'s events into `kubectl logs`' -r -F
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l group -d 'Signal the target\'s whole process group instead of the one process'
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l missing-ok -d 'Exit 0 instead of 3 when no target is running'
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l deregister-strict -d 'Abort before any signal, with exit 1, when a deregistration fails'
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -l force -d 'Send SIGKILL when the target still runs after --wait (and --dump)'
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -s q -l quiet -d 'Print errors only'
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -s v -l verbose -d 'Print more detail (pidfd use, identities, timings)'
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c gracestop -n "__fish_gracestop_using_subcommand stop" -s V -l version -d 'Print version'
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l deregister-url -d 'URL to call before the stop signal (repeatable; all are called at once)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l deregister-method -d 'HTTP method of the deregistration requests' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l deregister-header -d 'Header \'Name: value\' to send (repeatable). Values never appear in the log' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l deregister-body -d 'Request body: the text itself, or @FILE to read it from a file' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l deregister-timeout -d 'Time limit of one deregistration attempt (connect, send, response headers)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l deregister-retries -d 'Retries after a connection error, a timeout or a 5xx answer (short backoff)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l deregister-cacert -d 'PEM file of the CA certificates that https deregistration URLs are checked against, instead of the system\'s' -r -F
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l drain -d 'Sleep after deregistering, before the signal: the load balancer\'s refresh window. Ends early when every target exits, or on a SIGTERM/SIGINT to gracestop' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l deadline -d 'The outer budget (Kubernetes terminationGracePeriodSeconds, docker stop -t)' -r
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l log-format -d 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)' -r -f -a "human\t'One line per event: `gracestop: +0.012s signal SIGTERM -> 4242 (java)`'
json\t'One JSON object per line, for deploy tooling'"
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l log-file -d 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop\'s events into `kubectl logs`' -r -F
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -l deregister-strict -d 'Abort before any signal, with exit 1, when a deregistration fails'
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -s q -l quiet -d 'Print errors only'
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -s v -l verbose -d 'Print more detail (pidfd use, identities, timings)'
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c gracestop -n "__fish_gracestop_using_subcommand drain" -s V -l version -d 'Print version'
complete -c gracestop -n "__fish_gracestop_using_subcommand help; and not __fish_seen_subcommand_from run stop drain help" -f -a "run" -d 'Launch COMMAND and supervise it; SIGTERM or SIGINT runs the stop sequence'
complete -c gracestop -n "__fish_gracestop_using_subcommand help; and not __fish_seen_subcommand_from run stop drain help" -f -a "stop" -d 'Stop processes that already run, by PID or pidfile'
complete -c gracestop -n "__fish_gracestop_using_subcommand help; and not __fish_seen_subcommand_from run stop drain help" -f -a "drain" -d 'Only deregister and drain, then exit: a shell-free Kubernetes preStop'
complete -c gracestop -n "__fish_gracestop_using_subcommand help; and not __fish_seen_subcommand_from run stop drain help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

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
