package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/dustin/go-humanize"
	"golang.org/x/term"

	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/p2p/invite"
)

func cmdInvite(ctx context.Context, std stdio, args []string) error {
	f := newFlags("invite", std)
	png := f.String("png", "", "also write the QR code as a PNG image to `FILE`")
	jsonOut := f.Bool("json", false, `print {"code", "expires"} as JSON`)
	ttl := f.Duration("ttl", p2p.DefaultInviteTTL, "how long the invite stays valid")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	var inv httpui.Invite
	q := url.Values{"ttl": {ttl.String()}}
	if err := c.do(ctx, "POST", "/api/v1/invites", q, nil, &inv); err != nil {
		return err
	}
	if *png != "" {
		b, err := invite.QRPNG(inv.Code, 512)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*png, b, 0o644); err != nil {
			return fmt.Errorf("write the QR code: %w", err)
		}
	}
	if *jsonOut {
		return printJSON(std.out, inv)
	}
	if isTerminal(std.err) {
		if qr, err := invite.QRTerminal(inv.Code, true); err == nil {
			std.err.print(qr)
		}
		std.err.printf("Give this code to a friend (or let them scan the QR code). They run: plug accept CODE\nIt works once and expires %s.\n", inv.Expires.Local().Format("Mon 2 Jan 15:04"))
	}
	std.out.println(inv.Code)
	return nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func cmdAccept(ctx context.Context, std stdio, args []string) error {
	f := newFlags("accept", std)
	jsonOut := f.Bool("json", false, "print the new friend as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(f.cmd.usage, "accept: give the invite code your friend sent you")
	}
	code := strings.Join(pos, "") // a code pasted with spaces arrives as several arguments
	c, err := f.client(std)
	if err != nil {
		return err
	}
	var fr httpui.Friend
	err = c.stream(ctx, "/api/v1/friends/accept", map[string]string{"code": code}, std, func(raw json.RawMessage) {
		var msg string
		if json.Unmarshal(raw, &msg) == nil {
			std.err.printf("… %s\n", msg)
		}
	}, &fr)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(std.out, fr)
	}
	std.out.printf("You and %s are now friends (%s, %s).\n", fr.Name, fr.PeerID, fr.LinkText())
	return nil
}

func cmdFriends(ctx context.Context, std stdio, args []string) error {
	f := newFlags("friends", std)
	jsonOut := f.Bool("json", false, "print the friends as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		switch pos[0] {
		case "quota":
			if len(pos) != 3 {
				return usagef(f.cmd.usage, "friends quota: give a friend (name or peer ID) and a size, e.g. plug friends quota ann 20GiB")
			}
			size, err := humanize.ParseBytes(pos[2])
			if err != nil || size > 1<<62 {
				return usagef(f.cmd.usage, "friends quota: %q is not a size (try 20GiB or 500MB)", pos[2])
			}
			var fr httpui.Friend
			if err := c.do(ctx, "PUT", "/api/v1/friends/"+url.PathEscape(pos[1])+"/quota", nil, map[string]int64{"quota_given": int64(size)}, &fr); err != nil {
				return err
			}
			if *jsonOut {
				return printJSON(std.out, fr)
			}
			std.out.printf("You now give %s up to %s (they use %s).\n", fr.Name, humanize.IBytes(uint64(fr.QuotaGiven)), humanize.IBytes(uint64(fr.UsedGiven)))
			return nil
		case "remove":
			if len(pos) != 2 {
				return usagef(f.cmd.usage, "friends remove: give one friend (name or peer ID)")
			}
			var res struct {
				Freed int64 `json:"freed"`
			}
			if err := c.do(ctx, "DELETE", "/api/v1/friends/"+url.PathEscape(pos[1]), nil, nil, &res); err != nil {
				return err
			}
			if *jsonOut {
				return printJSON(std.out, res)
			}
			std.out.printf("Removed %s: it gets no more service from this plug; %s of its shards deleted.\n", pos[1], humanize.IBytes(uint64(res.Freed)))
			return nil
		default:
			return usagef(f.cmd.usage, "friends: unknown subcommand %q", pos[0])
		}
	}
	var fs []httpui.Friend
	if err := c.do(ctx, "GET", "/api/v1/friends", nil, nil, &fs); err != nil {
		return err
	}
	if *jsonOut {
		if fs == nil {
			fs = []httpui.Friend{}
		}
		return printJSON(std.out, fs)
	}
	if len(fs) == 0 {
		std.out.println("No friends yet. Run \"plug invite\" and give the code to a friend.")
		return nil
	}
	tw := std.out.table()
	tw.println("NAME\tCONNECTION\tYOU GIVE (USED)\tTHEY GIVE (USED)\tPEER ID")
	for _, x := range fs {
		st := x.LinkText()
		switch {
		case x.Online && x.RTTms > 0:
			st += fmt.Sprintf(", %s", rttText(x.RTTms))
		case !x.Online && !x.LastSeen.IsZero():
			st += ", seen " + humanize.Time(x.LastSeen)
		}
		tw.printf("%s\t%s\t%s (%s)\t%s (%s)\t%s\n", x.Name, st,
			humanize.IBytes(uint64(x.QuotaGiven)), humanize.IBytes(uint64(x.UsedGiven)),
			humanize.IBytes(uint64(x.QuotaTaken)), humanize.IBytes(uint64(x.UsedTaken)), x.PeerID)
	}
	tw.flush()
	return nil
}

// rttText renders a round-trip time: "0.4 ms", "23 ms".
func rttText(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}
