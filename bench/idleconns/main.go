// Command idleconns holds many idle client connections open against a
// Redis-protocol server, for bench/run.sh's memory-per-connection phase.
//
// Each connection sends one PING and waits for +PONG; then the tool prints
// "open N failed M" on stdout and holds every open connection, idle, until
// SIGINT or SIGTERM (or -hold passes), closes them and exits 0. It exits 2
// for a bad command line. It is a benchmark helper: nothing imports it.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "", "server address HOST:PORT (required)")
	n := flag.Int("n", 10000, "connections to open")
	parallel := flag.Int("parallel", 64, "connections being opened at once")
	timeout := flag.Duration("timeout", 10*time.Second, "time limit for each connection's dial and PING")
	hold := flag.Duration("hold", 5*time.Minute, "close the connections and exit after this long even without a signal")
	flag.Parse()
	if *addr == "" || *n <= 0 || *parallel <= 0 || *timeout <= 0 || *hold <= 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "idleconns: -addr is required; -n, -parallel, -timeout and -hold must be positive")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	conns, failed, firstErr := open(ctx, *addr, *n, *parallel, *timeout)
	fmt.Printf("open %d failed %d\n", len(conns), failed)
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "idleconns: first error: %v\n", firstErr)
	}
	t := time.NewTimer(*hold)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	for _, c := range conns {
		c.Close()
	}
}

// open opens n connections, parallel at a time, each answered PING; it
// returns the open ones, how many failed and the first failure.
func open(ctx context.Context, addr string, n, parallel int, timeout time.Duration) ([]net.Conn, int, error) {
	var (
		mu       sync.Mutex
		conns    = make([]net.Conn, 0, n)
		failed   int
		firstErr error
		wg       sync.WaitGroup
	)
	jobs := make(chan struct{})
	for range min(parallel, n) {
		wg.Go(func() {
			for range jobs {
				c, err := ping(ctx, addr, timeout)
				mu.Lock()
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		})
	}
	sent := 0
feed:
	for ; sent < n; sent++ {
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return conns, failed + n - sent, firstErr
}

// ping dials addr, sends PING and checks the answer is +PONG.
func ping(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := io.WriteString(c, "*1\r\n$4\r\nPING\r\n"); err != nil {
		c.Close()
		return nil, fmt.Errorf("write PING: %w", err)
	}
	// The server sends nothing else unasked, so the reader cannot keep
	// bytes that belong to a later reply.
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read PING reply: %w", err)
	}
	if line != "+PONG\r\n" {
		c.Close()
		return nil, fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
