-- modbus-rtu.lua: a Modbus RTU slave behind a pty (self-contained: CRC-16
-- and frames by hand with string.pack and bit). 100 holding registers,
-- 0..99: register 0 is a temperature in tenths of a degree that drifts,
-- register i (i > 0) starts at i. Function 3 reads up to 125 registers,
-- function 6 writes one; anything else is exception 1 (illegal function),
-- registers out of 0..99 exception 2, a bad count exception 3. A frame with
-- a bad CRC or for another unit is ignored, as on a real bus.
--
--   wirecat simulate scripts/modbus-rtu.lua --listen pty:/tmp/ttyRTU &
--   mbpoll -m rtu -a 1 -b 9600 -P none -t 4 -r 1 -c 5 -1 /tmp/ttyRTU
local addr = args.listen or "pty:/tmp/ttyRTU"
local unit = tonumber(args.unit or "1")
local NREG = 100
local regs = {}
for i = 0, NREG - 1 do
  regs[i] = i
end
regs[0] = 215

every(1, function()
  regs[0] = math.max(150, math.min(300, regs[0] + math.random(-3, 3)))
end)

-- CRC-16/MODBUS: reflected 0xA001, initial 0xFFFF, sent low byte first.
local function crc16(s)
  local crc = 0xffff
  for i = 1, #s do
    crc = bit.bxor(crc, s:byte(i))
    for _ = 1, 8 do
      if bit.band(crc, 1) == 1 then
        crc = bit.bxor(bit.rshift(crc, 1), 0xa001)
      else
        crc = bit.rshift(crc, 1)
      end
    end
  end
  return crc
end

local function frame(pdu)
  local body = string.char(unit) .. pdu
  return body .. string.pack("<I2", crc16(body))
end

local function exception(fn, code)
  return frame(string.pack("BB", fn + 0x80, code))
end

-- answer returns the reply to one request frame (unit, PDU; CRC checked).
local function answer(fn, pdu)
  if fn == 3 then
    local start, count = string.unpack(">I2 I2", pdu, 2)
    if count < 1 or count > 125 then
      return exception(fn, 3)
    end
    if start + count > NREG then
      return exception(fn, 2)
    end
    local out = {}
    for i = start, start + count - 1 do
      out[#out + 1] = string.pack(">I2", regs[i])
    end
    return frame(string.pack("BB", 3, count * 2) .. table.concat(out))
  elseif fn == 6 then
    local reg, value = string.unpack(">I2 I2", pdu, 2)
    if reg >= NREG then
      return exception(fn, 2)
    end
    regs[reg] = value
    return frame(pdu) -- the echo of the request
  end
  return exception(fn, 1)
end

assert(net.listen(addr, function(conn)
  local buf = ""
  while true do
    local data = conn:recv()
    if not data then
      return -- the master closed the port; the next opener starts afresh
    end
    buf = buf .. data
    -- Functions 3 and 6 are 8 bytes on the wire; any other function's
    -- length is unknown here, so what arrived together is its frame (the
    -- silence that ends an RTU frame).
    while #buf >= 2 do
      local fn = buf:byte(2)
      local n = (fn == 3 or fn == 6) and 8 or #buf
      if #buf < n or n < 4 then
        break
      end
      local req = buf:sub(1, n)
      buf = buf:sub(n + 1)
      local body, crc = req:sub(1, n - 2), string.unpack("<I2", req, n - 1)
      if crc == crc16(body) and req:byte(1) == unit then
        conn:send(answer(fn, body:sub(2)))
      end
    end
  end
end))
