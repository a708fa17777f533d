package target

import (
	"testing"

	"github.com/plug-net/plug/store/storetest"
)

func TestMemTarget(t *testing.T) {
	storetest.TestTarget(t, func(t *testing.T) storetest.Target { return NewMemTarget("mem") })
}
