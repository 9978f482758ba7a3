package main

import (
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	const text = `
# qftp config
Host files work
    HostName files.example.com
    User alice
    Port 7444
    Jobs 8
Host !bad *.example.com
    Fingerprint SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
    LimitRate 10MiB
Host *
    User nobody
    Jobs 2
`
	cf, err := parseConfig(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want hostConfig
	}{
		{"files", hostConfig{HostName: "files.example.com", User: "alice", Port: 7444, Jobs: 8}},
		{"WORK", hostConfig{HostName: "files.example.com", User: "alice", Port: 7444, Jobs: 8}},
		{"a.example.com", hostConfig{User: "nobody", Jobs: 2, Fingerprint: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", LimitRate: "10MiB"}},
		{"bad", hostConfig{User: "nobody", Jobs: 2}},
		{"other", hostConfig{User: "nobody", Jobs: 2}},
	}
	for _, tt := range tests {
		if got := cf.lookup(tt.host); got != tt.want {
			t.Errorf("lookup(%q) = %+v, want %+v", tt.host, got, tt.want)
		}
	}
	for _, bad := range []string{"Port 0", "Port x", "Jobs 0", "Fingerprint nope", "LimitRate fast", "LimitRate 0.1", "LimitRate 0B", "Color red", "User", "User ="} {
		if _, err := parseConfig(strings.NewReader("Host x\n" + bad + "\n")); err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// The separators ssh_config allows.
	for _, line := range []string{"HostName\tx.example", "HostName = x.example", "HostName=x.example", "  HostName  \t x.example  "} {
		cf, err := parseConfig(strings.NewReader(line + "\n"))
		if err != nil || cf.lookup("any").HostName != "x.example" {
			t.Errorf("%q: %+v, %v", line, cf, err)
		}
	}
}
