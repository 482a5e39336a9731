-- esp8266-get.lua: fetch a web page over a raw socket and print it, as the
-- MicroPython ESP8266 example of seed 002 does: open a socket, send the
-- GET request by hand, print what comes back until the server closes.
--
--   python3 -m http.server 8000 &
--   wirecat simulate scripts/esp8266-get.lua --connect 127.0.0.1:8000 --arg path=/
local path = args.path or "/"
local host = args.host or "127.0.0.1"

local conn, err = net.connect(TARGET)
if not conn then
  error("cannot connect: " .. err)
end
conn:send("GET " .. path .. " HTTP/1.0\r\nHost: " .. host .. "\r\n\r\n")

local parts = {}
while true do
  local data, err = conn:recv(10)
  if not data then
    if err ~= "closed" then
      log.warn("stopped reading: " .. err)
    end
    break
  end
  parts[#parts + 1] = data
end
conn:close()
print(table.concat(parts))
