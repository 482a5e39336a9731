package script

import (
	"fmt"
	"sort"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/link"
)

// parseWSOpts reads the WebSocket fields of net.connect's and net.listen's
// opts over simulate's defaults (--subprotocol, --header...), for that one
// connection or listener:
//
//	subprotocol = "mqtt"                  offered (connect), required (listen)
//	headers     = {["X-Board"] = "7"}     sent with the upgrade (connect); or
//	              {"X-Board: 7", ...}     as --header takes them
//	origin      = "http://dash.local"     sent (connect), the only one accepted (listen)
//	text        = true                    send text messages, not binary
//	ping        = 5                       seconds between pings (0: none)
//
// Headers given here are added to --header's; a field of the wrong type is
// an argument error, as a header that is not `Key: Value`.
func parseWSOpts(L *lua.LState, t *lua.LTable, ws *link.WSOptions) {
	str := func(k string, p *string) {
		switch v := t.RawGetString(k).(type) {
		case lua.LString:
			*p = string(v)
		case *lua.LNilType:
		default:
			L.ArgError(2, k+" must be a string")
		}
	}
	str("subprotocol", &ws.Subprotocol)
	str("origin", &ws.Origin)
	switch v := t.RawGetString("text").(type) {
	case lua.LBool:
		ws.Text = bool(v)
	case *lua.LNilType:
	default:
		L.ArgError(2, "text must be a boolean")
	}
	switch v := t.RawGetString("ping").(type) {
	case lua.LNumber:
		// 0 turns pings off; otherwise between 10ms (a tighter loop only
		// floods the peer) and a day. NaN fails both tests.
		if !(v == 0 || v >= 0.01 && v <= 86400) {
			L.ArgError(2, "ping must be 0 (off) or seconds from 0.01 to 86400")
		}
		ws.Ping = time.Duration(float64(v) * float64(time.Second))
	case *lua.LNilType:
	default:
		L.ArgError(2, "ping must be a number of seconds")
	}
	switch h := t.RawGetString("headers").(type) {
	case *lua.LTable:
		hs := append([]string(nil), ws.Header...) // simulate's, not shared
		var named []string
		h.ForEach(func(k, v lua.LValue) {
			vs, ok := v.(lua.LString)
			if !ok {
				L.ArgError(2, "headers: values must be strings")
			}
			switch k := k.(type) {
			case lua.LNumber: // {"K: V", ...}
				hs = append(hs, string(vs))
			case lua.LString: // {K = "V"}
				named = append(named, string(k)+": "+string(vs))
			default:
				L.ArgError(2, "headers: keys must be header names")
			}
		})
		sort.Strings(named) // a table's order is not the script's
		for _, s := range append(hs[len(ws.Header):], named...) {
			if link.CheckHeader(s) != nil {
				L.ArgError(2, fmt.Sprintf("headers: %q: want 'Key: Value'", s))
			}
		}
		ws.Header = append(hs, named...)
	case *lua.LNilType:
	default:
		L.ArgError(2, "headers must be a table")
	}
}
