-- esp8266-get.lua: fetch a web page and print it, as the MicroPython
-- ESP8266 example of seed 002 does, with the http module instead of a GET
-- written by hand: the status line, then the page.
--
--   python3 -m http.server 8000 &
--   wirecat simulate scripts/esp8266-get.lua --connect 127.0.0.1:8000 --arg path=/
local path = args.path or "/"
local host = args.host or "127.0.0.1:8000"

-- With --connect, the request goes there whatever host the url names.
local resp, err = http.get("http://" .. host .. path)
if not resp then
  error("cannot fetch " .. path .. ": " .. err)
end
print(resp.version .. " " .. resp.status .. " " .. resp.reason)
print(resp.body)
