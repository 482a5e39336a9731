-- thermo.lua: a board streaming temperature and humidity as "t:h," — a comma
-- between readings, a colon inside one (the protocol of seed 001).
--
--   wirecat simulate scripts/thermo.lua                  # prints to the built-in sink
--   wirecat simulate scripts/thermo.lua --count 100 --connect 127.0.0.1:5000
--   wirecat simulate scripts/thermo.lua --arg interval=0.1 --arg readings=5
--   wirecat simulate scripts/thermo.lua --frame line     # "t:h\n" instead

-- The board's framing: each send gets its comma, and the built-in sink cuts
-- what it receives at the commas and prints one reading a line.
FRAME = "delim:,"
local interval = tonumber(args.interval) or 1
local readings = tonumber(args.readings) -- nil: stream until stopped

local conn, err = net.connect(TARGET)
if not conn then
  error("cannot reach the server: " .. err)
end

-- Each board starts somewhere a little different (math.random is seeded per
-- device from --seed), then drifts.
local temp = 18 + math.random() * 6
local hum = math.random(35, 55)

local sent = 0
while true do
  temp = temp + (math.random() - 0.5) * 0.4
  hum = math.max(0, math.min(100, hum + math.random(-1, 1)))
  local ok, err = conn:send(string.format("%.1f:%d", temp, hum))
  if not ok then
    log.warn("server went away: " .. err)
    return
  end
  sent = sent + 1
  if readings and sent >= readings then
    break
  end
  sleep(interval)
end
conn:close()
