-- modbus-rtu.lua: a Modbus RTU slave behind a pty, served by the modbus
-- module (RTU framing, CRC-16, exception replies). 100 holding registers,
-- 0..99: register 0 is a temperature in tenths of a degree that drifts,
-- register i (i > 0) starts at i. Reads (function 3, up to 125 registers)
-- and writes (6 and 16) work on them; the other tables are absent, so
-- their functions are exception 1 (illegal function), registers out of
-- 0..99 exception 2, a bad count exception 3. A frame with a bad CRC or
-- for another unit is ignored, as on a real bus.
--
--   wirecat simulate scripts/modbus-rtu.lua --listen pty:/tmp/ttyRTU &
--   mbpoll -m rtu -a 1 -b 9600 -P none -t 4 -r 1 -c 5 -1 /tmp/ttyRTU
local addr = args.listen or "pty:/tmp/ttyRTU"
local plc = { unit = tonumber(args.unit or "1"), holding = {} }
for i = 0, 99 do
  plc.holding[i] = i
end
plc.holding[0] = 215

every(1, function()
  local t = plc.holding[0]
  plc.holding[0] = math.max(150, math.min(300, t + math.random(-3, 3)))
end)

assert(modbus.serve(addr, { rtu = true }, plc))
