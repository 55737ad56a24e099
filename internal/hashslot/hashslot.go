// Package hashslot is Redis Cluster's key-to-slot arithmetic, shared by
// the data plane (proxy) and the scaler.
package hashslot

// Count is the number of hash slots in a Redis Cluster.
const Count = 16384

var crc16tab [256]uint16

func init() {
	// CRC16-CCITT (XModem), polynomial 0x1021, as in the Redis cluster spec.
	for i := range crc16tab {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		crc16tab[i] = crc
	}
}

func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16tab[byte(crc>>8)^c]
	}
	return crc
}

// Of returns the hash slot of key, honouring hash tags: when the key holds
// a '{' followed later by a '}' with at least one byte between them, only
// those bytes are hashed. "{}" and a missing '}' hash the whole key.
func Of(key []byte) int {
	for i, c := range key {
		if c != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j == i+1 {
					break // empty tag: the whole key is hashed
				}
				return int(crc16(key[i+1:j]) & (Count - 1))
			}
		}
		break // only the first '{' counts
	}
	return int(crc16(key) & (Count - 1))
}
