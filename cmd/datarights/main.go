// Command datarights runs the personal-information rights service.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // deadlines are in Asia/Shanghai even where the OS has no zone files
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		var usage usageError
		if errors.As(err, &usage) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "datarights:", err)
		os.Exit(1)
	}
}

// usageError is a command-line mistake: it is printed with the usage hint
// and exits 2.
type usageError string

func (e usageError) Error() string { return string(e) + "\n\n" + usage }

const usage = `usage: datarights <command> [flags]

commands:
  dev [-dir D] [-addr A] [-fresh]
                      run API and workers with local defaults and a demo bank (no setup needed);
                      -fresh resets the demo's databases and configuration
  serve  [-config F]  run the API and the workers
  worker [-config F]  run the workers only
  migrate up [-config F] [-runtime-role R | -single-role]
                      apply database migrations on DATARIGHTS_MIGRATE_DATABASE_URL (else DATABASE_URL),
                      hand the tables to datarights_owner and grant the service's role R (default:
                      DATABASE_URL's role) only what it needs; -single-role: one role does everything
  config check [-config F]  check the configuration (file and environment) as serve would read it;
                      print every problem as file:line: field: reason, exit 1 if any
  audit verify [-config F]  check every audit chain and anchor; exit 1 naming the first broken link
  audit anchor [-config F]  anchor the audit trail now (the service does it every audit.anchor_interval)
  token add NAME --role R [--products a,b] [-config F]
                      create a staff token, print it once, store its hash
  token list [-config F]         the staff tokens: names, roles, products, revoked when
  token revoke NAME [-config F]  revoke a staff token
  token hash TOKEN    print the SHA-256 to put in staff_tokens[].sha256
  key new [ID]        print a new secret key entry for DATARIGHTS_SECRET_KEY
  sla due --policy P --days N --calendar cn --start T [--roll-forward]
                      print the last day of a period (YYYY-MM-DD), then details
  console link NAME [-config F] [-ttl 15m]
                      print a one-time sign-in link to the staff console (/console/) for NAME
  requests list|show|file|approve|answer|refuse|pause|resume|extend|assign|note …
                      the staff queue through a running service's API ($DATARIGHTS_URL,
                      token in $DATARIGHTS_STAFF_TOKEN); "datarights requests help" for the verbs
  register export --from D --to D [--product P] [--format csv|json]
                      the register of requests received in a period, to stdout (an auditor's
                      token in $DATARIGHTS_STAFF_TOKEN; columns in docs/register.md)
  version             print the version (also --version)
  help [COMMAND]      this list, or a command's help

Run "datarights <command> -h" for the flags of a command.`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	var help helpRequest
	if errors.As(err, &help) {
		fmt.Fprint(stdout, string(help))
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("datarights: a command is required")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr, true)
	case "worker":
		return runServe(ctx, rest, getenv, stdout, stderr, false)
	case "dev":
		return runDev(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "config":
		return runConfig(rest, getenv, stdout)
	case "audit":
		return runAudit(ctx, rest, getenv, stdout, stderr)
	case "token":
		return runToken(ctx, rest, getenv, stdout, stderr)
	case "sla":
		return runSLA(ctx, rest, getenv, stdout, stderr)
	case "key":
		return runKey(rest, stdout)
	case "requests":
		return runRequests(ctx, rest, getenv, stdout, stderr)
	case "console":
		return runConsole(ctx, rest, getenv, stdout, stderr)
	case "register":
		return runRegister(ctx, rest, getenv, stdout, stderr)
	case "version", "-version", "--version":
		return runVersion(rest, stdout)
	case "help", "-h", "-help", "--help":
		// `help CMD …` is `CMD … -h`.
		if len(rest) > 0 && !isHelp(rest[0]) {
			return dispatch(ctx, append(append([]string{}, rest...), "-h"), getenv, stdout, stderr)
		}
		return helpRequest(usage + "\n")
	}
	return usageError(fmt.Sprintf("datarights: unknown command %q", cmd))
}
