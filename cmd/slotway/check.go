package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/check"
)

const checkUsage = `Usage: slotway check [-addr HOST:PORT | -config FILE] [flags]

Writes SET key N (N counting up per key, each key written by one connection
only) at -rate writes per second, reads a key back after each write, and
when it ends (-duration, or Ctrl-C) reads back every key it wrote. Prints
the result to stdout; the first line is
  written N, acked A, lost L, stale S, errors E
  lost    acknowledged writes gone at the end (key missing or older value)
  stale   reads during the run that returned an older value than acknowledged
  errors  failed or timed-out commands; their writes may or may not have
          landed, both are accepted
then the error kinds, the longest error streak and the latencies.

Exit status: 0 if lost and stale are 0 (errors alone, e.g. during a
failover, do not fail the check); 1 if not, or if the endpoint does not
answer PING at the start; 2 for bad flags. The keys (-prefix) are left in
place. -password falls back to $REDISCLI_AUTH.

Flags:
`

// cmdCheck runs the consistency checker against an endpoint.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, checkUsage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "", "endpoint host:port (a Slotway or a Redis)")
	var path string
	fs.StringVar(&path, "config", "", "use proxy.listen of this Slotway config file instead of -addr")
	fs.StringVar(&path, "c", "", "shorthand for -config")
	rate := fs.Int("rate", check.DefaultRate, "writes per second, over all connections")
	workers := fs.Int("workers", check.DefaultWorkers, "concurrent connections")
	keys := fs.Int("keys", check.DefaultKeys, "number of keys, written round robin")
	duration := fs.Duration("duration", 0, "how long to write (0: until Ctrl-C)")
	prefix := fs.String("prefix", check.DefaultPrefix, "key prefix")
	user := fs.String("user", "", "ACL user (AUTH user password)")
	password := fs.String("password", "", "password (AUTH); default $REDISCLI_AUTH")
	opTimeout := fs.Duration("op-timeout", check.DefaultOpTimeout, "timeout of one command, connecting included")
	verbose := fs.Bool("v", false, "print progress every second to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	switch {
	case *addr != "" && path != "":
		return usageError{errors.New("give -addr or -config, not both")}
	case *addr == "" && path == "":
		return usageError{errors.New("-addr HOST:PORT or -config FILE is required")}
	case path != "":
		a, err := checkAddrFromConfig(path)
		if err != nil {
			return err
		}
		*addr = a
	}
	if *password == "" {
		*password = os.Getenv("REDISCLI_AUTH")
	}
	if *rate <= 0 || *workers <= 0 || *keys <= 0 || *duration < 0 || *opTimeout <= 0 || *prefix == "" {
		return usageError{errors.New("-rate, -workers, -keys and -op-timeout must be positive, -duration not negative, -prefix not empty")}
	}
	if *workers > *keys {
		return usageError{fmt.Errorf("-workers %d exceeds -keys %d: each connection owns keys", *workers, *keys)}
	}
	cfg := check.Config{
		Addr: *addr, Rate: *rate, Workers: *workers, Keys: *keys, Prefix: *prefix,
		Duration: *duration, Username: *user, Password: *password, OpTimeout: *opTimeout,
	}
	if *verbose {
		cfg.Progress = func(p check.Progress) {
			fmt.Fprintf(stderr, "elapsed %v, written %d, errors %d\n", p.Elapsed.Round(time.Second), p.Written, p.Errors)
		}
	}
	// go-redis logs every failed dial; the result counts them instead.
	redis.SetLogger(quietLogger{})
	res, err := check.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, res)
	if !res.OK() {
		return fmt.Errorf("inconsistent: %d acknowledged writes lost, %d stale reads", res.Lost, res.Stale)
	}
	return nil
}

// checkAddrFromConfig returns the address to dial for a config file's
// proxy.listen: a wildcard host becomes loopback.
func checkAddrFromConfig(path string) (string, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return "", err
	}
	if cfg.witnessOnly() {
		return "", fmt.Errorf("%s: a witness runs no proxy", path)
	}
	if cfg.Proxy.TLS.CertFile != "" {
		return "", fmt.Errorf("%s: the proxy listens with TLS; slotway check speaks plain RESP only", path)
	}
	host, port, err := net.SplitHostPort(cfg.Proxy.Listen)
	if err != nil {
		return "", fmt.Errorf("%s: proxy.listen: %w", path, err)
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.To4() != nil && ip.IsUnspecified()):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
