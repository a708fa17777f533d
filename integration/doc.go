// Package integration runs multi-plug scenarios: several plugs in one process
// and real plug processes on 127.0.0.1, the way people and scripts use them.
package integration
