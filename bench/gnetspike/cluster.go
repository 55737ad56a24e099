package main

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/slotway/slotway/internal/hashslot"
)

const slotCount = hashslot.Count

// noMaster marks a slot no master serves in the slot table.
const noMaster = 0xFFFF

// value is a decoded RESP value; only used at start-up.
type value struct {
	str []byte
	num int64
	arr []value
	err bool
}

// decode decodes the complete RESP value b[pos:end].
func decode(b []byte, pos int) (value, int, error) {
	le := crlf(b, pos+1)
	if le < 0 {
		return value{}, 0, errProtocol
	}
	line := b[pos+1 : le]
	next := le + 2
	switch b[pos] {
	case '+':
		return value{str: line}, next, nil
	case '-':
		return value{str: line, err: true}, next, nil
	case ':':
		n, err := strconv.ParseInt(string(line), 10, 64)
		return value{num: n}, next, err
	case '$':
		n, ok := atoi(line)
		if !ok {
			return value{}, 0, errProtocol
		}
		if n < 0 {
			return value{}, next, nil
		}
		return value{str: b[next : next+n]}, next + n + 2, nil
	case '*':
		n, ok := atoi(line)
		if !ok {
			return value{}, 0, errProtocol
		}
		v := value{}
		for range max(n, 0) {
			var e value
			var err error
			e, next, err = decode(b, next)
			if err != nil {
				return value{}, 0, err
			}
			v.arr = append(v.arr, e)
		}
		return v, next, nil
	}
	return value{}, 0, errProtocol
}

// clusterSlots asks seed for CLUSTER SLOTS and returns the masters'
// addresses and the slot table (index into masters, noMaster if unserved).
func clusterSlots(seed string) ([]string, *[slotCount]uint16, error) {
	host, _, err := net.SplitHostPort(seed)
	if err != nil {
		return nil, nil, fmt.Errorf("seed %q: %w", seed, err)
	}
	conn, err := net.DialTimeout("tcp", seed, 5*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("dial seed %s: %w", seed, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n")); err != nil {
		return nil, nil, fmt.Errorf("CLUSTER SLOTS to %s: %w", seed, err)
	}
	r := bufio.NewReader(conn)
	var buf []byte
	chunk := make([]byte, 64<<10)
	for {
		end, err := replyEnd(buf, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("CLUSTER SLOTS from %s: %w", seed, err)
		}
		if end > 0 {
			break
		}
		n, err := r.Read(chunk)
		if err != nil {
			return nil, nil, fmt.Errorf("CLUSTER SLOTS from %s: %w", seed, err)
		}
		buf = append(buf, chunk[:n]...)
	}
	v, _, err := decode(buf, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("CLUSTER SLOTS from %s: %w", seed, err)
	}
	if v.err {
		return nil, nil, fmt.Errorf("CLUSTER SLOTS from %s: %s", seed, v.str)
	}
	table := new([slotCount]uint16)
	for i := range table {
		table[i] = noMaster
	}
	var masters []string
	index := map[string]int{}
	for _, r := range v.arr {
		// [start, end, [ip, port, id, ...], replicas...]
		if len(r.arr) < 3 || len(r.arr[2].arr) < 2 {
			return nil, nil, fmt.Errorf("CLUSTER SLOTS from %s: unexpected entry", seed)
		}
		ip := string(r.arr[2].arr[0].str)
		if ip == "" || ip == "?" {
			ip = host
		}
		addr := net.JoinHostPort(ip, strconv.FormatInt(r.arr[2].arr[1].num, 10))
		m, ok := index[addr]
		if !ok {
			m = len(masters)
			index[addr] = m
			masters = append(masters, addr)
		}
		for s := r.arr[0].num; s <= r.arr[1].num && s < slotCount; s++ {
			table[s] = uint16(m)
		}
	}
	if len(masters) == 0 {
		return nil, nil, fmt.Errorf("CLUSTER SLOTS from %s: no slots served", seed)
	}
	return masters, table, nil
}
