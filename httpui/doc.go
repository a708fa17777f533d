// Package httpui serves the plug's local web UI and the JSON API under
// /api/v1/ that both the UI and the command line use. It listens on loopback
// by default and requires a login or the API token.
package httpui
