package target

import (
	"testing"

	"github.com/plug-net/plug/store/storetest"
)

func TestMemTarget(t *testing.T) {
	storetest.TestTarget(t, func(t *testing.T) storetest.Target { return NewMemTarget("mem") })
	storetest.TestTruncated(t, func(t *testing.T) (storetest.Target, func(id [32]byte, n int)) {
		tg := NewMemTarget("mem")
		return tg, func(id [32]byte, n int) {
			if !tg.Tamper(id, func(b []byte) []byte { return b[:n] }) {
				t.Fatalf("shard %x not held", id[:4])
			}
		}
	})
}
