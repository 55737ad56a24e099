package main

import (
	"fmt"
	"log/slog"
	"net"
	"testing"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/scaler"
)

// TestNewInstanceClosesWhatItBuilt: when a part fails to build (here the
// scaler: its provider config is bad), the parts built before it are
// closed, in reverse order: the proxy's and the stats addresses are free
// again at once. (The stats listener stayed bound before.)
func TestNewInstanceClosesWhatItBuilt(t *testing.T) {
	var addrs []string
	for range 3 {
		p, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	cfg := defaultConfig()
	cfg.Proxy.Listen, cfg.Stats.Listen = addrs[0], addrs[1]
	cfg.Proxy.Cluster.Seeds = []string{"127.0.0.1:1"} // never dialled: nothing runs
	hc := ha.DefaultConfig()
	hc.Name, hc.Bind, hc.VIP = "p1", addrs[2], ha.VIPConfig{Mode: "status"}
	cfg.HA = &hc
	sc := scaler.DefaultConfig()
	sc.Provider.Kind = "exec" // without acquire: refused by scaler.New
	cfg.Scaler = &sc
	if _, err := newInstance(cfg, slog.New(slog.DiscardHandler), nil); err == nil {
		t.Fatal("newInstance with a bad scaler config succeeded")
	}
	for _, a := range addrs[:2] {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s is still bound after the failed start: %v", a, err)
			continue
		}
		ln.Close()
	}
}
