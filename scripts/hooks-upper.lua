-- hooks-upper.lua: an example hook script for `wirecat relay --script`.
--
--   wirecat relay :7000 127.0.0.1:7001 --frame line --script scripts/hooks-upper.lua
--
-- What the client says is upper-cased on its way to the server; a message
-- "drop" never arrives; "a|b|c" arrives as three messages. The server's
-- answers pass untouched. print() writes to stderr.

local opened = 0 -- globals are shared by every connection

function on_open(conn)
  opened = opened + 1
  conn.messages = 0 -- conn is the same table for each call on one connection
  print(("open #%d %s -> %s (%d so far)"):format(conn.id, conn.client, conn.server, opened))
end

function on_message(conn, dir, msg)
  if dir ~= "client" then
    return msg -- from the server: unchanged
  end
  conn.messages = conn.messages + 1
  if msg == "drop" then
    return nil -- dropped
  end
  if msg:find("|", 1, true) then
    local parts = {}
    for part in msg:gmatch("[^|]+") do
      parts[#parts + 1] = part:upper()
    end
    return parts -- split: one message each
  end
  return msg:upper() -- rewritten
end

function on_close(conn)
  print(("close #%d after %d client messages"):format(conn.id, conn.messages))
end
