package transport

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// wantUDPBuffer is the socket buffer size quic-go asks the kernel for; a
// smaller one drops packets at high rates, which congestion control then
// reads as loss.
const wantUDPBuffer = 7 << 20

// UDPBufferAdvice checks the kernel's limits on UDP socket buffers (Linux)
// and, if they are below what quic-go wants, returns advice on raising
// them. It returns "" when all is well or the limits cannot be read.
func UDPBufferAdvice() string {
	var small []string
	for _, name := range []string{"rmem_max", "wmem_max"} {
		b, err := os.ReadFile("/proc/sys/net/core/" + name)
		if err != nil {
			return ""
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && n < wantUDPBuffer {
			small = append(small, fmt.Sprintf("net.core.%s=%d", name, n))
		}
	}
	if len(small) == 0 {
		return ""
	}
	return fmt.Sprintf("UDP socket buffers are small (%s; quic-go wants %d): fast or long links will drop packets; raise them with: sysctl -w net.core.rmem_max=%d net.core.wmem_max=%d",
		strings.Join(small, ", "), wantUDPBuffer, wantUDPBuffer, wantUDPBuffer)
}
