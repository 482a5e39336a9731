-- at-modem.lua: a cellular modem's AT command interpreter behind a pty, for
-- testing host software that drives a modem without one on the desk.
-- Commands end with CR (a terminal's Enter) or CRLF; each answer line ends
-- with CRLF, and every command's answer ends with OK or ERROR.
--
--     AT       OK
--     ATI      the modem's name, then OK
--     AT+CSQ   +CSQ: <rssi>,99 (signal quality, drifting), then OK
--     ATE1     echo commands back (ATE0: stop; off at start)
--     other    ERROR
--
--   wirecat simulate scripts/at-modem.lua --listen pty:/tmp/ttyModem &
--   wirecat send serial:/tmp/ttyModem 'AT+CSQ' --frame crlf --until OK
local addr = args.listen or "pty:/tmp/ttyModem"
local rssi = 20
local echo = false

-- The signal drifts, as a real one does.
every(1, function()
  rssi = math.max(2, math.min(31, rssi + math.random(-2, 2)))
end)

local answers = {
  ["AT"] = function() return {} end,
  ["ATI"] = function() return { "wirecat AT modem, device " .. device.id } end,
  ["AT+CSQ"] = function() return { string.format("+CSQ: %d,99", rssi) } end,
  ["ATE0"] = function() echo = false return {} end,
  ["ATE1"] = function() echo = true return {} end,
}

assert(net.listen(addr, function(conn)
  while true do
    local line = conn:recv_until("\r")
    if not line then
      return -- the host closed the tty; the next opener gets a fresh session
    end
    if echo then
      conn:send(line)
    end
    -- "AT\r" as sent is looked up as it is; only other forms are trimmed
    -- (a pattern is compiled at each call: the fast path spares it).
    local cmd = (line:byte(-1) == 13 and line:sub(1, -2) or line):upper()
    if not answers[cmd] then
      cmd = cmd:gsub("^%s+", ""):gsub("%s+$", "")
    end
    if cmd ~= "" then
      local answer = answers[cmd]
      local out = ""
      if answer then
        for _, l in ipairs(answer()) do
          out = out .. l .. "\r\n"
        end
        out = out .. "OK\r\n"
      else
        out = "ERROR\r\n"
      end
      conn:send(out)
    end
  end
end))
