-- analog.lua: a board streaming an analog pin (a 12-bit ADC, 0..4095), the
-- Hardware2NodeJS example of seed 001. By default each reading goes out as
-- characters, one reading a line ("2048\n"); with --arg encoding=binary it
-- goes out as a big-endian uint16 (2 bytes). The seed's lesson: the value 1
-- as a char is the byte 0x31, as an integer the bytes 0x00 0x01 — the
-- receiver must know. The connection's framing says how a reading ends
-- (line: each send gets its "\n"); --frame only changes how the built-in
-- sink cuts and prints what arrives.
--
--   wirecat simulate scripts/analog.lua --arg readings=3
--   wirecat simulate scripts/analog.lua -o lines --frame line
--   wirecat simulate scripts/analog.lua --arg encoding=binary --frame fixed:2 -o hex
local binary = args.encoding == "binary"
local interval = tonumber(args.interval) or 0.5
local readings = tonumber(args.readings)

local conn, err = net.connect(TARGET, { frame = binary and "raw" or "line" })
if not conn then
  error("cannot reach the server: " .. err)
end

local value = math.random(0, 4095)
local sent = 0
while not readings or sent < readings do
  value = math.max(0, math.min(4095, value + math.random(-64, 64)))
  local msg
  if binary then
    msg = string.pack(">I2", value)
  else
    msg = tostring(value) -- the line framing ends it
  end
  if not conn:send(msg) then
    break
  end
  sent = sent + 1
  sleep(interval)
end
conn:close()
