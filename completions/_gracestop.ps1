
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'gracestop' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'gracestop'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'gracestop' {
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)')
            [CompletionResult]::new('--log-file', '--log-file', [CompletionResultType]::ParameterName, 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop''s events into `kubectl logs`')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (pidfd use, identities, timings)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (pidfd use, identities, timings)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Launch COMMAND and supervise it; SIGTERM or SIGINT runs the stop sequence')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'Stop processes that already run, by PID or pidfile')
            [CompletionResult]::new('drain', 'drain', [CompletionResultType]::ParameterValue, 'Only deregister and drain, then exit: a shell-free Kubernetes preStop')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'gracestop;run' {
            [CompletionResult]::new('--stop-on', '--stop-on', [CompletionResultType]::ParameterName, 'Signals that start the stop sequence (comma-separated)')
            [CompletionResult]::new('--remap-exit', '--remap-exit', [CompletionResultType]::ParameterName, 'Map the child''s exit code FROM to TO (repeatable), e.g. 143=0 for a JVM that exits 143 after a graceful SIGTERM')
            [CompletionResult]::new('--pidfile', '--pidfile', [CompletionResultType]::ParameterName, 'Write gracestop''s own PID here (atomically), and remove it at exit')
            [CompletionResult]::new('--terminal', '--terminal', [CompletionResultType]::ParameterName, 'Who owns the terminal when gracestop is started in its foreground')
            [CompletionResult]::new('--deregister-url', '--deregister-url', [CompletionResultType]::ParameterName, 'URL to call before the stop signal (repeatable; all are called at once)')
            [CompletionResult]::new('--deregister-method', '--deregister-method', [CompletionResultType]::ParameterName, 'HTTP method of the deregistration requests')
            [CompletionResult]::new('--deregister-header', '--deregister-header', [CompletionResultType]::ParameterName, 'Header ''Name: value'' to send (repeatable). Values never appear in the log')
            [CompletionResult]::new('--deregister-body', '--deregister-body', [CompletionResultType]::ParameterName, 'Request body: the text itself, or @FILE to read it from a file')
            [CompletionResult]::new('--deregister-timeout', '--deregister-timeout', [CompletionResultType]::ParameterName, 'Time limit of one deregistration attempt (connect, send, response headers)')
            [CompletionResult]::new('--deregister-retries', '--deregister-retries', [CompletionResultType]::ParameterName, 'Retries after a connection error, a timeout or a 5xx answer (short backoff)')
            [CompletionResult]::new('--deregister-cacert', '--deregister-cacert', [CompletionResultType]::ParameterName, 'PEM file of the CA certificates that https deregistration URLs are checked against, instead of the system''s')
            [CompletionResult]::new('--drain', '--drain', [CompletionResultType]::ParameterName, 'Sleep after deregistering, before the signal: the load balancer''s refresh window. Ends early when every target exits, or on a SIGTERM/SIGINT to gracestop')
            [CompletionResult]::new('--deadline', '--deadline', [CompletionResultType]::ParameterName, 'The outer budget (Kubernetes terminationGracePeriodSeconds, docker stop -t)')
            [CompletionResult]::new('--signal', '--signal', [CompletionResultType]::ParameterName, 'Stop signal: TERM, SIGTERM, term or 15 all work')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'How long to wait for the target to exit after the stop signal')
            [CompletionResult]::new('--dump', '--dump', [CompletionResultType]::ParameterName, 'Before killing, send a dump signal (default QUIT: a JVM prints its thread dump)')
            [CompletionResult]::new('--dump-wait', '--dump-wait', [CompletionResultType]::ParameterName, 'How long to wait after the dump signal')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)')
            [CompletionResult]::new('--log-file', '--log-file', [CompletionResultType]::ParameterName, 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop''s events into `kubectl logs`')
            [CompletionResult]::new('--single-child', '--single-child', [CompletionResultType]::ParameterName, 'Send the stop signal to the child alone, not to its whole process group')
            [CompletionResult]::new('--deregister-strict', '--deregister-strict', [CompletionResultType]::ParameterName, 'Abort before any signal, with exit 1, when a deregistration fails')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Send SIGKILL when the target still runs after --wait (and --dump)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (pidfd use, identities, timings)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (pidfd use, identities, timings)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'gracestop;stop' {
            [CompletionResult]::new('--pid', '--pid', [CompletionResultType]::ParameterName, 'Process to stop (repeatable). Must be 2 or more and not gracestop itself')
            [CompletionResult]::new('--pidfile', '--pidfile', [CompletionResultType]::ParameterName, 'File holding the PID of the process to stop (repeatable)')
            [CompletionResult]::new('--deregister-url', '--deregister-url', [CompletionResultType]::ParameterName, 'URL to call before the stop signal (repeatable; all are called at once)')
            [CompletionResult]::new('--deregister-method', '--deregister-method', [CompletionResultType]::ParameterName, 'HTTP method of the deregistration requests')
            [CompletionResult]::new('--deregister-header', '--deregister-header', [CompletionResultType]::ParameterName, 'Header ''Name: value'' to send (repeatable). Values never appear in the log')
            [CompletionResult]::new('--deregister-body', '--deregister-body', [CompletionResultType]::ParameterName, 'Request body: the text itself, or @FILE to read it from a file')
            [CompletionResult]::new('--deregister-timeout', '--deregister-timeout', [CompletionResultType]::ParameterName, 'Time limit of one deregistration attempt (connect, send, response headers)')
            [CompletionResult]::new('--deregister-retries', '--deregister-retries', [CompletionResultType]::ParameterName, 'Retries after a connection error, a timeout or a 5xx answer (short backoff)')
            [CompletionResult]::new('--deregister-cacert', '--deregister-cacert', [CompletionResultType]::ParameterName, 'PEM file of the CA certificates that https deregistration URLs are checked against, instead of the system''s')
            [CompletionResult]::new('--drain', '--drain', [CompletionResultType]::ParameterName, 'Sleep after deregistering, before the signal: the load balancer''s refresh window. Ends early when every target exits, or on a SIGTERM/SIGINT to gracestop')
            [CompletionResult]::new('--deadline', '--deadline', [CompletionResultType]::ParameterName, 'The outer budget (Kubernetes terminationGracePeriodSeconds, docker stop -t)')
            [CompletionResult]::new('--signal', '--signal', [CompletionResultType]::ParameterName, 'Stop signal: TERM, SIGTERM, term or 15 all work')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'How long to wait for the target to exit after the stop signal')
            [CompletionResult]::new('--dump', '--dump', [CompletionResultType]::ParameterName, 'Before killing, send a dump signal (default QUIT: a JVM prints its thread dump)')
            [CompletionResult]::new('--dump-wait', '--dump-wait', [CompletionResultType]::ParameterName, 'How long to wait after the dump signal')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)')
            [CompletionResult]::new('--log-file', '--log-file', [CompletionResultType]::ParameterName, 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop''s events into `kubectl logs`')
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'Signal the target''s whole process group instead of the one process')
            [CompletionResult]::new('--missing-ok', '--missing-ok', [CompletionResultType]::ParameterName, 'Exit 0 instead of 3 when no target is running')
            [CompletionResult]::new('--deregister-strict', '--deregister-strict', [CompletionResultType]::ParameterName, 'Abort before any signal, with exit 1, when a deregistration fails')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Send SIGKILL when the target still runs after --wait (and --dump)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (pidfd use, identities, timings)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (pidfd use, identities, timings)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'gracestop;drain' {
            [CompletionResult]::new('--deregister-url', '--deregister-url', [CompletionResultType]::ParameterName, 'URL to call before the stop signal (repeatable; all are called at once)')
            [CompletionResult]::new('--deregister-method', '--deregister-method', [CompletionResultType]::ParameterName, 'HTTP method of the deregistration requests')
            [CompletionResult]::new('--deregister-header', '--deregister-header', [CompletionResultType]::ParameterName, 'Header ''Name: value'' to send (repeatable). Values never appear in the log')
            [CompletionResult]::new('--deregister-body', '--deregister-body', [CompletionResultType]::ParameterName, 'Request body: the text itself, or @FILE to read it from a file')
            [CompletionResult]::new('--deregister-timeout', '--deregister-timeout', [CompletionResultType]::ParameterName, 'Time limit of one deregistration attempt (connect, send, response headers)')
            [CompletionResult]::new('--deregister-retries', '--deregister-retries', [CompletionResultType]::ParameterName, 'Retries after a connection error, a timeout or a 5xx answer (short backoff)')
            [CompletionResult]::new('--deregister-cacert', '--deregister-cacert', [CompletionResultType]::ParameterName, 'PEM file of the CA certificates that https deregistration URLs are checked against, instead of the system''s')
            [CompletionResult]::new('--drain', '--drain', [CompletionResultType]::ParameterName, 'Sleep after deregistering, before the signal: the load balancer''s refresh window. Ends early when every target exits, or on a SIGTERM/SIGINT to gracestop')
            [CompletionResult]::new('--deadline', '--deadline', [CompletionResultType]::ParameterName, 'The outer budget (Kubernetes terminationGracePeriodSeconds, docker stop -t)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How events are written: human (one line each) or json (one object per line, schema "v":1, see the README)')
            [CompletionResult]::new('--log-file', '--log-file', [CompletionResultType]::ParameterName, 'Append the events to FILE instead of writing them to stderr (created with mode 0600 if missing). `--log-file /proc/1/fd/2` puts a Kubernetes preStop''s events into `kubectl logs`')
            [CompletionResult]::new('--deregister-strict', '--deregister-strict', [CompletionResultType]::ParameterName, 'Abort before any signal, with exit 1, when a deregistration fails')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (pidfd use, identities, timings)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (pidfd use, identities, timings)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'gracestop;help' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Launch COMMAND and supervise it; SIGTERM or SIGINT runs the stop sequence')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'Stop processes that already run, by PID or pidfile')
            [CompletionResult]::new('drain', 'drain', [CompletionResultType]::ParameterValue, 'Only deregister and drain, then exit: a shell-free Kubernetes preStop')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'gracestop;help;run' {
            break
        }
        'gracestop;help;stop' {
            break
        }
        'gracestop;help;drain' {
            break
        }
        'gracestop;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
