package main

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return strconv.Quote(s)
	}
	return s
}
