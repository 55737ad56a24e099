package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
)

// UserConfig is one proxy-level user (proxy.users).
type UserConfig struct {
	Name string `yaml:"name"`
	// Password in clear, or PasswordSHA256 as 64 hex digits (preferred:
	// the config file then holds no secret).
	Password       string `yaml:"password"`
	PasswordSHA256 string `yaml:"password_sha256"`
	// Categories the user may run, Redis ACL style: "@all", "@read",
	// "-@dangerous" (a leading "-" denies). Default ["@all"].
	Categories []string `yaml:"categories"`
	// ReadOnly refuses every command flagged write.
	ReadOnly bool `yaml:"readonly"`
}

var (
	categoryMu   sync.Mutex
	categoryBits = map[string]uint64{}
)

// categoryBit maps an ACL category ("@read") to a bit, assigning bits as
// categories appear (Redis has about 21).
func categoryBit(name string) uint64 {
	name = strings.ToLower(name)
	categoryMu.Lock()
	defer categoryMu.Unlock()
	b, ok := categoryBits[name]
	if !ok {
		if len(categoryBits) >= 63 {
			return 0
		}
		b = 1 << len(categoryBits)
		categoryBits[name] = b
	}
	return b
}

// user is a UserConfig compiled for the data path.
type user struct {
	name     string
	hash     [32]byte
	allowAll bool
	allow    uint64
	deny     uint64
	readOnly bool
}

func compileUsers(cfgs []UserConfig) (map[string]*user, error) {
	users := map[string]*user{}
	for i, uc := range cfgs {
		u := &user{name: uc.Name, readOnly: uc.ReadOnly}
		switch {
		case uc.PasswordSHA256 != "":
			h, err := hex.DecodeString(uc.PasswordSHA256)
			if err != nil || len(h) != 32 {
				return nil, fmt.Errorf("users[%d].password_sha256: want 64 hex digits", i)
			}
			copy(u.hash[:], h)
		default:
			u.hash = sha256.Sum256([]byte(uc.Password))
		}
		cats := uc.Categories
		if len(cats) == 0 {
			cats = []string{"@all"}
		}
		for _, c := range cats {
			deny := strings.HasPrefix(c, "-")
			c = strings.TrimLeft(c, "+-")
			switch {
			case c == "@all" && !deny:
				u.allowAll = true
			case deny:
				u.deny |= categoryBit(c)
			default:
				u.allow |= categoryBit(c)
			}
		}
		users[uc.Name] = u
	}
	return users, nil
}

func (u *user) check(password []byte) bool {
	h := sha256.Sum256(password)
	return subtle.ConstantTimeCompare(h[:], u.hash[:]) == 1
}

// permits reports whether u may run ci.
func (u *user) permits(ci *cmdInfo) bool {
	if u.readOnly && ci.flags&flagWrite != 0 {
		return false
	}
	if ci.cats&u.deny != 0 {
		return false
	}
	return u.allowAll || ci.cats&u.allow != 0
}

// authenticate handles AUTH [user] password; it returns the reply.
func (c *client) authenticate(name, password []byte, dst []byte) []byte {
	users := c.s.settings().users
	if len(users) == 0 {
		return appendError(dst, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	}
	u := users[string(name)]
	if u == nil || !u.check(password) {
		c.s.m.authFailures.Inc()
		return appendError(dst, "WRONGPASS invalid username-password pair or user is disabled.")
	}
	c.setUser(u)
	return append(dst, "+OK\r\n"...)
}
