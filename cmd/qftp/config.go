package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qftp/qftp/certs"
)

// hostConfig is what the config file says about one host. Zero values are
// unset.
type hostConfig struct {
	HostName    string
	User        string
	Port        int
	Fingerprint string
	Jobs        int
	LimitRate   string
}

// configFile is a parsed client config file: blocks of settings, each
// under a "Host PATTERN..." line, in the style of ssh_config:
//
//	Host files work
//	    HostName files.example.com
//	    User alice
//	    Port 7443
//	    Fingerprint SHA256:...
//	    Jobs 8
//	    LimitRate 10MiB
//
// For each setting the first block that matches the host and sets it wins,
// so put specific hosts before "Host *".
type configFile struct {
	blocks []configBlock
}

type configBlock struct {
	patterns []string
	hostConfig
}

func defaultConfigPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "qftp", "config")
}

// loadConfig reads the config file at p; a missing file is an empty config
// unless required.
func loadConfig(p string, required bool) (*configFile, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !required {
			return &configFile{}, nil
		}
		return nil, err
	}
	defer f.Close()
	cf, err := parseConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return cf, nil
}

func parseConfig(r io.Reader) (*configFile, error) {
	cf := &configFile{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// As in ssh_config: "Key value", "Key=value" or "Key = value",
		// with spaces or tabs.
		key, val := line, ""
		if i := strings.IndexAny(line, " \t="); i >= 0 {
			key, val = line[:i], strings.TrimLeft(line[i:], " \t")
			val = strings.TrimSpace(strings.TrimPrefix(val, "="))
		}
		key = strings.ToLower(key)
		if val == "" {
			return nil, fmt.Errorf("line %d: %s needs a value", n, key)
		}
		if key == "host" {
			cf.blocks = append(cf.blocks, configBlock{patterns: strings.Fields(val)})
			continue
		}
		if len(cf.blocks) == 0 {
			// Settings before any Host line apply to every host.
			cf.blocks = append(cf.blocks, configBlock{patterns: []string{"*"}})
		}
		b := &cf.blocks[len(cf.blocks)-1]
		var err error
		switch key {
		case "hostname":
			b.HostName = val
		case "user":
			b.User = val
		case "port":
			b.Port, err = strconv.Atoi(val)
			if err == nil && (b.Port < 1 || b.Port > 65535) {
				err = errors.New("out of range")
			}
		case "fingerprint":
			b.Fingerprint, err = certs.ParseFingerprint(val)
		case "jobs":
			b.Jobs, err = strconv.Atoi(val)
			if err == nil && (b.Jobs < 1 || b.Jobs > 256) {
				err = errors.New("want 1 to 256")
			}
		case "limitrate":
			err = checkRate(val)
			b.LimitRate = val
		default:
			return nil, fmt.Errorf("line %d: unknown setting %q", n, key)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %s %s: %w", n, key, val, err)
		}
	}
	return cf, sc.Err()
}

// lookup returns the settings for host: for each, the first matching block
// that sets it.
func (cf *configFile) lookup(host string) hostConfig {
	var hc hostConfig
	for _, b := range cf.blocks {
		if !matchHost(b.patterns, host) {
			continue
		}
		hc.HostName = first(hc.HostName, b.HostName)
		hc.User = first(hc.User, b.User)
		hc.Fingerprint = first(hc.Fingerprint, b.Fingerprint)
		hc.LimitRate = first(hc.LimitRate, b.LimitRate)
		if hc.Port == 0 {
			hc.Port = b.Port
		}
		if hc.Jobs == 0 {
			hc.Jobs = b.Jobs
		}
	}
	return hc
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// matchHost matches host against patterns with * and ?; a pattern
// starting with ! excludes.
func matchHost(patterns []string, host string) bool {
	matched := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(host)); ok {
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}
