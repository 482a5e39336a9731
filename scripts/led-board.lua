-- led-board.lua: a board whose LED a server controls (the NodeJS2Hardware
-- example of seed 001). The server sends "LED ON" or "LED OFF", one command a
-- line; the board obeys and reports "STATE ON" / "STATE OFF". It reports its
-- state once on connecting, and answers anything else with "ERROR ...".
--
--   wirecat listen 127.0.0.1:5000 --frame line          # in one terminal: type LED ON / LED OFF
--   wirecat simulate scripts/led-board.lua --connect 127.0.0.1:5000   # in another
local conn, err = net.connect(TARGET, { frame = "line" })
if not conn then
  error("cannot reach the server: " .. err)
end

local led = "OFF"
conn:send("STATE " .. led)
while true do
  local cmd, err = conn:recv()
  if not cmd then
    log.info("server closed the connection (" .. err .. ")")
    break
  end
  local want = cmd:match("^%s*LED%s+(%u+)%s*$")
  if want == "ON" or want == "OFF" then
    led = want
    conn:send("STATE " .. led)
  else
    conn:send("ERROR unknown command: " .. cmd)
  end
end
