
use builtin;
use str;

set edit:completion:arg-completer[gracestop] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'gracestop'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'gracestop'= {
            cand --log-format 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)'
            cand --log-file 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop''s events into `kubectl logs`'
            cand -q 'Print errors only'
            cand --quiet 'Print errors only'
            cand -v 'Print more detail (pidfd use, identities, timings)'
            cand --verbose 'Print more detail (pidfd use, identities, timings)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand run 'Launch COMMAND and supervise it; SIGTERM or SIGINT runs the stop sequence'
            cand stop 'Stop processes that already run, by PID or pidfile'
            cand drain 'Only deregister and drain, then exit: a shell-free Kubernetes preStop'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'gracestop;run'= {
            cand --stop-on 'Signals that start the stop sequence (comma-separated)'
            cand --remap-exit 'Map the child''s exit code FROM to TO (repeatable), e.g. 143=0 for a JVM that exits 143 after a graceful SIGTERM'
            cand --pidfile 'Write gracestop''s own PID here (atomically), and remove it at exit'
            cand --terminal 'Who owns the terminal when gracestop is started in its foreground'
            cand --deregister-url 'URL to call before the stop signal (repeatable; all are called at once)'
            cand --deregister-method 'HTTP method of the deregistration requests'
            cand --deregister-header 'Header ''Name: value'' to send (repeatable). Values never appear in the log'
            cand --deregister-body 'Request body: the text itself, or @FILE to read it from a file'
            cand --deregister-timeout 'Time limit of one deregistration attempt (connect, send, response headers)'
            cand --deregister-retries 'Retries after a connection error, a timeout or a 5xx answer (short backoff)'
            cand --deregister-cacert 'PEM file of the CA certificates that https deregistration URLs are checked against, instead of the system''s'
            cand --drain 'Sleep after deregistering, before the signal: the load balancer''s refresh window. Ends early when every target exits, or on a SIGTERM/SIGINT to gracestop'
            cand --deadline 'The outer budget (Kubernetes terminationGracePeriodSeconds, docker stop -t)'
            cand --signal 'Stop signal: TERM, SIGTERM, term or 15 all work'
            cand --wait 'How long to wait for the target to exit after the stop signal'
            cand --dump 'Before killing, send a dump signal (default QUIT: a JVM prints its thread dump)'
            cand --dump-wait 'How long to wait after the dump signal'
            cand --log-format 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)'
            cand --log-file 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop''s events into `kubectl logs`'
            cand --single-child 'Send the stop signal to the child alone, not to its whole process group'
            cand --deregister-strict 'Abort before any signal, with exit 1, when a deregistration fails'
            cand --force 'Send SIGKILL when the target still runs after --wait (and --dump)'
            cand -q 'Print errors only'
            cand --quiet 'Print errors only'
            cand -v 'Print more detail (pidfd use, identities, timings)'
            cand --verbose 'Print more detail (pidfd use, identities, timings)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'gracestop;stop'= {
            cand --pid 'Process to stop (repeatable). Must be 2 or more and not gracestop itself'
            cand --pidfile 'File holding the PID of the process to stop (repeatable)'
            cand --deregister-url 'URL to call before the stop signal (repeatable; all are called at once)'
            cand --deregister-method 'HTTP method of the deregistration requests'
            cand --deregister-header 'Header ''Name: value'' to send (repeatable). Values never appear in the log'
            cand --deregister-body 'Request body: the text itself, or @FILE to read it from a file'
            cand --deregister-timeout 'Time limit of one deregistration attempt (connect, send, response headers)'
            cand --deregister-retries 'Retries after a connection error, a timeout or a 5xx answer (short backoff)'
            cand --deregister-cacert 'PEM file of the CA certificates that https deregistration URLs are checked against, instead of the system''s'
            cand --drain 'Sleep after deregistering, before the signal: the load balancer''s refresh window. Ends early when every target exits, or on a SIGTERM/SIGINT to gracestop'
            cand --deadline 'The outer budget (Kubernetes terminationGracePeriodSeconds, docker stop -t)'
            cand --signal 'Stop signal: TERM, SIGTERM, term or 15 all work'
            cand --wait 'How long to wait for the target to exit after the stop signal'
            cand --dump 'Before killing, send a dump signal (default QUIT: a JVM prints its thread dump)'
            cand --dump-wait 'How long to wait after the dump signal'
            cand --log-format 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)'
            cand --log-file 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop''s events into `kubectl logs`'
            cand --group 'Signal the target''s whole process group instead of the one process'
            cand --missing-ok 'Exit 0 instead of 3 when no target is running'
            cand --deregister-strict 'Abort before any signal, with exit 1, when a deregistration fails'
            cand --force 'Send SIGKILL when the target still runs after --wait (and --dump)'
            cand -q 'Print errors only'
            cand --quiet 'Print errors only'
            cand -v 'Print more detail (pidfd use, identities, timings)'
            cand --verbose 'Print more detail (pidfd use, identities, timings)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'gracestop;drain'= {
            cand --deregister-url 'URL to call before the stop signal (repeatable; all are called at once)'
            cand --deregister-method 'HTTP method of the deregistration requests'
            cand --deregister-header 'Header ''Name: value'' to send (repeatable). Values never appear in the log'
            cand --deregister-body 'Request body: the text itself, or @FILE to read it from a file'
            cand --deregister-timeout 'Time limit of one deregistration attempt (connect, send, response headers)'
            cand --deregister-retries 'Retries after a connection error, a timeout or a 5xx answer (short backoff)'
            cand --deregister-cacert 'PEM file of the CA certificates that https deregistration URLs are checked against, instead of the system''s'
            cand --drain 'Sleep after deregistering, before the signal: the load balancer''s refresh window. Ends early when every target exits, or on a SIGTERM/SIGINT to gracestop'
            cand --deadline 'The outer budget (Kubernetes terminationGracePeriodSeconds, docker stop -t)'
            cand --log-format 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)'
            cand --log-file 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop''s events into `kubectl logs`'
            cand --deregister-strict 'Abort before any signal, with exit 1, when a deregistration fails'
            cand -q 'Print errors only'
            cand --quiet 'Print errors only'
            cand -v 'Print more detail (pidfd use, identities, timings)'
            cand --verbose 'Print more detail (pidfd use, identities, timings)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'gracestop;help'= {
            cand run 'Launch COMMAND and supervise it; SIGTERM or SIGINT runs the stop sequence'
            cand stop 'Stop processes that already run, by PID or pidfile'
            cand drain 'Only deregister and drain, then exit: a shell-free Kubernetes preStop'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'gracestop;help;run'= {
        }
        &'gracestop;help;stop'= {
        }
        &'gracestop;help;drain'= {
        }
        &'gracestop;help;help'= {
        }
    ]
    $completions[$command]
}
