package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// output is where a command writes, for people or for scripts: stdout or
// stderr. It keeps the first write error, so that a command prints freely
// and run reports output that was lost (a full disk behind "> file", a
// closed pipe) as the command's failure.
type output struct {
	w   io.Writer
	err error
}

func newOutput(w io.Writer) *output { return &output{w: w} }

func (o *output) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	if err != nil {
		o.err = err
	}
	return n, err
}

// The print functions keep their error in o.err.

func (o *output) printf(format string, a ...any) { _, _ = fmt.Fprintf(o, format, a...) }
func (o *output) println(a ...any)               { _, _ = fmt.Fprintln(o, a...) }
func (o *output) print(a ...any)                 { _, _ = fmt.Fprint(o, a...) }

// table returns a table on o whose columns line up once flushed.
func (o *output) table() *table {
	return &table{tw: tabwriter.NewWriter(o, 0, 4, 2, ' ', 0)}
}

// table aligns tab-separated columns; its errors end up in its output's.
type table struct{ tw *tabwriter.Writer }

func (t *table) printf(format string, a ...any) { _, _ = fmt.Fprintf(t.tw, format, a...) }
func (t *table) println(a ...any)               { _, _ = fmt.Fprintln(t.tw, a...) }
func (t *table) flush()                         { _ = t.tw.Flush() }
